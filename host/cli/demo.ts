// softroce demo (what `npm start` runs): two live devices on 127.0.0.1 and 127.0.0.2 (UDP port
// 4791 each, free ports if 4791 is taken) connected by RC, doing SEND, RDMA WRITE, RDMA READ,
// CMP_SWAP and FETCH_ADD. Prints a packet ladder, a summary table, writes the capture (recorded
// at A's port with the IP/UDP headers each ICRC assumed) and decodes it back, checking every ICRC.
// `--generated` writes the older codec-built exchange instead (deterministic bytes, no device).
import { writeFile } from "node:fs/promises";
import { aethMeaning, decodePacket, formatTree, toJsonLine, WireCodec, type PacketSpec } from "../core/wire/index.js";
import { PcapWriter, readCapture, LINKTYPE_ETHERNET, LINKTYPE_IPV4, PcapRecorder, icrcMatches, type CapturedPacket } from "../core/capture/index.js";
import { concat } from "../core/net/index.js";
import { connectQp, Access, QpType, SendFlags, WcStatus, WrOpcode, type Device, type CompletionQueue, type WorkCompletion } from "../core/verbs/index.js";
import { openDevice } from "../node/index.js";
import { coreModule } from "../node/wasm-source.js";
import { type FlagSpec, formatFlags, parseArgs } from "./args.js";
import { type Command, InputError, type Io } from "./command.js";
import { fsReason } from "./decode.js";

const FLAGS: FlagSpec[] = [
  { name: "pcap", short: "w", type: "string", valueName: "file", default: "softroce-demo.pcap", help: "where to write the capture" },
  { name: "link", type: "string", choices: ["ip", "eth"], default: "ip", help: "linktype of the capture: raw IPv4 (228) or Ethernet (1)" },
  { name: "udp-port", type: "int", min: 0, max: 65535, default: 4791, valueName: "n", help: "UDP port of both devices (0: free ports)" },
  { name: "json", short: "j", type: "boolean", help: "after the run, print the decoded capture as JSON lines" },
  { name: "generated", type: "boolean", help: "write a codec-generated exchange instead of running devices (deterministic bytes)" },
  { name: "help", short: "h", type: "boolean", help: "show this help" },
];

const HELP = `usage: softroce demo [--pcap <file>] [--link ip|eth] [--udp-port <n>] [--json] [--generated]

Opens two softroce devices, A on 127.0.0.1 and B on 127.0.0.2 (UDP port 4791 each; free ports
if 4791 is taken), connects an RC QP pair and runs SEND, RDMA WRITE, RDMA READ, CMP_SWAP and
FETCH_ADD from A to B. Prints one line per packet (time, direction, opcode, PSN, sizes, AETH), a
table of the operations and whether their bytes arrived intact, writes every packet to a pcap
(open it in Wireshark) and decodes the file back, recomputing every ICRC.
Exit status: 0 all operations verified and every ICRC ok, 1 otherwise, 2 usage error.

${formatFlags(FLAGS)}
`;

const A = "127.0.0.1";
const B = "127.0.0.2";
const OP_TIMEOUT_MS = 5000;

class DemoError extends Error {
  override name = "DemoError";
}

interface Side {
  dev: Device;
  cq: CompletionQueue;
  port: number;
}

function withTimeout<T>(p: Promise<T>, what: string): Promise<T> {
  let t: ReturnType<typeof setTimeout>;
  return Promise.race([
    p,
    new Promise<never>((_, reject) => {
      t = setTimeout(() => reject(new DemoError(`${what}: no completion within ${OP_TIMEOUT_MS / 1000} s`)), OP_TIMEOUT_MS);
    }),
  ]).finally(() => clearTimeout(t));
}

/** Opens A and B on `port`; if that port is taken on either address, both on free ports (with a note). */
async function openPair(port: number, io: Io): Promise<[Device, Device]> {
  const open2 = async (p: number): Promise<[Device, Device]> => {
    const a = await openDevice({ address: A, port: p });
    try {
      return [a, await openDevice({ address: B, port: p })];
    } catch (e) {
      a.close();
      throw e;
    }
  };
  try {
    return await open2(port);
  } catch (e) {
    if (port === 0 || !/in use|EADDRINUSE/i.test((e as Error).message)) {
      throw new DemoError(`cannot open the devices on ${A}/${B} UDP port ${port}: ${(e as Error).message}`);
    }
    io.err(`softroce demo: note: UDP port ${port} is taken on ${A} or ${B} (is Linux rxe loaded?); using free ports. ` +
      "Wireshark decodes RoCEv2 on 4791 only: use Decode As... > UDP port > InfiniBand to read this capture.\n");
    return await open2(0);
  }
}

