// The UDP link of a device bound to an address: the native batched datapath when the addon has
// it (and it was not declined), node:dgram otherwise, with the reason. Used by openDevice on this
// thread and by the device worker (host/node/worker).
import { UdpLink, type UdpSendError } from "./udp.js";
import { NativeUdpLink, type BusyPoll } from "./native-link.js";
import type { UdpSourcePorts } from "./sport-pool.js";
import { envChoice } from "./env.js";

export interface UdpLinkChoice {
  address: string;
  port?: number;
  highWaterMark?: number;
  txRingSize?: number;
  datapath?: "native" | "dgram";
  udpSourcePorts?: UdpSourcePorts;
  sourcePortCap?: number;
  /** the native datapath's busy poll (NativeUdpLinkOptions.busyPollUs; undefined: its default and env) */
  busyPollUs?: BusyPoll;
}

export async function openUdpLink(options: UdpLinkChoice, onSendError: (e: UdpSendError) => void): Promise<{ link: UdpLink | NativeUdpLink; reason?: string }> {
  // env SOFTROCE_UDP_SOURCE_PORTS ("per-qp" | "device") sets the default, as SOFTROCE_DATAPATH does the path's
  const sp = options.udpSourcePorts ?? envChoice("SOFTROCE_UDP_SOURCE_PORTS", ["per-qp", "device"] as const);
  if (sp !== undefined && sp !== "per-qp" && sp !== "device") throw new TypeError(`bad udpSourcePorts ${String(sp)}: "per-qp" or "device"`);
  const cap = options.sourcePortCap;
  if (cap !== undefined && (!Number.isInteger(cap) || cap < 1 || cap > 0x4000)) throw new RangeError(`bad sourcePortCap ${cap} (1 .. 16384)`);
  const want = options.datapath ?? envChoice("SOFTROCE_DATAPATH", ["native", "dgram"] as const) ?? "native";
  let reason = "node:dgram asked for";
  if (want === "native") {
    const r = NativeUdpLink.open({ address: options.address, port: options.port ?? 4791, txRingSize: options.txRingSize, onSendError, udpSourcePorts: sp, sourcePortCap: options.sourcePortCap, busyPollUs: options.busyPollUs });
    if (r.link) return { link: r.link };
    reason = r.reason;
  }
  const link = await UdpLink.open({ address: options.address, port: options.port ?? 4791, highWaterMark: options.highWaterMark, onSendError, udpSourcePorts: sp, sourcePortCap: options.sourcePortCap });
  return { link, reason };
}
