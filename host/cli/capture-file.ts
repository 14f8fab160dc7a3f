// The --pcap file of the CLI's tools (the pingpongs, perf, perf --perftest): one recorder shape and
// one writer, so every tool bounds its capture the same way and says the same of it.
import { writeFileSync } from "node:fs";
import { PcapRecorder } from "../core/capture/index.js";
import { fsReason } from "./decode.js";

/**
 * The most a tool's capture keeps: its packets are held in memory until the run ends, and a
 * bandwidth test moves gigabytes. Past it packets are counted, not kept (the file says so on stderr).
 */
export const PCAP_FILE_MAX_BYTES = 256 * 2 ** 20;

/** A recorder for a tool's --pcap: bounded at PCAP_FILE_MAX_BYTES. */
export function toolRecorder(): PcapRecorder {
  return new PcapRecorder({ maxBytes: PCAP_FILE_MAX_BYTES });
}

/**
 * Writes the capture; returns the line to say (the packets written, and those past the bound).
 * Throws an Error naming the file and the reason when it cannot be written.
 */
export function writeCaptureFile(path: string, rec: PcapRecorder): string {
  try {
    writeFileSync(path, rec.pcap());
  } catch (e) {
    throw new Error(`cannot write ${path}: ${fsReason(e)}`);
  }
  const past = rec.dropped ? `; ${rec.dropped} more not kept (a capture holds at most ${PCAP_FILE_MAX_BYTES / 2 ** 20} MiB)` : "";
  return `wrote ${rec.packets.length} packets to ${path}${past}`;
}

/**
 * writeCaptureFile for a tool whose stderr is its status lines (perf, perf --perftest): the line to
 * say only when the capture is not all of the run, else undefined.
 */
export function writeCaptureFileQuietly(path: string, rec: PcapRecorder): string | undefined {
  const line = writeCaptureFile(path, rec);
  return rec.dropped ? line : undefined;
}
