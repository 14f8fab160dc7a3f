// softroce uc_pingpong and ud_pingpong (rdma-core's ibv_uc_pingpong / ibv_ud_pingpong): server
// and client as two processes on 127.0.41.1 / 127.0.41.2 (this file's addresses), the summary lines, what goes on the wire
// (UC: SEND FIRST/MIDDLE/LAST and no ACKs; UD: SEND ONLY with DETH Q_Key 0x11111111), and
// ud_pingpong's size check against the port MTU.
import { join } from "node:path";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { describe, expect, it } from "vitest";
import { freeTcpPort, freeUdpPort, parseOut, until, useCli } from "../support/cli-process.js";
import { readCaptureAll } from "../../../host/core/capture/pcap.js";
import { WireCodec } from "../../../host/core/wire/codec.js";
import { coreModule } from "../../../host/node/wasm-source.js";

const { start } = useCli("cli-test-ucud");
/** this file's addresses: the server's and the client's */
const S = "127.0.41.1";
const C = "127.0.41.2";

async function pingpong(cmd: string, extra: string[], serverExtra: string[] = []) {
  const udp = String(await freeUdpPort(S, C));
  const tcp = String(await freeTcpPort());
  const server = start(cmd, "--address", S, "--udp-port", udp, "-p", tcp, "--timeout", "20", ...extra, ...serverExtra);
  await until(() => server.stdout.includes("local address"));
  const client = start(cmd, "--address", C, "--udp-port", udp, "-p", tcp, "--timeout", "20", ...extra, S);
  const [sc, cc] = await Promise.all([server.done, client.done]);
  expect({ code: cc, err: client.stderr }).toEqual({ code: 0, err: "" });
  expect({ code: sc, err: server.stderr.replace(/^[a-z]+_pingpong: (waiting|wrote|\d+\/).*\n/gm, "") }).toEqual({ code: 0, err: "" });
  return { server: parseOut(server.stdout), client: parseOut(client.stdout) };
}

async function wire(file: string) {
  const codec = await WireCodec.create(await coreModule());
  return readCaptureAll(new Uint8Array(readFileSync(file))).map((r) => {
    const d = r.data!;
    const v = new DataView(d.buffer, d.byteOffset, d.byteLength);
    const p = codec.parseUdpPayload(d.subarray(28), {
      src: d.subarray(12, 16).join("."), dst: d.subarray(16, 20).join("."), ipId: v.getUint16(4), ttl: d[8],
      udpSrcPort: v.getUint16(20), udpDstPort: v.getUint16(22),
    });
    if (!p.ok) throw new Error(p.error);
    return p.repr;
  });
}

describe("uc_pingpong and ud_pingpong, two processes", () => {
  it("uc_pingpong -s 3000 -n 10: the summary lines; UC SEND FIRST/MIDDLE/LAST each way and no ACKs", async () => {
    const file = join(mkdtempSync(join(tmpdir(), "softroce-uc-")), "server.pcap");
    const { server, client } = await pingpong("uc_pingpong", ["-s", "3000", "-n", "10"], ["--pcap", file]);
    expect(server.remote).toEqual(client.local);
    expect(client.remote).toEqual(server.local);
    for (const side of [server, client]) {
      expect(side.bytes).toBe(3000 * 10 * 2);
      expect(side.iters).toBe(10);
    }
    const pkts = await wire(file);
    expect(pkts.length).toBe(60);
    expect(pkts.every((p) => p.icrcOk)).toBe(true);
    expect(new Set(pkts.map((p) => p.opcode))).toEqual(new Set([0x20, 0x21, 0x22]));
    expect(pkts.filter((p) => p.src === S).map((p) => p.opcode).slice(0, 3)).toEqual([0x20, 0x21, 0x22]);
  });

  it("ud_pingpong -s 512 -n 10: the summary lines; UD SEND ONLY with DETH (Q_Key 0x11111111, source QPN)", async () => {
    const file = join(mkdtempSync(join(tmpdir(), "softroce-ud-")), "server.pcap");
    const { server, client } = await pingpong("ud_pingpong", ["-s", "512", "-n", "10"], ["--pcap", file]);
    for (const side of [server, client]) {
      expect(side.bytes).toBe(512 * 10 * 2);
      expect(side.iters).toBe(10);
    }
    const pkts = await wire(file);
    expect(pkts.length).toBe(20);
    for (const p of pkts) {
      expect(p.opcode).toBe(0x64);
      expect(p.payload.length).toBe(512);
      expect(p.deth!.qkey).toBe(0x11111111);
      const from = p.src === S ? server : client;
      const to = p.src === S ? client : server;
      expect(p.deth!.srcQp).toBe(parseInt(from.local.qpn, 16));
      expect(p.destQp).toBe(parseInt(to.local.qpn, 16));
    }
  });

  it("ud_pingpong with -s above the port's active MTU (loopback: 4096) stops as ibv_ud_pingpong does", async () => {
    const r = start("ud_pingpong", "--address", S, "--udp-port", String(await freeUdpPort(S, C)), "-p", String(await freeTcpPort()), "--timeout", "5", "-s", "8192");
    expect(await r.done).toBe(1);
    expect(r.stderr).toBe("softroce ud_pingpong: Requested size larger than port MTU (4096)\n");
  });
});
