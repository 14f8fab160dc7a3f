// What the two Node UDP links share (udp.ts on node:dgram, native-link.ts on the addon's
// datapath): per-QP UDP source ports from a pool of send-only sockets (sport-pool.ts) and the
// multicast groups the device joined, each received through a socket of its own (mcast-groups.ts).
import type { PacketPort } from "../core/link/index.js";
import { GroupSockets } from "./mcast-groups.js";
import type { SourcePortPool, SourcePortStats } from "./sport-pool.js";

export abstract class UdpLinkBase {
  abstract port: PacketPort | undefined;
  abstract readonly address: string;
  abstract readonly localPort: number;
  abstract readonly stats: { received: number };

  /** The per-QP source port sockets (udpSourcePorts "per-qp" with the addon), else undefined. */
  pool: SourcePortPool | undefined;

  /** Link.sourcePortReady: the device's port, or a pool socket bound to `port`. */
  sourcePortReady(port: number): boolean {
    return port === this.localPort || (this.pool !== undefined && this.pool.fd(port) >= 0);
  }

  /** The pool's counters (undefined: every QP sends from the device's port). */
  sourcePortStats(): SourcePortStats | undefined {
    return this.pool?.stats();
  }

  /** Multicast groups joined: received through a socket per group, sent from the link's own. */
  private readonly mcast = new GroupSockets(this);
  joinGroup(group: string): Promise<void> {
    return this.mcast.join(group);
  }
  leaveGroup(group: string): Promise<void> {
    return this.mcast.leave(group);
  }
  get joinedGroups(): string[] {
    return this.mcast.groups;
  }

  /** Closes the pool's sockets and leaves every group (each link's close, before its own socket). */
  protected async closePoolAndGroups(): Promise<void> {
    await this.pool?.close();
    await this.mcast.leaveAll();
  }
}
