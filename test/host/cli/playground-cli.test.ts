// softroce playground's server in-process: the isolation headers, what it refuses, the
// rendezvous rooms browser-chat uses, and the live peer's connect endpoint.
import { mkdtempSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ISOLATION_HEADERS, startPlayground, runPlayground, type PlaygroundServer } from "../../../host/cli/playground.js";

const HOST = "127.0.14.41";
let srv: PlaygroundServer;
let dir: string;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "softroce-pg-"));
  writeFileSync(join(dir, "index.html"), "<!doctype html><title>pg</title>");
  writeFileSync(join(dir, "app.wasm"), new Uint8Array([0, 0x61, 0x73, 0x6d]));
  mkdirSync(join(dir, "chat"));
  writeFileSync(join(dir, "chat/index.html"), "chat");
  writeFileSync(join(tmpdir(), "softroce-pg-secret.txt"), "secret");
  srv = await startPlayground({ dir, host: HOST, port: 0, live: true, gatewayPort: 0, udpAddress: HOST });
});
afterAll(async () => {
  await srv?.close();
});

const get = (path: string, init?: RequestInit) => fetch(new URL(path, srv.url), init);
const rv = (body: unknown) => get("/rendezvous", { method: "POST", body: JSON.stringify(body) });
const me = (qpn: number, name = "x") => ({ qpn, psn: 7, gid: "::ffff:127.0.14.41", port: 4791, name });

describe("softroce playground server", () => {
  it("serves the folder with cross-origin isolation headers and the right types", async () => {
    const r = await get("/");
    expect(r.status).toBe(200);
    expect(r.headers.get("cross-origin-opener-policy")).toBe("same-origin");
    expect(r.headers.get("cross-origin-embedder-policy")).toBe("require-corp");
    expect(r.headers.get("content-type")).toMatch(/^text\/html/);
    expect(await r.text()).toContain("<title>pg</title>");
    expect((await get("/app.wasm")).headers.get("content-type")).toBe("application/wasm");
    expect(await (await get("/chat/")).text()).toBe("chat");
  });

  it("the _headers file the build copies for static hosts sends the same headers as the server", () => {
    const text = readFileSync(new URL("../../../examples/playground/_headers", import.meta.url), "utf8");
    const lines = text.split("\n").filter((l) => l.trim() && !l.startsWith("#"));
    expect(lines[0]).toBe("/*");
    const headers = Object.fromEntries(lines.slice(1).map((l) => {
      expect(l).toMatch(/^  [A-Za-z-]+: \S+$/);
      const [k, v] = l.trim().split(": ");
      return [k.toLowerCase(), v];
    }));
    expect(headers).toEqual(ISOLATION_HEADERS);
  });

  it("refuses traversal, unknown files and other methods", async () => {
    expect((await get("/..%2fsoftroce-pg-secret.txt")).status).toBe(403);
    const dots = await get("/%2e%2e/softroce-pg-secret.txt"); // the URL parser resolves it to /softroce-pg-secret.txt
    expect(dots.status).toBe(404);
    expect((await get("/%00")).status).toBe(400);
    expect((await get("/%E0%A4%A")).status).toBe(400);
    expect((await get("/missing.js")).status).toBe(404);
    const put = await get("/index.html", { method: "PUT", body: "x" });
    expect(put.status).toBe(405);
    expect(put.headers.get("allow")).toBe("GET, HEAD");
  });

  it("names the gateway and the live peer in /live.json", async () => {
    const live = await (await get("/live.json")).json();
    expect(live.gateway).toBe(srv.gatewayUrl);
    expect(live.gateway).toMatch(/^ws:\/\/127\.0\.14\.41:\d+\/tunnel$/);
    expect(live.peer.address).toBe(HOST);
    expect(live.peer.port).toBeGreaterThan(0);
  });

  it("pairs two endpoints in a room, refuses a third and bad bodies", async () => {
    expect(await (await rv({ room: "r1", me: me(100, "alice") })).json()).toEqual({ peer: null });
    expect(await (await rv({ room: "r1", me: me(200, "bob") })).json()).toEqual({ peer: me(100, "alice") });
    expect(await (await rv({ room: "r1", me: me(100, "alice") })).json()).toEqual({ peer: me(200, "bob") });
    const third = await rv({ room: "r1", me: me(300) });
    expect(third.status).toBe(409);
    expect(await third.text()).toMatch(/room is full/);
    for (const bad of [
      "not json",
      { room: "../etc", me: me(1) },
      { room: "r2", me: { ...me(1), qpn: 1 << 24 } },
      { room: "r2", me: { ...me(1), gid: "<script>" } },
      { room: "r2", me: { ...me(1), port: 0 } },
      { room: "r2", me: { ...me(1), name: "n".repeat(33) } },
      { room: "r2" },
    ]) {
      const r = await get("/rendezvous", { method: "POST", body: typeof bad === "string" ? bad : JSON.stringify(bad) });
      expect(r.status, JSON.stringify(bad)).toBe(400);
    }
    expect((await get("/rendezvous", { method: "POST", body: "x".repeat(5000) })).status).toBe(400);
  });

  it("gives the live peer's QP and memory region for a valid endpoint", async () => {
    const r = await get("/live/connect", { method: "POST", body: JSON.stringify(me(1024)) });
    expect(r.status).toBe(200);
    const peer = await r.json();
    expect(peer).toMatchObject({ gid: `::ffff:${HOST}`, length: 65536 });
    expect(peer.qpn).toBeGreaterThan(0);
    expect(typeof peer.addr).toBe("string");
    expect((await get("/live/connect", { method: "POST", body: "{}" })).status).toBe(400);
  });
});

describe("softroce playground command", () => {
  it("refuses a missing folder and bad flags; --help describes it", async () => {
    const out: string[] = [];
    const err: string[] = [];
    const io = { out: (t: string) => void out.push(t), err: (t: string) => void err.push(t) };
    expect(await runPlayground(["--dir", join(dir, "nope"), "--no-live", "--port", "0", "--host", HOST], io, Promise.resolve())).toBe(1);
    expect(err.join("")).toMatch(/no playground in .*nope \(run npm run build first\)/);
    await expect(runPlayground(["--host", "a b"], io, Promise.resolve())).rejects.toThrow(/--host/);
    await expect(runPlayground(["--port", "x"], io, Promise.resolve())).rejects.toThrow(/--port/);
    expect(await runPlayground(["--help"], io, Promise.resolve())).toBe(0);
    expect(out.join("")).toMatch(/Cross-Origin-Embedder-Policy:\s+require-corp/);
  });

  it("starts, prints where to open it, and stops when told", async () => {
    const out: string[] = [];
    let stop!: () => void;
    const stopped = new Promise<void>((r) => (stop = r));
    const run = runPlayground(["--dir", dir, "--no-live", "--port", "0", "--host", HOST], { out: (t) => void out.push(t), err: () => {} }, stopped);
    for (let i = 0; i < 100 && !out.length; i++) await new Promise((r) => setTimeout(r, 20));
    const url = /open (\S+)/.exec(out.join(""))![1];
    expect((await fetch(url)).status).toBe(200);
    stop();
    expect(await run).toBe(0);
    expect(out.join("")).toMatch(/stopped/);
    await expect(fetch(url)).rejects.toThrow();
  });
});
