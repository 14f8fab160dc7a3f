// perftest's exchange as Debian 12's perftest speaks it: the key message of the write_bw-tcp
// capture parsed and formatted back byte for byte, the whole TCP conversation of that capture
// replayed against our client and server halves (sizes and order), a peer older than 5.70
// refused as perftest refuses it, and `softroce perf write_bw|read_bw --perftest` as two
// processes on 127.0.15.41 / .42.
import net from "node:net";
import { describe, expect, it } from "vitest";
import { useCli, until } from "../support/cli-process.js";
import {
  ExactReader, exchangeSysData, formatKeyMsg, KEY_MSG_LEN, parseKeyMsg, PerftestExchangeError, reportLine, VERSION_LEN,
} from "../../../host/cli/perftest-exchange.js";

// write_bw-tcp.pcap, the client's first key message (108 bytes)
const KEY_HEX =
  "303030303a303030313a3030303031643a6234646131383a30303030316135633a303030303535643632383632393030303a" +
  "30303a30303a30303a30303a30303a30303a30303a30303a30303a30303a66663a66663a63303a30303a30323a30333a" +
  "30303030303030303a00";

describe("perftest key message", () => {
  it("the captured key message parses to its fields and formats back to the same 108 bytes", () => {
    const bytes = new Uint8Array(KEY_MSG_LEN);
    bytes.set(Buffer.from(KEY_HEX, "hex"));
    const d = parseKeyMsg(bytes);
    expect(d).toMatchObject({ lid: 0, outReads: 1, qpn: 0x1d, psn: 0xb4da18, rkey: 0x1a5c, vaddr: 0x55d628629000n, srqn: 0 });
    expect([...d.gid.subarray(10)]).toEqual([0xff, 0xff, 192, 0, 2, 3]);
    expect(formatKeyMsg(d)).toEqual(bytes);
  });

  it("anything else is refused with perftest's message", () => {
    expect(() => parseKeyMsg(new TextEncoder().encode("0000:0001:zz\0"))).toThrow(PerftestExchangeError);
    expect(() => parseKeyMsg(new Uint8Array(KEY_MSG_LEN))).toThrow(/Failed to parse message from peer/);
  });
});

/** A connected pair of sockets on 127.0.15.43. */
async function socketPair(): Promise<[net.Socket, net.Socket]> {
  const server = net.createServer();
  await new Promise<void>((r) => server.listen(0, "127.0.15.43", r));
  const port = (server.address() as net.AddressInfo).port;
  const accepted = new Promise<net.Socket>((r) => server.once("connection", r));
  const c = net.connect({ host: "127.0.15.43", port });
  const s = await accepted;
  server.close();
  return [c, s];
}

describe("perftest's report line", () => {
  it("is spaced as perftest's (the line of read_bw-tcp.client.out, from the same figures)", async () => {
    const { readFileSync } = await import("node:fs");
    const linux = readFileSync(new URL("../../fixtures/captures/perftest/logs/read_bw-tcp.client.out", import.meta.url), "utf8")
      .split("\n").find((l) => l.startsWith(" 4096 "))!;
    const [, size, iters, peak, avg, rate] = /^ (\d+)\s+(\d+)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)$/.exec(linux)!;
    expect(reportLine(Number(size), Number(iters), Number(peak), Number(avg), Number(rate))).toBe(linux);
  });
});

describe("perftest steps 1-4", () => {
  it("version, cycle buffer, cache line, MTU: the sizes perftest reads, the smaller MTU wins", async () => {
    const [c, s] = await socketPair();
    const seen: number[] = [];
    s.on("data", (d) => seen.push(d.length));
    const [a, b] = await Promise.all([exchangeSysData(new ExactReader(c), true, 3), exchangeSysData(new ExactReader(s), false, 2)]);
    expect(a).toEqual({ version: "6.06", mtu: 2 });
    expect(b).toEqual({ version: "6.06", mtu: 2 });
    expect(seen.reduce((x, y) => x + y, 0)).toBe(VERSION_LEN + 4 + 4 + 2);
    c.destroy();
    s.destroy();
  });

  it("a peer older than 5.70 is refused as perftest refuses it", async () => {
    const [c, s] = await socketPair();
    const old = new Uint8Array(VERSION_LEN);
    old.set(new TextEncoder().encode("5.60"));
    s.write(old);
    await expect(exchangeSysData(new ExactReader(c), true, 3)).rejects.toThrow(/not compatible with versions older than 5.70/);
    c.destroy();
    s.destroy();
  });
});

const { start } = useCli("cli-test-perftest");

describe("softroce perf --perftest, two processes", () => {
  for (const test of ["write_bw", "read_bw", "atomic_bw"]) {
    it(`${test}: both sides print perftest's table with the client's figures; exit 0`, async () => {
      const size = test === "atomic_bw" ? "8" : "8192";
      const server = start("perf", test, "--perftest", "--address", "127.0.15.41", "-s", size, "-n", "200");
      await until(() => server.stdout.includes("Waiting for client to connect"), 15_000);
      const client = start("perf", test, "127.0.15.41", "--perftest", "--address", "127.0.15.42", "-s", size, "-n", "200", "-t", "16");
      const [sc, cc] = await Promise.all([server.done, client.done]);
      expect({ cc, err: client.stderr }).toEqual({ cc: 0, err: "" });
      expect({ sc, err: server.stderr }).toEqual({ sc: 0, err: "" });
      const line = (out: string) => out.split("\n").find((l) => new RegExp(`^ ${size}\\s+200\\s`).test(l));
      expect(line(client.stdout), client.stdout).toBeDefined();
      expect(line(server.stdout)).toBe(line(client.stdout));
      expect(client.stdout).toContain({ write_bw: "RDMA_Write BW Test", read_bw: "RDMA_Read BW Test", atomic_bw: "Atomic FETCH_AND_ADD BW Test" }[test]);
      expect(client.stdout).toMatch(/ remote address: LID 0000 QPN 0x[0-9a-f]{4,6} .*\n GID: 00:00:00:00:00:00:00:00:00:00:255:255:127:00:15:41/);
    });
  }

  for (const test of ["send_bw", "write_lat", "read_lat", "send_lat"]) {
    it(`${test}: both sides run it through (each prints its own figures), exit 0`, async () => {
      const server = start("perf", test, "--perftest", "--address", "127.0.15.41", "-n", "100");
      await until(() => server.stdout.includes("Waiting for client to connect"), 15_000);
      const client = start("perf", test, "127.0.15.41", "--perftest", "--address", "127.0.15.42", "-n", "100");
      const [sc, cc] = await Promise.all([server.done, client.done]);
      expect({ cc, err: client.stderr }).toEqual({ cc: 0, err: "" });
      expect({ sc, err: server.stderr }).toEqual({ sc: 0, err: "" });
      const lat = test.endsWith("_lat");
      const re = lat ? /^ 2\s+(\d+)\s+\d+\.\d\d/m : /^ 65536\s+100\s+\d+\.\d\d\s+\d+\.\d\d/m;
      expect(client.stdout).toMatch(re);
      if (test !== "read_lat") expect(server.stdout).toMatch(re); // read_lat's server only serves, as perftest's
      if (lat) expect(Number(re.exec(client.stdout)![1])).toBe(100);
    });
  }
});
