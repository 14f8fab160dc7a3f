// What a new user meets in the first hour (issue 13): the version, flags named as rdma-core and
// perftest name them (and a pointer when an old or foreign name is used), errors that name the
// address, port and option to change, a perf server that exits after --wait, the TCP exchange
// helper, bigints in JSON, and a node GUID derived from the address.
import dgram from "node:dgram";
import net from "node:net";
import { describe, expect, it } from "vitest";
import {
  ExchangeError, UdpBindError, connectQpOverTcp, jsonReplacer, nodeGuidFor, openDevice, remoteAddr, remoteMr, udpPortOf,
  Access, QpState, QpType,
} from "../../../host/node/index.js";
import { freeTcpPort, freeUdpPort, useCli } from "../support/cli-process.js";

const { start } = useCli("cli-test-first");
// this file's own loopback addresses, so parallel runs elsewhere do not collide
const A = "127.0.13.1";
const B = "127.0.13.2";

describe("the softroce command", () => {
  it("--version prints the package version", async () => {
    const r = start("--version");
    expect(await r.done).toBe(0);
    expect(r.stdout).toMatch(/^softroce \d+\.\d+\.\d+\n$/);
  });

  it.each([
    [["rc_pingpong", "--tcp-port", "1"], /unknown flag --tcp-port \(the TCP port is -p\/--port, as in rdma-core\)/],
    [["perf", "write_bw", "--timeout", "14"], /unknown flag --timeout \(the QP's ACK timeout exponent is -u\/--qp-timeout .*seconds to wait are --wait\)/],
    [["perf", "write_bw", "--tcp-port", "1"], /unknown flag --tcp-port \(the TCP port is -p\/--port, as in perftest\)/],
    [["devinfo", "--port", "1"], /unknown flag --port \(the device's UDP port is --udp-port\)/],
    [["perf", "write_lat", "--local", "-b"], /bidirectional applies to the bandwidth tests \(send_bw, write_bw, read_bw, atomic_bw\), not write_lat/],
    [["perf", "write_bw", "-x", "1"], /-x\/--gid-index 1: the device has one GID, index 0/],
    [["perf", "write_bw", "-d", "mlx5_0"], /-d\/--ib-dev: no device 'mlx5_0' \(the only one is softroce0\)/],
    [["perf", "write_bw", "-a", "10.0.0.1"], /-a\/--all between two processes runs with --perftest or -R/],
    [["perf", "write_bw", "-D", "5", "10.0.0.1"], /-D\/--duration between two processes runs with --perftest or -R/],
  ])("%o is a usage error naming the flag to use", async (args, re) => {
    const r = start(...args);
    expect(await r.done).toBe(2);
    expect(r.stderr).toMatch(re);
  });
});

describe("softroce perf", () => {
  it("-a runs every size from 2 to 2^23 bytes, a row each; --report_gbits reports Gb/sec", async () => {
    const r = start("perf", "write_bw", "--local", "-a", "-n", "4", "-t", "2", "-F", "--report_gbits");
    expect(await r.done, r.stderr).toBe(0);
    expect(r.stdout).toContain("BW peak[Gb/sec]    BW average[Gb/sec]");
    const rows = r.stdout.split("\n").filter((l) => /^ \d+ +4 +[\d.]+ +[\d.]+\s+[\d.]+$/.test(l));
    expect(rows.map((l) => Number(l.trim().split(/ +/)[0]))).toEqual(Array.from({ length: 23 }, (_, i) => 2 << i));
    expect(r.stderr).toBe(""); // progress only on a terminal
  }, 120_000);

  it("-D runs about that long; -u sets the QP timeout; --json without --verify has no `verified`", async () => {
    const r = start("perf", "send_bw", "--local", "-D", "1", "-n", "50", "-s", "64", "-u", "10", "--json");
    expect(await r.done, r.stderr).toBe(0);
    const j = JSON.parse(r.stdout);
    expect(j.iterations).toBeGreaterThan(0);
    expect(j).not.toHaveProperty("verified");
    expect(j.bw_peak_MiBps).toBeGreaterThanOrEqual(j.bw_avg_MiBps * 0.999);
    expect(j.bw_peak_MiBps).toBeLessThanOrEqual(j.bw_avg_MiBps * 20);
  }, 60_000);

  it("-I posts SEND/WRITE inline (every message verified); other tests and sizes over 512 are refused", async () => {
    const r = start("perf", "write_bw", "--local", "-I", "256", "-s", "200", "-n", "40", "--verify");
    expect(await r.done, r.stderr).toBe(0);
    expect(r.stdout).toContain(" Max inline data : 256[B]\n");
    expect(r.stdout).toMatch(/^ verified 40 of 40 {2}lost 0 /m);
    const bad = start("perf", "read_bw", "--local", "-I", "64");
    expect(await bad.done).toBe(2);
    expect(bad.stderr).toMatch(/-I\/--inline_size: Inline feature not available on READ\/Atomic verbs \(read_bw\)/);
    const big = start("perf", "send_bw", "--local", "-I", "600");
    expect(await big.done).toBe(2);
    expect(big.stderr).toMatch(/--inline_size must be at most 512/);
  }, 30_000);

  it("a server with --wait exits 1 after the wait when no client comes", async () => {
    const r = start("perf", "write_bw", "--address", A, "--udp-port", "0", "-p", String(await freeTcpPort()), "--wait", "1");
    expect(await r.done).toBe(1);
    expect(r.stderr).toMatch(/no client within 1 s on TCP port \d+\n$/);
  }, 20_000);

  it("a server whose UDP port is taken fails at once, naming address, port and --udp-port, before listening on TCP", async () => {
    const s = dgram.createSocket("udp4");
    await new Promise<void>((res) => s.bind(0, A, res));
    const udp = s.address().port;
    const tcp = await freeTcpPort();
    const r = start("perf", "write_bw", "--address", A, "--udp-port", String(udp), "-p", String(tcp), "--wait", "30");
    const code = await r.done;
    s.close();
    expect(code).toBe(1);
    expect(r.stderr).toBe(`softroce perf: cannot bind UDP ${A}:${udp}: EADDRINUSE (already in use, by another device or Linux rxe: choose another address or UDP port (openDevice's \`port\`, the CLI's --udp-port), or 0 for any free port)\n`);
    expect(r.stderr).not.toContain("waiting for a client");
  }, 20_000);
});

describe("rc_pingpong errors", () => {
  it("mismatched UDP ports end in a retry failure that points at --udp-port", async () => {
    const tcp = String(await freeTcpPort());
    const server = start("rc_pingpong", "--address", A, "--udp-port", String(await freeUdpPort(A, B)), "-p", tcp, "--timeout", "10", "-n", "5");
    const end = Date.now() + 10_000;
    while (!server.stderr.includes("waiting for a client") && Date.now() < end) await new Promise((r) => setTimeout(r, 20));
    const client = start("rc_pingpong", "--address", B, "--udp-port", String(await freeUdpPort(A, B)), "-p", tcp, "--timeout", "10", "-n", "5", A);
    expect(await client.done).toBe(1);
    expect(client.stderr).toMatch(/Failed status transport retry counter exceeded \(12\) for wr_id \d+ \(the peer's device never answered on UDP port \d+: both sides need the same --udp-port/);
  }, 30_000);

  it("a UDP port in use names the address, the port and --udp-port", async () => {
    const s = dgram.createSocket("udp4");
    await new Promise<void>((res) => s.bind(0, A, res));
    const udp = s.address().port;
    const r = start("rc_pingpong", "--address", A, "--udp-port", String(udp), "-p", String(await freeTcpPort()));
    const code = await r.done;
    s.close();
    expect(code).toBe(1);
    expect(r.stderr).toMatch(new RegExp(`^softroce rc_pingpong: Couldn't get context for softroce0: cannot bind UDP ${A.replace(/\./g, "\\.")}:${udp}: EADDRINUSE .*--udp-port`));
  });
});

describe("openDevice and connectQpOverTcp", () => {
  it("a second device on the same address and port throws UdpBindError with code, address and port", async () => {
    const a = await openDevice({ address: A, port: 0 });
    try {
      const port = udpPortOf(a)!;
      const e = await openDevice({ address: A, port }).catch((x: unknown) => x);
      expect(e).toBeInstanceOf(UdpBindError);
      expect(e).toMatchObject({ code: "EADDRINUSE", address: A, port });
    } finally {
      a.close();
    }
  });

  it("the node GUID is derived from the address (EUI-64 of a MAC made of it), stable across runs", async () => {
    expect(nodeGuidFor("127.0.13.1")).toBe(0x00007fff_fe000d01n);
    expect(nodeGuidFor("127.0.13.1", 5000)).not.toBe(nodeGuidFor("127.0.13.1"));
    expect(nodeGuidFor("fd00::1:2:3:4")).toBe(0x0001000200030004n);
    const a = await openDevice({ address: A, port: 0 });
    try {
      expect(a.query().nodeGuid).toBe(nodeGuidFor(A, udpPortOf(a)));
    } finally {
      a.close();
    }
  });

  it("bigints have a JSON form: jsonReplacer, remoteMr and remoteAddr", () => {
    expect(JSON.stringify({ addr: 1n << 60n, wrId: 7n }, jsonReplacer)).toBe(`{"addr":"${1n << 60n}","wrId":"7"}`);
    expect(remoteAddr("1152921504606846976")).toBe(1n << 60n);
    expect(remoteAddr("0x10")).toBe(16n);
    for (const bad of ["-1", "1e3", 12, "18446744073709551616", ""]) expect(() => remoteAddr(bad)).toThrow(ExchangeError);
    expect(typeof remoteMr).toBe("function");
  });

  it("connects two QPs to RTS over TCP, and names the port when nobody listens", async () => {
    const devs = await Promise.all([openDevice({ address: A, port: 0 }), openDevice({ address: B, port: 0 })]);
    try {
      const [s, c] = devs.map((d) => {
        const pd = d.allocPd();
        const cq = d.createCq(4);
        return { qp: pd.createQp({ qpType: QpType.RC, sendCq: cq, recvCq: cq, cap: { maxSendWr: 1, maxRecvWr: 1, maxSendSge: 1, maxRecvSge: 1 } }), mr: pd.regMr(64, Access.LOCAL_WRITE) };
      });
      let port = 0;
      let resolvePort!: (p: number) => void;
      const portP = new Promise<number>((r) => (resolvePort = r));
      const [rs, rc] = await Promise.all([
        connectQpOverTcp(s!.qp, devs[0]!, { port: 0, listenAddress: A, info: { mr: remoteMr(s!.mr) }, onListening: resolvePort, timeoutMs: 10_000 }),
        portP.then((p) => ((port = p), connectQpOverTcp(c!.qp, devs[1]!, { host: A, port: p, timeoutMs: 10_000 }))),
      ]);
      expect(port).toBeGreaterThan(0);
      expect(s!.qp.state).toBe(QpState.RTS);
      expect(c!.qp.state).toBe(QpState.RTS);
      expect(rc.remote).toMatchObject({ qpNum: s!.qp.qpNum, gid: `::ffff:${A}`, port: udpPortOf(devs[0]!) });
      expect(rs.remote).toMatchObject({ qpNum: c!.qp.qpNum, gid: `::ffff:${B}`, port: udpPortOf(devs[1]!) });
      expect(rc.info).toEqual({ mr: remoteMr(s!.mr) });
      const closed = await freeTcpPort();
      const e = await connectQpOverTcp(c!.qp, devs[1]!, { host: A, port: closed }).catch((x: unknown) => x);
      expect(e).toBeInstanceOf(ExchangeError);
      expect(e).toMatchObject({ code: "ECONNECT" });
      expect((e as Error).message).toContain(`${A}:${closed}`);
    } finally {
      for (const d of devs) d.close();
    }
  });

  it("a peer that is not softroce is refused (EPROTO), not trusted", async () => {
    const d = await openDevice({ address: A, port: 0 });
    const srv = net.createServer((sock) => sock.end("hello there\n"));
    await new Promise<void>((r) => srv.listen(0, A, r));
    try {
      const qp = d.allocPd().createQp({ qpType: QpType.RC, sendCq: d.createCq(2), recvCq: d.createCq(2), cap: { maxSendWr: 1, maxRecvWr: 1, maxSendSge: 1, maxRecvSge: 1 } });
      const e = await connectQpOverTcp(qp, d, { host: A, port: (srv.address() as net.AddressInfo).port, timeoutMs: 5000 }).catch((x: unknown) => x);
      expect(e).toMatchObject({ code: "EPROTO" });
    } finally {
      srv.close();
      d.close();
    }
  });
});

