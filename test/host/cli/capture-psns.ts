// Checks the request packets of a capture taken on real loopback sockets, where a loaded machine
// may make a requester time out and resend (go-back-N): every PSN of the run is there, in one
// consecutive run from the first, and a PSN seen twice is only a resend of the same packet (same
// opcode, same headers after the BTH, same payload). A missing, extra or different packet fails.
import { readCaptureAll } from "../../../host/core/capture/pcap.js";

/** A captured IPv4 RoCEv2 datagram, as the tests read it. */
interface Request {
  src: string;
  opcode: number;
  psn: number;
  /** the bytes after the BTH up to the ICRC: extension headers and payload */
  body: Uint8Array;
}

function parse(ip: Uint8Array): Request {
  const ihl = (ip[0]! & 0x0f) * 4;
  const bth = ihl + 8;
  return {
    src: ip.subarray(12, 16).join("."),
    opcode: ip[bth]!,
    psn: ((ip[bth + 9]! << 16) | (ip[bth + 10]! << 8) | ip[bth + 11]!) >>> 0,
    body: ip.subarray(bth + 12, ip.length - 4),
  };
}

function same(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((x, i) => x === b[i]);
}

/**
 * The request packets `from` sent with an opcode in `opcodes`, checked: `count` distinct PSNs,
 * consecutive (mod 2^24) from the first one sent, each repeat identical to the first copy.
 * Returns how many packets were resends; throws, saying which PSN, otherwise.
 */
export function checkRequestPsns(pcap: Uint8Array, from: string, opcodes: readonly number[], count: number): { resends: number } {
  const reqs = readCaptureAll(pcap)
    .map((r) => parse(r.data!))
    .filter((r) => r.src === from && opcodes.includes(r.opcode));
  if (reqs.length === 0) throw new Error(`no request packets from ${from} in the capture`);
  const first = reqs[0]!.psn;
  const byOffset = new Map<number, Request>();
  let resends = 0;
  for (const r of reqs) {
    const off = (r.psn - first) & 0xffffff;
    if (off >= count) throw new Error(`PSN ${r.psn} from ${from} is outside the run's ${count} PSNs from ${first}`);
    const seen = byOffset.get(off);
    if (!seen) byOffset.set(off, r);
    else if (seen.opcode !== r.opcode || !same(seen.body, r.body)) throw new Error(`PSN ${r.psn} from ${from} was sent twice with different contents`);
    else resends++;
  }
  for (let off = 0; off < count; off++) {
    if (!byOffset.has(off)) throw new Error(`PSN ${(first + off) & 0xffffff} from ${from} is missing (${byOffset.size} of ${count} present)`);
  }
  return { resends };
}
