// A device on a gateway tunnel: opened with the identity the HELLO assigns
// (GID 0 = the gateway's UDP address, local port = its UDP port, QPNs from the
// client's range) and attached to the TunnelLink with the real clock.
import { openDeviceWith, type Device, type OpenDeviceOptions } from "../verbs/device.js";
import { realClock } from "../link/real-clock.js";
import { addressGid } from "../net/gid.js";
import { TunnelLink, type TunnelLinkOptions, type WebSocketLike } from "./link.js";

export interface TunnelDevice {
  device: Device;
  link: TunnelLink;
}

/** Waits for the HELLO on `ws`, opens a device with that identity and attaches it. Closing the device closes the tunnel. */
export async function openTunnelDeviceWith(
  source: WebAssembly.Module | BufferSource,
  ws: WebSocketLike,
  options: Omit<OpenDeviceOptions, "gids" | "port" | "qpnBase"> & TunnelLinkOptions = {},
): Promise<TunnelDevice> {
  const link = await TunnelLink.connect(ws, options);
  const h = link.hello;
  const gid = addressGid(h.address);
  try {
    const device = await openDeviceWith(source, {
      // the gateway sends every datagram from its own socket (docs/TUNNEL.md): one source port
      ...options, udpSourcePorts: "device", gids: [gid], port: h.port, qpnBase: h.qpnBase, qpnCount: h.qpnCount, maxQp: Math.min(options.maxQp ?? 256, h.qpnCount),
    });
    link.port = device.attach(link, realClock);
    device.addEventListener("close", () => link.close());
    return { device, link };
  } catch (e) {
    link.close();
    throw e;
  }
}
