// Linux rxe puts an unpredictable IPv4 ID on every packet; a UDP socket never
// sees it. The ICRC alone determines it: for every IPv4 packet rxe sent in the
// real captures, the ID solved from the ICRC is the one on the wire.
import { describe, expect, it } from "vitest";
import { readFileSync, readdirSync } from "node:fs";
import { readCapture } from "../../../host/core/capture/pcap.js";
import { extractIp } from "../../../host/core/net/ip-extract.js";
import { instantiateCore } from "../../../host/core/wasm/instance.js";
import { coreModule } from "../../../host/node/wasm-source.js";

interface IdCore {
  memory: WebAssembly.Memory;
  wire_buf(): number;
  icrc_recover_ipv4_id(ptr: number, len: number): number;
}

describe("IPv4 ID recovery on real rxe traffic", () => {
  it("finds the wire ID of every IPv4 RoCE packet in the captures, and none for a corrupted one", async () => {
    const core = (await instantiateCore(await coreModule())) as unknown as IdCore;
    const dir = new URL("../../fixtures/captures/", import.meta.url);
    let checked = 0;
    let nonzero = 0;
    for (const f of readdirSync(dir).filter((n) => n.endsWith(".pcap"))) {
      for (const rec of readCapture(readFileSync(new URL(f, dir)))) {
        const ex = extractIp(rec.frame, rec.linktype);
        if (!("ip" in ex) || ex.ip[0]! >> 4 !== 4) continue;
        const ip = ex.ip;
        if (ip[9] !== 17 || ((ip[22]! << 8) | ip[23]!) !== 4791) continue;
        const id = (ip[4]! << 8) | ip[5]!;
        const buf = core.wire_buf();
        new Uint8Array(core.memory.buffer).set(ip, buf);
        expect(core.icrc_recover_ipv4_id(buf, ip.length)).toBe(id);
        checked++;
        if (id !== 0) nonzero++;
        if (checked % 50 === 1) {
          const bad = ip.slice();
          bad[bad.length - 6] ^= 0x20;
          new Uint8Array(core.memory.buffer).set(bad, buf);
          expect(core.icrc_recover_ipv4_id(buf, bad.length)).toBe(-1);
        }
      }
    }
    expect(checked).toBeGreaterThan(600);
    expect(nonzero).toBeGreaterThan(600);
  });
});
