// softroce udpong as rdma-core's (librdmacm/examples/udpong.c) over softroce's datagram rsockets: two
// processes on 127.0.15.87 / 127.0.15.88 (UDP 4791, this suite's own loopback addresses; the rsocket's
// UDP socket at -p). An echoed custom test and a back-to-back one, each row as udpong prints it; the
// server's login line and its --idle end; the flags it refuses. In one process on 127.0.15.91 / .92:
// a server on a port whose MTU is 1024 given a datagram it cannot answer.
import { describe, expect, it } from "vitest";
import { createSocket } from "node:dgram";
import { useCli } from "../support/cli-process.js";
import { Udpong, UDPONG_HEADER, udpongRow, type UdpongOptions } from "../../../host/cli/udpong.js";
import { openToolCm } from "../../../host/cli/cm-tool.js";
import { openDevice } from "../../../host/node/index.js";
import { Mtu } from "../../../host/core/verbs/enums.js";
import { formatDsHeader, formatDsUdpHeader, RsOp } from "../../../host/core/rsocket/index.js";

const { start } = useCli("cli-test-udpong");
const SERVER = "127.0.15.87";
const CLIENT = "127.0.15.88";
/** a row of udpong's table: name, bytes, xfers, total, then time, Gb/sec, usec/xfer */
const ROW = /^(\S+)\s+(\S+)\s+(\S+)\s+(\S+)\s+\d+\.\d\ds\s+\d+\.\d\d\s+\d+\.\d\d$/;

describe("udpong's table", () => {
  it("the header and a row in udpong's columns (no iters column, unlike rstream's)", () => {
    expect(UDPONG_HEADER).toBe("name      bytes   xfers   total       time     Gb/sec    usec/xfer\n");
    // 2000 transfers of 1000 bytes in 0.25 s: 16 Mb in 250,000 µs is 0.06 Gb/s, 125 µs a transfer
    expect(udpongRow("custom", 1000, 2000, 250_000)).toBe("custom    1000    2k      1.9m        0.25s      0.06     125.00\n");
    // a bandwidth test the server counted nothing of: udpong's division by zero
    expect(udpongRow("64_bw", 64, 0, 1000)).toBe("64_bw     64      0       0           0.00s      0.00        inf\n");
  });
});

/** a server with --idle 2 and a client with `flags`: the client's row and the server's lines; both exit 0 */
async function run(port: number, ...flags: string[]): Promise<{ row: string[]; server: string }> {
  const server = start("udpong", "-b", SERVER, "-p", String(port), "--idle", "2", "--timeout", "60");
  await new Promise((r) => setTimeout(r, 500));
  const client = start("udpong", "-s", SERVER, "-b", CLIENT, "-p", String(port), "--timeout", "60", ...flags);
  const [cc, sc] = [await client.done, await server.done];
  expect({ cc, err: client.stderr }).toEqual({ cc: 0, err: "" });
  expect({ sc, err: server.stderr }).toEqual({ sc: 0, err: "" });
  const [header, row, ...rest] = client.stdout.split("\n");
  expect(`${header}\n`).toBe(UDPONG_HEADER);
  expect(rest).toEqual([""]);
  return { row: ROW.exec(row!)!.slice(1), server: server.stdout };
}

