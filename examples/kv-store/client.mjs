// The key-value client: GET is one RDMA READ of the key's probe window straight out of the
// server's table (retried if it caught a slot mid-write); PUT is a SEND the server answers.
import net from "node:net";
import { openDevice, connectQp, Access, QpType, WrOpcode, SendFlags } from "softroce";
import { PROBE, PUT_HDR, PUT_MAX, REPLY_LEN, SLOT, STATUS, bucketOf, checkKeyValue, findInWindow } from "./table.mjs";

const WINDOW = PROBE * SLOT;
/** GETs in flight at most (the QP's max_rd_atomic). */
export const MAX_OUTSTANDING = 16;
const RECVS = 16;
const MAX_TORN_RETRIES = 100;

/** One JSON line over TCP each way: our QP for the server's QP and table. */
function exchange(host, port, mine) {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, host);
    let buf = "";
    s.setEncoding("utf8");
    s.once("error", reject);
    s.on("connect", () => s.write(JSON.stringify(mine) + "\n"));
    s.on("data", (d) => {
      buf += d;
      const nl = buf.indexOf("\n");
      if (nl < 0) return;
      const reply = JSON.parse(buf.slice(0, nl));
      if (reply.error) return reject(new Error(`kv server: ${reply.error}`));
      resolve({ reply, socket: s });
    });
    s.on("close", () => reject(new Error("kv server closed the control connection")));
  });
}

export class KvClient {
  /** Connects a device on `address` to the server whose control port is `server`:`tcpPort`. */
  static async connect({ address = "127.0.0.2", udpPort = 4791, server = "127.0.0.1", tcpPort = 7471 } = {}) {
    const dev = await openDevice({ address, port: udpPort });
    try {
      const pd = dev.allocPd();
      const sendCq = dev.createCq(256);
      const recvCq = dev.createCq(256);
      const qp = pd.createQp({ qpType: QpType.RC, sendCq, recvCq, cap: { maxSendWr: 64, maxRecvWr: RECVS, maxSendSge: 1, maxRecvSge: 1 } });
      const mr = pd.regMr(MAX_OUTSTANDING * WINDOW + PUT_MAX + RECVS * REPLY_LEN, Access.LOCAL_WRITE);
      const psn = 0x200;
      const { reply, socket } = await exchange(server, tcpPort, { qpn: qp.qpNum, psn, gid: `::ffff:${address}`, port: udpPort });
      connectQp(qp, { qpNum: reply.qpn, psn: reply.psn, gid: reply.gid, port: reply.port }, { sqPsn: psn, maxRdAtomic: MAX_OUTSTANDING, maxDestRdAtomic: 1, timeout: 14, minRnrTimer: 1 });
      return new KvClient(dev, qp, mr, sendCq, recvCq, socket, reply);
    } catch (e) {
      dev.close();
      throw e;
    }
  }

