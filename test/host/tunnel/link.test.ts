// TunnelLink over a scripted WebSocket-like object: it waits for the HELLO, frames each
// datagram as DATA, applies backpressure from bufferedAmount, hands DATA frames to the
// port, keeps ERROR frames, and goes down on close.
import { describe, expect, it } from "vitest";
import { TUNNEL_IN_FLIGHT_BYTES, TUNNEL_IN_FLIGHT_PACKETS, TunnelLink } from "../../../host/core/tunnel/link.js";
import { FakeWs } from "../support/fake-ws.js";
import { emitBatch, emitData, emitError, emitHello, parseFrame, FrameKind, TunnelFrameError, type BatchFrame } from "../../../host/core/tunnel/frames.js";
import { IP_ID_UNKNOWN, type PacketPort } from "../../../host/core/link/port.js";
import type { Datagram } from "../../../host/core/net/datagram.js";
import { setImmediate as turnEnd } from "node:timers/promises";


const HELLO = { address: "192.0.2.1", port: 4791, ipIdPolicy: 0, dontFragment: true, maxPayload: 4188, qpnBase: 4096, qpnCount: 64, clientId: 9 };
const hex = (b: Uint8Array) => Buffer.from(b).toString("hex");
/** After this turn's microtasks and nextTicks (the link's deferred flush). */
const PAYLOAD = Uint8Array.from([0x04, 0, 0, 0, 0, 0, 0x10, 0x01, 0, 0, 0, 1, 0xaa, 0xbb, 0xcc, 0xdd]);

async function connected(): Promise<{ ws: FakeWs; link: TunnelLink; got: Datagram[]; resumed: () => number }> {
  const ws = new FakeWs();
  const p = TunnelLink.connect(ws);
  expect(ws.binaryType).toBe("arraybuffer");
  ws.message(emitHello(HELLO));
  const link = await p;
  const got: Datagram[] = [];
  let resumes = 0;
  link.port = { receive: (d: Datagram) => (got.push({ ...d, payload: d.payload.slice() }), 0), resume: () => void resumes++ } as unknown as PacketPort;
  return { ws, link, got, resumed: () => resumes };
}

describe("TunnelLink", () => {
  it("takes its identity from the HELLO and frames datagrams as DATA", async () => {
    const { ws, link } = await connected();
    expect(link.hello).toEqual({ kind: FrameKind.HELLO, version: 1, ...HELLO });
    let done = 0;
    const ok = link.send({ src: "192.0.2.1", dst: "198.51.100.7", srcPort: 4791, dstPort: 4791, ipId: 0,
      pieces: [PAYLOAD.subarray(0, 12), PAYLOAD.subarray(12)], length: 16 }, () => done++);
    expect([ok, done]).toEqual([true, 1]);
    expect(parseFrame(ws.sent[0]!)).toEqual({ kind: FrameKind.DATA, address: "198.51.100.7", port: 4791, ipId: 0, payload: PAYLOAD });
  });

  it("hands DATA to the port as a datagram to the HELLO identity; keeps ERRORs; counts bad frames", async () => {
    const { ws, link, got } = await connected();
    ws.message(emitData("198.51.100.7", 50000, 0xffffffff, [PAYLOAD]));
    ws.message(emitData("192.0.2.1", 4791, 0, [PAYLOAD]));
    ws.message(emitError("destination_refused", "destination_refused: 10.0.0.1: not on the allowlist"));
    ws.message(new Uint8Array([7, 7, 7]));
    ws.message(emitHello(HELLO));
    expect(got).toEqual([
      { src: "198.51.100.7", dst: "192.0.2.1", srcPort: 50000, dstPort: 4791, ipId: 0xffffffff, payload: PAYLOAD },
      { src: "192.0.2.1", dst: "192.0.2.1", srcPort: 4791, dstPort: 4791, ipId: 0, payload: PAYLOAD },
    ]);
    expect(link.gatewayErrors).toEqual([{ name: "destination_refused", reason: "destination_refused: 10.0.0.1: not on the allowlist" }]);
    expect(link.stats).toMatchObject({ received: 2, errors: 1, badFrames: 2 });
  });

  it("applies backpressure from bufferedAmount and resumes under half the mark", async () => {
    const { ws, link, resumed } = await connected();
    const d = { src: "192.0.2.1", dst: "198.51.100.7", srcPort: 4791, dstPort: 4791, ipId: 0, pieces: [PAYLOAD], length: 16 };
    ws.bufferedAmount = 1 << 20;
    expect(link.send(d, () => {})).toBe(false);
    await new Promise((r) => setTimeout(r, 20));
    expect(resumed()).toBe(0);
    ws.bufferedAmount = (1 << 19) - 1;
    await new Promise((r) => setTimeout(r, 20));
    expect(resumed()).toBe(1);
    expect(link.stats.backpressured).toBe(1);
  });

  it("goes down on close: later datagrams are dropped and released", async () => {
    const { ws, link } = await connected();
    let why = "";
    link.onDown = (w) => (why = w);
    ws.emit("close", { code: 1006, reason: "" });
    expect(link.isDown).toBe(true);
    expect(why).toBe("closed (1006 )");
    let done = 0;
    expect(link.send({ src: "", dst: "198.51.100.7", srcPort: 1, dstPort: 4791, ipId: 0, pieces: [PAYLOAD], length: 16 }, () => done++)).toBe(true);
    expect([done, ws.sent.length, link.stats.droppedDown]).toEqual([1, 0, 1]);
  });

  it("refuses a first frame that is not a HELLO, an ERROR, or a close before HELLO", async () => {
    const a = new FakeWs();
    const pa = TunnelLink.connect(a);
    a.message(emitError("internal", "busy"));
    await expect(pa).rejects.toThrow("tunnel: gateway error internal: busy");
    const b = new FakeWs();
    const pb = TunnelLink.connect(b);
    b.message(new Uint8Array([2, 2]));
    await expect(pb).rejects.toBeInstanceOf(TunnelFrameError);
    const c = new FakeWs();
    const pc = TunnelLink.connect(c);
    c.emit("close", { code: 1006, reason: "" });
    await expect(pc).rejects.toThrow("tunnel: closed before HELLO (1006 )");
    const d = new FakeWs();
    await expect(TunnelLink.connect(d, { helloTimeoutMs: 10 })).rejects.toThrow("tunnel: no HELLO from the gateway");
  });
});

