// The Node UDP host: a device bound to a loopback address receives datagrams
// through a real socket, validates them like any other link's, and closes cleanly.
import { afterEach, describe, expect, it } from "vitest";
import dgram from "node:dgram";
import { once } from "node:events";
import { openDevice } from "../../../host/node/index.js";
import { WireCodec, type PacketSpec } from "../../../host/core/wire/codec.js";
import { coreModule } from "../../../host/node/wasm-source.js";
import { connectQp } from "../../../host/core/verbs/connect.js";
import { QpType } from "../../../host/core/verbs/enums.js";
import type { Device } from "../../../host/core/verbs/device.js";

const opened: Device[] = [];
afterEach(() => {
  while (opened.length) opened.pop()!.close();
});

async function sendFrom(payload: Uint8Array, port: number, address = "127.0.0.1"): Promise<void> {
  const s = dgram.createSocket(address.includes(":") ? "udp6" : "udp4");
  await new Promise<void>((r) => s.bind(0, address, r));
  await new Promise<void>((r, j) => s.send(payload, port, address, (e) => (e ? j(e) : r())));
  s.close();
}

async function until(cond: () => boolean, ms = 2000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error("timed out");
    await new Promise((r) => setTimeout(r, 5));
  }
}

describe("Node UDP host", () => {
  it("binds IPv4 loopback, lists the address as GID 0, and validates what arrives", async () => {
    const dev = await openDevice({ address: "127.0.0.1", port: 0 });
    opened.push(dev);
    expect(dev.queryGid(0)).toBe("::ffff:127.0.0.1");
    const pd = dev.allocPd();
    const cq = dev.createCq(4);
    const qp = pd.createQp({ qpType: QpType.UD, sendCq: cq, recvCq: cq, cap: { maxSendWr: 1, maxRecvWr: 1, maxSendSge: 1, maxRecvSge: 1 } });
    connectQp(qp, undefined, { sqPsn: 0, qkey: 0x11111111 });
    const codec = await WireCodec.create(await coreModule());
    const port = dev.port!;
    const localPort = (dev.limits as { port: number }).port;
    // the sender's source port is part of the ICRC: send from a socket whose port we know
    const s = dgram.createSocket("udp4");
    await new Promise<void>((r) => s.bind(0, "127.0.0.1", r));
    const sport = s.address().port;
    const good = codec.emit({ src: "127.0.0.1", dst: "127.0.0.1", ipId: 0, ipFlags: 2, udpSrcPort: sport, udpDstPort: localPort,
      opcode: 0x64, destQp: qp.qpNum, deth: { qkey: 0x11111111, srcQp: 3 } } as PacketSpec).subarray(28);
    const bad = good.slice();
    bad[bad.length - 1] ^= 1;
    for (const p of [good, bad]) await new Promise<void>((r, j) => s.send(p, localPort, "127.0.0.1", (e) => (e ? j(e) : r())));
    s.close();
    await until(() => port.stats.rxDatagrams === 2);
    expect(dev.queryCounters()).toMatchObject({ rcvd_pkts: 1, bad_icrc: 1 });
    expect(port.stats.drops).toEqual({ bad_icrc: 1 });
  });

  it("binds IPv6 loopback", async () => {
    const dev = await openDevice({ address: "::1", port: 0 });
    opened.push(dev);
    expect(dev.queryGid(0)).toBe("::1");
    await sendFrom(new Uint8Array(8), (dev.limits as { port: number }).port, "::1");
    await until(() => dev.port!.stats.rxDatagrams === 1);
    expect(dev.port!.stats.drops).toEqual({ short: 1 });
  });

  it("refuses a bad address or port with a clear error, and a port in use", async () => {
    await expect(openDevice({ address: "nowhere" })).rejects.toThrow(/not an IPv4 or IPv6 address/);
    await expect(openDevice({ address: "127.0.0.1", port: 70000 })).rejects.toThrow(/bad UDP port/);
    const dev = await openDevice({ address: "127.0.0.1", port: 0 });
    opened.push(dev);
    await expect(openDevice({ address: "127.0.0.1", port: (dev.limits as { port: number }).port })).rejects.toThrow(/in use/);
  });

  it("stops receiving after close", async () => {
    const dev = await openDevice({ address: "127.0.0.1", port: 0 });
    const p = (dev.limits as { port: number }).port;
    dev.close();
    const s = dgram.createSocket("udp4");
    s.bind(0, "127.0.0.1");
    await once(s, "listening");
    expect(dev.port!.receive({ src: "127.0.0.1", dst: "127.0.0.1", srcPort: 1, dstPort: p, payload: new Uint8Array(20) })).toBe(-1);
    s.close();
  });
});
