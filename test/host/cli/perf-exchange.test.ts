// softroce perf's two-process mode over UDP, with both halves in this process: the TCP exchange,
// every test completing on real loopback sockets, the server refusing a mismatched test, a bad
// exchange line, the interface-derived MTU clamp, and a capture of the client's datagrams.
// This file's addresses: 127.0.42.0/24.
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import * as esbuild from "esbuild";
import net from "node:net";
import { once } from "node:events";
import { PerfPeerError, runPerfUdp, servePerfUdp, type PerfConnection } from "../../../host/cli/perf-exchange.js";
import { interfaceMtu, roceMtuFor } from "../../../host/node/netif.js";
import { PcapRecorder } from "../../../host/core/capture/recorder.js";
import type { PerfOptions } from "../../../host/core/perf/index.js";
import { checkRequestPsns } from "./capture-psns.js";

/** RDMA WRITE FIRST, MIDDLE, LAST, ONLY (RC) */
const WRITE_OPCODES = [0x06, 0x07, 0x08, 0x0a];

let nextTcp = 19100 + (process.pid % 500) * 2;

async function pair(options: PerfOptions, serverOptions: PerfOptions = options, extra: { pcap?: PcapRecorder; onServerConnected?(c: PerfConnection): void } = {}) {
  const tcpPort = nextTcp++;
  const status: string[] = [];
  const server = servePerfUdp(serverOptions, { address: "127.0.42.1", udpPort: 0, tcpPort, timeoutMs: 10_000, onStatus: (l) => status.push(l), onConnected: extra.onServerConnected });
  server.catch(() => {});
  await new Promise((r) => setTimeout(r, 50));
  const client = runPerfUdp(options, { server: "127.0.42.1", address: "127.0.42.1", udpPort: 0, tcpPort, timeoutMs: 10_000, pcap: extra.pcap });
  return { server, client, status };
}