describe("softroce udpong, two processes over datagram rsockets", () => {
  it("-C 3000 -S 1000 -T e: every datagram echoed (the first by UDP, the rest by UD SENDs); 6000 transfers; the server logs the client in and ends after --idle", async () => {
    const { row, server } = await run(7611, "-C", "3000", "-S", "1000", "-T", "e");
    expect(row).toEqual(["custom", "1000", "6k", "5.7m"]);
    expect(server).toBe(`client login from ${CLIENT}\n`);
  }, 90_000);

  it("-C 5000 -S 64: back to back; the row counts what the server says it got (at most 5000: a receiver without room drops, as UDP)", async () => {
    const { row, server } = await run(7612, "-C", "5000", "-S", "64", "-T", "b", "-T", "n");
    expect(row[0]).toBe("custom");
    expect(row[1]).toBe("64");
    const got = row[2]!;
    expect(got === "5k" || /^\d{1,4}$/.test(got) || /^[1-4]k$/.test(got), got).toBe(true);
    expect(server).toBe(`client login from ${CLIENT}\n`);
  }, 90_000);

  it("--stats: each side's counts on stderr at its end — the login (and perhaps one or two after it) by UDP, everything else by the QPs, nothing dropped", async () => {
    const server = start("udpong", "-b", SERVER, "-p", "7614", "--idle", "2", "--stats", "--timeout", "60");
    await new Promise((r) => setTimeout(r, 500));
    const client = start("udpong", "-s", SERVER, "-b", CLIENT, "-p", "7614", "-C", "100", "-S", "64", "-T", "e", "--stats", "--timeout", "60");
    expect([await client.done, await server.done]).toEqual([0, 0]);
    const LINE = /^udpong: sent (\d+) by UDP, (\d+) by the QP; received (\d+) by UDP, (\d+) by the QP; dropped 0 without room, 0 bad receives, 0 bad UDP datagrams; 0 routes unresolved, 0 send errors\n$/;
    const [cUdp, cQp, cUdpIn, cQpIn] = LINE.exec(client.stderr)!.slice(1).map(Number);
    const [sUdp, sQp, sUdpIn, sQpIn] = LINE.exec(server.stderr)!.slice(1).map(Number);
    // the login, start, 100 echoes and end (and any sent again after a 1 ms wait): each taken by the
    // server, each answered by its QP, each answer taken by the client's
    expect(cUdp).toBeGreaterThanOrEqual(1);
    expect(cUdp).toBeLessThanOrEqual(3);
    expect(cUdp! + cQp!).toBeGreaterThanOrEqual(103);
    expect({ sUdpIn, sQpIn, sUdp, sQp, cUdpIn, cQpIn }).toEqual({ sUdpIn: cUdp, sQpIn: cQp, sUdp: 0, sQp: cUdp! + cQp!, cUdpIn: 0, cQpIn: cUdp! + cQp! });
  }, 90_000);

  it("a client nobody answers repeats its login every second (udpong's); --timeout ends it, exit 1", async () => {
    const client = start("udpong", "-s", SERVER, "-b", CLIENT, "-p", "7613", "--timeout", "3");
    expect(await client.done).toBe(1);
    expect(client.stdout).toBe(UDPONG_HEADER);
    expect(client.stderr).toBe("softroce udpong: no end after 3 s, giving up\n");
  }, 30_000);

  it("refuses what it does not speak: -T s (UDP sockets), an unknown -T, -S under 16 bytes or over a datagram's 2040, -s and -b of two families", async () => {
    for (const [args, re] of [
      [["-T", "s"], /-T s: standard UDP sockets are not rsockets/],
      [["-T", "e", "-T", "q"], /-T q: a test option is one of a\|async, b\|blocking, n\|nonblocking, e\|echo/],
      [["-S", "15"], /-S 15: size must be at least 16 bytes/],
      [["-S", "2041"], /-S 2041: a datagram rsocket's datagram holds at most 2040 bytes/],
      [["-s", "::1", "-S", "2025"], /-S 2025: .* at most 2024 bytes/],
      [["-s", "127.0.0.1", "-b", "::1"], /of different families/],
    ] as const) {
      const r = start("udpong", ...args);
      expect(await r.done, r.stderr).toBe(2);
      expect(r.stderr).toMatch(re);
    }
  });
});

describe("the udpong server on a port whose active MTU is 1024 (a UD message holds 1016 bytes of a datagram)", () => {
  it("a client's first datagram (by UDP) too long to answer: `rsend: Message too long`, no answer, and it serves on (udpong's would end)", async () => {
    const AT = "127.0.15.91", FROM = "127.0.15.92", PORT = 7616;
    const dev = await openDevice({ address: AT, activeMtu: Mtu.MTU_1024 });
    const { mad, ch } = openToolCm(dev, 4791);
    const out: string[] = [], err: string[] = [];
    const o: UdpongOptions = {
      bind: AT, address: AT, port: PORT, udpPort: 4791, timeoutMs: 0, idleMs: 1000, custom: false,
      transferCount: 0, transferSize: 0, echo: false, bufferSize: 1 << 16, stats: true,
    };
    const server = new Udpong(o, { out: (t) => out.push(t), err: (t) => err.push(t) }, ch);
    const ran = server.run();
    const raw = createSocket("udp4");
    try {
      await new Promise<void>((r) => raw.bind(0, FROM, r));
      // udpong's login (op 0) from a peer whose QP is 0x123456: 1100 bytes, then 16
      const hdr = formatDsUdpHeader(RsOp.DATA, 0x123456, formatDsHeader({ address: FROM, port: raw.address().port }));
      const login = (size: number) => Buffer.concat([hdr, new Uint8Array(size)]);
      // the server's UDP socket is bound once its run has started
      for (let t = Date.now(); !out.length && Date.now() - t < 5000; ) {
        raw.send(login(1100), PORT, AT);
        await new Promise((r) => setTimeout(r, 100));
      }
      raw.send(login(16), PORT, AT);
      expect(await ran).toBe(0); // --idle's end, not the failed send's
    } finally {
      raw.close();
      server.destroyNodes();
      ch.destroy();
      await mad.drain();
      dev.close();
    }
    // one line per login taken (the long ones sent until the first was), each long one's echo refused
    const logins = out.filter((l) => l === `client login from ${FROM}\n`).length;
    expect(out.length).toBe(logins);
    expect(logins).toBeGreaterThanOrEqual(2);
    const [stats, ...tooLong] = [err.pop()!, ...err];
    expect(tooLong.length).toBe(logins - 1);
    for (const l of tooLong) expect(l).toMatch(/^rsend: Message too long \(1100 bytes; a datagram holds 1016 here: a UD message on the port's active MTU less the 8-byte ds_header\)\n$/);
    // the short login's answer went by the QP; nothing else was sent
    expect(stats).toMatch(/^udpong: sent 0 by UDP, 1 by the QP; received \d+ by UDP, 0 by the QP;.* 0 send errors\n$/);
  }, 30_000);
});
