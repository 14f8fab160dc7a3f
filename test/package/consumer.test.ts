// A user's project: the packed tarball installed offline into a temporary directory, a Node
// program and a browser module that use the package type-checked under nodenext and bundler
// resolution, and the Node program run.
import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ROOT, cleanEnv, npm, requireBuild } from "./npm.js";

const TSC = join(ROOT, "node_modules/typescript/bin/tsc");

const NODE_PROGRAM = `import { openDevice, openTunnelDevice, connectQp, localEndpoint, nameOf, udpPortOf, UdpBindError,
  datapathOf, Access, QpType, WcStatus, WrOpcode, SendFlags, type Device, type TunnelDevice } from "softroce";

const a: Device = await openDevice({ address: "127.0.0.1", port: 0 });
const b: Device = await openDevice({ address: "127.0.0.2", port: 0 });
try {
  await openDevice({ address: "127.0.0.1", port: udpPortOf(a) });
} catch (e) {
  if (e instanceof UdpBindError) console.log("second bind:", e.code);
}
const ends = [a, b].map((dev) => {
  const pd = dev.allocPd();
  const cq = dev.createCq(8);
  const qp = pd.createQp({ qpType: QpType.RC, sendCq: cq, recvCq: cq, cap: { maxSendWr: 4, maxRecvWr: 4, maxSendSge: 1, maxRecvSge: 1 } });
  return { dev, cq, qp, mr: pd.regMr(64, Access.LOCAL_WRITE | Access.REMOTE_WRITE) };
});
const [x, y] = ends;
connectQp(x.qp, localEndpoint(y.qp, y.dev, 2), { sqPsn: 1 });
connectQp(y.qp, localEndpoint(x.qp, x.dev, 1), { sqPsn: 2, qpAccessFlags: Access.REMOTE_WRITE });
x.mr.bytes[0] = 42;
x.qp.postSend({ wrId: 7n, opcode: WrOpcode.RDMA_WRITE, sendFlags: SendFlags.SIGNALED, sgList: [x.mr.sge(0, 1)], rdma: { remoteAddr: y.mr.addr, rkey: y.mr.rkey } });
const wc = await x.cq.next();
console.log("write:", nameOf(WcStatus, wc.status), y.mr.bytes[0]);
console.log("datapath:", datapathOf(a)?.path);
a.close();
b.close();
// type-checked, not called: needs a gateway
export const tunnel: (url: string) => Promise<TunnelDevice> = (url) => openTunnelDevice(url, { token: "t" });
`;

const BROWSER_MODULE = `import { openDevice, openTunnelDevice, SimNetwork, WireCodec, decodePacket, QpType, type TunnelDevice, type Device } from "softroce";

export async function page(url: string): Promise<[Device, TunnelDevice, typeof SimNetwork, typeof WireCodec, typeof decodePacket, number]> {
  return [await openDevice({ maxQp: 4 }), await openTunnelDevice(url), SimNetwork, WireCodec, decodePacket, QpType.RC];
}
`;

function tsconfig(moduleResolution: "nodenext" | "bundler", files: string[], extra: Record<string, unknown> = {}) {
  return JSON.stringify({
    compilerOptions: {
      target: "ES2022", strict: true, skipLibCheck: false, noEmit: moduleResolution !== "nodenext", outDir: "out",
      module: moduleResolution === "nodenext" ? "nodenext" : "esnext", moduleResolution,
      lib: ["ES2022", "DOM"], types: ["node"], typeRoots: [join(ROOT, "node_modules/@types")], ...extra,
    },
    files,
  });
}

