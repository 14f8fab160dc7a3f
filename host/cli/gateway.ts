// softroce gateway: runs the WebSocket-to-UDP gateway (docs/TUNNEL.md) until SIGINT/SIGTERM.
// One startup line on stdout; one JSON line per refusal and client event on stderr.
import { Gateway, type GatewayOptions } from "../gateway/index.js";
import { parseCidr } from "../gateway/address-policy.js";
import { type FlagSpec, formatFlags, parseArgs, UsageError } from "./args.js";
import { type Command, type Io, untilSignal } from "./command.js";

const FLAGS: FlagSpec[] = [
  { name: "listen", type: "string", valueName: "addr", default: "127.0.0.1", help: "HTTP/WebSocket listen address" },
  { name: "port", type: "int", min: 0, max: 65535, default: 8791, valueName: "n", help: "HTTP/WebSocket port (0: any free port)" },
  { name: "udp-address", type: "string", valueName: "addr", default: "127.0.0.1", help: "UDP address: every client's GID" },
  { name: "udp-port", type: "int", min: 0, max: 65535, default: 4791, valueName: "n", help: "UDP port (0: any free port)" },
  { name: "token", type: "string", valueName: "secret", help: "required client token (or env SOFTROCE_GATEWAY_TOKEN)" },
  { name: "origin", type: "string", valueName: "origin", help: "allowed Origin (repeatable; none: browsers are refused)" },
  { name: "allow", type: "string", valueName: "dest", help: "allowed UDP peer, address or CIDR (repeatable; default 127.0.0.1)" },
  { name: "dst-port", type: "string", valueName: "n", help: "allowed destination UDP port (repeatable; default 4791)" },
  { name: "max-clients", type: "int", min: 1, max: 16383, default: 64, valueName: "n", help: "clients at most" },
  { name: "max-per-address", type: "int", min: 1, max: 16383, default: 8, valueName: "n", help: "clients per remote address at most" },
  { name: "qpn-count", type: "int", min: 1, max: 65536, default: 1024, valueName: "n", help: "QPNs per client" },
  { name: "rate-pps", type: "int", min: 1, max: 100_000_000, default: 20000, valueName: "n", help: "packets/s per client" },
  { name: "rate-bps", type: "int", min: 1, max: 2_000_000_000, default: 64 << 20, valueName: "n", help: "bytes/s per client" },
  { name: "idle-timeout", type: "int", min: 1, max: 86400, default: 120, valueName: "s", help: "close a client silent this long" },
  { name: "heartbeat", type: "int", min: 1, max: 3600, default: 30, valueName: "s", help: "ping interval" },
  { name: "log-rate", type: "int", min: 0, max: 1_000_000, default: 20, valueName: "n", help: "refusal log lines per second at most (the rest are counted and reported as suppressed)" },
  { name: "busy-poll", type: "int", min: 0, max: 2000, default: 0, valueName: "us", help: "native UDP side: after forwarding a request that is answered at once, poll this long for the answer instead of sleeping (holds a CPU; 0: off)" },
  { name: "relay-poll", type: "int", min: 0, max: 10000, valueName: "us", help: "native relay: after forwarding a request that is answered at once, poll up to this long for the answer, yielding the CPU between polls, while most polls see it (default 300; 0: off; env SOFTROCE_RELAY_POLL_US)" },
  { name: "relay-request-poll", type: "int", min: 0, max: 10000, valueName: "us", help: "native relay: after forwarding an answer to a client, poll up to this long for the client's next request, yielding the CPU between polls, while most polls see it (default 0: off; env SOFTROCE_RELAY_REQUEST_POLL_US)" },
  { name: "relay-join-acks", type: "string", choices: ["on", "off"], valueName: "on|off", help: "native relay: while the answer poll waits, a peer's bare ACKs wait for its answer and reach the client in one frame with it (default on; env SOFTROCE_RELAY_JOIN_ACKS=0|1)" },
  { name: "relay", type: "string", choices: ["native", "js"], valueName: "native|js", help: "who forwards established sessions' packets: the addon's relay thread (native; the default when the addon is built) or the event loop (js)" },
  { name: "quiet", short: "q", type: "boolean", help: "no log lines" },
  { name: "help", short: "h", type: "boolean", help: "show this help" },
];

const REPEATABLE = ["origin", "allow", "dst-port"] as const;

const HELP = `usage: softroce gateway [--listen <addr>] [--port <n>] [--udp-address <addr>] [--udp-port <n>]
                       [--token <secret>] [--origin <origin>]... [--allow <dest>]... [--dst-port <n>]...

Bridges browser devices (WebSocket, docs/TUNNEL.md) to RoCEv2 over UDP. Clients authenticate in
the upgrade, send only RoCEv2 payloads, only to allowed destinations; each owns a QPN range.
Loopback, private, link-local and multicast peers must be named explicitly in --allow.

${formatFlags(FLAGS)}
`;