interface Row {
  op: string;
  bytes: number;
  status: string;
  verified: boolean;
  detail?: string;
}

async function liveDemo(flags: Record<string, unknown>, io: Io): Promise<number> {
  const codec = await WireCodec.create(await coreModule());
  const [da, db] = await openPair(flags["udp-port"] as number, io);
  // --json: stdout carries the JSON lines alone; the human-readable run goes to stderr
  const say = flags.json ? (t: string) => io.err(t) : (t: string) => io.out(t);
  const rec = new PcapRecorder();
  const t0 = 0;
  const rows: Row[] = [];
  try {
    const access = Access.LOCAL_WRITE | Access.REMOTE_WRITE | Access.REMOTE_READ | Access.REMOTE_ATOMIC;
    const mk = (dev: Device) => {
      const pd = dev.allocPd();
      const mr = pd.regMr(16384, access);
      const cq = dev.createCq(16);
      const qp = pd.createQp({ qpType: QpType.RC, sendCq: cq, recvCq: cq, cap: { maxSendWr: 8, maxRecvWr: 8, maxSendSge: 1, maxRecvSge: 1 } });
      return { dev, mr, cq, qp, port: (dev.limits as { port: number }).port };
    };
    const a = mk(da);
    const b = mk(db);
    say(`A ${A}:${a.port} QPN 0x${a.qp.qpNum.toString(16)}  <->  B ${B}:${b.port} QPN 0x${b.qp.qpNum.toString(16)}   (RC, path MTU 1024)\n\n`);
    // ACK timeout 18 (1.07 s) rather than the default 14 (67 ms): the ladder is meant to show the clean
    // exchange, and a machine stalled for 70 ms (a loaded CI host) would otherwise add a retransmission
    const opts = { qpAccessFlags: access, timeout: 18 };
    connectQp(a.qp, { qpNum: b.qp.qpNum, psn: 1000, gid: db.queryGid(0), port: b.port }, { sqPsn: 100, ...opts });
    connectQp(b.qp, { qpNum: a.qp.qpNum, psn: 100, gid: da.queryGid(0), port: a.port }, { sqPsn: 1000, ...opts });
    rec.attach(da.port!);

    const fill = (buf: Uint8Array, seed: number) => {
      for (let i = 0; i < buf.length; i++) buf[i] = (seed + i * 31) & 0xff;
    };
    const same = (x: Uint8Array, y: Uint8Array) => x.length === y.length && x.every((v, i) => v === y[i]);
    const complete = async (what: string, cq: CompletionQueue): Promise<WorkCompletion> => withTimeout(cq.next(), what);
    const statusName = (s: number) => Object.entries(WcStatus).find(([, v]) => v === s)?.[0] ?? `status ${s}`;
    const dv = (m: { bytes: Uint8Array }) => new DataView(m.bytes.buffer, m.bytes.byteOffset, m.bytes.byteLength);

    // SEND: 64 bytes into B's posted receive
    const text = new TextEncoder().encode("hello from softroce: an RC SEND from 127.0.0.1 to 127.0.0.2 ....");
    a.mr.bytes.set(text, 0);
    b.qp.postRecv({ wrId: 1n, sgList: [b.mr.sge(0, 256)] });
    a.qp.postSend({ wrId: 10n, opcode: WrOpcode.SEND, sendFlags: SendFlags.SIGNALED, sgList: [a.mr.sge(0, text.length)] });
    let wc = await complete("SEND", a.cq);
    const rwc = await complete("SEND (receive)", b.cq);
    rows.push({ op: "SEND", bytes: text.length, status: statusName(wc.status),
      verified: wc.status === 0 && rwc.status === 0 && rwc.byteLen === text.length && same(b.mr.bytes.subarray(0, text.length), text) });

    // RDMA WRITE: 1500 bytes (two packets) into B's MR at 4096
    fill(a.mr.bytes.subarray(1024, 2524), 7);
    a.qp.postSend({ wrId: 11n, opcode: WrOpcode.RDMA_WRITE, sendFlags: SendFlags.SIGNALED, sgList: [a.mr.sge(1024, 1500)],
      rdma: { remoteAddr: b.mr.addr + 4096n, rkey: b.mr.rkey } });
    wc = await complete("RDMA WRITE", a.cq);
    rows.push({ op: "RDMA WRITE", bytes: 1500, status: statusName(wc.status),
      verified: wc.status === 0 && same(b.mr.bytes.subarray(4096, 5596), a.mr.bytes.subarray(1024, 2524)) });

    // RDMA READ: 2000 bytes (two response packets) from B's MR at 8192
    fill(b.mr.bytes.subarray(8192, 10192), 99);
    a.qp.postSend({ wrId: 12n, opcode: WrOpcode.RDMA_READ, sendFlags: SendFlags.SIGNALED, sgList: [a.mr.sge(4096, 2000)],
      rdma: { remoteAddr: b.mr.addr + 8192n, rkey: b.mr.rkey } });
    wc = await complete("RDMA READ", a.cq);
    rows.push({ op: "RDMA READ", bytes: 2000, status: statusName(wc.status),
      verified: wc.status === 0 && same(a.mr.bytes.subarray(4096, 6096), b.mr.bytes.subarray(8192, 10192)) });

    // CMP_SWAP on B's 8 bytes at 12288: compare 0x1111…, swap in 0x2222…
    dv(b.mr).setBigUint64(12288, 0x1111111111111111n, true);
    a.qp.postSend({ wrId: 13n, opcode: WrOpcode.ATOMIC_CMP_AND_SWP, sendFlags: SendFlags.SIGNALED, sgList: [a.mr.sge(8192, 8)],
      atomic: { remoteAddr: b.mr.addr + 12288n, rkey: b.mr.rkey, compareAdd: 0x1111111111111111n, swap: 0x2222222222222222n } });
    wc = await complete("CMP_SWAP", a.cq);
    rows.push({ op: "ATOMIC CMP_SWAP", bytes: 8, status: statusName(wc.status),
      verified: wc.status === 0 && dv(a.mr).getBigUint64(8192, true) === 0x1111111111111111n && dv(b.mr).getBigUint64(12288, true) === 0x2222222222222222n });

    // FETCH_ADD: add 5 to the same 8 bytes
    a.qp.postSend({ wrId: 14n, opcode: WrOpcode.ATOMIC_FETCH_AND_ADD, sendFlags: SendFlags.SIGNALED, sgList: [a.mr.sge(8200, 8)],
      atomic: { remoteAddr: b.mr.addr + 12288n, rkey: b.mr.rkey, compareAdd: 5n } });
    wc = await complete("FETCH_ADD", a.cq);
    rows.push({ op: "ATOMIC FETCH_ADD", bytes: 8, status: statusName(wc.status),
      verified: wc.status === 0 && dv(a.mr).getBigUint64(8200, true) === 0x2222222222222222n && dv(b.mr).getBigUint64(12288, true) === 0x2222222222222227n });

    // let the last ACKs land in the capture
    await new Promise((r) => setTimeout(r, 20));
  } finally {
    da.close();
    db.close();
  }

  const linktype = flags.link === "eth" ? LINKTYPE_ETHERNET : LINKTYPE_IPV4;
  const w = new PcapWriter({ linktype });
  const file = concat([w.header(), ...rec.packets.map((p) => w.record(p.packet, Math.round(p.tsMicros)))]);
  const path = flags.pcap as string;
  try {
    await writeFile(path, file);
  } catch (e) {
    throw new DemoError(`cannot write ${path}: ${fsReason(e)}`);
  }
  say(ladder(codec, rec.packets, t0));
  if (!flags.json) say(LEGEND);
  say("\n" + table(rows) + "\n");

  // Decode the file back: the RoCE decoder on 4791; on other ports the codec's ICRC over the packet.
  let total = 0;
  let good = 0;
  const json: string[] = [];
  for (const r of readCapture(file)) {
    total++;
    const ip = r.data!;
    const d = decodePacket(codec, ip, { frame: r.index, tsNanos: r.tsNanos, frameLen: r.origLen });
    const ok = d.ok || (d.error?.startsWith("NOT_ROCE_PORT") === true && icrcMatches(codec, ip));
    if (ok) good++;
    if (flags.json) json.push(toJsonLine(d));
  }
  if (flags.json) io.out(json.join("\n") + "\n");
  const verified = rows.filter((r) => r.verified).length;
  say(`wrote ${path}: ${total} packets; decoded back: ${good}/${total} ICRC ok\n`);
  if (good !== total) throw new DemoError(`${total - good} of ${total} packets in ${path} failed their ICRC`);
  if (verified !== rows.length) throw new DemoError(`${rows.length - verified} of ${rows.length} operations did not verify`);
  if (!flags.json) io.out(PLAYGROUND_LINE);
  return 0;
}

