// softroce rc_pingpong as rdma-core's ibv_rc_pingpong: server and client as two processes on
// 127.0.40.1 / 127.0.40.2 (this file's addresses; free UDP and TCP ports), the summary lines, -c, usage errors, the
// server's timeout, and the 52-byte exchange spoken to the server over a raw TCP socket.
import net from "node:net";
import { join } from "node:path";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { describe, expect, it } from "vitest";
import { ADDR_RE, freeTcpPort, freeUdpPort, parseOut, until, useCli } from "../support/cli-process.js";
import { readCaptureAll } from "../../../host/core/capture/pcap.js";
import { checkRequestPsns } from "./capture-psns.js";
import { icrcMatches } from "../../../host/core/capture/recorder.js";
import { WireCodec } from "../../../host/core/wire/codec.js";
import { coreModule } from "../../../host/node/wasm-source.js";
import { formatDestMsg, parseDestMsg, gidToWire, wireToGid, summaryLines, OOB_MSG_LEN } from "../../../host/cli/pingpong.js";

const { start } = useCli("cli-test-pingpong");
/** this file's addresses: the server's and the client's */
const S = "127.0.40.1";
const C = "127.0.40.2";

async function pingpong(extra: string[], serverExtra: string[] = []) {
  const udp = String(await freeUdpPort(S, C));
  const tcp = String(await freeTcpPort());
  const server = start("rc_pingpong", "--address", S, "--udp-port", udp, "-p", tcp, "--timeout", "20", ...extra, ...serverExtra);
  await until(() => server.stdout.includes("local address"));
  const client = start("rc_pingpong", "--address", C, "--udp-port", udp, "-p", tcp, "--timeout", "20", ...extra, S);
  const [sc, cc] = await Promise.all([server.done, client.done]);
  expect({ code: cc, err: client.stderr }).toEqual({ code: 0, err: "" });
  expect({ code: sc, err: server.stderr.replace(/^rc_pingpong: (waiting|wrote|\d+\/).*\n/gm, "") }).toEqual({ code: 0, err: "" });
  return { server: parseOut(server.stdout), client: parseOut(client.stdout) };
}

describe("rc_pingpong, two processes", () => {
  it("-s 64 -n 20: address lines cross-match, the summary lines count the bytes", async () => {
    const { server, client } = await pingpong(["-s", "64", "-n", "20"]);
    expect(server.local.gid).toBe(`::ffff:${S}`);
    expect(client.local.gid).toBe(`::ffff:${C}`);
    expect(server.remote).toEqual(client.local);
    expect(client.remote).toEqual(server.local);
    expect(server.local.lid).toBe("0000");
    for (const side of [server, client]) {
      expect(side.bytes).toBe(64 * 20 * 2);
      expect(side.iters).toBe(20);
      expect(side.lines).toHaveLength(4);
    }
  });

  it("-s 10000 -m 1024 -n 10 -c: multi-packet messages, the server validates its buffer; --pcap records every datagram", async () => {
    const file = join(mkdtempSync(join(tmpdir(), "softroce-pp-")), "server.pcap");
    const { server, client } = await pingpong(["-s", "10000", "-m", "1024", "-n", "10", "-c"], ["--pcap", file]);
    expect(server.bytes).toBe(200000);
    expect(client.bytes).toBe(200000);
    expect(server.lines.some((l) => l.startsWith("invalid data"))).toBe(false);
    // 10 messages each way of 10 packets (MTU 1024), plus the ACKs: every one with a good ICRC
    const codec = await WireCodec.create(await coreModule());
    const bytes = readFileSync(file);
    const recs = readCaptureAll(bytes);
    // each way 100 SEND packets, every PSN present; on a loaded machine a timeout may resend some
    // (go-back-N), which passes only as an identical copy of a packet already sent
    const resends = [S, C].map((from) => checkRequestPsns(bytes, from, [0, 1, 2], 100).resends);
    expect(recs.length).toBeGreaterThan(200 + resends[0]! + resends[1]!);
    expect(recs.every((r) => icrcMatches(codec, r.data!))).toBe(true);
    // what the server sent comes from S, what it received from C
    const srcs = new Set(recs.map((r) => r.data!.subarray(12, 16).join(".")));
    expect(srcs).toEqual(new Set([S, C]));
  });

  it("-e (CQ events) and -r 2 (few receives, reposted as rdma-core does)", async () => {
    const { server, client } = await pingpong(["-s", "128", "-n", "30", "-e", "-r", "2"]);
    expect([server.iters, client.iters]).toEqual([30, 30]);
  });

  it("the server gives up cleanly when no client comes (--timeout)", async () => {
    const server = start("rc_pingpong", "--address", S, "--udp-port", String(await freeUdpPort(S, C)), "-p", String(await freeTcpPort()), "--timeout", "1");
    expect(await server.done).toBe(1);
    expect(server.stderr).toMatch(/^rc_pingpong: waiting for a client on TCP port \d+ \(at most 1 s\)\nsoftroce rc_pingpong: timed out after 1 s waiting for a client on TCP port \d+\n$/);
  });

  it("the client reports a server that is not there (exit 1, rdma-core's message)", async () => {
    const tcp = await freeTcpPort();
    const c = start("rc_pingpong", "--address", C, "--udp-port", String(await freeUdpPort(S, C)), "-p", String(tcp), S);
    expect(await c.done).toBe(1);
    expect(c.stderr).toBe(`softroce rc_pingpong: Couldn't connect to ${S}:${tcp} (ECONNREFUSED)\n`);
  });
});

