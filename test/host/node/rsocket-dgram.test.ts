// Datagram rsockets (host/core/rsocket/dgram.ts through host/node/rsocket.ts's rsDgram): two devices
// on 127.0.15.83 / 127.0.15.84 (and 127.0.15.89; UDP 4791, as hosts), an RdmaCm on each, each rsocket's UDP socket
// beside its device. The first datagram to a peer goes by UDP and the rest by UD SENDs once the
// peer's QPN came back; echoes checked byte for byte; a receiver with no room drops and counts;
// hostile UDP datagrams at the rsocket's port are counted and change nothing.
import { randomBytes } from "node:crypto";
import { createSocket } from "node:dgram";
import { afterEach, describe, expect, it } from "vitest";
import { openDevice, openRdmaCm, Qp1Transport, rsDgram, RsocketError, type Device, type RDgram } from "../../../host/node/index.js";
import { Mtu } from "../../../host/core/verbs/index.js";
import { DS_UDP_TAG, formatDsUdpHeader, formatDsHeader, parseDsHeader, parseDsUdpHeader, RS_SNDLOWAT } from "../../../host/core/rsocket/index.js";
import { cmPair } from "../support/rdma-cm.js";

const A = "127.0.15.83";
const B = "127.0.15.84";
/** a third device, its active MTU 1024 */
const C = "127.0.15.89";
let devs: Device[] = [];
let socks: RDgram[] = [];

afterEach(() => {
  for (const s of socks) s.close();
  for (const d of devs) d.close();
  socks = [];
  devs = [];
});

/** A device and an rdma_cm on each of A and B. */
const pair = () => cmPair(A, B, devs);

async function sock(...args: Parameters<typeof rsDgram>): Promise<RDgram> {
  const s = await rsDgram(...args);
  socks.push(s);
  return s;
}

/** recvFrom or fail the test after 5 s */
async function take(s: RDgram, max = RS_SNDLOWAT) {
  const m = await s.recvFrom(max, 5000);
  if (!m) throw new Error("no datagram within 5 s");
  return m;
}

