// From a captured frame to its IP packet (Ethernet and 802.1Q/802.1ad tags stripped, padding
// trimmed), and whether that packet is RoCEv2 (UDP destination port 4791).

import { ROCE_V2_PORT } from "./datagram.js";

const ETHERTYPES: Record<number, string> = {
  0x0806: "ARP",
  0x8035: "RARP",
  0x88cc: "LLDP",
  0x8915: "RoCE v1",
  0x8863: "PPPoE discovery",
  0x8864: "PPPoE session",
  0x8847: "MPLS",
};

const IP_PROTOCOLS: Record<number, string> = { 1: "ICMP", 2: "IGMP", 6: "TCP", 17: "UDP", 58: "ICMPv6", 132: "SCTP" };

export type Extracted = { ip: Uint8Array } | { reason: string };

/** The IP packet inside a frame of the given linktype (1, 101, 228, 229). */
export function extractIp(frame: Uint8Array, linktype: number): Extracted {
  switch (linktype) {
    case 1:
      return fromEthernet(frame);
    case 101:
      return trimIp(frame, 0);
    case 228:
      return trimIp(frame, 4);
    case 229:
      return trimIp(frame, 6);
    default:
      return { reason: `linktype ${linktype} not supported` };
  }
}

function fromEthernet(frame: Uint8Array): Extracted {
  let off = 12;
  for (let tags = 0; ; tags++) {
    if (frame.length < off + 2) return { reason: `Ethernet frame truncated (${frame.length} bytes)` };
    const type = (frame[off] << 8) | frame[off + 1];
    if (type === 0x8100 || type === 0x88a8 || type === 0x9100) {
      if (tags === 4) return { reason: "more than 4 VLAN tags" };
      off += 4;
      continue;
    }
    off += 2;
    if (type === 0x0800) return trimIp(frame.subarray(off), 4);
    if (type === 0x86dd) return trimIp(frame.subarray(off), 6);
    if (type < 0x0600) return { reason: "802.3 frame (not IP)" };
    const name = ETHERTYPES[type];
    return { reason: `ethertype 0x${type.toString(16).padStart(4, "0")}${name ? ` (${name})` : ""}` };
  }
}

/** Checks the version nibble (0: either) and cuts link-layer padding using the IP length. */
function trimIp(p: Uint8Array, want: 0 | 4 | 6): Extracted {
  if (p.length === 0) return { reason: "empty packet" };
  const version = p[0] >> 4;
  if (version !== 4 && version !== 6) return { reason: `not IP (version nibble ${version})` };
  if (want !== 0 && version !== want) return { reason: `IPv${version} packet where IPv${want} was expected` };
  // Short or inconsistent headers are left whole for the RoCE parser to reject by name.
  if (version === 4 && p.length >= 4) {
    const total = (p[2] << 8) | p[3];
    if (total >= 20 && total < p.length) return { ip: p.subarray(0, total) };
  } else if (version === 6 && p.length >= 6) {
    const total = 40 + ((p[4] << 8) | p[5]);
    if (total < p.length) return { ip: p.subarray(0, total) };
  }
  return { ip: p };
}

/** undefined if the IP packet is RoCEv2 (UDP to port 4791), else what it is instead. */
export function notRoce(ip: Uint8Array): string | undefined {
  let proto: number;
  let l4: number;
  const version = ip[0] >> 4;
  if (version === 4) {
    if (ip.length < 20) return undefined; // too short to tell: let the parser name the problem
    proto = ip[9];
    l4 = (ip[0] & 0x0f) * 4;
    const frag = ((ip[6] & 0x1f) << 8) | ip[7];
    if (frag !== 0 && proto === 17) return "IPv4 fragment";
  } else if (version === 6) {
    if (ip.length < 40) return undefined;
    proto = ip[6];
    l4 = 40;
  } else {
    return `not IP (version nibble ${version})`;
  }
  if (proto !== 17) return IP_PROTOCOLS[proto] ?? `IP protocol ${proto}`;
  if (ip.length < l4 + 4) return undefined;
  const dport = (ip[l4 + 2] << 8) | ip[l4 + 3];
  if (dport !== ROCE_V2_PORT) return `UDP port ${dport}`;
  return undefined;
}