/** What each column of the ladder and the table means, printed once after the ladder. */
export const LEGEND = `
legend:
  time ms    milliseconds since the first packet
  A ──> B    a request from A (the requester) to B (the responder); A <── B a response
  opcode     the BTH opcode: RC = reliable connected; First/Middle/Last/Only = where the packet
             sits in its message (a message longer than the path MTU takes several packets)
  PSN        packet sequence number (BTH, 24 bits): counts a QP's packets, so the responder sees a
             gap (a lost packet: NAK "PSN sequence error") or a duplicate; a response carries the
             PSN of the request it answers (a READ's responses one PSN each)
  payload    data bytes the packet carries
  UDP        the UDP payload: BTH + extension headers + payload + pad + 4-byte ICRC (the invariant CRC)
  AETH       the ACK extended transport header on responses. Its syndrome says ACK, RNR NAK
             ("receiver not ready": no receive posted, retry later) or NAK (and why: PSN sequence
             error, invalid request, remote access error, remote operational error); "no credit
             limit" is rxe's ACK. MSN = message sequence number: messages the responder completed
  table      status = the work completion's ibv_wc_status; verified = the bytes (or the atomic's
             old value and new value) checked on both sides
`;

/** The demo's last line: where to watch the same exchange, and what goes wrong, packet by packet. */
export const PLAYGROUND_LINE =
  "watch it packet by packet, with losses and the transport's answers: npx softroce playground, then open http://127.0.0.1:8790/\n";