describe("datagram rsockets (rsocket.c's SOCK_DGRAM)", () => {
  it("headers: ds_header and ds_udp_header as rsocket lays them out, and what a receiver refuses", () => {
    const h4 = formatDsHeader({ address: "10.1.2.3", port: 7174 });
    expect([...h4]).toEqual([4, 8, 0x1c, 0x06, 10, 1, 2, 3]);
    expect(parseDsHeader(h4, 8)).toEqual({ hdrLen: 8, from: { address: "10.1.2.3", port: 7174 } });
    const h6 = formatDsHeader({ address: "fd00::2", port: 1 });
    expect(h6.length).toBe(24);
    expect(parseDsHeader(h6, 24)!.from).toEqual({ address: "fd00::2", port: 1 });
    expect(parseDsHeader(h6, 23)).toBeUndefined(); // too short for its own length
    expect(parseDsHeader(Uint8Array.of(4, 24, 0, 0, 0, 0, 0, 0), 8)).toBeUndefined(); // version and length disagree
    const u = formatDsUdpHeader(0, 0xabcdef, h4);
    expect([...u]).toEqual([0x55, 0x55, 0x55, 0x55, 4, 0, 16, 0, 0, 0xab, 0xcd, 0xef, 10, 1, 2, 3]);
    expect(parseDsUdpHeader(u, false)).toEqual({ op: 0, qpn: 0xabcdef, hdrLen: 16 });
    expect(parseDsUdpHeader(u, true)).toBeUndefined(); // an IPv4 header from an IPv6 sender
    expect(parseDsUdpHeader(u.subarray(0, 15), false)).toBeUndefined();
    const bad = u.slice();
    new DataView(bad.buffer).setUint32(0, DS_UDP_TAG ^ 1);
    expect(parseDsUdpHeader(bad, false)).toBeUndefined();
  });

  it("an echo: the first datagram by UDP, its answer and the 300 after by UD SENDs, every byte and source as sent", async () => {
    const { rcmA, rcmB } = await pair();
    const server = await sock(rcmA, { address: A, port: 7601 });
    const client = await sock(rcmB, { address: B, port: 0 });
    await client.connect({ address: A, port: 7601 });
    const echo = (async () => {
      for (let i = 0; i < 301; i++) {
        const m = await take(server);
        await server.sendTo(m.data, m.from);
      }
    })();
    for (let i = 0; i < 301; i++) {
      const data = randomBytes(1 + ((i * 97) % (RS_SNDLOWAT - 8)));
      expect(await client.send(data)).toBe(data.length);
      const m = await take(client);
      expect(m.from).toEqual({ address: A, port: 7601 });
      expect(Buffer.compare(Buffer.from(m.data), data)).toBe(0);
    }
    await echo;
    // the first went by UDP; one or two more may have, sent before the server's answer came back
    expect(client.counters.udpSent).toBeGreaterThanOrEqual(1);
    expect(client.counters.udpSent).toBeLessThanOrEqual(3);
    expect(server.counters.udpTaken).toBe(client.counters.udpSent);
    expect(client.counters.qpSent).toBe(301 - client.counters.udpSent);
    expect(server.counters.qpTaken).toBe(client.counters.qpSent);
    expect(server.counters).toMatchObject({ udpSent: 0, qpSent: 301 });
    expect(client.counters.qpTaken).toBe(301);
    for (const s of [client, server]) expect(s.counters).toMatchObject({ noRoom: 0, badRecv: 0, badUdp: 0, ahFailed: 0, sendErrors: 0 });
  }, 30_000);

  it("a datagram larger than the peer's 2048-byte buffer holds is refused (EMSGSIZE); recvFrom takes at most what it is asked for", async () => {
    const { rcmA, rcmB } = await pair();
    const server = await sock(rcmA, { address: A, port: 7602 });
    const client = await sock(rcmB, { address: B, port: 7603 });
    const to = { address: A, port: 7602 };
    await expect(client.sendTo(new Uint8Array(RS_SNDLOWAT - 7), to)).rejects.toMatchObject({ errno: "EMSGSIZE" });
    await client.sendTo(Uint8Array.from({ length: 100 }, (_, i) => i), to);
    const m = await take(server, 10);
    expect([...m.data]).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    expect(m.from).toEqual({ address: B, port: 7603 });
    expect(await server.recvFrom(10, 50)).toBeUndefined(); // the rest went with it
  }, 30_000);

  it("on a port whose active MTU is 1024 a datagram holds 1016 bytes (a longer UD message would fail and stop the QP's sends): EMSGSIZE, by UDP and by the QP alike", async () => {
    const { rcmA } = await pair();
    const d = await openDevice({ address: C, activeMtu: Mtu.MTU_1024 });
    devs.push(d);
    const rcmC = openRdmaCm({ devices: [{ device: d, mad: Qp1Transport.of(d) }] });
    const server = await sock(rcmA, { address: A, port: 7609 });
    const client = await sock(rcmC, { address: C, port: 0 });
    const to = { address: A, port: 7609 };
    await expect(client.sendTo(new Uint8Array(1017), to)).rejects.toMatchObject({ errno: "EMSGSIZE", message: expect.stringMatching(/holds 1016 here: a UD message on the port's active MTU/) });
    for (let i = 0; i < 20; i++) {
      await client.sendTo(new Uint8Array(1016).fill(i), to);
      const m = await take(server);
      expect(m.data.length).toBe(1016);
      expect(m.data[1015]).toBe(i);
      await server.sendTo(m.data.subarray(0, 1), m.from);
      await take(client);
    }
    expect(client.counters.qpSent).toBeGreaterThan(0);
    await expect(client.sendTo(new Uint8Array(1017), to)).rejects.toMatchObject({ errno: "EMSGSIZE" });
    expect(client.counters.sendErrors).toBe(0);
  }, 30_000);

  it("a receiver that does not read keeps the datagrams its posted receives hold; the device drops the rest and counts them (send_rnr_err, as rxe); they are read in order after", async () => {
    const { rcmA, rcmB } = await pair();
    const server = await sock(rcmA, { address: A, port: 7604 }, { rbufSize: 4 * RS_SNDLOWAT });
    expect(server.queues.rq).toBe(4);
    const client = await sock(rcmB, { address: B, port: 0 });
    const to = { address: A, port: 7604 };
    // by UDP until the server's answer gave the client its QPN: each one read as it comes
    let before: number;
    do {
      before = client.counters.udpSent;
      await client.sendTo(Uint8Array.of(0), to);
      await take(server);
    } while (client.counters.udpSent > before);
    const rnr = () => devs[0]!.queryCounters().send_rnr_err!;
    const rnr0 = rnr();
    for (let i = 1; i <= 50; i++) await client.sendTo(Uint8Array.of(i), to);
    for (let t = Date.now(); server.pending + rnr() - rnr0 < 50 && Date.now() - t < 5000; ) await new Promise((r) => setTimeout(r, 10));
    expect(server.pending).toBe(4);
    expect(rnr() - rnr0).toBe(46);
    for (let i = 1; i <= 4; i++) expect([...(await take(server)).data]).toEqual([i]);
    expect(server.counters).toMatchObject({ noRoom: 0, badRecv: 0 });
  }, 30_000);

  it("hostile datagrams at the rsocket's UDP port (short, a wrong tag or version, a header longer than the datagram, too long, an unknown op) are counted and dropped; the socket works on", async () => {
    const { rcmA, rcmB } = await pair();
    const server = await sock(rcmA, { address: A, port: 7605 });
    const raw = createSocket("udp4");
    await new Promise<void>((r) => raw.bind(0, B, r));
    const good = formatDsUdpHeader(0, 0x123456, formatDsHeader({ address: B, port: 1 }));
    const withTag = (tag: number) => {
      const b = good.slice();
      new DataView(b.buffer).setUint32(0, tag);
      return b;
    };
    const hostile = [
      new Uint8Array(0), good.subarray(0, 15), withTag(0x12345678), Uint8Array.from(good, (x, i) => (i === 4 ? 6 : x)),
      Uint8Array.from(good, (x, i) => (i === 6 ? 200 : x)), new Uint8Array([...good, ...new Uint8Array(RS_SNDLOWAT)]), Uint8Array.from(good, (x, i) => (i === 5 ? 3 : x)),
    ];
    for (const h of hostile) raw.send(h, 7605, A);
    for (let t = Date.now(); server.counters.badUdp < hostile.length && Date.now() - t < 5000; ) await new Promise((r) => setTimeout(r, 10));
    raw.close();
    expect(server.counters.badUdp).toBe(hostile.length);
    expect(server.pending).toBe(0);
    const client = await sock(rcmB, { address: B, port: 0 });
    await client.sendTo(Buffer.from("still here"), { address: A, port: 7605 });
    expect(Buffer.from((await take(server)).data).toString()).toBe("still here");
  }, 30_000);

  it("a connected socket's sendTo to another peer leaves send() with the connected one (rsocket's rsend would follow the sendto)", async () => {
    const { rcmA, rcmB } = await pair();
    const one = await sock(rcmA, { address: A, port: 7607 });
    const two = await sock(rcmA, { address: A, port: 7608 });
    const client = await sock(rcmB, { address: B, port: 0 });
    await client.connect({ address: A, port: 7607 });
    await client.sendTo(Buffer.from("to two"), { address: A, port: 7608 });
    expect(Buffer.from((await take(two)).data).toString()).toBe("to two");
    await client.send(Buffer.from("to one"));
    expect(Buffer.from((await take(one)).data).toString()).toBe("to one");
    expect(await two.recvFrom(100, 100)).toBeUndefined();
  }, 30_000);

  it("peers past maxDests: the least recently used is let go (counted), the connected one kept; one let go is made again by its next datagram", async () => {
    const { rcmA, rcmB } = await pair();
    const server = await sock(rcmA, { address: A, port: 7610 }, { maxDests: 2 });
    const client = await sock(rcmB, { address: B, port: 0 });
    await client.sendTo(Buffer.from("first"), { address: A, port: 7610 });
    expect(Buffer.from((await take(server)).data).toString()).toBe("first");
    // four more senders, each a valid header from a port of its own (the server answers each, makes an AH to each)
    const raws = await Promise.all([0, 1, 2, 3].map(async () => {
      const raw = createSocket("udp4");
      await new Promise<void>((r) => raw.bind(0, B, r));
      return raw;
    }));
    for (const [i, raw] of raws.entries()) {
      const h = formatDsUdpHeader(0, 0x100 + i, formatDsHeader({ address: B, port: raw.address().port }));
      raw.send(Buffer.concat([h, Buffer.from(`raw ${i}`)]), 7610, A);
      expect(Buffer.from((await take(server)).data).toString()).toBe(`raw ${i}`);
    }
    for (const raw of raws) raw.close();
    expect(server.destinations).toBe(2);
    expect(server.counters.destsEvicted).toBe(3);
    // the first client was let go; its next datagram (by its QP: it has the server's QPN) makes it again
    await client.sendTo(Buffer.from("again"), { address: A, port: 7610 });
    const m = await take(server);
    expect(Buffer.from(m.data).toString()).toBe("again");
    await server.sendTo(Buffer.from("answer"), m.from);
    expect(Buffer.from((await take(client)).data).toString()).toBe("answer");
    expect(server.counters).toMatchObject({ badUdp: 0, badRecv: 0, sendErrors: 0 });
  }, 30_000);

  it("rsend before rconnect is EDESTADDRREQ; a closed socket is EBADF; binding a port in use is EADDRINUSE", async () => {
    const { rcmA } = await pair();
    const s = await sock(rcmA, { address: A, port: 7606 });
    await expect(s.send(Uint8Array.of(1))).rejects.toMatchObject({ errno: "EDESTADDRREQ" });
    await expect(rsDgram(rcmA, { address: A, port: 7606 })).rejects.toBeInstanceOf(RsocketError);
    await expect(rsDgram(rcmA, { address: A, port: 7606 })).rejects.toMatchObject({ errno: "EADDRINUSE" });
    s.close();
    await expect(s.recvFrom(10)).rejects.toMatchObject({ errno: "EBADF" });
  }, 30_000);
});
