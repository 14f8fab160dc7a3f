// A tunnel device in a worker: the worker opens the WebSocket to the gateway, waits for its
// HELLO and attaches the device's port to the TunnelLink; the application thread opens the
// Device with the identity the HELLO gave (as openTunnelDeviceWith does on one thread).
import { PacketPort, realClock, type TransportCore } from "../link/index.js";
import { addressGid } from "../net/index.js";
import { TunnelLink, type HelloFrame, type TunnelLinkOptions, type WebSocketLike } from "../tunnel/index.js";
import type { Device, OpenDeviceOptions } from "../verbs/index.js";
import type { WorkerOps } from "./runner.js";
import { attachWorkerPort, deviceOnWorker, type WorkerReady, type WorkerSession } from "./session.js";

/** What the application thread sees of the worker's TunnelLink. */
export interface WorkerTunnelLink {
  readonly hello: HelloFrame;
  /** set once the tunnel went down (the worker's report) */
  readonly isDown: boolean;
  /** called once when the tunnel closes */
  onDown: ((why: string) => void) | undefined;
  /** the link's counters and the gateway's ERROR frames, from the worker */
  fetchStats(): Promise<{ link: TunnelLink["stats"]; gatewayErrors: TunnelLink["gatewayErrors"] }>;
  close(): void;
}

export interface WorkerTunnelDevice {
  device: Device;
  link: WorkerTunnelLink;
}

/** The worker's ops for a tunnel device; `open` makes the WebSocket (the platform's). */
export function tunnelOps(open: (url: string, msg: Record<string, unknown>) => WebSocketLike): WorkerOps {
  let link: TunnelLink | undefined;
  return {
    async tunnel(msg, ctx) {
      if (link) throw new Error("device worker: tunnel opened twice");
      link = await TunnelLink.connect(open(String(msg.url), msg), (msg.linkOptions ?? {}) as TunnelLinkOptions);
      link.onDown = (why) => ctx.report({ report: "down", why });
      return link.hello;
    },
    attach(_msg, ctx) {
      if (!link) throw new Error("device worker: attach before tunnel");
      const port = new PacketPort(ctx.core as unknown as TransportCore, ctx.mem, realClock, link, ctx.server.progress);
      link.port = port;
      ctx.server.port = port;
      port.service();
      return undefined;
    },
    stats(_msg, ctx) {
      return { link: { ...link?.stats }, gatewayErrors: [...(link?.gatewayErrors ?? [])], port: ctx.server.port?.stats };
    },
    close() {
      link?.close();
    },
  };
}

/**
 * Asks the worker to open the tunnel at `url` (`extra`: what its WebSocket factory takes, e.g. a
 * token), then opens the device with the HELLO's identity and attaches it there.
 */
export async function tunnelDeviceOnWorker(
  session: WorkerSession,
  ready: WorkerReady,
  url: string,
  options: Omit<OpenDeviceOptions, "gids" | "port" | "qpnBase"> & TunnelLinkOptions,
  extra: Record<string, unknown> = {},
): Promise<WorkerTunnelDevice> {
  const { highWaterMark, helloTimeoutMs, inFlightPackets, inFlightBytes, ...deviceOptions } = options;
  const hello = await session.request<HelloFrame>("tunnel", { url, linkOptions: { highWaterMark, helloTimeoutMs, inFlightPackets, inFlightBytes }, ...extra });
  const device = deviceOnWorker(session, ready, {
    ...deviceOptions, udpSourcePorts: "device", gids: [addressGid(hello.address)], port: hello.port, qpnBase: hello.qpnBase, qpnCount: hello.qpnCount,
    maxQp: Math.min(options.maxQp ?? 256, hello.qpnCount),
  });
  let down = false;
  const link: WorkerTunnelLink = {
    hello,
    get isDown() {
      return down;
    },
    onDown: undefined,
    fetchStats: () => session.request("stats"),
    close: () => device.close(),
  };
  session.onReport((r) => {
    if (r.report !== "down" || down) return;
    down = true;
    link.onDown?.(String(r.why));
  });
  try {
    await session.request("attach");
    attachWorkerPort(device, session);
  } catch (e) {
    device.close();
    throw e;
  }
  return { device, link };
}
