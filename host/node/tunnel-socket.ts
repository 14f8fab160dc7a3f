// The WebSocket that Node's tunnel devices open to a gateway (docs/TUNNEL.md), on the application
// thread (openTunnelDevice) and in the device worker (openTunnelDevice with `worker: true`): the
// one place that says how. ws:// URLs: our own minimal RFC 6455 client (ws-client.ts: reads
// through `onread` with no stream machinery, one write per message); wss:// URLs, or
// `webSocket: "ws"`: the `ws` package.
import WebSocket from "ws";
import { TUNNEL_SUBPROTOCOL_V2, type WebSocketLike } from "../core/tunnel/index.js";
import { WsClient } from "./ws-client.js";

/** Which WebSocket client a Node tunnel device uses: "softroce" (ws:// only; wss:// falls back to `ws`) or the `ws` package. */
export type TunnelWebSocket = "softroce" | "ws";

export interface TunnelSocketAuth {
  /** the gateway's token, sent as `Authorization: Bearer TOKEN` */
  token?: string;
  /** extra HTTP headers for the upgrade */
  headers?: Record<string, string>;
  /** the client (default "softroce" for ws:// URLs) */
  webSocket?: TunnelWebSocket;
}

/**
 * A WebSocket to the gateway at `url` that offers tunnel version 2 (BATCH frames; a gateway that
 * does not pick it speaks version 1), without compression (the gateway does not negotiate it).
 */
export function tunnelSocket(url: string, auth: TunnelSocketAuth = {}): WebSocketLike {
  const headers = { ...auth.headers, ...(auth.token === undefined ? {} : { authorization: `Bearer ${auth.token}` }) };
  if (auth.webSocket !== undefined && auth.webSocket !== "softroce" && auth.webSocket !== "ws") {
    throw new TypeError(`webSocket ${JSON.stringify(auth.webSocket)}: "softroce" or "ws"`);
  }
  if ((auth.webSocket ?? "softroce") === "softroce" && url.startsWith("ws:")) {
    return new WsClient(url, { protocols: [TUNNEL_SUBPROTOCOL_V2], headers });
  }
  const ws = new WebSocket(url, [TUNNEL_SUBPROTOCOL_V2], {
    perMessageDeflate: false,
    // An all-zero masking key: ws then neither masks nor (at the gateway) unmasks, which in JS cost
    // ~10 % of the client's and ~5 % of the gateway's CPU at full rate. The key defends browsers'
    // intermediaries against scripts that choose the bytes (RFC 6455 §10.3); this is a Node
    // program, not a page, and a browser masks in native code anyway.
    generateMask: (mask: Uint8Array) => mask.fill(0),
    headers,
  });
  // ws calls send's callback once the bytes are written, in order: the link lends its frame buffers (no copy)
  return Object.assign(ws, { sendCallsBack: true as const }) as WebSocket & WebSocketLike;
}
