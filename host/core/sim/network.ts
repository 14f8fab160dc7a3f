// A network of devices on the simulated wire, for tests, the local perf mode,
// the demo and the playground: each device gets an address (its GID 0) and
// port, shares the wire's virtual clock, and is driven by running the clock.
import { SimWire, type SimWireOptions } from "./wire.js";
import { SimLink, simClock } from "./link.js";
import { openDeviceWith, type Device, type OpenDeviceOptions } from "../verbs/device.js";
import { ROCE_V2_PORT } from "../net/datagram.js";
import { addressGid } from "../net/gid.js";
import { Prng } from "./prng.js";

export class SimNetwork {
  readonly wire: SimWire;
  readonly devices: Device[] = [];

  private readonly seed: number;

  constructor(opts: SimWireOptions = {}) {
    this.wire = new SimWire(opts);
    this.seed = opts.seed ?? 1;
  }

  /** Opens a device at `address`:`port` on this wire. */
  async addDevice(module: WebAssembly.Module, address: string, options: OpenDeviceOptions = {}, port = ROCE_V2_PORT): Promise<Device> {
    // identities from a PRNG seeded by the wire's seed and the device's place: random-looking, repeatable
    const prng = new Prng(((this.seed * 0x9e3779b1) ^ (this.devices.length + 1)) >>> 0);
    const entropy = (b: Uint8Array) => {
      for (let i = 0; i < b.length; i += 4) {
        const v = prng.u32();
        for (let k = 0; k < 4 && i + k < b.length; k++) b[i + k] = (v >>> (8 * k)) & 0xff;
      }
    };
    const device = await openDeviceWith(module, { gids: [addressGid(address)], port, entropy, ...options });
    const link = new SimLink(this.wire);
    const p = device.attach(link, simClock(this.wire.clock));
    // the port copies into the RX buffer, or reads in place what the wire wrote into the link's inbox;
    // a batch of datagrams in the inbox (the same arrival time, nothing between them): one core call
    this.wire.attach(address, port, (d) => p.receive(d), { copies: true, inbox: link.inbox, batch: link.batch });
    // multicast: the device's groups are joined on the wire (as a NIC joins them for rxe)
    const left = new Map<string, () => void>();
    device.onMulticast((group, join) => {
      if (join) left.set(group, this.wire.join(group, port, (d) => p.receive(d)));
      else {
        left.get(group)?.();
        left.delete(group);
      }
    });
    this.devices.push(device);
    return device;
  }

  get now(): number {
    return this.wire.clock.now;
  }

  /** Runs the simulation until it is idle, `untilUs` passes, or `maxEvents` ran. */
  run(untilUs = Infinity, maxEvents = 10_000_000): number {
    return this.wire.clock.run(untilUs, maxEvents);
  }

  /**
   * Runs until `done()` holds (checked after every event) or virtual time
   * reaches `limitUs`; returns whether `done()` held.
   */
  runUntil(done: () => boolean, limitUs = 60_000_000): boolean {
    const clock = this.wire.clock;
    while (!done()) {
      if (clock.pending === 0 || (clock.nextAt ?? Infinity) > limitUs) return done();
      clock.step();
    }
    return true;
  }
}
