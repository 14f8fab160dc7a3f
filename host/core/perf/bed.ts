// Where a perf test runs. The engine (run.ts) posts from the client side and, when the server
// side is in this process too, serves from it; the bed says how progress happens (drive) and
// what its wire saw. Two beds: the simulated wire here (both sides, client 10.0.0.1 and server
// 10.0.0.2, virtual time), and UDP in host/node/perf-udp.ts (this process's side only).
import { connectQp, GRH_SIZE, type Device } from "../verbs/index.js";
import { SimNetwork } from "../sim/network.js";
import type { SimStats } from "../sim/wire.js";
import { addressGid } from "../net/gid.js";
import { perfLayout, type PerfLayout, type ResolvedPerfOptions } from "./options.js";
import { mtuEnum, openPerfSide, perfConnectAttrs, perfDeviceOptions, remoteMrs, type PerfSide, type RemoteMr } from "./side.js";

export { slotView, type PerfSide, type RemoteMr } from "./side.js";

export const CLIENT_ADDRESS = "10.0.0.1";
export const SERVER_ADDRESS = "10.0.0.2";

/** What the wire (or link) under a bed carried: the simulated wire's counts (a real link fills what it knows). */
export type PerfWireStats = Omit<SimStats, "unroutable">;

export interface PerfBed extends PerfLayout {
  /** the side this process posts from */
  client: PerfSide;
  /** the server side when it runs in this process (the simulated wire); undefined over a real link */
  server?: PerfSide;
  /** per QP, the server's MR that the client's RDMA work requests name */
  remote: RemoteMr[];
  /** work requests in flight per QP, each with its slot (the tx depth) */
  slots: number;
  /** where a received message starts in its receive buffer: the GRH size on UD, else 0 */
  rxOffset: number;
  qkey: number;
  /** µs on the bed's virtual clock; undefined when it has none (a real link) */
  virtualNow(): number | undefined;
  /**
   * Lets the bed make progress until `done()` holds, calling `after()` whenever something may
   * have happened and `tick()` now and then (progress reports, yielding to the event loop);
   * false when nothing can happen any more (idle wire, limits, or on a real link `progress()`
   * standing still too long).
   */
  drive(done: () => boolean, after: () => void, tick: () => Promise<void>, progress: () => number): Promise<boolean>;
  /** the devices of this process on the bed (their counters go into the result) */
  devices(): Device[];
  wireStats(): PerfWireStats;
  /** a real link's description for the result (undefined on the simulated wire) */
  link?(): string;
}

/** The simulated-wire bed with its network (for the trace and the playground). */
export interface SimPerfBed extends PerfBed {
  server: PerfSide;
  net: SimNetwork;
}

const EVENT_LIMIT = 2_000_000_000;

export async function createPerfBed(module: WebAssembly.Module, o: ResolvedPerfOptions): Promise<SimPerfBed> {
  const qkey = 0x11111111;
  // UC write_bw --verify looks at the receiver's memory after every event (a WRITE leaves no
  // completion there): one event per datagram, not the wire's receive batches
  const perDatagram = o.connection === "UC" && o.test === "write_bw" && o.verify;
  const net = new SimNetwork({ seed: o.seed, faults: o.faults, batching: !perDatagram });
  const devOpts = {
    ...perfDeviceOptions(o),
    // UD datagrams are limited by the port's MTU: make it the path MTU asked for
    activeMtu: o.connection === "UD" ? mtuEnum(o.mtu) : 5,
  };
  const client = openPerfSide(await net.addDevice(module, CLIENT_ADDRESS, devOpts), o);
  const server = openPerfSide(await net.addDevice(module, SERVER_ADDRESS, devOpts), o);
  const psn = (side: number, i: number) => (((o.seed * 2654435761) >>> 8) + 0x1000 * i + 0x800000 * side) & 0xffffff;
  const common = perfConnectAttrs(o);
  for (let i = 0; i < o.qps; i++) {
    const c = client.qps[i]!;
    const s = server.qps[i]!;
    if (o.connection === "UD") {
      connectQp(c, undefined, { sqPsn: psn(0, i), qkey });
      connectQp(s, undefined, { sqPsn: psn(1, i), qkey });
      client.ahs.push(client.pd.createAh({ grh: { dgid: addressGid(SERVER_ADDRESS), sgidIndex: 0, hopLimit: 64 }, portNum: 1 }));
      server.ahs.push(server.pd.createAh({ grh: { dgid: addressGid(CLIENT_ADDRESS), sgidIndex: 0, hopLimit: 64 }, portNum: 1 }));
      client.peers.push(s.qpNum);
      server.peers.push(c.qpNum);
      continue;
    }
    connectQp(c, { qpNum: s.qpNum, psn: psn(1, i), gid: addressGid(SERVER_ADDRESS) }, { ...common, sqPsn: psn(0, i) });
    connectQp(s, { qpNum: c.qpNum, psn: psn(0, i), gid: addressGid(CLIENT_ADDRESS) }, { ...common, sqPsn: psn(1, i) });
  }
  let events = 0;
  return {
    net,
    client,
    server,
    remote: remoteMrs(server),
    ...perfLayout(o),
    slots: o.txDepth,
    rxOffset: o.connection === "UD" ? GRH_SIZE : 0,
    qkey,
    virtualNow: () => net.now,
    async drive(done, after, tick) {
      const clock = net.wire.clock;
      const limit = o.virtualLimitUs;
      while (!done()) {
        if (clock.pending === 0 || (clock.nextAt ?? Infinity) > limit || events >= EVENT_LIMIT) return false;
        clock.step();
        events++;
        after();
        // an event can be a batch of up to 256 datagrams (the wire's receive batches): a tick every 64
        if ((events & 63) === 0) await tick();
      }
      return true;
    },
    devices: () => [client.device, server.device],
    wireStats() {
      const ws = net.wire.stats;
      return { sent: ws.sent, delivered: ws.delivered, lost: ws.lost, duplicated: ws.duplicated, corrupted: ws.corrupted, reordered: ws.reordered };
    },
  };
}
