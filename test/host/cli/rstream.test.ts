// softroce rstream as rdma-core's (librdmacm/examples/rstream.c) over softroce's rsockets: two
// processes on 127.0.15.51 / 127.0.15.52 (UDP 4791, this suite's own loopback addresses). The
// custom test's ping-pong with -T v (every byte checked as rstream's verify_buf checks it, by the
// receiving side), transfers larger than the receive buffer (its halves handed back by credit
// messages many times), rstream's table on both sides; a client nobody listens for; the flags it refuses.
import net from "node:net";
import { describe, expect, it } from "vitest";
import { useCli } from "../support/cli-process.js";
import { cntStr, perfRow, RSTREAM_HEADER, sizeStr, sizeToCount } from "../../../host/cli/rstream.js";
import { formatConnData, parseConnData, rsMsg, rsMsgData, rsMsgOp, RsOp, rsScaleToValue, rsValueToScale } from "../../../host/core/rsocket/index.js";

const { start } = useCli("cli-test-rstream");
const SERVER = "127.0.15.51";
const CLIENT = "127.0.15.52";
/** a row of rstream's table: name, bytes, xfers, iters, total, then time, Gb/sec, usec/xfer */
const ROW = /^(\S+)\s+(\S+)\s+(\S+)\s+(\S+)\s+(\S+)\s+\d+\.\d\ds\s+\d+\.\d\d\s+\d+\.\d\d$/;

describe("rstream's table, as common.c prints it", () => {
  it("size_str, cnt_str and size_to_count: rstream's units", () => {
    expect([64, 192, 1000, 1536, 4096, 65536, 98304, 1 << 20, 6291456, 2 * 3 * 1000 * 1000].map(sizeStr)).toEqual(["64", "192", "1000", "1.5k", "4k", "64k", "96k", "1m", "6m", "5.7m"]);
    expect([1, 100, 999, 1000, 100000, 1_000_000, 2_000_000_000].map(cntStr)).toEqual(["1", "100", "999", "1k", "100k", "1m", "2b"]);
    expect([64, 1024, 65536, 1 << 20].map(sizeToCount)).toEqual([100000, 10000, 1000, 100]);
  });

  it("the header and a row in rstream's columns", () => {
    expect(RSTREAM_HEADER).toBe("name      bytes   xfers   iters   total       time     Gb/sec    usec/xfer\n");
    // 1000 transfers of 1000 bytes each way, once, in 0.5 s: 2 MB, 32 Gb/s... 250 µs per transfer
    expect(perfRow("custom", 1000, 1000, 1, 500_000)).toBe("custom    1000    1k      1       1.9m        0.50s      0.03     250.00\n");
  });
});

describe("rsocket's wire formats", () => {
  it("rs_conn_data: 40 bytes, every field big-endian, read back as written", () => {
    const c = { version: 1, flags: 2, credits: 384, targetIomapSize: 0, targetSgl: { addr: 0x1122334455667788n, key: 0xabcd, length: 2 }, dataBuf: { addr: 0x10000n, key: 0x1234, length: 1 << 19 } };
    const b = formatConnData(c);
    expect(b.length).toBe(40);
    expect([...b.subarray(0, 8)]).toEqual([1, 2, 0x01, 0x80, 0, 0, 0, 0]);
    expect([...b.subarray(8, 16)]).toEqual([0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88]);
    expect(parseConnData(b)).toEqual(c);
    expect(parseConnData(b.subarray(0, 39))).toBeUndefined();
  });

  it("the iomap size: exact up to 128 in rs_conn_data's byte, coarser above (rs_value_to_scale, rs_scale_to_value)", () => {
    expect([0, 1, 128, 129, 256, 1000].map((v) => rsValueToScale(v, 8))).toEqual([0, 1, 128, 128, 129, 131]);
    expect([0, 1, 128, 129, 131].map((v) => rsScaleToValue(v, 8))).toEqual([0, 1, 128, 256, 768]);
    // riostream's RDMA_IOMAPSIZE 1: byte 7 of the conn data
    const b = formatConnData({ version: 1, flags: 2, credits: 384, targetIomapSize: rsValueToScale(1, 8), targetSgl: { addr: 1n, key: 2, length: 2 }, dataBuf: { addr: 3n, key: 4, length: 5 } });
    expect([...b.subarray(0, 8)]).toEqual([1, 2, 0x01, 0x80, 0, 0, 0, 1]);
  });

  it("the immediate: the op in bits 31..29, the data below", () => {
    const m = rsMsg(RsOp.SGL, 384 + 17);
    expect(m).toBe(0x80000191);
    expect([rsMsgOp(m), rsMsgData(m)]).toEqual([RsOp.SGL, 401]);
    expect(rsMsgOp(rsMsg(RsOp.CTRL, 0))).toBe(7);
  });
});

