// The native datapath alone (no device): 4112-byte datagrams (BTH + 4096 + ICRC, an RC WRITE
// middle at MTU 4096) from this process to a child process over UDP loopback, 128 in flight
// against a cumulative count the receiver returns every 32 datagrams (the flow control of
// bench/native/udp-limit.c and bench/udp-goodput.mjs), goodput measured at the receiver.
// Candidates, interleaved round by round (order rotated):
//   dgram             node:dgram on both ends, one send() and one 'message' event a datagram
//   mmsg → mmsg       native TX sendmmsg, native RX recvmmsg (uv_poll, one callback a batch)
//   gso → mmsg        native TX with UDP GSO (runs of 15), native RX recvmmsg
//   mmsg → gro        native TX sendmmsg, native RX with UDP_GRO
//   gso → gro         native TX GSO, native RX GRO
//   C send / sendmmsg / gso / gso+gro: the C probe (bench/native/udp-limit.c), the machine's limit
// Prints GB/s and the ratio to dgram and to the C GSO+GRO limit, each as min / median / max over
// rounds (a round's ratio uses that round's figures), plus CPU µs a datagram on each end.
// Knobs: BENCH_ROUNDS (5), BENCH_COUNT (datagrams a measurement, 30000 = ~123 MB).
import { fork } from "node:child_process";
import dgram from "node:dgram";
import { once } from "node:events";
import { TX_GSO, TX_RECORD, RX_RECORD, openDatapath, parseGid } from "../dist/internal/node.js";
import { PROBE_MODES, buildProbe, fmtSpread, runProbe, spread } from "./native/probe.mjs";

const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 5);
const COUNT = Number(process.env.BENCH_COUNT ?? 30000);
const SIZE = 4112;
const WINDOW = 128;
const ACK_EVERY = 32;
const TX_ADDR = "127.33.2.1";
const RX_ADDR = "127.33.2.2";
const NATIVE = [
  { name: "mmsg → mmsg", gso: false, gro: false },
  { name: "gso → mmsg", gso: true, gro: false },
  { name: "mmsg → gro", gso: false, gro: true },
  { name: "gso → gro", gso: true, gro: true },
];

// Buffer layout shared by both ends (one ArrayBuffer each): TX records, data, RX slots, RX metadata.
const TABLE = 0, DATA = 1 << 16, AREA = 1 << 17, META = AREA + (1 << 20) + 65536, MEM = 4 << 20;

function gid(a) {
  return parseGid(`::ffff:${a}`);
}

/** Fills `n` TX records at TABLE, all the same datagram [at, at + len) to dst:port. */
function records(m, n, dst, port, at, len) {
  const dv = new DataView(m.buffer);
  for (let i = 0; i < n; i++) {
    const r = TABLE + i * TX_RECORD.stride;
    m.set(gid(dst), r + TX_RECORD.dstAddr);
    dv.setUint32(r + TX_RECORD.dstPort, port, true);
    dv.setUint32(r + TX_RECORD.flags, 0, true);
    dv.setUint32(r + TX_RECORD.ipId, 0, true);
    dv.setUint32(r + TX_RECORD.pieces[0].data, at, true);
    dv.setUint32(r + TX_RECORD.pieces[0].len, len, true);
    for (const p of TX_RECORD.pieces.slice(1)) dv.setUint32(r + p.len, 0, true);
  }
}

function open(address, extra) {
  const m = new Uint8Array(MEM);
  const r = openDatapath({ memory: m, address, port: 0, ...extra });
  if (!r.datapath) throw new Error(`native datapath unavailable: ${r.reason}`);
  return { d: r.datapath, m, dv: new DataView(m.buffer) };
}

