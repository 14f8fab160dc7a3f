// perftest's -W/--report-counters (perftest 4.5's perftest_counters.c): a list of the port's counter
// files, named as under /sys/class/infiniband/<dev>/ports/<port>/ ("hw_counters/sent_pkts"), read when
// the test's resources are made and again after each report row, where each one's change since its
// last read is printed as "\t<name>=<change>" and the list ends with an empty line.
//
// The device's counters are rxe's hw_counters (and its own drop reasons, in the same block): a name
// is "hw_counters/" and one of them. perftest opens the files before its connection (create_comm_struct,
// just after check_link); one it cannot open ends the test there, as here.

import type { Device } from "../core/verbs/index.js";

/** The directory of the port's files the device's counters are in (rxe's). */
const HW_COUNTERS = "hw_counters/";

export class ReportCounters {
  private readonly last: number[];

  private constructor(
    private readonly dev: Device,
    /** each as given, the file under the port's directory */
    private readonly names: readonly string[],
    /** each one's counter in the device's block */
    private readonly counters: readonly string[],
  ) {
    this.last = this.read();
  }

  /**
   * The list as -W gives it, comma-separated (perftest's strtok: empty names are skipped), opened on
   * `dev`; undefined when a name is not one of its files (perftest's "Unable to access performance
   * counters").
   */
  static open(dev: Device, list: string): ReportCounters | undefined {
    const names = list.split(",").filter((n) => n !== "");
    const known = dev.queryCounters();
    const counters = names.map((n) => (n.startsWith(HW_COUNTERS) ? n.slice(HW_COUNTERS.length) : ""));
    if (counters.some((c) => !Object.hasOwn(known, c))) return undefined;
    return new ReportCounters(dev, names, counters);
  }

  /** counters_print: each counter's change since its last read, a line each, then an empty line. */
  print(): string {
    const now = this.read();
    let s = "";
    this.names.forEach((n, i) => {
      s += `\t${n}=${now[i]! - this.last[i]!}\n`;
      this.last[i] = now[i]!;
    });
    return `${s}\n`;
  }

  private read(): number[] {
    const k = this.dev.queryCounters();
    return this.counters.map((c) => k[c]!);
  }
}
