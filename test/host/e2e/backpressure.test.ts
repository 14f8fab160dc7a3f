// Lossless sending over UDP: with a tiny high-water mark the link reports backpressure on
// nearly every datagram; the device keeps what it cannot hand over queued and resumes on
// drain, so a burst of large WRITEs all complete, every datagram the device produced reached
// the kernel, and none was refused or dropped on the way out.
import { afterEach, describe, expect, it } from "vitest";
import { openDevice, udpLinkOf } from "../../../host/node/index.js";
import type { UdpLink } from "../../../host/node/udp.js";
import { connectQp } from "../../../host/core/verbs/connect.js";
import { Access, Mtu, QpType, SendFlags, WcStatus, WrOpcode } from "../../../host/core/verbs/enums.js";
import type { Device } from "../../../host/core/verbs/device.js";
import type { WorkCompletion } from "../../../host/core/verbs/cq.js";

const opened: Device[] = [];
afterEach(() => {
  while (opened.length) opened.pop()!.close();
});

const MSG = 65536;
const COUNT = 48;
const ACCESS = Access.LOCAL_WRITE | Access.REMOTE_WRITE;

async function pair(highWaterMark: number) {
  // node:dgram's high-water mark (the native datapath's backpressure is the socket's EAGAIN)
  const devOpts = { address: "127.0.0.1", port: 0, activeMtu: Mtu.MTU_4096, mrArenaBytes: 8 << 20, datapath: "dgram" as const };
  const a = await openDevice({ ...devOpts, highWaterMark });
  const b = await openDevice(devOpts);
  opened.push(a, b);
  const side = (d: Device) => {
    const pd = d.allocPd();
    const cq = d.createCq(256);
    const qp = pd.createQp({ qpType: QpType.RC, sendCq: cq, recvCq: cq, cap: { maxSendWr: COUNT, maxRecvWr: 4, maxSendSge: 1, maxRecvSge: 1 } });
    const mr = pd.regMr(COUNT * MSG, ACCESS);
    return { d, cq, qp, mr, port: (d.limits as { port: number }).port };
  };
  const A = side(a);
  const B = side(b);
  const common = { pathMtu: Mtu.MTU_4096, qpAccessFlags: ACCESS };
  connectQp(A.qp, { qpNum: B.qp.qpNum, psn: 200, gid: "::ffff:127.0.0.1", port: B.port }, { ...common, sqPsn: 100 });
  connectQp(B.qp, { qpNum: A.qp.qpNum, psn: 100, gid: "::ffff:127.0.0.1", port: A.port }, { ...common, sqPsn: 200 });
  return { A, B };
}

async function completions(poll: () => WorkCompletion[], n: number, ms = 20_000): Promise<WorkCompletion[]> {
  const out: WorkCompletion[] = [];
  const end = Date.now() + ms;
  while (out.length < n) {
    out.push(...poll());
    if (Date.now() > end) throw new Error(`timed out with ${out.length} of ${n} completions`);
    await new Promise((r) => setTimeout(r, 1));
  }
  return out;
}

describe("UDP backpressure", () => {
  it("a burst of 48 × 64 KiB WRITEs through a 1-byte high-water mark: every WR completes, nothing is refused or dropped", async () => {
    const { A, B } = await pair(1);
    const src = new Uint8Array(A.d.memory.buffer, Number(A.mr.addr), COUNT * MSG);
    for (let i = 0; i < src.length; i++) src[i] = (i * 7 + (i >>> 12)) & 0xff;
    for (let k = 0; k < COUNT; k++) {
      A.qp.postSend({
        wrId: BigInt(k),
        opcode: WrOpcode.RDMA_WRITE,
        sendFlags: SendFlags.SIGNALED,
        sgList: [A.mr.sge(k * MSG, MSG)],
        rdma: { remoteAddr: B.mr.addr + BigInt(k * MSG), rkey: B.mr.rkey },
      });
    }
    const wcs = await completions(() => A.cq.poll(64), COUNT);
    expect(wcs.map((w) => w.status)).toEqual(new Array(COUNT).fill(WcStatus.SUCCESS));
    expect(wcs.map((w) => Number(w.wrId))).toEqual([...Array(COUNT).keys()]);
    const dst = new Uint8Array(B.d.memory.buffer, Number(B.mr.addr), COUNT * MSG);
    expect(Buffer.compare(dst, new Uint8Array(A.d.memory.buffer, Number(A.mr.addr), COUNT * MSG))).toBe(0);
    const link = udpLinkOf(A.d) as UdpLink;
    // 16 packets per message at MTU 4096: the link was told to hold off on (nearly) all of them
    expect(link.stats.backpressured).toBeGreaterThanOrEqual(COUNT * 16 - 1);
    expect(link.stats.resumed).toBeGreaterThan(0);
    // lossless on the sending side: each datagram the device queued went to the kernel and was accepted
    expect(link.stats.sendErrors).toBe(0);
    expect(link.stats.sendErrorsByCode).toEqual({});
    expect(link.stats.sent).toBe(A.d.port!.stats.txDatagrams);
    expect(A.d.queryCounters().sent_pkts).toBe(link.stats.sent);
  });

  it("without backpressure the same burst never blocks (the control)", async () => {
    const { A, B } = await pair(64 << 20);
    for (let k = 0; k < 8; k++) {
      A.qp.postSend({ wrId: BigInt(k), opcode: WrOpcode.RDMA_WRITE, sendFlags: SendFlags.SIGNALED, sgList: [A.mr.sge(k * MSG, MSG)],
        rdma: { remoteAddr: B.mr.addr + BigInt(k * MSG), rkey: B.mr.rkey } });
    }
    const wcs = await completions(() => A.cq.poll(64), 8);
    expect(wcs.every((w) => w.status === WcStatus.SUCCESS)).toBe(true);
    expect(udpLinkOf(A.d)!.stats.backpressured).toBe(0);
  });
});
