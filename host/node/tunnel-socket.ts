// The `ws` client that Node's tunnel devices open to a gateway (docs/TUNNEL.md), on the
// application thread (openTunnelDevice) and in the device worker (openTunnelDevice with
// `worker: true`): the one place that says how.
import WebSocket from "ws";
import { TUNNEL_SUBPROTOCOL_V2, type WebSocketLike } from "../core/tunnel/index.js";

export interface TunnelSocketAuth {
  /** the gateway's token, sent as `Authorization: Bearer TOKEN` */
  token?: string;
  /** extra HTTP headers for the upgrade */
  headers?: Record<string, string>;
}

/**
 * A WebSocket to the gateway at `url` that offers tunnel version 2 (BATCH frames; a gateway that
 * does not pick it speaks version 1), without compression (the gateway does not negotiate it).
 */
export function tunnelSocket(url: string, auth: TunnelSocketAuth = {}): WebSocket & WebSocketLike {
  const ws = new WebSocket(url, [TUNNEL_SUBPROTOCOL_V2], {
    perMessageDeflate: false,
    // An all-zero masking key: ws then neither masks nor (at the gateway) unmasks, which in JS cost
    // ~10 % of the client's and ~5 % of the gateway's CPU at full rate. The key defends browsers'
    // intermediaries against scripts that choose the bytes (RFC 6455 §10.3); this is a Node
    // program, not a page, and a browser masks in native code anyway.
    generateMask: (mask: Uint8Array) => mask.fill(0),
    headers: { ...auth.headers, ...(auth.token === undefined ? {} : { authorization: `Bearer ${auth.token}` }) },
  });
  // ws calls send's callback once the bytes are written, in order: the link lends its frame buffers (no copy)
  return Object.assign(ws, { sendCallsBack: true as const }) as WebSocket & WebSocketLike;
}
