// What a pingpong prints when it gives up waiting for a completion (--timeout): where each side of
// the packet path stands, so a stall can be told apart from a loss. The loop's progress, the QP
// and CQ; the port (datagrams each way, drops by reason, what it holds back); the UDP link and,
// on the native datapath, its counters and the socket's receive readiness (is the uv_poll
// watching, does the socket hold a datagram right now); the kernel's UDP counters (a datagram the
// kernel dropped never reaches the socket); the device's non-zero counters.
import { kernelText } from "../node/kernel-text.js";
import { nameOf, QpState, type Device, type QueuePair, type CompletionQueue } from "../core/verbs/index.js";
import { udpLinkOf } from "../node/index.js";
import { NativeUdpLink } from "../node/native-link.js";

export interface StallFacts {
  dev: Device;
  qp: QueuePair;
  cq: CompletionQueue;
  iters: number;
  rcnt: number;
  scnt: number;
  /** what the loop waits for: "receive", "send" or both */
  waitingFor: string[];
}

/** The report's lines (no trailing newline on each). */
export function stallReport(f: StallFacts): string[] {
  const L: string[] = [];
  L.push(`stalled after ${f.rcnt} of ${f.iters} receives and ${f.scnt} of ${f.iters} sends completed, waiting for: ${f.waitingFor.join(" and ") || "nothing"}`);
  L.push(`  qp 0x${f.qp.qpNum.toString(16).padStart(6, "0")}: ${nameOf(QpState, f.qp.state)}; cq: ${f.cq.depth} completions not polled`);
  const port = f.dev.port;
  if (port) {
    const h = port.holding();
    const drops = Object.entries(port.stats.drops).map(([k, v]) => `${k} ${v}`).join(", ");
    L.push(`  port: ${port.stats.txDatagrams} datagrams sent, ${port.stats.rxDatagrams} received, ${port.stats.rxDropped} dropped${drops ? ` (${drops})` : ""}; ${port.batches} batches, ${port.ticks} timer ticks`);
    L.push(`  port holds: ${h.txUnsent} TX descriptors unsent${h.blocked ? " (the link refused more)" : ""}, ${h.inFlight} in the link, deferred flush ${h.flushPending ? `due${h.acksHeld ? " with ACKs held" : ""}` : "none"}; timer ${Number.isFinite(h.timerAt) ? `at ${Math.round(h.timerAt - port.clock.now())} µs from now` : "not armed"}`);
  }
  const link = udpLinkOf(f.dev);
  if (link) {
    const s = link.stats;
    L.push(`  link (${link.path}): ${s.received} received, ${s.sent} sent, ${s.sendErrors} send errors${link.limitations.length ? `; ${link.limitations.join("; ")}` : ""}`);
    if (link instanceof NativeUdpLink) {
      const d = link.datapathStats();
      L.push(`  datapath: rx ${d.rxDatagrams} datagrams in ${d.rxSyscalls} recvmmsg, ${d.rxWakeups} wakeups, ${d.rxBatches} batches, ${d.rxErrors} errors, ${d.rxSocketErrors ?? 0} socket errors cleared; pending checks ${link.stats.pendingChecks} (${link.stats.pendingHits} found some); tx ${d.txDatagrams} datagrams, ${d.txErrors} errors, ${d.txEagain} EAGAIN`);
      const i = link.datapath.info();
      if (i.readableNow !== undefined) {
        L.push(`  socket: ${i.receiving ? "receiving" : "NOT receiving"}, ${i.watchingReadable ? "watched for readable" : "NOT watched for readable"}; holds a datagram now: ${i.readableNow ? `yes (${i.headDatagramBytes} bytes at its head)` : "no"}`);
      }
    }
  }
  const udp = kernelUdpCounters();
  if (udp) L.push(`  kernel UDP (this network namespace): ${udp}`);
  const c = f.dev.queryCounters();
  const nz = Object.entries(c).filter(([, v]) => v !== 0).map(([k, v]) => `${k} ${v}`);
  L.push(`  device counters: ${nz.length ? nz.join(", ") : "all 0"}`);
  return L;
}

/** The receive side of /proc/net/snmp's Udp line (Linux), or undefined. */
function kernelUdpCounters(): string | undefined {
  const text = kernelText("/proc/net/snmp");
  if (text === undefined) return undefined;
  const lines = text.split("\n").filter((l) => l.startsWith("Udp: "));
  if (lines.length < 2) return undefined;
  const names = lines[0]!.split(/\s+/).slice(1);
  const values = lines[1]!.split(/\s+/).slice(1);
  const want = ["InDatagrams", "NoPorts", "InErrors", "RcvbufErrors", "InCsumErrors"];
  return want.filter((k) => names.includes(k)).map((k) => `${k} ${values[names.indexOf(k)]}`).join(", ");
}