describe("rc_pingpong's out-of-band exchange, over a raw TCP socket", () => {
  async function rawServer() {
    const tcp = await freeTcpPort();
    const server = start("rc_pingpong", "--address", S, "--udp-port", String(await freeUdpPort(S, C)), "-p", String(tcp), "--timeout", "2");
    await until(() => server.stdout.includes("local address"));
    const sock = net.createConnection({ host: S, port: tcp });
    await new Promise((r) => sock.once("connect", r));
    let got = Buffer.alloc(0);
    sock.on("data", (d) => (got = Buffer.concat([got, d])));
    return { server, sock, got: () => got };
  }

  it("the server answers with exactly 52 bytes in rdma-core's format, its GID on the wire in byte order", async () => {
    const { server, sock, got } = await rawServer();
    // a client at 127.0.40.2 (QPN 0x123, PSN 0xabcdef), as ibv_rc_pingpong would write it
    sock.write(Buffer.from("0000:000123:abcdef:00000000000000000000ffff7f002802\0", "latin1"));
    await until(() => got().length >= OOB_MSG_LEN);
    const msg = got();
    expect(msg.length).toBe(52);
    const text = msg.toString("latin1");
    expect(text).toMatch(/^0000:[0-9a-f]{6}:[0-9a-f]{6}:00000000000000000000ffff7f002801\0$/);
    const local = ADDR_RE.exec(server.stdout.split("\n")[0])!;
    expect(text.slice(5, 11)).toBe(local[3]);
    expect(text.slice(12, 18)).toBe(local[4]);
    sock.end(Buffer.from("done\0", "latin1"));
    await until(() => server.stdout.includes("remote address"));
    expect(server.stdout).toContain("  remote address: LID 0x0000, QPN 0x000123, PSN 0xabcdef, GID ::ffff:127.0.40.2\n");
    // nobody sends at 127.0.40.2: the server waits for a completion until its timeout
    expect(await server.done).toBe(1);
    expect(server.stderr).toMatch(/timed out after 2 s waiting for a completion \(0\/1000 iters done\)\nrc_pingpong: stalled after 0 of 1000 receives and 0 of 1000 sends completed, waiting for: a receive\n/);
    // the stall report: where the packet path stands (nothing came, nothing is held, the socket is watched and empty)
    expect(server.stderr).toMatch(/\nrc_pingpong: {3}qp 0x[0-9a-f]{6}: RTS; cq: 0 completions not polled\n/);
    expect(server.stderr).toMatch(/\nrc_pingpong: {3}port: 0 datagrams sent, 0 received, 0 dropped; 0 batches, 0 timer ticks\n/);
    expect(server.stderr).toMatch(/\nrc_pingpong: {3}port holds: 0 TX descriptors unsent, 0 in the link, deferred flush none; timer not armed\n/);
    expect(server.stderr).toMatch(/\nrc_pingpong: {3}socket: receiving, watched for readable; holds a datagram now: no\n/);
    expect(server.stderr).toMatch(/\nrc_pingpong: {3}device counters: all 0\n$/);
  });

  it("a malformed message ends the server with a clear error", async () => {
    const { server, sock } = await rawServer();
    sock.write(Buffer.alloc(52, 0x41));
    expect(await server.done).toBe(1);
    expect(server.stderr).toMatch(/softroce rc_pingpong: bad address message from the peer: 'A{52}'\n$/);
  });

  it("format and parse helpers round-trip; the GID is hex of its bytes in order", () => {
    const gid = wireToGid("fe800000000000000000000000000001");
    expect(gidToWire(gid)).toBe("fe800000000000000000000000000001");
    const msg = formatDestMsg({ lid: 0, qpn: 0x11, psn: 0x123456, gid });
    expect(Buffer.from(msg).toString("latin1")).toBe("0000:000011:123456:fe800000000000000000000000000001\0");
    expect(parseDestMsg(msg)).toEqual({ lid: 0, qpn: 0x11, psn: 0x123456, gid });
    expect(summaryLines(4096, 1000, 1_500_000)).toBe(
      "8192000 bytes in 1.50 seconds = 43.69 Mbit/sec\n1000 iters in 1.50 seconds = 1500.00 usec/iter\n",
    );
  });
});

