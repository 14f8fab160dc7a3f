// The key-value server: a hash table in a registered memory region that clients read with
// one-sided RDMA READs (no server CPU per GET), and PUTs that arrive as SENDs, which the server
// applies and answers. Clients find it through a TCP control port, as rc_pingpong does: one JSON
// line each way carrying QPN, PSN, GID, and the table's address and rkey.
import net from "node:net";
import { openDevice, connectQp, Access, QpType, WrOpcode } from "softroce";
import { PROBE, PUT_HDR, PUT_MAX, REPLY_LEN, STATUS, putInTable, tableBytes } from "./table.mjs";

const RECVS = 32;

/**
 * Starts a server: the device on `address` (UDP 4791 unless `udpPort`), the control port on
 * `address`:`tcpPort` (0: a free one). Resolves { tcpPort, stats, close() }.
 */
export async function startKvServer({ address = "127.0.0.1", udpPort = 4791, tcpPort = 7471, buckets = 4096, maxClients = 16 } = {}) {
  const dev = await openDevice({ address, port: udpPort });
  const pd = dev.allocPd();
  const cq = dev.createCq(4096);
  const table = pd.regMr(tableBytes(buckets), Access.LOCAL_WRITE | Access.REMOTE_READ);
  table.bytes.fill(0);
  const stats = { gets: "not seen: one-sided", puts: 0, clients: 0 };
  const clients = new Map(); // qpNum -> { qp, buf, socket }
  let closed = false;

  // PUTs: every receive completion is one request; apply it, answer, post the receive again.
  const pump = (async () => {
    while (!closed) {
      let wc;
      try {
        wc = await cq.next();
      } catch {
        return; // device closed
      }
      const c = clients.get(wc.qpNum);
      if (!c || wc.status !== 0) continue;
      if (wc.opcode !== 128) continue; // our reply SENDs completing
      const slot = Number(wc.wrId);
      const msg = c.buf.bytes.subarray(slot * PUT_MAX, slot * PUT_MAX + wc.byteLen);
      const reply = c.buf.bytes.subarray(RECVS * PUT_MAX + slot * REPLY_LEN, RECVS * PUT_MAX + (slot + 1) * REPLY_LEN);
      reply.fill(0);
      reply.set(msg.subarray(4, 8), 4); // request id
      const klen = msg[1] ?? 0;
      const vlen = msg.length >= 4 ? msg[2] | (msg[3] << 8) : 0;
      if (msg.length < PUT_HDR || msg[0] !== 1 || klen === 0 || msg.length !== PUT_HDR + klen + vlen) reply[0] = STATUS.MALFORMED;
      else reply[0] = putInTable(table.bytes, buckets, msg.subarray(PUT_HDR, PUT_HDR + klen), msg.subarray(PUT_HDR + klen)) ? STATUS.OK : STATUS.FULL;
      stats.puts++;
      c.qp.postRecv({ wrId: BigInt(slot), sgList: [c.buf.sge(slot * PUT_MAX, PUT_MAX)] });
      c.qp.postSend({ wrId: BigInt(slot), opcode: WrOpcode.SEND, sgList: [c.buf.sge(RECVS * PUT_MAX + slot * REPLY_LEN, REPLY_LEN)] });
    }
  })();

  const server = net.createServer((socket) => {
    let line = "";
    socket.setEncoding("utf8");
    socket.on("error", () => {});
    socket.on("data", (d) => {
      line += d;
      if (line.length > 1024) return void socket.destroy();
      const nl = line.indexOf("\n");
      if (nl < 0) return;
      let peer;
      try {
        peer = JSON.parse(line.slice(0, nl));
      } catch {
        return void socket.end(JSON.stringify({ error: "not JSON" }) + "\n");
      }
      const ok = (v) => Number.isInteger(v) && v >= 0 && v <= 0xffffff;
      if (!ok(peer.qpn) || !ok(peer.psn) || typeof peer.gid !== "string") return void socket.end(JSON.stringify({ error: "want {qpn, psn, gid}" }) + "\n");
      if (clients.size >= maxClients) return void socket.end(JSON.stringify({ error: "too many clients" }) + "\n");
      try {
        const qp = pd.createQp({ qpType: QpType.RC, sendCq: cq, recvCq: cq, cap: { maxSendWr: RECVS, maxRecvWr: RECVS, maxSendSge: 1, maxRecvSge: 1 } });
        const buf = pd.regMr(RECVS * (PUT_MAX + REPLY_LEN), Access.LOCAL_WRITE);
        const psn = 0x1000 + clients.size;
        connectQp(qp, { qpNum: peer.qpn, psn: peer.psn, gid: peer.gid, port: peer.port }, { sqPsn: psn, qpAccessFlags: Access.REMOTE_READ, maxDestRdAtomic: 16, maxRdAtomic: 1, timeout: 14, minRnrTimer: 1 });
        qp.postRecv(Array.from({ length: RECVS }, (_, i) => ({ wrId: BigInt(i), sgList: [buf.sge(i * PUT_MAX, PUT_MAX)] })));
        clients.set(qp.qpNum, { qp, buf, socket });
        stats.clients++;
        socket.write(JSON.stringify({ qpn: qp.qpNum, psn, gid: `::ffff:${address}`, port: udpPort, addr: table.addr.toString(), rkey: table.rkey, buckets, probe: PROBE }) + "\n");
        socket.on("close", () => {
          clients.delete(qp.qpNum);
          if (!closed) {
            qp.destroy();
            buf.destroy();
          }
        });
      } catch (e) {
        socket.end(JSON.stringify({ error: e.message }) + "\n");
      }
    });
  });
  await new Promise((ok, fail) => {
    server.once("error", fail);
    server.listen(tcpPort, address, ok);
  });
  return {
    tcpPort: server.address().port,
    stats,
    table,
    async close() {
      closed = true;
      for (const c of clients.values()) c.socket.destroy();
      await new Promise((r) => server.close(r));
      dev.close();
      void pump; // ends when the device's CQ goes away
    },
  };
}