describe("softroce perf over UDP (two processes' halves)", () => {
  it.each([
    [{ test: "write_bw", size: 8192, iterations: 40, txDepth: 8, mtu: 4096 }, 40],
    [{ test: "send_bw", size: 3000, iterations: 40, txDepth: 8, mtu: 1024 }, 40],
    [{ test: "read_bw", size: 5000, iterations: 20, txDepth: 4, qps: 2 }, 40],
    [{ test: "atomic_bw", iterations: 30, txDepth: 4 }, 30],
  ] as [PerfOptions, number][])("%o completes every message", async (o, messages) => {
    const { server, client, status } = await pair(o);
    const r = await client;
    const s = await server;
    expect(r).toMatchObject({ test: o.test, ok: true, lost: 0, duplicated: 0, corrupted: 0, errors: 0, clock: "wall", sim: null });
    expect(r.bw_avg_mbps).toBeGreaterThan(0);
    expect(s).toEqual({ test: o.test, received: o.test === "send_bw" ? messages : 0, errors: 0 });
    expect(status[0]).toMatch(/^waiting for a client on TCP port \d+$/);
    expect(r.link).toMatch(/^UDP /);
  });

  it("perftest's most QPs, 16384 a side, in one MR a side (perftest's default; an MR each would pass the device's max_mr), every WRITE landed", async () => {
    const o: PerfOptions = { test: "write_bw", size: 64, iterations: 5, txDepth: 1, qps: 16384 };
    const { server, client } = await pair(o);
    const r = await client;
    expect(r).toMatchObject({ test: "write_bw", qps: 16384, ok: true, messages: 5 * 16384, lost: 0, errors: 0 });
    expect(await server).toEqual({ test: "write_bw", received: 0, errors: 0 });
  }, 60_000);

  it.each([
    [{ test: "write_bw", size: 8192, iterations: 40, txDepth: 8, mtu: 4096 }, 40],
    [{ test: "send_bw", size: 3000, iterations: 40, txDepth: 8, mtu: 1024, qps: 2 }, 80],
    [{ test: "read_bw", size: 5000, iterations: 20, txDepth: 4 }, 20],
    [{ test: "atomic_bw", iterations: 30, txDepth: 4 }, 30],
  ] as [PerfOptions, number][])("-b %o: both sides post, each row is the two directions summed", async (o, messages) => {
    // the client's -b rules (the server was started without it)
    const { server, client } = await pair({ ...o, bidirectional: true }, o);
    const r = await client;
    const s = await server;
    expect(r).toMatchObject({ test: o.test, bidirectional: true, ok: true, lost: 0, duplicated: 0, corrupted: 0, errors: 0 });
    expect(s).toMatchObject({ test: o.test, received: o.test === "send_bw" ? messages : 0, errors: 0 });
    const [mine, theirs] = r.each_way!;
    expect(mine!.bw_avg_mbps).toBeGreaterThan(0);
    expect(theirs!.bw_avg_mbps).toBeGreaterThan(0);
    expect(r.bw_avg_mbps).toBeCloseTo(mine!.bw_avg_mbps + theirs!.bw_avg_mbps, 6);
    expect(r.msg_rate_mpps).toBeCloseTo(mine!.msg_rate_mpps + theirs!.msg_rate_mpps, 9);
    // what each side measured, as the other got it in the report exchange
    expect(s.bw!.mine).toEqual(theirs);
    expect(s.bw!.peer!.bw_avg_mbps).toBeCloseTo(mine!.bw_avg_mbps, 6);
  });

  it.each(["send_lat", "write_lat", "read_lat", "atomic_lat"] as const)("%s: every iteration answered", async (test) => {
    const { server, client } = await pair({ test, size: test === "atomic_lat" ? 8 : 64, iterations: 50 });
    const r = await client;
    const s = await server;
    expect(r).toMatchObject({ test, ok: true, lost: 0, errors: 0, iterations: 50 });
    expect(r.t_min).toBeGreaterThan(0);
    expect(s.received).toBe(test === "read_lat" || test === "atomic_lat" ? 0 : 50);
  });

  it("the server refuses a client running another test, and both say why", async () => {
    const { server, client } = await pair({ test: "write_bw", iterations: 5 }, { test: "read_bw" });
    await expect(client).rejects.toThrow(new PerfPeerError("the server refused: the client runs write_bw, this server read_bw"));
    await expect(server).rejects.toThrow("the client runs write_bw, this server read_bw");
  });

  it("the server rejects an exchange line that is not JSON", async () => {
    const tcpPort = nextTcp++;
    const server = servePerfUdp({ test: "write_bw" }, { address: "127.0.42.1", udpPort: 0, tcpPort, timeoutMs: 5000 });
    server.catch(() => {});
    await new Promise((r) => setTimeout(r, 50));
    const s = net.connect({ host: "127.0.42.1", port: tcpPort });
    await once(s, "connect");
    s.write("hello there\n");
    await expect(server).rejects.toThrow("the peer sent something that is not JSON (hello there)");
    s.destroy();
  });

  it("a TCP port in use gives the server a clear error", async () => {
    const tcpPort = nextTcp++;
    const blocker = net.createServer().listen({ port: tcpPort, host: "0.0.0.0" });
    await once(blocker, "listening");
    await expect(servePerfUdp({ test: "write_bw" }, { address: "127.0.42.1", udpPort: 0, tcpPort })).rejects.toThrow(`cannot listen on TCP port ${tcpPort}: EADDRINUSE`);
    blocker.close();
  });

  it("a client with no server gives a clear error", async () => {
    await expect(runPerfUdp({ test: "write_bw" }, { server: "127.0.42.1", address: "127.0.42.1", udpPort: 0, tcpPort: 1, timeoutMs: 2000 })).rejects.toThrow(
      "cannot reach the server 127.0.42.1 on TCP port 1: ECONNREFUSED",
    );
  });

  it("captures the client's datagrams with --pcap's recorder", async () => {
    const pcap = new PcapRecorder();
    const { server, client } = await pair({ test: "write_bw", size: 4096, iterations: 10, txDepth: 2, mtu: 1024 }, undefined, { pcap });
    const r = await client;
    await server;
    // 10 WRITEs of 4 packets each go out; ACKs come back
    const bytes = pcap.pcap();
    expect(bytes.length).toBeGreaterThan(24 + 40 * (16 + 1024));
    // 40 PSNs, each present; a go-back-N resend on a loaded machine only as a copy of the same packet
    const { resends } = checkRequestPsns(bytes, "127.0.42.1", WRITE_OPCODES, 40);
    expect(r.packets_sent).toBe(40 + resends);
  });

  it("without -m both sides take the port's active MTU, as perftest (loopback: 4096)", async () => {
    expect(roceMtuFor(interfaceMtu("127.0.42.1")!)).toBe(4096);
    let serverMtu = 0;
    const { server, client } = await pair({ test: "write_bw", size: 8192, iterations: 10, txDepth: 2 }, undefined, { onServerConnected: (c) => (serverMtu = c.mtu) });
    const r = await client;
    await server;
    expect(r).toMatchObject({ ok: true, mtu: 4096 });
    expect(serverMtu).toBe(4096);
  });

  it("each side's -m or active MTU, then the smaller of the two (perftest's check_mtu)", async () => {
    let serverMtu = 0;
    const { server, client } = await pair({ test: "write_bw", size: 4096, iterations: 10, txDepth: 2 }, { test: "write_bw", mtu: 512 }, { onServerConnected: (c) => (serverMtu = c.mtu) });
    const r = await client;
    await server;
    expect(r).toMatchObject({ ok: true, mtu: 512 });
    expect(serverMtu).toBe(512);
  });

  it("active MTU from the interface MTU as rxe (MTU - 80, rounded down to an IB MTU)", () => {
    expect([65536, 9000, 1500, 1400, 1100, 600, 300].map(roceMtuFor)).toEqual([4096, 4096, 1024, 1024, 512, 512, 256]);
    expect(interfaceMtu("127.0.0.1")).toBeGreaterThanOrEqual(1500);
    expect(interfaceMtu("192.0.2.77")).toBeUndefined();
  });
});