describe("rc_pingpong usage errors: exit 2 and one line", () => {
  const cases: [string[], RegExp][] = [
    [["-m", "1000"], /-m\/--mtu must be 256, 512, 1024, 2048 or 4096, got 1000/],
    [["--bogus"], /unknown flag --bogus/],
    [["-n", "abc"], /--iters wants an integer, got 'abc'/],
    [["-n", "0"], /--iters must be at least 1, got 0/],
    [["-p", "70000"], /--port must be at most 65535, got 70000/],
    [["--address", "nowhere"], /--address wants a local IPv4 or IPv6 address, got 'nowhere'/],
    [["a", "b"], /unexpected argument 'b'/],
  ];
  for (const [args, re] of cases) {
    it(args.join(" "), async () => {
      const r = start("rc_pingpong", ...args);
      expect(await r.done).toBe(2);
      expect(r.stdout).toBe("");
      expect(r.stderr.split("\n")).toHaveLength(2);
      expect(r.stderr).toMatch(re);
    });
  }

  it("-g past the GID table, -d naming another device, -i 2: rdma-core's messages, exit 1", async () => {
    const g = start("rc_pingpong", "--address", S, "--udp-port", String(await freeUdpPort(S, C)), "-g", "3");
    expect(await g.done).toBe(1);
    expect(g.stderr).toBe("softroce rc_pingpong: can't read sgid of index 3\n");
    const d = start("rc_pingpong", "-d", "rxe0");
    expect(await d.done).toBe(1);
    expect(d.stderr).toBe("softroce rc_pingpong: IB device rxe0 not found\n");
    const i = start("rc_pingpong", "--address", S, "--udp-port", String(await freeUdpPort(S, C)), "-i", "2");
    expect(await i.done).toBe(1);
    expect(i.stderr).toBe("softroce rc_pingpong: Failed to modify QP to INIT: ibv_modify_qp: EINVAL\n");
  });

  it("an rdma-core flag the device cannot honour: rdma-core's message, exit 1", async () => {
    const r = start("rc_pingpong", "-t");
    expect(await r.done).toBe(1);
    expect(r.stderr).toBe("softroce rc_pingpong: The device isn't completion timestamp capable\n");
  });
});
