// Node entry: the core API, the Node wasm loader and the UDP link.
export * from "../core/index.js";
export { coreModule } from "./wasm-source.js";
export { UdpLink, type UdpLinkOptions } from "./udp.js";
export { sockoptAddon, sockoptUnavailableReason } from "./sockopt.js";

import { openDeviceWith, type Device, type OpenDeviceOptions } from "../core/verbs/index.js";
import { realClock } from "../core/real-clock.js";
import { coreModule as nodeCoreModule } from "./wasm-source.js";
import { UdpLink } from "./udp.js";

export interface NodeDeviceOptions extends OpenDeviceOptions {
  /** local IPv4 or IPv6 address to bind (no address: a device on no network) */
  address?: string;
  /** UDP port (default 4791; 0 picks a free one) */
  port?: number;
}

/**
 * ibv_open_device. With an address the device is bound to UDP there and its
 * GID 0 is that address (IPv4-mapped for IPv4); without, it is on no network.
 */
export async function openDevice(options: NodeDeviceOptions = {}): Promise<Device> {
  const mod = await nodeCoreModule();
  if (options.address === undefined) return openDeviceWith(mod, options);
  const link = await UdpLink.open({ address: options.address, port: options.port ?? 4791 });
  try {
    const gid = options.address.includes(":") ? options.address : `::ffff:${options.address}`;
    const device = await openDeviceWith(mod, { gids: [gid], ...options, port: link.localPort });
    link.port = device.attach(link, realClock);
    device.addEventListener("close", () => void link.close());
    return device;
  } catch (e) {
    await link.close();
    throw e;
  }
}