/** Pulls every occurrence of the repeatable flags out of argv (the shared parser takes each flag once). */
function takeRepeated(argv: readonly string[]): { rest: string[]; lists: Record<(typeof REPEATABLE)[number], string[]> } {
  const lists = { origin: [] as string[], allow: [] as string[], "dst-port": [] as string[] };
  const rest: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const name = REPEATABLE.find((n) => a === `--${n}` || a.startsWith(`--${n}=`));
    if (!name) {
      rest.push(a);
      if (a === "--") { rest.push(...argv.slice(i + 1)); break; }
      continue;
    }
    let v: string | undefined;
    if (a.includes("=")) v = a.slice(a.indexOf("=") + 1);
    else v = argv[++i];
    if (v === undefined || v === "") throw new UsageError(`--${name} needs a value`);
    lists[name].push(...v.split(",").filter((x) => x !== ""));
  }
  return { rest, lists };
}

/** The gateway's options from the command line (`quiet`: no log lines), or undefined for --help. */
export function gatewayOptionsFromArgs(
  argv: readonly string[],
  env: Record<string, string | undefined> = {},
): (GatewayOptions & { quiet: boolean }) | undefined {
  const { rest, lists } = takeRepeated(argv);
  const { flags } = parseArgs(rest, FLAGS);
  if (flags.help) return undefined;
  const allow = lists.allow.length ? lists.allow : ["127.0.0.1"];
  for (const a of allow) {
    try {
      parseCidr(a);
    } catch (e) {
      throw new UsageError(`--allow: ${(e as Error).message}`);
    }
  }
  const dstPorts = (lists["dst-port"].length ? lists["dst-port"] : ["4791"]).map((p) => {
    if (!/^\d{1,5}$/.test(p) || Number(p) < 1 || Number(p) > 65535) throw new UsageError(`--dst-port: bad UDP port ${JSON.stringify(p)}`);
    return Number(p);
  });
  const token = (flags.token as string | undefined) ?? env.SOFTROCE_GATEWAY_TOKEN;
  if (token === "") throw new UsageError("--token: empty token");
  return {
    listen: flags.listen as string, port: flags.port as number, udpAddress: flags["udp-address"] as string,
    udpPort: flags["udp-port"] as number, token, origins: lists.origin, allow, dstPorts,
    maxClients: flags["max-clients"] as number, maxClientsPerAddress: flags["max-per-address"] as number,
    qpnCount: flags["qpn-count"] as number, packetsPerSecond: flags["rate-pps"] as number,
    bytesPerSecond: flags["rate-bps"] as number, idleTimeoutMs: (flags["idle-timeout"] as number) * 1000,
    heartbeatMs: (flags.heartbeat as number) * 1000, logRate: flags["log-rate"] as number, quiet: flags.quiet === true,
    udpBusyPollUs: flags["busy-poll"] as number, relay: flags.relay as "native" | "js" | undefined,
    ...(flags["relay-poll"] === undefined ? {} : { relayBusyPollUs: flags["relay-poll"] as number }),
    ...(flags["relay-request-poll"] === undefined ? {} : { relayRequestPollUs: flags["relay-request-poll"] as number }),
    ...(flags["relay-join-acks"] === undefined ? {} : { relayJoinAcks: flags["relay-join-acks"] === "on" }),
  };
}

/** Starts a gateway from argv and runs it until `stop` resolves. */
export async function runGateway(argv: readonly string[], io: Io, stop: Promise<unknown>, env: Record<string, string | undefined> = {}): Promise<number> {
  const o = gatewayOptionsFromArgs(argv, env);
  if (!o) {
    io.out(HELP);
    return 0;
  }
  if (!o.quiet) o.log = (r) => io.err(`${JSON.stringify({ time: new Date().toISOString(), ...r })}\n`);
  let gw: Gateway;
  try {
    gw = await Gateway.start(o);
  } catch (e) {
    io.err(`softroce gateway: ${(e as Error).message}\n`);
    return 1;
  }
  io.out(
    `softroce gateway: ws://${o.listen!.includes(":") ? `[${o.listen}]` : o.listen}:${gw.port}/tunnel -> udp ${o.udpAddress}:${gw.udpPort} ` +
      `(${gw.udpPath === "native" ? "native datapath: sendmmsg/recvmmsg" : "node:dgram"}); ` +
      `allow ${o.allow!.join(",")} ports ${o.dstPorts!.join(",")}; token ${o.token ? "required" : "NOT required"}; ` +
      (o.origins!.length
        ? `browser Origins allowed: ${o.origins!.join(", ")} (others refused; add one with --origin <origin>)`
        : "browser Origins: none allowed, every browser page is refused (allow one with --origin <origin>, e.g. --origin http://localhost:8080; clients without an Origin header, such as Node, are not affected)") +
      `; packets ${gw.relayPath === "native" ? "through the native relay thread (--relay native)" : "through the event loop (--relay js)"}` +
      `${gw.limitations.length ? `; limitations: ${gw.limitations.join("; ")}` : ""}\n`,
  );
  await stop;
  await gw.close();
  io.out(`softroce gateway: stopped (${JSON.stringify(gw.counters)})\n`);
  return 0;
}

export const gatewayCommand: Command = {
  name: "gateway",
  summary: "bridge browser devices (WebSocket tunnel) to RoCEv2 over UDP",
  run(argv, io) {
    return runGateway(argv, io, untilSignal(), process.env);
  },
};
