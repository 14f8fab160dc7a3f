// The unit every host moves: one UDP datagram carrying a RoCEv2 payload
// (BTH … ICRC), with the IP/UDP facts its ICRC was computed over.

/** The IP and UDP facts of a datagram: what its ICRC was computed over. */
export interface DatagramFacts {
  /** Source and destination IP addresses (IPv4 dotted quad or IPv6 text). */
  src: string;
  dst: string;
  srcPort: number;
  dstPort: number;
  /** IPv4 Identification the ICRC assumed (0 where the host controls it). */
  ipId?: number;
  /** TTL / hop limit, TOS / traffic class, IPv6 flow label, where the link knows them (a UD receive's GRH shows them; 0 otherwise). */
  ttl?: number;
  tos?: number;
  flowLabel?: number;
}

export interface Datagram extends DatagramFacts {
  /** UDP payload: BTH, extension headers, payload, pad, ICRC. */
  payload: Uint8Array;
}

export const ROCE_V2_PORT = 4791;

/** "address:port" (IPv6 in brackets), a map key and a readable name. */
export function endpointKey(address: string, port: number): string {
  return address.includes(":") ? `[${address}]:${port}` : `${address}:${port}`;
}