const ROOT = fileURLToPath(new URL("../../../", import.meta.url));
// Two levels under the root, like dist/cli/ (in .test-build/, which npm pack leaves out), so the bundle finds build/softroce.wasm.
const CLI = join(ROOT, ".test-build/cli-test-perf/softroce.js");

function start(args: string[]) {
  const child = spawn(process.execPath, [CLI, "perf", ...args], { stdio: ["ignore", "pipe", "pipe"] });
  const r = { stdout: "", stderr: "", done: undefined as unknown as Promise<number | null> };
  child.stdout.on("data", (d) => (r.stdout += d));
  child.stderr.on("data", (d) => (r.stderr += d));
  r.done = new Promise((resolve) => child.on("close", resolve));
  setTimeout(() => child.kill("SIGKILL"), 30_000).unref();
  return r;
}

describe("softroce perf <test> [server]: two real processes", () => {
  const dir = mkdtempSync(join(tmpdir(), "softroce-perf-"));
  beforeAll(async () => {
    await esbuild.build({
      entryPoints: [join(ROOT, "host/cli/softroce.ts")], outfile: CLI, bundle: true, format: "esm", platform: "node",
      target: "node20", packages: "external", logLevel: "warning",
    });
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it("server and client run write_bw over UDP; the client prints JSON, the server writes a pcap", async () => {
    const tcp = String(nextTcp++);
    const pcap = join(dir, "server.pcap");
    const server = start(["write_bw", "--address", "127.0.42.2", "--udp-port", "0", "-p", tcp, "--pcap", pcap]);
    const end = Date.now() + 10_000;
    while (!server.stderr.includes("waiting for a client") && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
    const client = start(["write_bw", "127.0.42.2", "--address", "127.0.42.1", "--udp-port", "0", "-p", tcp, "-s", "2048", "-n", "30", "-t", "4", "-m", "1024", "--json"]);
    expect(await client.done).toBe(0);
    expect(await server.done).toBe(0);
    const j = JSON.parse(client.stdout);
    expect(j).toMatchObject({ mode: "udp", test: "write_bw", size_bytes: 2048, iterations: 30, mtu_bytes: 1024, tx_depth: 4, ok: true, lost: 0, errors: 0 });
    expect(j.packets_sent).toBeGreaterThanOrEqual(60);
    // keys name their unit; nothing of the simulated wire, and no `verified` without --verify
    for (const k of ["bw_peak_MiBps", "bw_avg_MiBps", "bw_avg_Gbps", "msg_rate_Mpps", "duration_usec", "wall_ms"]) expect(typeof j[k], k).toBe("number");
    for (const k of ["wire", "faults", "seed", "verified", "verify", "virtual", "clock", "bw_avg_mbps"]) expect(j, k).not.toHaveProperty(k);
    expect(j.bw_peak_MiBps).toBeLessThanOrEqual(j.bw_avg_MiBps * 20);
    expect(j.local.qp[0].qpn).toBeGreaterThan(0);
    expect(j.remote.gid).toBe("::ffff:127.0.42.2");
    // the server prints perftest's header, address lines and its own row
    expect(server.stdout).toContain("                    RDMA_Write BW Test\n");
    expect(server.stdout).toMatch(/^ local address: LID 0000 QPN 0x[0-9a-f]{4,} PSN 0x[0-9a-f]{4,} RKey 0x[0-9a-f]{6,} VAddr 0x[0-9a-f]{14,}$/m);
    expect(server.stdout).toMatch(/^ GID: 00:00:00:00:00:00:00:00:00:00:255:255:127:00:42:02$/m);
    expect(server.stdout).toMatch(/^ 2048 +30 +[\d.]+ +[\d.]+\s+[\d.]+$/m);
    expect(j.link).toMatch(/^UDP 127\.0\.42\.1:\d+ <-> ::ffff:127\.0\.42\.2 port \d+ /);
    expect(server.stderr).toMatch(/^softroce perf: waiting for a client on TCP port \d+\nsoftroce perf: connected: write_bw, 1 QP\(s\), 2048 B, MTU 1024\nsoftroce perf: server done: write_bw, received 0, errors 0\n$/);
    const bytes = readFileSync(pcap);
    expect(bytes.readUInt32LE(0)).toBe(0xa1b2c3d4);
    // the server received 60 WRITE packets of 1024 B payload (plus headers) and sent ACKs: every
    // PSN, and what the client resent under load (its packets_sent) only as copies
    expect(bytes.length).toBeGreaterThan(24 + 60 * 1024);
    const { resends } = checkRequestPsns(bytes, "127.0.42.1", WRITE_OPCODES, 60);
    expect(j.packets_sent).toBeGreaterThanOrEqual(60 + resends);
  });

  it("-b in two processes: both print perftest's bidirectional title and a summed row", async () => {
    const tcp = String(nextTcp++);
    const server = start(["send_bw", "--address", "127.0.42.4", "--udp-port", "0", "-p", tcp]);
    const end = Date.now() + 10_000;
    while (!server.stderr.includes("waiting for a client") && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
    const client = start(["send_bw", "127.0.42.4", "--address", "127.0.42.3", "--udp-port", "0", "-p", tcp, "-b", "-s", "1024", "-n", "30", "-t", "4"]);
    expect(await client.done, client.stderr).toBe(0);
    expect(await server.done, server.stderr).toBe(0);
    for (const out of [client.stdout, server.stdout]) {
      expect(out).toContain("                    Send Bidirectional BW Test\n");
      expect(out).toMatch(/^ 1024 +30 +[\d.]+ +[\d.]+\s+[\d.]+$/m);
    }
    // the server received the client's 30 SENDs (and the client the server's 30)
    expect(server.stderr).toContain("softroce perf: server done: send_bw, received 30, errors 0\n");
  });

  it("a client whose server is not there exits 1 with one line", async () => {
    const client = start(["send_bw", "127.0.42.2", "--address", "127.0.42.1", "--udp-port", "0", "-p", "1", "-n", "5"]);
    expect(await client.done).toBe(1);
    expect(client.stderr).toBe("softroce perf: cannot reach the server 127.0.42.2 on TCP port 1: ECONNREFUSED\n");
    expect(client.stdout).toBe("");
  });
});
