// Node entry ("softroce" under the node condition): the public API of host/index.ts, the devices
// Node can open (UDP, or a gateway's WebSocket tunnel) and the TCP exchange that connects two QPs.
export * from "../index.js";
export { coreModule } from "./wasm-source.js";
export {
  connectQpOverTcp, localEndpoint, jsonReplacer, remoteMr, remoteAddr, udpLinkOf, udpPortOf, ExchangeError, EXCHANGE_TCP_PORT,
  type TcpExchangeOptions, type TcpExchangeResult, type RemoteMr,
} from "./exchange.js";

import { openDeviceWith, type Device, type OpenDeviceOptions } from "../core/verbs/index.js";
import { realClock } from "../core/link/real-clock.js";
import { coreModule as nodeCoreModule } from "./wasm-source.js";
import { explainSendError, UdpLink, type UdpSendError } from "./udp.js";
import { deviceLinks } from "./exchange.js";
import { isIPv4 } from "node:net";
import { interfaceMtu, roceMtuFor } from "./netif.js";
import { parseGid } from "../core/verbs/index.js";

export interface NodeDeviceOptions extends OpenDeviceOptions {
  /** local IPv4 or IPv6 address to bind (no address: a device on no network); the active MTU
   * then defaults to what its interface allows (activeMtuFor) */
  address?: string;
  /** UDP port (default 4791; 0 picks a free one, see udpPortOf) */
  port?: number;
  /** bytes in the socket's send queue past which the device holds its datagrams (default 4 MiB) */
  highWaterMark?: number;
  /**
   * A datagram the kernel refused (EMSGSIZE for a path MTU above the interface's). Default: one
   * process warning per error code per device, so a run that silently retries is explained.
   */
  onSendError?: (e: UdpSendError) => void;
}

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

function bindError(e: unknown, address: string, port: number): UdpBindError {
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

/**
 * ibv_open_device. With an address the device is bound to UDP there and its
 * GID 0 is that address (IPv4-mapped for IPv4); without, it is on no network.
 * A bind that fails throws UdpBindError (code EADDRINUSE, EADDRNOTAVAIL, …).
 */
export async function openDevice(options: NodeDeviceOptions = {}): Promise<Device> {
  const mod = await nodeCoreModule();
  if (options.address === undefined) return openDeviceWith(mod, options);
  const warned = new Set<string>();
  const onSendError =
    options.onSendError ??
    ((e: UdpSendError) => {
      if (warned.has(e.code)) return;
      warned.add(e.code);
      process.emitWarning(explainSendError(e), { code: `SOFTROCE_SEND_${e.code}` });
    });
  const port = options.port ?? 4791;
  let link: UdpLink;
  try {
    link = await UdpLink.open({ address: options.address, port, highWaterMark: options.highWaterMark, onSendError });
  } catch (e) {
    if (e instanceof TypeError || e instanceof RangeError) throw e;
    throw bindError(e, options.address, port);
  }
  try {
    const gid = options.address.includes(":") ? options.address : `::ffff:${options.address}`;
    const device = await openDeviceWith(mod, { gids: [gid], nodeGuid: nodeGuidFor(options.address, link.localPort), activeMtu: activeMtuFor(options.address), ...options, port: link.localPort });
    link.port = device.attach(link, realClock);
    deviceLinks.set(device, link);
    device.addEventListener("close", () => void link.close());
    return device;
  } catch (e) {
    await link.close();
    throw e;
  }
}

import WebSocket from "ws";
import { openTunnelDeviceWith, type TunnelDevice } from "../core/tunnel/device.js";
import type { TunnelLinkOptions } from "../core/tunnel/link.js";

export interface NodeTunnelDeviceOptions extends Omit<OpenDeviceOptions, "gids" | "port" | "qpnBase">, TunnelLinkOptions {
  /** the gateway's token, sent as `Authorization: Bearer TOKEN` (a `?token=` in the URL works too) */
  token?: string;
  /** extra HTTP headers for the upgrade (e.g. an Origin, when the gateway should see one) */
  headers?: Record<string, string>;
}

/**
 * A device reached through the softroce gateway at `url` (ws:// or wss://, docs/TUNNEL.md), for Node:
 * the `ws` client in place of the browser's WebSocket (no compression, as the gateway wants).
 */
export async function openTunnelDevice(url: string, options: NodeTunnelDeviceOptions = {}): Promise<TunnelDevice> {
  // The module first: the HELLO must find TunnelLink's listener when it arrives.
  const mod = await nodeCoreModule();
  const { token, headers, ...rest } = options;
  const ws = new WebSocket(url, {
    perMessageDeflate: false,
    headers: { ...headers, ...(token === undefined ? {} : { authorization: `Bearer ${token}` }) },
  });
  return openTunnelDeviceWith(mod, ws, rest);
}