/** One line per packet: time (ms from the first), direction, opcode, PSN, payload and UDP payload sizes, AETH. */
function ladder(codec: WireCodec, packets: CapturedPacket[], t0: number): string {
  if (packets.length) t0 = packets[0].tsMicros;
  const lines = [`${"time ms".padStart(8)}  ${"".padEnd(9)}  ${"opcode".padEnd(32)} ${"PSN".padStart(6)}  ${"payload".padStart(7)}  ${"UDP".padStart(5)}  AETH`];
  for (const p of packets) {
    const ip = p.packet;
    const hdr = ip[0] >> 4 === 4 ? 20 : 40;
    const udp = ip.subarray(hdr);
    const parsed = codec.parseUdpPayload(udp.subarray(8), {
      src: p.dir === "tx" ? A : B, dst: p.dir === "tx" ? B : A, ipId: (ip[4] << 8) | ip[5],
      udpSrcPort: (udp[0] << 8) | udp[1], udpDstPort: (udp[2] << 8) | udp[3],
    });
    const arrow = p.dir === "tx" ? "A ──> B" : "A <── B";
    const ms = ((p.tsMicros - t0) / 1000).toFixed(3).padStart(8);
    if (!parsed.ok) {
      lines.push(`${ms}  ${arrow.padEnd(9)}  (unparsed: ${parsed.error})`);
      continue;
    }
    const r = parsed.repr;
    const name = codec.opcode(r.opcode)?.name ?? `opcode 0x${r.opcode.toString(16)}`;
    const aeth = r.aeth ? `${aethMeaning(r.aeth.syndrome)}, MSN ${r.aeth.msn}` : "";
    lines.push(`${ms}  ${arrow.padEnd(9)}  ${name.padEnd(32)} ${String(r.psn).padStart(6)}  ${String(r.payload.length).padStart(7)}  ${String(udp.length - 8).padStart(5)}  ${aeth}`.trimEnd());
  }
  return lines.join("\n") + "\n";
}

function table(rows: Row[]): string {
  const head = ["operation", "bytes", "status", "verified"];
  const body = rows.map((r) => [r.op, String(r.bytes), r.status, r.verified ? "yes" : "NO"]);
  const w = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i].length)));
  const line = (c: string[]) => c.map((x, i) => (i === 1 ? x.padStart(w[i]) : x.padEnd(w[i]))).join("  ").trimEnd();
  return [line(head), w.map((n) => "-".repeat(n)).join("  "), ...body.map(line)].join("\n") + "\n";
}

// ---------------------------------------------------------------------------------------------
// --generated: the exchange built with the wire codec (no device)

const QP_A = 0x11;
const QP_B = 0x12;
const QP_UD = 0x13;
const ACK_SYNDROME = 0x1f; // ACK, no credit limit (what rxe sends)
/** 2026-01-01T00:00:00Z in µs: a fixed start so every run writes the same file. */
const T0 = 1_767_225_600_000_000;