describe("the package in a user's project", () => {
  let dir: string;
  let installed = false;
  beforeAll(() => {
    requireBuild();
    dir = mkdtempSync(join(tmpdir(), "softroce-consumer-"));
    const packed = npm(["pack", "--pack-destination", dir, "--ignore-scripts"], ROOT);
    expect(packed.status, packed.stderr).toBe(0);
    const tarball = readdirSync(dir).find((f) => f.startsWith("softroce-") && f.endsWith(".tgz"));
    expect(tarball, `npm pack wrote no tarball: ${packed.stderr}`).toBeDefined();
    const proj = join(dir, "app");
    rmSync(proj, { recursive: true, force: true });
    spawnSync("mkdir", [proj]);
    writeFileSync(join(proj, "package.json"), JSON.stringify({ name: "app", private: true, type: "module" }));
    // Offline: the dependency (ws) comes packed from this checkout's node_modules, since the npm
    // cache holds its tarball but not the registry's metadata an offline resolve would need.
    const ws = npm(["pack", join(ROOT, "node_modules/ws"), "--pack-destination", dir, "--ignore-scripts"], ROOT);
    expect(ws.status, ws.stderr).toBe(0);
    const wsTarball = readdirSync(dir).find((f) => f.startsWith("ws-") && f.endsWith(".tgz"));
    const r = npm(["install", "--offline", "--no-audit", "--no-fund", join(dir, tarball!), join(dir, wsTarball!)], proj);
    expect(r.status, `npm install of the tarball failed:\n${r.stderr}`).toBe(0);
    writeFileSync(join(proj, "node-api.ts"), NODE_PROGRAM);
    writeFileSync(join(proj, "browser-api.ts"), BROWSER_MODULE);
    installed = true;
  }, 300_000);
  afterAll(() => {
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  const tsc = (name: string, config: string) => {
    expect(installed).toBe(true);
    const proj = join(dir, "app");
    writeFileSync(join(proj, name), config);
    const r = spawnSync(process.execPath, [TSC, "-p", name], { cwd: proj, encoding: "utf8", env: cleanEnv() });
    expect(r.status, `tsc -p ${name}:\n${r.stdout}${r.stderr}`).toBe(0);
  };

  it("the Node program type-checks under nodenext, and runs", () => {
    tsc("tsconfig.nodenext.json", tsconfig("nodenext", ["node-api.ts"]));
    const r = spawnSync(process.execPath, ["out/node-api.js"], { cwd: join(dir, "app"), encoding: "utf8", timeout: 30_000 });
    expect(r.status, r.stderr).toBe(0);
    // The install step built the addon from the packed sources wherever this checkout's own build
    // did (a source missing from the tarball leaves the user on node:dgram).
    const native = existsSync(join(ROOT, "host/node/native/build/Release/softroce_sockopt.node"));
    expect(r.stdout).toBe(`second bind: EADDRINUSE\nwrite: SUCCESS 42\ndatapath: ${native ? "native" : "dgram"}\n`);
  }, 240_000);

  it("the installed CLI serves the playground (the demo's last line sends a user there)", async () => {
    expect(installed).toBe(true);
    const proj = join(dir, "app");
    const child = spawn(process.execPath, [join(proj, "node_modules/softroce/dist/cli/softroce.js"), "playground", "--port", "0", "--host", "127.0.0.1", "--no-live", "--duration", "60"], { cwd: proj, stdio: ["ignore", "pipe", "pipe"] });
    try {
      let out = "";
      const url = await new Promise<string>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`no URL within 30 s: ${out}`)), 30_000);
        child.stdout!.on("data", (b: Buffer) => {
          out += b;
          const m = /open (http:\/\/\S+\/)/.exec(out);
          if (m) { clearTimeout(timer); resolve(m[1]); }
        });
        child.stderr!.on("data", (b: Buffer) => (out += b));
        child.on("exit", (code) => { clearTimeout(timer); reject(new Error(`exited ${code}: ${out}`)); });
      });
      const page = await fetch(url);
      expect(page.status).toBe(200);
      expect(page.headers.get("cross-origin-opener-policy")).toBe("same-origin");
      const html = await page.text();
      for (const src of [...html.matchAll(/(?:src|href)="\.?\/?([\w./-]+\.(?:js|css))"/g)].map((m) => m[1])) {
        expect((await fetch(new URL(src, url))).status, src).toBe(200);
      }
      expect(html).toMatch(/playground\.js/);
      expect((await fetch(new URL("chat/", url))).status).toBe(200);
    } finally {
      child.kill();
    }
  }, 60_000);

  it("the Node program type-checks under bundler resolution with the node condition", () => {
    tsc("tsconfig.bundler-node.json", tsconfig("bundler", ["node-api.ts"], { customConditions: ["node"] }));
  }, 240_000);

  it("the browser module type-checks under bundler resolution and nodenext (browser types by default)", () => {
    tsc("tsconfig.bundler.json", tsconfig("bundler", ["browser-api.ts"]));
    tsc("tsconfig.browser-nodenext.json", tsconfig("nodenext", ["browser-api.ts"], { outDir: "out-browser", customConditions: ["browser"] }));
  }, 240_000);

  it("a Node-only name is not in the browser types (the check above can fail)", () => {
    const proj = join(dir, "app");
    writeFileSync(join(proj, "wrong.ts"), `import { connectQpOverTcp } from "softroce";\nexport const f = connectQpOverTcp;\n`);
    writeFileSync(join(proj, "tsconfig.wrong.json"), tsconfig("bundler", ["wrong.ts"]));
    const r = spawnSync(process.execPath, [TSC, "-p", "tsconfig.wrong.json"], { cwd: proj, encoding: "utf8", env: cleanEnv() });
    expect(r.status).not.toBe(0);
    expect(r.stdout).toMatch(/TS2305|TS2724/);
  }, 240_000);
});
