// The capture check the real-UDP tests use: resends of the same packet pass, a missing PSN, a
// PSN outside the run or a resend with other contents fail.
import { describe, expect, it } from "vitest";
import { PcapCollector } from "../../../host/core/capture/pcap.js";
import { checkRequestPsns } from "./capture-psns.js";

/** An IPv4/UDP/BTH datagram from 127.0.13.1 (no checksums: the check does not read them). */
function packet(psn: number, opcode = 0x0a, payload = [1, 2, 3, 4], src = [127, 0, 13, 1]): Uint8Array {
  const b = new Uint8Array(20 + 8 + 12 + payload.length + 4);
  b[0] = 0x45;
  b.set(src, 12);
  b.set([127, 0, 13, 2], 16);
  b[20 + 8] = opcode;
  b[20 + 8 + 9] = (psn >> 16) & 0xff;
  b[20 + 8 + 10] = (psn >> 8) & 0xff;
  b[20 + 8 + 11] = psn & 0xff;
  b.set(payload, 40);
  return b;
}

function pcap(...packets: Uint8Array[]): Uint8Array {
  const c = new PcapCollector({ linktype: 228 });
  packets.forEach((p, i) => c.add(p, i));
  return c.bytes();
}

describe("checkRequestPsns", () => {
  it("every PSN once, across the 2^24 wrap: no resends", () => {
    expect(checkRequestPsns(pcap(packet(0xfffffe), packet(0xffffff), packet(0), packet(1)), "127.0.13.1", [0x0a], 4)).toEqual({ resends: 0 });
  });

  it("a go-back-N resend of the same packets is counted, not a failure; ACKs and the other side are ignored", () => {
    const p = pcap(packet(5), packet(6), packet(7), packet(6), packet(7), packet(8), packet(9, 0x11), packet(1, 0x0a, [9], [127, 0, 13, 2]));
    expect(checkRequestPsns(p, "127.0.13.1", [0x0a], 4)).toEqual({ resends: 2 });
  });

  it("fails on a missing PSN, a PSN beyond the run, and a resend with other contents", () => {
    expect(() => checkRequestPsns(pcap(packet(5), packet(7)), "127.0.13.1", [0x0a], 2)).toThrow("PSN 7 from 127.0.13.1 is outside the run's 2 PSNs from 5");
    expect(() => checkRequestPsns(pcap(packet(5), packet(7)), "127.0.13.1", [0x0a], 3)).toThrow("PSN 6 from 127.0.13.1 is missing (2 of 3 present)");
    expect(() => checkRequestPsns(pcap(packet(5), packet(6), packet(6, 0x0a, [1, 2, 3, 5])), "127.0.13.1", [0x0a], 2)).toThrow("PSN 6 from 127.0.13.1 was sent twice with different contents");
    expect(() => checkRequestPsns(pcap(packet(5)), "127.0.13.9", [0x0a], 1)).toThrow("no request packets from 127.0.13.9");
  });
});
