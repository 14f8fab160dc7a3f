// The WebSocket a page's tunnel device opens to the gateway (docs/TUNNEL.md), on the page's thread
// (openTunnelDevice) and in the device's Web Worker (worker-device.ts): the one place that says how.
import { TUNNEL_SUBPROTOCOL_V2 } from "../core/tunnel/index.js";

/** A WebSocket to `url` offering tunnel version 2 (BATCH frames); a gateway that does not pick it speaks version 1. */
export function tunnelSocket(url: string): WebSocket {
  return new WebSocket(url, [TUNNEL_SUBPROTOCOL_V2]);
}