  constructor(dev, qp, mr, sendCq, recvCq, socket, remote) {
    this.dev = dev;
    this.qp = qp;
    this.mr = mr;
    this.socket = socket;
    this.remoteAddr = BigInt(remote.addr);
    this.rkey = remote.rkey;
    this.buckets = remote.buckets;
    this.free = Array.from({ length: MAX_OUTSTANDING }, (_, i) => i);
    this.waitingForSlot = [];
    this.pending = new Map(); // wrId -> resolve(wc)
    this.nextId = 1n;
    this.putChain = Promise.resolve();
    this.closed = false;
    this.recvBase = MAX_OUTSTANDING * WINDOW + PUT_MAX;
    qp.postRecv(Array.from({ length: RECVS }, (_, i) => ({ wrId: BigInt(i), sgList: [mr.sge(this.recvBase + i * REPLY_LEN, REPLY_LEN)] })));
    this.replies = [];
    this.replyWaiters = [];
    this.#pump(sendCq, (wc) => {
      const done = this.pending.get(wc.wrId);
      this.pending.delete(wc.wrId);
      done?.(wc);
    });
    this.#pump(recvCq, (wc) => {
      const slot = Number(wc.wrId);
      const bytes = mr.bytes.slice(this.recvBase + slot * REPLY_LEN, this.recvBase + (slot + 1) * REPLY_LEN);
      qp.postRecv({ wrId: wc.wrId, sgList: [mr.sge(this.recvBase + slot * REPLY_LEN, REPLY_LEN)] });
      const w = this.replyWaiters.shift();
      if (w) w({ wc, bytes });
      else this.replies.push({ wc, bytes });
    });
  }

  async #pump(cq, onWc) {
    while (!this.closed) {
      let wc;
      try {
        wc = await cq.next();
      } catch {
        return;
      }
      onWc(wc);
    }
  }

  #post(wr) {
    const wrId = this.nextId++;
    return new Promise((resolve) => {
      this.pending.set(wrId, resolve);
      this.qp.postSend({ ...wr, wrId, sendFlags: SendFlags.SIGNALED });
    });
  }

  async #slot() {
    if (this.free.length) return this.free.pop();
    return new Promise((r) => this.waitingForSlot.push(r));
  }

  #release(slot) {
    const w = this.waitingForSlot.shift();
    if (w) w(slot);
    else this.free.push(slot);
  }

  /** The value of `key`, or undefined. One RDMA READ; the server's CPU does nothing. */
  async get(key) {
    const { k } = checkKeyValue(key);
    const first = bucketOf(k, this.buckets);
    const slot = await this.#slot();
    try {
      for (let attempt = 0; attempt < MAX_TORN_RETRIES; attempt++) {
        const wc = await this.#post({
          opcode: WrOpcode.RDMA_READ,
          sgList: [this.mr.sge(slot * WINDOW, WINDOW)],
          rdma: { remoteAddr: this.remoteAddr + BigInt(first * SLOT), rkey: this.rkey },
        });
        if (wc.status !== 0) throw new Error(`GET ${key}: RDMA READ failed with status ${wc.status}`);
        const r = findInWindow(this.mr.bytes.subarray(slot * WINDOW, (slot + 1) * WINDOW), k);
        if (!r.torn) return r.found ? r.value : undefined;
      }
      throw new Error(`GET ${key}: the slot kept changing under ${MAX_TORN_RETRIES} reads`);
    } finally {
      this.#release(slot);
    }
  }

  /** Stores key=value: a SEND to the server, which applies it and answers. One PUT at a time. */
  put(key, value) {
    const { k, v } = checkKeyValue(key, value);
    const run = this.putChain.then(async () => {
      const id = Number(this.nextId & 0xffffffffn);
      const base = MAX_OUTSTANDING * WINDOW;
      const msg = this.mr.bytes.subarray(base, base + PUT_HDR + k.length + v.length);
      const dv = new DataView(msg.buffer, msg.byteOffset, msg.byteLength);
      msg[0] = 1;
      msg[1] = k.length;
      dv.setUint16(2, v.length, true);
      dv.setUint32(4, id, true);
      msg.set(k, PUT_HDR);
      msg.set(v, PUT_HDR + k.length);
      const replyP = this.replies.length ? Promise.resolve(this.replies.shift()) : new Promise((r) => this.replyWaiters.push(r));
      const wc = await this.#post({ opcode: WrOpcode.SEND, sgList: [this.mr.sge(base, msg.length)] });
      if (wc.status !== 0) throw new Error(`PUT ${key}: SEND failed with status ${wc.status}`);
      const { bytes } = await replyP;
      if (new DataView(bytes.buffer).getUint32(4, true) !== id) throw new Error(`PUT ${key}: reply for another request`);
      if (bytes[0] === STATUS.FULL) throw new Error(`PUT ${key}: the key's bucket window is full`);
      if (bytes[0] !== STATUS.OK) throw new Error(`PUT ${key}: the server refused it (status ${bytes[0]})`);
    });
    this.putChain = run.catch(() => {});
    return run;
  }

  close() {
    this.closed = true;
    this.socket.destroy();
    this.dev.close();
  }
}
