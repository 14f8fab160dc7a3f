// softroce decode: RoCEv2 packets from hex or a capture file -> text trees or JSON lines.
import { readFile } from "node:fs/promises";
import { decodePacket, failedPacket, formatTree, toJsonLine, type DecodedPacket, HexError, parseHex, WireCodec } from "../core/wire/index.js";
import { extractIp, notRoce } from "../core/net/index.js";
import { PcapError, readCapture } from "../core/capture/index.js";
import { coreModule } from "../node/wasm-source.js";
import { type FlagSpec, formatFlags, parseArgs, UsageError } from "./args.js";
import { type Command, InputError, type Io } from "./command.js";

const FLAGS: FlagSpec[] = [
  { name: "hex", short: "x", type: "string", valueName: "hex", help: "one packet as hex, starting at the IP header (see --link); - reads stdin" },
  { name: "pcap", short: "r", type: "string", valueName: "file", help: "a pcap (µs or ns) or pcapng capture; linktypes 1, 101, 228, 229; - reads stdin" },
  { name: "link", type: "string", choices: ["ip", "eth"], default: "ip", help: "what --hex starts with" },
  { name: "json", short: "j", type: "boolean", help: "one JSON object per packet and line instead of text trees" },
  { name: "oneline", short: "1", type: "boolean", help: "one summary line per packet (tshark's default view: number, time, addresses, length, opcode, QP, PSN, ICRC)" },
  { name: "help", short: "h", type: "boolean", help: "show this help" },
];

const HELP = `usage: softroce decode (--hex <hex> [--link eth] | --pcap <file>) [--json | --oneline]

Decodes RoCEv2 packets (UDP port 4791) with the device's own wire parser and checks each ICRC.
In a capture, frames that are not RoCEv2 (TCP, other UDP, ARP, ...) are skipped and counted.
Exit status: 0 every RoCE packet parsed with a good ICRC, 1 some were malformed or had a bad
ICRC, 2 usage error or unreadable input.

${formatFlags(FLAGS)}
`;

export const decodeCommand: Command = {
  name: "decode",
  summary: "decode RoCEv2 packets from hex or a pcap/pcapng file",
  async run(argv: string[], io: Io): Promise<number> {
    const { flags } = parseArgs(argv, FLAGS);
    if (flags.help) {
      io.out(HELP);
      return 0;
    }
    const hex = flags.hex as string | undefined;
    const file = flags.pcap as string | undefined;
    if (hex === undefined && file === undefined) throw new UsageError("no input: give --hex or --pcap");
    if (hex !== undefined && file !== undefined) throw new UsageError("give --hex or --pcap, not both");
    if (file !== undefined && argv.some((a) => a === "--link" || a.startsWith("--link="))) {
      throw new UsageError("--link applies to --hex only (a capture names its own linktype)");
    }
    if (flags.json && flags.oneline) throw new UsageError("give --json or --oneline, not both");
    // Text trees are separated by a blank line, as tshark -V does; --oneline is tshark's list view.
    let first = true;
    let t0: number | undefined;
    const emit = (d: DecodedPacket) => {
      if (flags.oneline) {
        const t = Number(d.record["frame.time_epoch"] ?? 0);
        t0 ??= t;
        io.out(summaryLine(d, t - t0) + "\n");
      } else {
        io.out(flags.json ? toJsonLine(d) + "\n" : (first ? "" : "\n") + formatTree(d));
      }
      first = false;
    };

    if (hex !== undefined) {
      let bytes: Uint8Array;
      const text = hex === "-" ? await readStdin() : hex;
      try {
        bytes = parseHex(text);
      } catch (e) {
        if (e instanceof HexError) throw new InputError(e.message);
        throw e;
      }
      const codec = await loadCodec();
      let d: DecodedPacket;
      if (flags.link === "eth") {
        const ip = extractIp(bytes, 1);
        const meta = { frame: 1, frameLen: bytes.length };
        d = "ip" in ip ? decodePacket(codec, ip.ip, meta) : failedPacket(meta, `not an IP packet: ${ip.reason}`);
      } else {
        d = decodePacket(codec, bytes, { frame: 1 });
      }
      emit(d);
      return d.ok ? 0 : 1;
    }

    let bytes: Uint8Array;
    try {
      bytes = file === "-" ? await readStdinBytes() : await readFile(file!);
    } catch (e) {
      throw new InputError(`cannot read ${file}: ${fsReason(e)}`);
    }
    const codec = await loadCodec();
    let roce = 0;
    let skipped = 0;
    let bad = 0;
    try {
      for (const rec of readCapture(bytes)) {
        const why = rec.data === undefined ? rec.reason : notRoce(rec.data);
        if (why !== undefined || rec.data === undefined) {
          skipped++;
          continue;
        }
        roce++;
        const d = decodePacket(codec, rec.data, { frame: rec.index, tsNanos: rec.tsNanos, frameLen: rec.origLen });
        if (!d.ok) bad++;
        if (d.error !== undefined && rec.frame.length < rec.origLen) {
          d.error += ` (the capture kept ${rec.frame.length} of ${rec.origLen} bytes)`;
          d.record.error = d.error;
        }
        emit(d);
      }
    } catch (e) {
      if (e instanceof PcapError) throw new InputError(`${file === "-" ? "stdin" : file}: ${e.message}`);
      throw e;
    }
    io.err(`${roce} RoCE packets, ${skipped} skipped (not RoCEv2), ${bad} bad (malformed or bad ICRC)\n`);
    return bad === 0 ? 0 : 1;
  },
};

/** tshark's one-line view: "  1 0.000000 127.0.0.1 → 127.0.0.2 RRoCE 1082 RC Send Only QP=0x000011 PSN=123 ICRC ok". */
export function summaryLine(d: DecodedPacket, seconds: number): string {
  const r = d.record;
  const no = String(r["frame.number"] ?? "?").padStart(3);
  const time = (Number.isFinite(seconds) ? seconds : 0).toFixed(6);
  if (d.error !== undefined) return `${no} ${time} error: ${d.error}`;
  const src = r["ip.src"] ?? r["ipv6.src"];
  const dst = r["ip.dst"] ?? r["ipv6.dst"];
  const qp = Number(r["infiniband.bth.destqp"] ?? 0).toString(16).padStart(6, "0");
  const aeth = r.aeth_meaning !== undefined ? ` ${String(r.aeth_meaning)}` : "";
  return `${no} ${time} ${src} → ${dst} RRoCE ${r["frame.len"] ?? ""} ${r.opcode_name} QP=0x${qp} PSN=${r["infiniband.bth.psn"]}${aeth} ICRC ${r.icrc_ok ? "ok" : "bad"}`;
}

async function readStdinBytes(): Promise<Uint8Array> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

async function readStdin(): Promise<string> {
  return Buffer.from(await readStdinBytes()).toString("utf8");
}

async function loadCodec(): Promise<WireCodec> {
  let mod: WebAssembly.Module;
  try {
    mod = await coreModule();
  } catch (e) {
    throw new InputError(`cannot load the device core build/softroce.wasm (run 'npm run build'): ${fsReason(e)}`);
  }
  return WireCodec.create(mod);
}

/** "no such file" rather than a Node error dump. */
export function fsReason(e: unknown): string {
  const code = (e as { code?: string })?.code;
  switch (code) {
    case "ENOENT":
      return "no such file";
    case "EACCES":
      return "permission denied";
    case "EISDIR":
      return "is a directory";
    default:
      return e instanceof Error ? e.message.split("\n")[0] : String(e);
  }
}