/**
 * A `tool` server bound to SERVER (its own flags before the shared ones), then, once it has had half a
 * second to listen, a client (of `clientTool`, default the same tool) to it from CLIENT.
 */
async function serverThenClient(tool: string, flags: readonly string[], own: { server?: string[]; client?: string[]; clientTool?: string } = {}) {
  const server = start(tool, ...(own.server ?? []), "-b", SERVER, ...flags);
  await new Promise((r) => setTimeout(r, 500));
  const client = start(own.clientTool ?? tool, ...(own.client ?? []), "-s", SERVER, "-b", CLIENT, ...flags);
  return { server, client };
}

/** -S 100000 -C 30 -I 2 -T a -T v between two processes of `tool`: both exit 0, say nothing on stderr and print the one row. */
async function customRun(tool: string, port: number): Promise<void> {
  // two -T, taken in turn as getopt takes them: async waits (the same packets here) and verify
  const flags = ["-S", "100000", "-C", "30", "-I", "2", "-T", "a", "-T", "v", "-p", String(port), "--timeout", "60"];
  const { server, client } = await serverThenClient(tool, flags);
  const [sc, cc] = await Promise.all([server.done, client.done]);
  expect({ cc, err: client.stderr }).toEqual({ cc: 0, err: "" });
  expect({ sc, err: server.stderr }).toEqual({ sc: 0, err: "" });
  for (const out of [client.stdout, server.stdout]) {
    const [header, row, ...rest] = out.split("\n");
    expect(`${header}\n`).toBe(RSTREAM_HEADER);
    expect(rest).toEqual([""]);
    expect(ROW.exec(row!)?.slice(1)).toEqual(["custom", "97k", "30", "2", "11m"]);
  }
}

