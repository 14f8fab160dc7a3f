// One device of test/system/mcast-ipv6.sys.mjs, run inside a network namespace with
// `ip netns exec`: a softroce Node device on an IPv6 address with a UD QP, and prints one
// JSON line with what it saw.
//   member <address> <group> <readyFile> <listenMs> <detach 0|1>
//       attaches to the multicast GID (and detaches again when detach is 1), writes the ready
//       file with its QPN once the link has joined (or left) the group, then collects
//       receives for listenMs.
//   send <address> <group> <text> <waitMs>
//       attaches too (a sender may be a member: multicast loops back), sends one UD SEND to
//       QPN 0xFFFFFF at the group, waits for its send completion and its own copy.
import { writeFileSync } from "node:fs";

const { openDevice, udpLinkOf, datapathOf, connectQp, QpType, SendFlags, WrOpcode, Access } = await import(
  new URL("../../../dist/node/index.js", import.meta.url).href
);

const QKEY = 0x11223344;
const GRH = 40;
const [mode, address, group, ...rest] = process.argv.slice(2);

async function until(cond, ms) {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) return false;
    await new Promise((r) => setTimeout(r, 5));
  }
  return true;
}

const dev = await openDevice({ address, port: 4791 });
const pd = dev.allocPd();
const cq = dev.createCq(32);
const qp = pd.createQp({ qpType: QpType.UD, sendCq: cq, recvCq: cq, cap: { maxSendWr: 4, maxRecvWr: 8, maxSendSge: 1, maxRecvSge: 1 } });
connectQp(qp, undefined, { sqPsn: 0, qkey: QKEY });
const mr = pd.regMr(16384, Access.LOCAL_WRITE);
for (let i = 0; i < 4; i++) qp.postRecv({ wrId: BigInt(100 + i), sgList: [mr.sge(i * 2048, 2048)] });
const link = udpLinkOf(dev);
const gid = group; // an ff00::/8 address is its own GID
qp.attachMcast(gid);
await link.joinGroup(group); // the join onMulticast started; this waits for it (or throws its error)

const wcs = [];
function poll() {
  for (const w of cq.poll(16)) {
    const recv = w.wrId >= 100n;
    const off = Number(w.wrId - 100n) * 2048;
    wcs.push({
      wrId: String(w.wrId),
      recv,
      status: w.status,
      byteLen: w.byteLen,
      srcQp: recv ? w.srcQp : undefined,
      text: recv && w.status === 0 ? new TextDecoder().decode(mr.bytes.subarray(off + GRH, off + w.byteLen)) : undefined,
    });
  }
}

const report = () => ({ mode, address, qpn: qp.qpNum, path: datapathOf(dev)?.path, joined: link.joinedGroups, wcs });

if (mode === "member") {
  const [readyFile, listenMs, detach] = rest;
  if (detach === "1") {
    qp.detachMcast(gid);
    if (!(await until(() => link.joinedGroups.length === 0, 3000))) throw new Error("the link did not leave the group");
  }
  writeFileSync(readyFile, String(qp.qpNum));
  const end = Date.now() + Number(listenMs);
  while (Date.now() < end) {
    poll();
    await new Promise((r) => setTimeout(r, 10));
  }
} else if (mode === "send") {
  const [text, waitMs] = rest;
  const bytes = new TextEncoder().encode(text);
  mr.bytes.set(bytes, 12288);
  const ah = pd.createAh({ grh: { dgid: gid, sgidIndex: 0, hopLimit: 8 }, portNum: 1 });
  qp.postSend({ wrId: 1n, opcode: WrOpcode.SEND, sendFlags: SendFlags.SIGNALED, sgList: [mr.sge(12288, bytes.length)], ud: { ah, remoteQpn: 0xffffff, remoteQkey: QKEY } });
  await until(() => {
    poll();
    return wcs.some((w) => !w.recv) && wcs.some((w) => w.recv);
  }, Number(waitMs));
} else {
  throw new Error(`unknown mode ${mode}`);
}
console.log(JSON.stringify(report()));
dev.close();
process.exit(0);
