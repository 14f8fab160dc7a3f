// How a communication manager reaches the world: whole 256-byte MADs to and
// from QP1 of a peer port. Phase 1 plugs an in-memory channel in here
// (sim-mad.ts); the device's QP1 (the GSI) will implement the same interface.

/** Where a MAD goes, or where one came from. */
export interface MadAddress {
  /** the peer port's GID: for RoCEv2 its IP address, IPv4-mapped for IPv4 */
  gid: Uint8Array;
  /** the peer device's UDP port (softroce runs several devices on one host; RoCE uses 4791) */
  port?: number;
  /** the peer QP: 1, the GSI (ib_cm's remote_cm_qpn) */
  qpn: number;
  /** our P_Key table index the MAD is sent with (or arrived on) */
  pkeyIndex: number;
  /** the Q_Key: 0x80010000 for the GSI */
  qkey: number;
  /** receive side: the IP TTL / hop limit, traffic class and flow label the MAD arrived with */
  hopLimit?: number;
  trafficClass?: number;
  flowLabel?: number;
  /** send side: the GRH fields to send with (Linux sends CM MADs with the path's values) */
  sgidIndex?: number;
}

export interface MadTransport {
  /** Sends one MAD; the transport copies what it keeps. Never throws for an unreachable peer (the MAD is lost). */
  send(mad: Uint8Array, to: MadAddress): void;
  /** Sets the one receiver of MADs arriving at this port (a view valid during the call). */
  onReceive(handler: (mad: Uint8Array, from: MadAddress) => void): void;
  /**
   * The peers' UDP ports an rdma_cm over this transport was told (openRdmaCm's `peerUdpPort`): where
   * a MAD sent with no port goes and, for one that arrives, where its answers go. A transport given
   * a mapping of its own keeps that one.
   */
  usePeerUdpPort?(port: (gid: Uint8Array) => number): void;
}