describe("softroce rstream, two processes over rsockets", () => {
  it("-S 100000 -C 30 -I 2 -T v: every byte checked both ways (6 MB, the 1 MiB receive buffer handed back many times); both print rstream's table, exit 0", async () => {
    await customRun("rstream", 7481);
  }, 90_000);

  it("a 16-byte transfer, inline-sized, many times (-S 16 -C 1 -I 2000): the credits of small messages (a zero-length WRITE WITH IMMEDIATE each half queue)", async () => {
    const flags = ["-S", "16", "-C", "1", "-I", "2000", "-T", "verify", "-p", "7482", "--timeout", "60"];
    const { server, client } = await serverThenClient("rstream", flags);
    const [sc, cc] = await Promise.all([server.done, client.done]);
    expect([sc, cc], client.stderr + server.stderr).toEqual([0, 0]);
    expect(ROW.exec(client.stdout.split("\n")[1]!)?.slice(1)).toEqual(["custom", "16", "1", "2k", "62k"]);
  }, 90_000);

  it("without -S, -C or -I: rstream's own run, a connection for its latency tests and another for its bandwidth tests, four sizes each; both print the eight rows", async () => {
    const { server, client } = await serverThenClient("rstream", ["-p", "7485", "--timeout", "150"]);
    const [sc, cc] = await Promise.all([server.done, client.done]);
    expect([sc, cc], client.stderr + server.stderr).toEqual([0, 0]);
    const rows = (out: string) => out.split("\n").slice(1, -1).map((l) => ROW.exec(l)?.slice(1));
    const want = [
      ["64_lat", "64", "1", "100k", "12m"], ["4k_lat", "4k", "1", "10k", "78m"], ["64k_lat", "64k", "1", "1k", "125m"], ["1m_lat", "1m", "1", "100", "200m"],
      ["64_bw", "64", "100k", "1", "12m"], ["4k_bw", "4k", "10k", "1", "78m"], ["64k_bw", "64k", "1k", "1", "125m"], ["1m_bw", "1m", "100", "1", "200m"],
    ];
    expect(rows(client.stdout)).toEqual(want);
    expect(rows(server.stdout)).toEqual(want);
  }, 180_000);

  it("-k 1: set_keepalive's lines after the header for each socket (the server's listening one and the one it accepted, the client's), then the row; -k 0 none", async () => {
    const KEEP = "Keepalive: ON\n  time: 1\n";
    for (const [k, times] of [["1", 1], ["0", 0]] as const) {
      const flags = ["-S", "1000", "-C", "10", "-I", "2", "-k", k, "-p", "7486", "--timeout", "60"];
      const { server, client } = await serverThenClient("rstream", flags);
      expect(await Promise.all([server.done, client.done]), client.stderr + server.stderr).toEqual([0, 0]);
      for (const [out, n] of [[client.stdout, times], [server.stdout, 2 * times]] as const) {
        expect(out.startsWith(RSTREAM_HEADER + KEEP.repeat(n) + "custom"), out).toBe(true);
        expect(ROW.exec(out.split("\n")[1 + 2 * n]!)?.slice(1)).toEqual(["custom", "1000", "10", "2", "39k"]);
      }
    }
  }, 60_000);

  it("a client whose port nobody listens on: rconnect: Connection refused (the device's REJ), exit 1", async () => {
    const server = start("rstream", "-b", SERVER, "-S", "64", "-p", "7484", "--timeout", "20");
    await new Promise((r) => setTimeout(r, 500));
    const client = start("rstream", "-s", SERVER, "-b", CLIENT, "-S", "64", "-p", "7483", "--timeout", "20");
    expect(await client.done).toBe(1);
    expect(client.stderr).toBe("rconnect: Connection refused\n");
    server.child.kill("SIGTERM");
  });

  it("a server given up by --timeout mid-run says nothing after 'giving up', and its open connection goes (a DREQ, as at a process's end): the client ends at once with rsend's or rrecv's line, not at its own --timeout", async () => {
    const { server, client } = await serverThenClient("rstream", ["-S", "64", "-C", "1000000", "-I", "1", "-p", "7497"], { server: ["--timeout", "2"], client: ["--timeout", "60"] });
    expect(await server.done).toBe(1);
    expect(server.stderr).toBe("softroce rstream: no end after 2 s, giving up\n");
    const t0 = Date.now();
    expect(await client.done).toBe(1);
    expect(Date.now() - t0, "the client waited for its own --timeout").toBeLessThan(30_000);
    expect(client.stderr).toMatch(/^(rrecv: Connection reset by peer \(the peer closed\)|rsend: (Connection reset by peer|Broken pipe))\n$/);
  }, 90_000);

  it("refuses what it does not speak: -f gid, a -S that is not a size, a -T it does not know", async () => {
    for (const [args, re] of [
      [["-f", "gid"], /-f gid: AF_IB/],
      [["-S", "lots"], /-S wants a transfer size/],
      [["-T", "q"], /-T q: a test option is one of/],
    ] as const) {
      const r = start("rstream", ...args);
      expect(await r.done, r.stderr).toBe(2);
      expect(r.stderr).toMatch(re);
    }
  });
});