// ---- child: the receiver
async function child() {
  process.on("message", async (msg) => {
    if (msg.type === "exit") return process.disconnect();
    if (msg.type !== "start") return;
    const { mode, total, senderPort } = msg;
    let received = 0, acked = 0, first = 0, last = 0, cpu0, ended = false;
    let finish;
    const done = new Promise((r) => (finish = r));
    const progress = (n) => {
      const now = performance.now();
      if (received === 0) (first = now), (cpu0 = process.cpuUsage());
      last = now;
      received += n;
    };
    let close;
    let port;
    if (mode === "dgram") {
      const s = dgram.createSocket("udp4");
      s.bind(0, RX_ADDR);
      await once(s, "listening");
      s.setRecvBufferSize(4 << 20);
      const ack = Buffer.alloc(4);
      s.on("message", () => {
        progress(1);
        if (Math.floor(received / ACK_EVERY) !== Math.floor(acked / ACK_EVERY) || received >= total) {
          acked = received;
          ack.writeUInt32LE(received);
          s.send(ack, senderPort, TX_ADDR);
        }
        if (received >= total) finish();
      });
      port = s.address().port;
      close = () => s.close();
    } else {
      const gro = NATIVE.find((c) => c.name === mode).gro;
      const { d, m, dv } = open(RX_ADDR, { gro });
      records(m, 1, TX_ADDR, senderPort, DATA, 4);
      d.receive({ area: AREA, slotSize: gro ? 65536 : 4160, slots: gro ? 16 : 64, meta: META, metaCap: 256 }, (count) => {
        progress(count);
        if (Math.floor(received / ACK_EVERY) !== Math.floor(acked / ACK_EVERY) || received >= total) {
          acked = received;
          dv.setUint32(DATA, received, true);
          d.sendBatch(TABLE, 0, 1);
        }
        if (received >= total) finish();
      });
      port = d.port;
      close = () => d.close();
    }
    process.send({ type: "ready", port });
    // a lost datagram leaves the count short for good: stop 300 ms after the last one
    const idle = setInterval(() => received > 0 && performance.now() - last > 300 && finish(), 50);
    await done;
    clearInterval(idle);
    if (ended) return;
    ended = true;
    const cpu = process.cpuUsage(cpu0);
    close();
    process.send({ type: "result", received, us: (last - first) * 1000, cpuUs: cpu.user + cpu.system });
  });
  process.send({ type: "hello" });
}

// ---- parent: the sender
function ask(c, msg, type) {
  return new Promise((resolve) => {
    const on = (m) => m.type === type && (c.off("message", on), resolve(m));
    c.on("message", on);
    c.send(msg);
  });
}

/** Runs one measurement of `mode`; returns { gbps, lost, txCpu, rxCpu } (CPU in µs a datagram). */
async function measure(c, mode) {
  const total = COUNT;
  let sent = 0, acked = 0, lastProgress = performance.now();
  let sender, pump, close, onAck;
  const doneSending = new Promise((r) => (onAck = r));
  const ackTo = (n) => {
    if (n > acked) (acked = n), (lastProgress = performance.now());
    if (acked >= total) onAck();
  };
  if (mode === "dgram") {
    const s = dgram.createSocket("udp4");
    s.bind(0, TX_ADDR);
    await once(s, "listening");
    sender = s.address().port;
    const payload = Buffer.alloc(SIZE, 0xab);
    let to;
    pump = () => {
      while (sent < total && sent - acked < WINDOW) {
        s.send(payload, to, RX_ADDR);
        sent++;
      }
    };
    s.on("message", (m) => (ackTo(m.readUInt32LE(0)), pump()));
    close = () => s.close();
    const ready = await ask(c, { type: "start", mode, total, senderPort: sender }, "ready");
    to = ready.port;
  } else {
    const { gso } = NATIVE.find((x) => x.name === mode);
    const { d, m, dv } = open(TX_ADDR, { gso });
    sender = d.port;
    m.fill(0xab, DATA, DATA + SIZE);
    d.receive({ area: AREA, slotSize: 64, slots: 64, meta: META, metaCap: 64 }, (count) => {
      for (let i = 0; i < count; i++) ackTo(dv.getUint32(dv.getUint32(META + i * RX_RECORD.stride + RX_RECORD.data, true), true));
      pump();
    });
    const flags = gso ? TX_GSO : 0;
    pump = () => {
      while (sent < total && sent - acked < WINDOW) {
        const n = Math.min(WINDOW - (sent - acked), total - sent);
        const k = d.sendBatch(TABLE, 0, n, flags);
        sent += k;
        if (k < n) return d.onWritable(pump);
      }
    };
    close = () => d.close();
    const ready = await ask(c, { type: "start", mode, total, senderPort: sender }, "ready");
    records(m, WINDOW, RX_ADDR, ready.port, DATA, SIZE);
  }
  const result = new Promise((r) => c.once("message", (msg) => msg.type === "result" && r(msg)));
  const cpu0 = process.cpuUsage();
  const stall = setInterval(() => {
    // lost datagrams hold the count back for good: after 20 ms without progress, reopen the window
    if (sent - acked >= WINDOW && performance.now() - lastProgress > 20) {
      acked = sent - (sent % ACK_EVERY);
      lastProgress = performance.now();
      pump();
    }
  }, 5);
  pump();
  const res = await Promise.race([result, doneSending.then(() => result)]);
  const cpu = process.cpuUsage(cpu0);
  clearInterval(stall);
  close();
  return { gbps: (res.received * SIZE) / res.us / 1000, lost: total - res.received, txCpu: (cpu.user + cpu.system) / sent, rxCpu: res.cpuUs / res.received };
}

