// What the load proof's two layouts share (bench/load.mjs + load-peer.mjs across two processes,
// bench/load-inproc.mjs in one): the WRITE sizes and where they land, the byte pattern, one
// side's device and QPs, and the completion count.
import { openDevice, randomPsn, QpType, Access, SendFlags, WcStatus, WrOpcode } from "../dist/internal/node.js";

/** The three WRITEs per QP pair, their offsets in the QP's slot and the slot (64-byte aligned). */
export const SIZES = [1000, 4096, 9000];
export const OFFS = [0, 1024, 5120];
export const SLOT = 14336;
/** The QP attributes: the default ACK timeout (14: 67 ms) and retry count (7). */
export const CONNECT = { qpAccessFlags: Access.REMOTE_WRITE, timeout: 14, retryCnt: 7, rnrRetry: 7 };
/** connectQp's default path MTU: the datagrams a WRITE needs at least. */
export const MTU = 1024;
/** Request datagrams `pairs` pairs need without a retransmission. */
export const neededPackets = (pairs) => pairs * SIZES.reduce((n, s) => n + Math.ceil(s / MTU), 0);

const byte = (q, w, i) => (q * 7 + w * 13 + i * 31 + 1) & 0xff;

/** A device on `address`:4791 with `n` RC QPs on one CQ and one MR of `n` slots; random PSNs. */
export async function openLoadSide(address, n) {
  const dev = await openDevice({
    address, port: 4791, maxQp: n + 16, maxCq: 4, maxCqe: 32767, maxMr: 16,
    mrArenaBytes: Math.max(16 << 20, n * SLOT + (1 << 20)), ringArenaBytes: Math.max(16 << 20, n * 4096),
  });
  const pd = dev.allocPd();
  const cq = dev.createCq(Math.min(32767, 3 * n + 16));
  const mr = pd.regMr(n * SLOT, Access.LOCAL_WRITE | Access.REMOTE_WRITE);
  const qps = Array.from({ length: n }, () => pd.createQp({
    qpType: QpType.RC, sendCq: cq, recvCq: cq, cap: { maxSendWr: 4, maxRecvWr: 1, maxSendSge: 1, maxRecvSge: 1 },
  }));
  return { dev, cq, mr, qps, psns: qps.map(() => randomPsn()), gid: dev.queryGid(0) };
}

/** Writes the pattern of every WRITE into `mr` (the writer's source). */
export function fillPattern(mr, pairs) {
  for (let q = 0; q < pairs; q++) for (let w = 0; w < 3; w++) {
    const o = q * SLOT + OFFS[w];
    for (let i = 0; i < SIZES[w]; i++) mr.bytes[o + i] = byte(q, w, i);
  }
}

/** WRITEs whose bytes in `mr` (the target's) are not the pattern. */
export function wrongWrites(mr, pairs) {
  let wrong = 0;
  for (let q = 0; q < pairs; q++) for (let w = 0; w < 3; w++) {
    const o = q * SLOT + OFFS[w];
    for (let i = 0; i < SIZES[w]; i++) if (mr.bytes[o + i] !== byte(q, w, i)) { wrong++; break; }
  }
  return wrong;
}

/** Posts QP `q`'s three signaled WRITEs (wrId q*3+w) to the peer's MR at `remote`/`rkey`. */
export function postWrites(qp, q, mr, remote, rkey) {
  for (let w = 0; w < 3; w++) {
    qp.postSend({
      wrId: BigInt(q * 3 + w), opcode: WrOpcode.RDMA_WRITE, sendFlags: SendFlags.SIGNALED,
      sgList: [mr.sge(q * SLOT + OFFS[w], SIZES[w])], rdma: { remoteAddr: remote + BigInt(q * SLOT + OFFS[w]), rkey },
    });
  }
}

/** Polls `cq` until `count` completions or the deadline: WRs by status, duplicates, never completed. */
export async function collectCompletions(cq, count, deadlineMs) {
  const seen = new Uint8Array(count);
  const statuses = {};
  let completions = 0;
  let duplicates = 0;
  const end = Date.now() + deadlineMs;
  while (completions < count && Date.now() < end) {
    const wcs = cq.poll(256);
    if (!wcs.length) { await new Promise((r) => setTimeout(r, 1)); continue; }
    for (const wc of wcs) {
      completions++;
      const id = Number(wc.wrId);
      if (seen[id]) duplicates++;
      seen[id]++;
      const s = Object.keys(WcStatus).find((k) => WcStatus[k] === wc.status) ?? String(wc.status);
      statuses[s] = (statuses[s] ?? 0) + 1;
    }
  }
  return { statuses, completions, duplicates, missing: seen.filter((x) => x === 0).length };
}