function text(s: string): Uint8Array {
  return new TextEncoder().encode(s);
}

function pattern(n: number, seed: number): Uint8Array {
  return Uint8Array.from({ length: n }, (_, i) => (seed + i) & 0xff);
}

/** The exchange, in order: what a requester at A and a responder at B would put on the wire. */
export function demoExchange(): PacketSpec[] {
  const req = { src: A, dst: B, destQp: QP_B, udpSrcPort: 0xc011 };
  const rsp = { src: B, dst: A, destQp: QP_A, udpSrcPort: 0xc012 };
  const ack = (psn: number, msn: number) => ({ ...rsp, opcode: 17, psn, aeth: { syndrome: ACK_SYNDROME, msn } });
  return [
    { ...req, opcode: 4, psn: 100, ackReq: 1, se: 1, payload: text("hello from softroce") },
    ack(100, 1),
    { ...req, opcode: 6, psn: 101, reth: { va: 0x7f0000010000n, rkey: 0x1234, dmaLength: 1536 }, payload: pattern(1024, 0) },
    { ...req, opcode: 8, psn: 102, ackReq: 1, payload: pattern(512, 1024) },
    ack(102, 2),
    { ...req, opcode: 12, psn: 103, ackReq: 1, reth: { va: 0x7f0000020000n, rkey: 0x5678, dmaLength: 64 } },
    { ...rsp, opcode: 16, psn: 103, aeth: { syndrome: ACK_SYNDROME, msn: 3 }, payload: pattern(64, 0x40) },
    {
      ...req,
      opcode: 19,
      psn: 104,
      ackReq: 1,
      atomicEth: { va: 0x7f0000030000n, rkey: 0x9abc, swapAdd: 0x2222222222222222n, compare: 0x1111111111111111n },
    },
    { ...rsp, opcode: 18, psn: 104, aeth: { syndrome: ACK_SYNDROME, msn: 4 }, atomicAckEth: { origRemoteData: 0x1111111111111111n } },
    { src: A, dst: B, destQp: QP_UD, udpSrcPort: 0xc013, opcode: 100, psn: 0, deth: { qkey: 0x11111111, srcQp: QP_A + 0x10 }, payload: text("a UD datagram") },
  ];
}

async function generatedDemo(flags: Record<string, unknown>, io: Io): Promise<number> {
  const file = flags.pcap as string;
  const codec = await WireCodec.create(await coreModule());
  const writer = new PcapWriter({ linktype: flags.link === "eth" ? LINKTYPE_ETHERNET : LINKTYPE_IPV4 });
  const specs = demoExchange();
  const chunks = [writer.header(), ...specs.map((s, i) => writer.record(codec.emit(s), T0 + i * 10))];
  try {
    await writeFile(file, concat(chunks));
  } catch (e) {
    throw new InputError(`cannot write ${file}: ${fsReason(e)}`);
  }
  io.err(`softroce demo: wrote ${specs.length} generated packets (${A} <-> ${B}) to ${file}\n`);

  // Decode the file we just wrote, as `softroce decode --pcap` would.
  let bad = 0;
  for (const rec of readCapture(concat(chunks))) {
    const d = decodePacket(codec, rec.data!, { frame: rec.index, tsNanos: rec.tsNanos, frameLen: rec.origLen });
    if (!d.ok) bad++;
    io.out(flags.json ? toJsonLine(d) + "\n" : formatTree(d) + "\n");
  }
  io.err(
    `softroce demo: ${specs.length} packets decoded, ${bad} bad. This exchange was generated with the wire codec; ` +
      "it is not traffic from a live device (run 'softroce demo' without --generated for that).\n",
  );
  return bad === 0 ? 0 : 1;
}

export const demoCommand: Command = {
  name: "demo",
  summary: "two live devices on 127.0.0.1/127.0.0.2: SEND, WRITE, READ, atomics; packet ladder, pcap, ICRCs",
  async run(argv: string[], io: Io): Promise<number> {
    const { flags } = parseArgs(argv, FLAGS, 0, { "--port": "the device's UDP port is --udp-port" });
    if (flags.help) {
      io.out(HELP);
      return 0;
    }
    if (flags.generated) return generatedDemo(flags, io);
    try {
      return await liveDemo(flags, io);
    } catch (e) {
      if (e instanceof DemoError) {
        io.err(`softroce demo: ${e.message}\n`);
        return 1;
      }
      throw e;
    }
  },
};
