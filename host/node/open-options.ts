// What the Node entry's openDevice derives from the address it binds, and how a failed bind is
// reported: the node GUID (rxe: from the netdev's MAC), the active MTU (rxe: from the netdev's
// MTU) and UdpBindError (the errno name, the address and port, and the option to change).
import { isIPv4 } from "node:net";
import { parseGid } from "../core/verbs/index.js";
import { interfaceMtu, roceMtuFor } from "./netif.js";

/**
 * The device's UDP socket could not be bound. `code` is the errno name (EADDRINUSE: another
 * device or Linux rxe has that address and port; EADDRNOTAVAIL: the address is not this host's);
 * `address` and `port` say what was asked for.
 */
export class UdpBindError extends Error {
  override name = "UdpBindError";
  constructor(
    readonly code: string,
    readonly address: string,
    readonly port: number,
    message: string,
  ) {
    super(message);
  }
}

/** A bind failure as a UdpBindError naming the address, the port and the option to change. */
export function bindError(e: unknown, address: string, port: number): UdpBindError {
  const err = e as NodeJS.ErrnoException;
  const text = String(err?.message ?? e);
  const code = err?.code ?? /\b(E[A-Z]+)\b/.exec(text)?.[1] ?? (/already in use/i.test(text) ? "EADDRINUSE" : /not available|cannot assign/i.test(text) ? "EADDRNOTAVAIL" : "EBIND");
  const where = address.includes(":") ? `[${address}]:${port}` : `${address}:${port}`;
  const hint =
    code === "EADDRINUSE"
      ? "already in use, by another device or Linux rxe: choose another address or UDP port (openDevice's `port`, the CLI's --udp-port), or 0 for any free port"
      : code === "EADDRNOTAVAIL"
        ? "the address is not one of this host's: choose a local address (openDevice's `address`, the CLI's --address)"
        : text;
  return new UdpBindError(code, address, port, `cannot bind UDP ${where}: ${code} (${hint})`);
}

/**
 * The node GUID of a device bound to `address`: as rxe derives it from the interface's MAC
 * (EUI-48 to EUI-64, ff:fe in the middle, the universal/local bit flipped), from a locally
 * administered MAC made of the address (02:00 and the IPv4 address; an IPv6 address's interface
 * id is used as is). A UDP port other than 4791 is folded into the top bytes, so two devices on
 * one address differ. Stable across runs, unlike the random GUID of a device on no network.
 */
export function nodeGuidFor(address: string, udpPort = 4791): bigint {
  let guid = 0n;
  if (isIPv4(address)) {
    const b = address.split(".").map(Number);
    const mac = [0x02, 0x00, b[0], b[1], b[2], b[3]];
    const eui = [mac[0] ^ 0x02, mac[1], mac[2], 0xff, 0xfe, mac[3], mac[4], mac[5]];
    for (const x of eui) guid = (guid << 8n) | BigInt(x);
  } else {
    const g = parseGid(address);
    for (let i = 8; i < 16; i++) guid = (guid << 8n) | BigInt(g[i]);
  }
  if (udpPort !== 4791) guid ^= BigInt(udpPort & 0xffff) << 48n;
  return guid;
}

/**
 * The active MTU (the ibv_mtu enum) of a device bound to `address`, as rxe derives it from its
 * netdev: the interface MTU minus 80, rounded down to 256..4096 (1500 -> 1024, loopback -> 4096);
 * 1024 when the interface MTU cannot be read. devinfo and perf both use this.
 */
export function activeMtuFor(address: string): number {
  const ifMtu = interfaceMtu(address);
  return Math.log2(ifMtu === undefined ? 1024 : roceMtuFor(ifMtu)) - 7;
}