describe("softroce rstream -T s: its test over standard TCP sockets (rstream's use_rs = 0), two processes", () => {
  it("-T s on both, -S 100000 -C 30 -I 2 -T v: every byte checked both ways, both print rstream's table, exit 0", async () => {
    const flags = ["-T", "s", "-S", "100000", "-C", "30", "-I", "2", "-T", "v", "-p", "7491", "--timeout", "60"];
    const { server, client } = await serverThenClient("rstream", flags);
    expect(await Promise.all([server.done, client.done]), client.stderr + server.stderr).toEqual([0, 0]);
    for (const out of [client.stdout, server.stdout]) {
      expect(out.split("\n").map((l) => ROW.exec(l)?.slice(1) ?? l)).toEqual([RSTREAM_HEADER.trimEnd(), ["custom", "97k", "30", "2", "11m"], ""]);
    }
  }, 60_000);

  it("a -T f server (rstream's forking one: a connection at a time) and a -T s client, -k 1: set_keepalive's lines for each socket (the server's twice), rstream's own run's two connections; exit 0", async () => {
    const KEEP = "Keepalive: ON\n  time: 1\n";
    const flags = ["-k", "1", "-p", "7492", "--timeout", "120"];
    const { server, client } = await serverThenClient("rstream", flags, { server: ["-T", "fork"], client: ["-T", "sockets"] });
    expect(await Promise.all([server.done, client.done]), client.stderr + server.stderr).toEqual([0, 0]);
    const names = (out: string) => out.split("\n").slice(1, -1).map((l) => (l.startsWith("Keepalive") || l.startsWith("  time") ? l : ROW.exec(l)?.[1]));
    const lat = ["64_lat", "4k_lat", "64k_lat", "1m_lat"];
    const bw = ["64_bw", "4k_bw", "64k_bw", "1m_bw"];
    const keep = (n: number) => KEEP.repeat(n).trimEnd().split("\n");
    expect(names(client.stdout)).toEqual([...keep(1), ...lat, ...keep(1), ...bw]);
    expect(names(server.stdout)).toEqual([...keep(2), ...lat, ...keep(2), ...bw]);
  }, 150_000);

  it("a client whose port nobody listens on: rconnect: Connection refused, exit 1; a server whose port is taken: rbind: Address already in use, exit 1", async () => {
    const client = start("rstream", "-T", "s", "-s", SERVER, "-b", CLIENT, "-S", "64", "-p", "7493", "--timeout", "20");
    expect(await client.done).toBe(1);
    expect(client.stderr).toBe("rconnect: Connection refused\n");
    const first = start("rstream", "-T", "s", "-b", SERVER, "-S", "64", "-p", "7494", "--timeout", "20");
    await new Promise((r) => setTimeout(r, 500));
    const second = start("rstream", "-T", "s", "-b", SERVER, "-S", "64", "-p", "7494", "--timeout", "20");
    expect(await second.done).toBe(1);
    expect(second.stderr).toBe("rbind: Address already in use\n");
    first.child.kill("SIGTERM");
  });

  it("--timeout while a connection is open (a peer that connects and says nothing): the run gives up, the connection goes, the process exits 1", async () => {
    const server = start("rstream", "-T", "s", "-b", SERVER, "-S", "64", "-p", "7496", "--timeout", "2");
    await new Promise((r) => setTimeout(r, 500));
    const mute = net.connect({ host: SERVER, port: 7496 });
    mute.on("error", () => {});
    expect(await server.done).toBe(1);
    expect(server.stderr).toBe("softroce rstream: no end after 2 s, giving up\n");
    mute.destroy();
  }, 20_000);

  it("a peer gone mid-run: the other side says so (rrecv's line) and exits 1, no hang", async () => {
    const flags = ["-T", "s", "-S", "1000000", "-C", "100000", "-I", "1", "-p", "7495", "--timeout", "30"];
    const { server, client } = await serverThenClient("rstream", flags);
    await new Promise((r) => setTimeout(r, 1000));
    client.child.kill("SIGKILL");
    expect(await server.done).toBe(1);
    expect(server.stderr).toMatch(/^(rrecv: Connection reset by peer \(the peer closed\)|rsend: (Connection reset by peer|Broken pipe))\n$/);
  }, 40_000);
});

describe("softroce riostream, two processes over rsockets' iomaps", () => {
  it("-S 100000 -C 30 -I 2 -T v: every turn riowritten into the peer's mapped buffer, the marker awaited in its last byte, the bytes before it checked; both print riostream's table, exit 0", async () => {
    await customRun("riostream", 7486);
  }, 90_000);

  it("against an rstream server (RDMA_IOMAPSIZE 0: no entry to map into): riomap: Cannot allocate memory, exit 1", async () => {
    const { server, client } = await serverThenClient("rstream", ["-S", "1000", "-C", "1", "-I", "1", "-p", "7487", "--timeout", "20"], { clientTool: "riostream" });
    expect(await client.done, client.stderr).toBe(1);
    expect(client.stderr).toBe("riomap: Cannot allocate memory (the peer's iomap has 0 entries, every one in use)\n");
    server.child.kill("SIGTERM");
  }, 30_000);

  it("refuses what riostream does not take: -k, -T r, -T s, -f gid", async () => {
    for (const [args, re] of [
      [["-k", "5"], /-k/],
      [["-T", "r"], /-T r: a test option is one of a\|async, b\|blocking, n\|nonblocking, v\|verify/],
      [["-T", "s"], /-T s: a test option is one of/],
      [["-f", "gid"], /-f gid: AF_IB/],
    ] as const) {
      const r = start("riostream", ...args);
      expect(await r.done, r.stderr).toBe(2);
      expect(r.stderr).toMatch(re);
    }
  });
});
