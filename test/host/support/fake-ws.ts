// A scripted WebSocket for tunnel tests (host/core/tunnel's WebSocketLike): what the link sends
// is kept (copied), and the test plays the gateway's side with message(), emit("close", …).
import type { WebSocketLike } from "../../../host/core/tunnel/index.js";

export class FakeWs implements WebSocketLike {
  binaryType = "blob";
  bufferedAmount = 0;
  readyState = 1;
  /** every message the link sent, copied */
  sent: Uint8Array[] = [];
  closedWith: number | undefined;
  private listeners = new Map<string, ((ev: any) => void)[]>();
  send(data: Uint8Array): void {
    this.sent.push(data.slice());
  }
  close(code?: number): void {
    this.closedWith = code;
    this.readyState = 3;
    this.emit("close", { code: code ?? 1005, reason: "" });
  }
  addEventListener(type: string, fn: (ev: any) => void): void {
    this.listeners.set(type, [...(this.listeners.get(type) ?? []), fn]);
  }
  emit(type: string, ev: unknown): void {
    for (const fn of this.listeners.get(type) ?? []) fn(ev);
  }
  /** A binary message from the gateway (as an ArrayBuffer of its own, as binaryType "arraybuffer" gives). */
  message(b: Uint8Array): void {
    this.emit("message", { data: b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength) });
  }
}
