// softroce demo: a generated RoCEv2 exchange (built with the wire codec, not sent by a live
// device), written to a pcap and decoded back. The full device demo comes with the transport.
import { writeFile } from "node:fs/promises";
import { decodePacket, formatTree, toJsonLine } from "../core/decode.js";
import { PcapWriter, concat, readCapture, LINKTYPE_ETHERNET, LINKTYPE_IPV4 } from "../core/pcap.js";
import { WireCodec, type PacketSpec } from "../core/wire.js";
import { coreModule } from "../node/wasm-source.js";
import { type FlagSpec, formatFlags, parseArgs } from "./args.js";
import { type Command, InputError, type Io } from "./command.js";
import { fsReason } from "./decode.js";

const FLAGS: FlagSpec[] = [
  { name: "pcap", short: "w", type: "string", valueName: "file", default: "softroce-demo.pcap", help: "where to write the capture" },
  { name: "link", type: "string", choices: ["ip", "eth"], default: "ip", help: "linktype of the capture: raw IPv4 (228) or Ethernet (1)" },
  { name: "json", short: "j", type: "boolean", help: "print JSON lines instead of text trees" },
  { name: "help", short: "h", type: "boolean", help: "show this help" },
];

const HELP = `usage: softroce demo [--pcap <file>] [--link ip|eth] [--json]

Builds a small RoCEv2 exchange between 127.0.0.1 and 127.0.0.2 with the device's wire codec
(RC SEND + ACK, RDMA WRITE FIRST/LAST + ACK, READ REQUEST + RESPONSE, CMP_SWAP + ATOMIC ACK,
a UD SEND), writes it to a pcap (open it in Wireshark), and decodes the file back.
This is a generated exchange, not traffic from a live device.

${formatFlags(FLAGS)}
`;

const A = "127.0.0.1";
const B = "127.0.0.2";
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

export const demoCommand: Command = {
  name: "demo",
  summary: "write a generated RoCEv2 exchange to a pcap and decode it (no live device yet)",
  async run(argv: string[], io: Io): Promise<number> {
    const { flags } = parseArgs(argv, FLAGS);
    if (flags.help) {
      io.out(HELP);
      return 0;
    }
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
        "it is not traffic from a live device. The full device demo comes with the transport.\n",
    );
    return bad === 0 ? 0 : 1;
  },
};
