// The perf engine's UDP bed: this process's side of a two-process perf test (host/core/perf runs
// the test on it; host/cli/perf-exchange.ts introduces the two sides over TCP). The device binds
// a local address; its active MTU follows the interface (rxe's rule, netif.ts); progress is real
// time, polled as perftest polls, and a peer silent for too long is a stall.
import { connectQp, randomPsn } from "../core/verbs/index.js";
import {
  mtuEnum, openPerfSide, perfConnectAttrs, perfDeviceOptions, perfLayout, type PerfBed, type PerfSide, type ResolvedPerfOptions,
} from "../core/perf/index.js";
import type { PcapRecorder } from "../core/capture/index.js";
import { activeMtuFor, openDevice, udpLinkOf } from "./index.js";

/** What one side tells the other about each QP. */
export interface PerfQpInfo {
  qpn: number;
  psn: number;
  rkey: number;
  /** the MR's address, decimal (a u64 does not fit a JSON number) */
  addr: string;
}

/** The peer as the exchange describes it. */
export interface PerfPeer {
  gid: string;
  udpPort: number;
  qp: PerfQpInfo[];
}

export interface UdpPerfSide {
  side: PerfSide;
  /** the local address the device is bound to */
  address: string;
  /** the port's active MTU in bytes (from the interface, as rxe) */
  activeMtu: number;
  /** the UDP port the device is bound to */
  udpPort: number;
  /** GID 0 */
  gid: string;
  /** the QPs as the peer needs them (random first PSNs) */
  infos: PerfQpInfo[];
}

/** Opens a device on `address`:`udpPort` (0: any free port) with a perf side on it. */
export async function openUdpPerfSide(o: ResolvedPerfOptions, u: { address: string; udpPort: number; pcap?: PcapRecorder }): Promise<UdpPerfSide> {
  const activeMtu = 128 << activeMtuFor(u.address); // as openDevice and devinfo derive it
  const device = await openDevice({ address: u.address, port: u.udpPort, activeMtu: mtuEnum(activeMtu), ...perfDeviceOptions(o) });
  try {
    const side = openPerfSide(device, o, device.createCompChannel());
    u.pcap?.attach(device.port!);
    const infos = side.qps.map((qp, i) => ({ qpn: qp.qpNum, psn: randomPsn(), rkey: side.mrs[i]!.rkey, addr: side.mrs[i]!.addr.toString() }));
    return { side, address: u.address, activeMtu, udpPort: (device.limits as { port: number }).port, gid: device.queryGid(0), infos };
  } catch (e) {
    device.close();
    throw e;
  }
}

/**
 * Connects every QP to the peer's and returns the bed the engine runs on. `stallMs`: how long
 * the test may go without progress before it counts as stalled (Infinity: wait for `done`).
 */
export function udpPerfBed(u: UdpPerfSide, o: ResolvedPerfOptions, peer: PerfPeer, stallMs: number): PerfBed {
  const common = perfConnectAttrs(o);
  u.side.qps.forEach((qp, i) => {
    const r = peer.qp[i]!;
    connectQp(qp, { qpNum: r.qpn, psn: r.psn, gid: peer.gid, port: peer.udpPort }, { ...common, sqPsn: u.infos[i]!.psn });
  });
  const device = u.side.device;
  const link = udpLinkOf(device)!;
  return {
    client: u.side,
    remote: peer.qp.map((q) => ({ addr: BigInt(q.addr), rkey: q.rkey })),
    ...perfLayout(o),
    slots: o.txDepth,
    rxOffset: 0,
    qkey: 0,
    virtualNow: () => undefined,
    async drive(done, after, tick, progress) {
      const { sendCq, recvCq } = u.side;
      const channel = sendCq.channel!;
      // write_lat's answer is a WRITE, which completes nothing here: poll memory every turn
      // (perftest busy-polls); every other test sleeps until a completion or the stall deadline
      const busy = o.test === "write_lat";
      let event: Promise<unknown> | undefined;
      let last = progress();
      let since = performance.now();
      while (!done()) {
        if (busy) await new Promise((r) => setImmediate(r));
        else {
          sendCq.reqNotify();
          recvCq.reqNotify();
          after();
          if (done()) break;
          event ??= channel.getCqEvent().then(() => (event = undefined));
          let timer: ReturnType<typeof setTimeout> | undefined;
          const wait = Math.max(1, Math.min(50, stallMs - (performance.now() - since)));
          await Promise.race([event, new Promise((r) => (timer = setTimeout(r, wait)))]);
          clearTimeout(timer);
        }
        after();
        await tick();
        const p = progress();
        const now = performance.now();
        if (p !== last) {
          last = p;
          since = now;
        } else if (now - since > stallMs) return false;
      }
      return true;
    },
    devices: () => [device],
    wireStats: () => ({ sent: link.stats.sent, delivered: link.stats.received, lost: link.stats.sendErrors, duplicated: 0, corrupted: 0, reordered: 0 }),
    link: () =>
      `UDP ${u.address}:${u.udpPort} <-> ${peer.gid} port ${peer.udpPort} (send errors ${JSON.stringify(link.stats.sendErrorsByCode)}, backpressured ${link.stats.backpressured})`,
  };
}
