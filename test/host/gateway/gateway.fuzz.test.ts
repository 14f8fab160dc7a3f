// Seeded fuzzing of the gateway with hostile tunnel frames: mutated DATA frames (captured
// RoCE payloads, aimed at two legitimate clients' QPNs, at allowed and refused destinations,
// the gateway itself), garbage and truncated frames (which close the hostile client: it
// reconnects). Meanwhile two legitimate clients hold an RC conversation through the hairpin.
// Invariants: no contained bug (`internal` refusals), nothing reaches a destination off the
// allowlist, only RoCE-shaped datagrams leave, the legitimate clients' memory is untouched
// and their conversation still works. FUZZ_PACKETS / 10 frames (2,000 in npm test);
// a failure names its seed and a one-line reproducer.
import { afterEach, describe, expect, it } from "vitest";
import dgram from "node:dgram";
import WebSocket from "ws";
import { coreModule } from "../../../host/node/wasm-source.js";
import { Gateway } from "../../../host/gateway/index.js";
import { openTunnelDeviceWith } from "../../../host/core/tunnel/device.js";
import { emitData, parseFrame, FrameKind, DATA_HEADER_LEN } from "../../../host/core/tunnel/frames.js";
import { WireCodec } from "../../../host/core/wire/codec.js";
import { connectQp } from "../../../host/core/verbs/connect.js";
import { Access, QpType, SendFlags, WcStatus, WrOpcode } from "../../../host/core/verbs/enums.js";
import { Prng } from "../../../host/core/sim/prng.js";
import type { Device } from "../../../host/core/verbs/device.js";
import { capturePayloads } from "../support/receive-fuzz.js";
import { datapathAddon } from "../../../host/node/datapath.js";
import { setImmediate as nextTurn } from "node:timers/promises";

const FRAMES = Math.ceil(Number(process.env.FUZZ_PACKETS ?? 20_000) / 10);
const SEED = Number(process.env.FUZZ_SEED ?? 0x6a7e);
const TOKEN = "fuzz-token";
const ALLOWED = "127.0.12.9";
const REFUSED = "127.0.12.10";
const ALL = Access.LOCAL_WRITE | Access.REMOTE_WRITE | Access.REMOTE_READ;

const cleanups: (() => unknown)[] = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()!();
});

async function sink(address: string): Promise<{ s: dgram.Socket; got: Buffer[] }> {
  const s = dgram.createSocket("udp4");
  const got: Buffer[] = [];
  s.on("message", (m) => got.push(m));
  await new Promise<void>((r) => s.bind(0, address, r));
  cleanups.push(() => new Promise<void>((r) => s.close(() => r())));
  return { s, got };
}

function side(d: Device) {
  const pd = d.allocPd();
  const mr = pd.regMr(8192, ALL);
  const cq = d.createCq(64);
  const qp = pd.createQp({ qpType: QpType.RC, sendCq: cq, recvCq: cq, cap: { maxSendWr: 16, maxRecvWr: 16, maxSendSge: 1, maxRecvSge: 1 } });
  return { d, mr, cq, qp };
}

/** The gateway's packets through its event loop, and (with the addon) through the native relay's parser and checks. */
const RELAYS: ("js" | "native")[] = datapathAddon() ? ["native", "js"] : ["js"];