describe("TunnelLink, version 2", () => {
  async function v2(maxFrame = 65536) {
    const ws = new FakeWs();
    const p = TunnelLink.connect(ws);
    ws.message(emitHello({ ...HELLO, version: 2, maxFrame, maxPayload: 64 }));
    const link = await p;
    const got: Datagram[] = [];
    link.port = { receive: (d: Datagram) => (got.push({ ...d, payload: d.payload.slice() }), 0), resume: () => {} } as unknown as PacketPort;
    return { ws, link, got };
  }
  const dgram = (dstPort: number) => ({ src: "192.0.2.1", dst: "198.51.100.7", srcPort: 4791, dstPort, ipId: 0, pieces: [PAYLOAD.subarray(0, 12), PAYLOAD.subarray(12)], length: 16 });

  it("the datagrams of one turn leave as one BATCH after it; a lone datagram as a version-2 DATA frame", async () => {
    const { ws, link } = await v2();
    let done = 0;
    for (let i = 0; i < 5; i++) expect(link.send(dgram(5000 + i), () => done++)).toBe(true);
    expect([done, ws.sent.length]).toEqual([5, 0]); // gathered, released at once
    await Promise.resolve();
    expect(ws.sent.length).toBe(0); // not at the end of this microtask: after the turn's continuations
    await turnEnd();
    expect(ws.sent.length).toBe(1);
    const f = parseFrame(ws.sent[0]!) as BatchFrame;
    expect(f.kind).toBe(FrameKind.BATCH);
    expect(f.datagrams.map((d) => [d.address, d.port, d.ipId, Buffer.from(d.payload).equals(PAYLOAD)])).toEqual(
      [0, 1, 2, 3, 4].map((i) => ["198.51.100.7", 5000 + i, 0, true]),
    );
    link.send(dgram(6000), () => done++);
    await turnEnd();
    expect(ws.sent[1]![0]).toBe(2);
    expect(parseFrame(ws.sent[1]!)).toEqual({ kind: FrameKind.DATA, address: "198.51.100.7", port: 6000, ipId: 0, payload: PAYLOAD });
    expect(link.stats).toMatchObject({ sent: 6, framesSent: 2 });
  });

  it("a socket that calls back (Node's ws) gets the writer's buffers, no copy; each is reused only after its callback", async () => {
    const ws = Object.assign(new FakeWs(), { sendCallsBack: true as const, views: [] as Uint8Array[], callbacks: [] as (() => void)[] });
    ws.send = ((data: Uint8Array, done: () => void) => {
      ws.views.push(data);
      ws.sent.push(data.slice());
      ws.callbacks.push(done);
    }) as FakeWs["send"];
    const p = TunnelLink.connect(ws);
    ws.message(emitHello({ ...HELLO, version: 2, maxFrame: 65536, maxPayload: 64 }));
    const link = await p;
    link.port = { receive: () => 0, resume: () => {} } as unknown as PacketPort;
    for (let turn = 0; turn < 3; turn++) {
      link.send(dgram(8000 + turn), () => {});
      link.send(dgram(8100 + turn), () => {});
      await turnEnd();
    }
    expect(ws.views).toHaveLength(3);
    // none called back yet: three buffers, each still holding what was sent
    expect(new Set(ws.views.map((v) => v.buffer)).size).toBe(3);
    ws.views.forEach((v, i) => expect(hex(v)).toBe(hex(ws.sent[i]!)));
    // the first calls back: its buffer is written again (the frame after next: the next is already in the writer's current one)
    ws.callbacks.shift()!();
    for (const port of [8200, 8201]) {
      link.send(dgram(port), () => {});
      await turnEnd();
    }
    expect(ws.views.slice(0, 4).some((v) => v.buffer === ws.views[3]!.buffer && v !== ws.views[3])).toBe(false);
    expect(ws.views[4]!.buffer).toBe(ws.views[0]!.buffer);
    expect(parseFrame(ws.views[4]!)).toMatchObject({ kind: FrameKind.DATA, port: 8201 });
    ws.views.slice(1, 4).forEach((v, i) => expect(hex(v)).toBe(hex(ws.sent[i + 1]!)));
  });

  it("what the continuations of a turn send joins its BATCH (an ACK leaves with the next request)", async () => {
    const { ws, link } = await v2();
    // as a receive: the device sends an ACK, then completes a receive the application awaits and answers
    let completed!: () => void;
    const completion = new Promise<void>((r) => (completed = r));
    void (async () => {
      await completion;
      await Promise.resolve(); // continuations some microtasks deep
      link.send(dgram(5101), () => {});
    })();
    link.send(dgram(5100), () => {});
    completed();
    await turnEnd();
    expect(ws.sent.length).toBe(1);
    expect((parseFrame(ws.sent[0]!) as BatchFrame).datagrams.map((d) => d.port)).toEqual([5100, 5101]);
  });

  it("a full BATCH leaves at once; close() sends what is gathered; a BATCH received is every datagram to the port", async () => {
    const { ws, link, got } = await v2(4 + 3 * (24 + 16));
    for (let i = 0; i < 4; i++) link.send(dgram(7000 + i), () => {});
    expect(ws.sent.length).toBe(1); // the 4th did not fit: the first three left
    expect((parseFrame(ws.sent[0]!) as BatchFrame).datagrams.length).toBe(3);
    ws.message(emitBatch([
      { address: "198.51.100.7", port: 50000, ipId: 0xffffffff, payload: PAYLOAD },
      { address: "192.0.2.1", port: 4791, ipId: 0, payload: PAYLOAD },
    ]));
    expect(got.map((d) => [d.src, d.srcPort, d.dst, d.dstPort, d.ipId])).toEqual([
      ["198.51.100.7", 50000, "192.0.2.1", 4791, IP_ID_UNKNOWN],
      ["192.0.2.1", 4791, "192.0.2.1", 4791, 0],
    ]);
    link.close();
    expect(ws.sent.length).toBe(2);
    expect(parseFrame(ws.sent[1]!)).toMatchObject({ kind: FrameKind.DATA, port: 7003 });
  });

  it("bounds the device's in flight through the tunnel (defaults, options, 0 for none); refuses a bad bound before the HELLO", async () => {
    const { link } = await connected();
    expect([link.inFlightPackets, link.inFlightBudget]).toEqual([TUNNEL_IN_FLIGHT_PACKETS, TUNNEL_IN_FLIGHT_BYTES]);
    const ws = new FakeWs();
    const p = TunnelLink.connect(ws, { inFlightPackets: 0, inFlightBytes: 65536 });
    ws.message(emitHello(HELLO));
    const l2 = await p;
    expect([l2.inFlightPackets, l2.inFlightBudget]).toEqual([0, 65536]);
    for (const bad of [-1, 1.5, 2 ** 32, Number.NaN]) {
      const w = new FakeWs();
      await expect(TunnelLink.connect(w, { inFlightPackets: bad })).rejects.toThrow(RangeError);
      expect(w.readyState).toBe(3);
    }
  });
});
