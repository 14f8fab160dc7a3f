// Multicast groups a Node UDP link has joined (both paths: udp.ts and native-link.ts), as rxe
// joins them on its netdev: per group a socket bound to group:port with SO_REUSEADDR (so several
// devices on one host can join) and IP_ADD_MEMBERSHIP on the link's address; what arrives there
// goes to the device with the group as destination. The link's own socket sends multicast out of
// its address's interface (IP_MULTICAST_IF), looped back to members on this host. IPv6 groups
// (ff00::/8 GIDs) are joined on the interface that holds the link's address (IPV6_JOIN_GROUP
// with its index), so the kernel needs a multicast route there: any interface with the MULTICAST
// flag has ff00::/8 in its local table; loopback has not (test/system/mcast-ipv6.sys.mjs runs
// the devices in a network namespace on a veth pair for that reason).
import dgram from "node:dgram";
import { isIPv4, isIPv6 } from "node:net";
import { networkInterfaces } from "node:os";

/**
 * The interface holding `address` as Node's IPv6 multicast calls name it (`::%name`: libuv
 * takes the zone as the interface index), or undefined when no interface has it.
 */
export function ipv6InterfaceOf(address: string): string | undefined {
  let want: string;
  try {
    want = new URL(`http://[${address}]/`).hostname; // canonical text, for comparison
  } catch {
    return undefined;
  }
  for (const [name, addrs] of Object.entries(networkInterfaces())) {
    for (const a of addrs ?? []) {
      if (a.family !== "IPv6") continue;
      let have: string;
      try {
        have = new URL(`http://[${a.address.split("%")[0]}]/`).hostname;
      } catch {
        continue;
      }
      if (have === want) return `::%${name}`;
    }
  }
  return undefined;
}
import { IP_ID_UNKNOWN, type PacketPort } from "../core/link/index.js";

/** What GroupSockets needs from its link. */
export interface GroupLink {
  readonly address: string;
  readonly localPort: number;
  readonly port: PacketPort | undefined;
  readonly stats: { received: number };
}

export class GroupSockets {
  private readonly sockets = new Map<string, dgram.Socket>();
  private readonly joins = new Map<string, Promise<void>>();

  constructor(private readonly link: GroupLink) {}

  /** Joins `group` (once; later calls share the first join). */
  join(group: string): Promise<void> {
    let p = this.joins.get(group);
    if (!p) {
      p = this.open(group);
      this.joins.set(group, p);
    }
    return p;
  }

  private async open(group: string): Promise<void> {
    const v4 = isIPv4(group);
    if (!v4 && !isIPv6(group)) throw new TypeError(`not a multicast address: ${group}`);
    const link = this.link;
    const s = dgram.createSocket({ type: v4 ? "udp4" : "udp6", reuseAddr: true, ipv6Only: !v4 });
    this.sockets.set(group, s);
    await new Promise<void>((resolve, reject) => {
      s.once("error", reject);
      s.bind(link.localPort, group, () => resolve());
    });
    if (v4) s.addMembership(group, link.address);
    else s.addMembership(group, ipv6InterfaceOf(link.address)); // undefined: the kernel picks by route
    s.on("message", (msg, rinfo) => {
      link.stats.received++;
      link.port?.receive({ src: rinfo.address, dst: group, srcPort: rinfo.port, dstPort: link.localPort, ipId: IP_ID_UNKNOWN, payload: msg });
    });
  }

  /** Leaves a group joined with join. */
  async leave(group: string): Promise<void> {
    await this.joins.get(group)?.catch(() => undefined);
    this.joins.delete(group);
    const s = this.sockets.get(group);
    if (!s) return;
    this.sockets.delete(group);
    await new Promise<void>((resolve) => s.close(() => resolve()));
  }

  async leaveAll(): Promise<void> {
    for (const g of [...this.sockets.keys()]) await this.leave(g);
  }

  /** The groups joined. */
  get groups(): string[] {
    return [...this.sockets.keys()];
  }
}