describe("gateway fuzzing", () => {
  it.each(RELAYS)(`seed ${SEED}: ${FRAMES.toLocaleString("en")} hostile frames; the gateway contains them and legitimate clients keep working (relay %s)`, async (relay) => {
    const mod = await coreModule();
    const codec = await WireCodec.create(mod);
    const allowed = await sink(ALLOWED);
    const otherPort = await sink(ALLOWED);
    const refused = await sink(REFUSED);
    const port = allowed.s.address().port;
    const gw = await Gateway.start({
      port: 0, udpPort: 0, token: TOKEN, allow: [ALLOWED], dstPorts: [port], packetsPerSecond: 1e6, bytesPerSecond: 1e9,
      maxClientsPerAddress: 16, log: () => {}, relay,
    });
    expect(gw.relayPath).toBe(relay);
    // the relay decides a frame's datagrams on its thread, or passes them to JS: wait for JS too
    const settled = () => (s => !s || s.events === s.eventsHandled)(gw.relayStats());
    cleanups.push(() => gw.close());
    const url = `ws://127.0.0.1:${gw.port}/tunnel`;
    const headers = { authorization: `Bearer ${TOKEN}` };
    const tunnel = async () => {
      const t = await openTunnelDeviceWith(mod, new WebSocket(url, { headers, perMessageDeflate: false }));
      cleanups.push(() => t.device.close());
      return t;
    };
    const a = side((await tunnel()).device);
    const b = side((await tunnel()).device);
    // (through the relay a packet also waits for the relay thread to get a CPU: more slack on a loaded machine)
    const o = { qpAccessFlags: ALL, timeout: relay === "native" ? 14 : 12, retryCnt: 7 };
    connectQp(a.qp, { qpNum: b.qp.qpNum, psn: 0x300, gid: b.d.queryGid(0), port: gw.udpPort }, { sqPsn: 0x100, ...o });
    connectQp(b.qp, { qpNum: a.qp.qpNum, psn: 0x100, gid: a.d.queryGid(0), port: gw.udpPort }, { sqPsn: 0x300, ...o });
    const write = async (from: typeof a, to: typeof a, fill: number) => {
      from.mr.bytes.fill(fill, 0, 256);
      from.qp.postSend({ wrId: 1n, opcode: WrOpcode.RDMA_WRITE, sendFlags: SendFlags.SIGNALED, sgList: [from.mr.sge(0, 256)],
        rdma: { remoteAddr: to.mr.addr + 4096n, rkey: to.mr.rkey } });
      expect((await from.cq.next()).status).toBe(WcStatus.SUCCESS);
      expect(to.mr.bytes.subarray(4096, 4352)).toEqual(new Uint8Array(256).fill(fill));
    };
    await write(a, b, 0x11);
    await write(b, a, 0x22);
    const snapA = a.mr.bytes.slice();
    const snapB = b.mr.bytes.slice();

    const rng = new Prng(SEED);
    const pick = <T>(x: readonly T[]): T => x[rng.u32() % x.length]!;
    const below = (n: number) => rng.u32() % n;
    const corpus = capturePayloads();
    let hostile: WebSocket | undefined;
    let reconnects = 0;
    const connectHostile = () => new Promise<WebSocket>((resolve, reject) => {
      const s = new WebSocket(url, { headers, perMessageDeflate: false });
      cleanups.push(() => s.terminate());
      s.on("error", () => {});
      s.on("unexpected-response", () => reject(new Error("hostile client refused at connect")));
      s.on("message", (d: Buffer) => { if (parseFrame(d).kind === FrameKind.HELLO) resolve(s); });
    });
    const failAt = (i: number, why: string) =>
      new Error(`gateway fuzz failed (relay ${relay}), seed ${SEED}, frame ${i}: ${why}\nrepeat: FUZZ_SEED=${SEED} FUZZ_PACKETS=${(i + 1) * 10} npx vitest run test/host/gateway/gateway.fuzz.test.ts -t "relay ${relay}"`);
    const targets = [a.qp.qpNum, b.qp.qpNum];
    // refusals that end the hostile session
    const evictions = () => ["bad_frame", "bad_kind", "text_frame", "oversize_frame"].reduce((n, k) => n + (gw.counters.refused[k] ?? 0), 0);
    const until = async (done: () => boolean, fail: () => Error) => {
      for (const t0 = Date.now(); !done(); await nextTurn()) if (Date.now() - t0 > 10_000) throw fail();
    };
    for (let i = 0; i < FRAMES; i++) {
      if (!hostile || hostile.readyState !== WebSocket.OPEN) {
        hostile = await connectHostile();
        reconnects++;
      }
      let payload = pick(corpus).slice();
      if (payload.length >= 12 && below(100) < 70) {
        const q = below(100) < 60 ? pick(targets) : below(1 << 24);
        payload[5] = q >>> 16; payload[6] = (q >>> 8) & 0xff; payload[7] = q & 0xff;
      }
      for (let k = below(100) < 30 ? 1 + below(3) : 0; k > 0 && payload.length; k--) payload[below(payload.length)] ^= 1 << below(8);
      const dest = pick([ALLOWED, ALLOWED, REFUSED, "127.0.0.1", "::1", "8.8.8.8", "255.255.255.255", "::ffff:127.0.12.9"]);
      const dport = pick([port, port, gw.udpPort, gw.udpPort, otherPort.s.address().port, 1 + below(65535)]);
      let frame: Uint8Array;
      const kind = below(100);
      if (kind < 85) frame = emitData(dest === "::ffff:127.0.12.9" ? ALLOWED : dest, dport, 0, [payload]);
      else if (kind < 90) frame = Uint8Array.from({ length: below(64) }, () => below(256)); // garbage: closes the client
      else if (kind < 95) frame = emitData(ALLOWED, port, 0, [payload]).subarray(0, below(DATA_HEADER_LEN + 1)); // truncated
      else {
        frame = emitData(dest === "::ffff:127.0.12.9" ? ALLOWED : dest, dport, 0, [payload]);
        frame[below(DATA_HEADER_LEN)] ^= 1 << below(8); // a header bit flipped
      }
      // Each frame's fate must not depend on timing: one sent after a frame that closed the client
      // would be ignored, or not, depending on when the client saw the close. So wait until the
      // gateway has taken this frame, and when it ended the session, until the client is closed.
      const taken = gw.counters.framesIn;
      const ended = evictions();
      hostile.send(frame);
      await until(() => gw.counters.framesIn > taken && settled(), () => failAt(i, "the gateway did not take the frame"));
      if (evictions() > ended) {
        const h = hostile;
        await until(() => h.readyState === WebSocket.CLOSED, () => failAt(i, "the gateway ended the session but the client is still open"));
      }
      if (gw.counters.refused.internal) throw failAt(i, `internal refusal: a contained bug`);
    }
    await new Promise((r) => setTimeout(r, 200));
    if (refused.got.length) throw failAt(FRAMES, `${refused.got.length} datagrams reached ${REFUSED}, which is not on the allowlist`);
    if (otherPort.got.length) throw failAt(FRAMES, `${otherPort.got.length} datagrams reached a port not on the port allowlist`);
    for (const m of allowed.got) {
      const info = codec.opcode(m[0]!);
      if (m.length < 16 || !info || (m[1]! & 0x0f) !== 0) throw failAt(FRAMES, `a datagram that is not RoCE-shaped left the gateway: ${m.subarray(0, 16).toString("hex")}`);
    }
    expect(gw.counters.refused.internal ?? 0).toBe(0);
    expect(a.mr.bytes).toEqual(snapA);
    expect(b.mr.bytes).toEqual(snapB);
    // the hostile client's RC/UC packets to the legitimate QPs were refused by the conversation binding
    expect(gw.counters.refused.peer_owned ?? 0).toBeGreaterThan(0);
    expect(allowed.got.length).toBeGreaterThan(0);
    await write(a, b, 0x33);
    await write(b, a, 0x44);
    expect(reconnects).toBeGreaterThan(1);
  }, 600_000);
});