async function parent() {
  const probe = buildProbe();
  const c = fork(new URL(import.meta.url).pathname, ["child"], { stdio: "inherit" });
  await once(c, "message");
  const nodeModes = ["dgram", ...NATIVE.map((x) => x.name)];
  const cModes = PROBE_MODES.map((m) => `C ${m}`);
  const all = [...nodeModes, ...cModes];
  const rows = Object.fromEntries(all.map((m) => [m, { gbps: [], txCpu: [], rxCpu: [], lost: 0 }]));
  try {
    await measure(c, "gso → gro"); // warm-up: JIT, first socket buffers
    for (let r = 0; r < ROUNDS; r++) {
      const order = all.map((_, i) => all[(i + r) % all.length]);
      for (const mode of order) {
        let x;
        if (mode.startsWith("C ")) {
          const p = runProbe(probe, mode.slice(2), { count: COUNT, src: "127.33.2.3", dst: "127.33.2.4" });
          x = { gbps: p.gbps, lost: p.lost, txCpu: p.sender_us_per_dgram, rxCpu: NaN };
        } else {
          x = await measure(c, mode);
        }
        rows[mode].gbps.push(x.gbps);
        rows[mode].txCpu.push(x.txCpu);
        rows[mode].rxCpu.push(x.rxCpu);
        rows[mode].lost += x.lost;
      }
    }
  } finally {
    c.send({ type: "exit" });
    probe.dispose();
  }
  const ratio = (a, b) => rows[a].gbps.map((g, i) => g / rows[b].gbps[i]);
  console.log(`native datapath alone, 2 processes, UDP loopback, ${SIZE} B datagrams, window ${WINDOW}, ${ROUNDS} interleaved rounds of ${COUNT}`);
  console.log("  min / median / max over rounds; CPU: µs a datagram (median), sender / receiver");
  console.log(`  ${"candidate".padEnd(14)} ${"GB/s".padEnd(20)} ${"vs dgram".padEnd(20)} ${"vs C gso+gro".padEnd(20)} CPU tx / rx   lost`);
  for (const m of all) {
    const g = spread(rows[m].gbps);
    const vd = spread(ratio(m, "dgram"));
    const vc = spread(ratio(m, "C gso+gro"));
    const tx = spread(rows[m].txCpu).median, rx = spread(rows[m].rxCpu.filter((v) => !Number.isNaN(v)));
    const cpu = `${tx.toFixed(2)} / ${Number.isFinite(rx.median) ? rx.median.toFixed(2) : "-"}`;
    console.log(`  ${m.padEnd(14)} ${fmtSpread(g).padEnd(20)} ${fmtSpread(vd).padEnd(20)} ${fmtSpread(vc).padEnd(20)} ${cpu.padEnd(13)} ${rows[m].lost}`);
  }
}

if (process.argv[2] === "child") await child();
else await parent();
