// softroce rping as rdma-core's rping: server and client as two processes on
// 127.0.15.11 / 127.0.15.12 (UDP 4791, this suite's own loopback addresses),
// connected by rdma_cm over QP1; -v lines checked against the text rping puts in
// its buffer, -V, -S, -C; a client with no server listening (REJECTED 8); the
// flag errors rping refuses.
import { describe, expect, it } from "vitest";
import { until, useCli } from "../support/cli-process.js";
import { pingText, RPING_MIN_BUFSIZE, Sem } from "../../../host/cli/rping.js";

const { start } = useCli("cli-test-rping");
const SERVER = "127.0.15.11";
const CLIENT = "127.0.15.12";

function expected(count: number, size: number, prefix: string): string[] {
  const lines: string[] = [];
  for (let i = 0, start = 65; i < count; i++, start = start + 1 > 122 ? 65 : start + 1) {
    const b = pingText(i, start, size);
    lines.push(prefix + Buffer.from(b.subarray(0, size - 1)).toString("latin1"));
  }
  return lines;
}

async function rping(count: number, size: number, port: number, more: string[] = []) {
  const server = start("rping", "-s", "-a", SERVER, "-p", String(port), "-v", "-V", "-S", String(size), "-d", "--timeout", "30", ...more);
  await until(() => server.stdout.includes("rdma_listen\n"), 15_000);
  const client = start("rping", "-c", "-a", SERVER, "-I", CLIENT, "-p", String(port), "-v", "-V", "-S", String(size), "-C", String(count), "--timeout", "30", ...more);
  const [sc, cc] = await Promise.all([server.done, client.done]);
  return { server, client, sc, cc };
}

describe("rping's semaphore", () => {
  it("a timed wait whose limit came first is withdrawn: the next post goes to the next wait, not to it", async () => {
    const sem = new Sem();
    expect(await sem.waitUntil(Promise.resolve())).toBe(false);
    sem.post();
    expect(await sem.waitUntil(new Promise(() => {}))).toBe(true);
    // posted while timed-waiting: true, and the post is not counted twice
    const w = sem.waitUntil(new Promise((r) => setTimeout(r, 50)));
    sem.post();
    expect(await w).toBe(true);
    expect(await sem.waitUntil(Promise.resolve())).toBe(false);
  });
});

describe("rping, two processes over rdma_cm", () => {
  it("-v -V -C 5: the client prints each ping as the server wrote it back, the server each one it read; both exit 0", async () => {
    const { server, client, sc, cc } = await rping(5, 64, 7174);
    expect({ cc, err: client.stderr }).toEqual({ cc: 0, err: "client DISCONNECT EVENT...\n" });
    expect(client.stdout.trimEnd().split("\n")).toEqual(expected(5, 64, "ping data: "));
    expect(sc).toBe(0);
    expect(server.stderr).toBe("server DISCONNECT EVENT...\nwait for RDMA_READ_ADV state 10\n");
    const data = server.stdout.split("\n").filter((l) => l.startsWith("server ping data: "));
    expect(data).toEqual(expected(5, 64, "server ping data: "));
    expect(server.stdout).toContain("server received read complete\n");
  });

  it("-S at its minimum and a larger size, past 'z' so the letters wrap to 'A'", async () => {
    const small = await rping(2, RPING_MIN_BUFSIZE, 7175);
    expect(small.cc).toBe(0);
    expect(small.client.stdout.trimEnd().split("\n")).toEqual(expected(2, RPING_MIN_BUFSIZE, "ping data: "));
    const big = await rping(3, 200, 7176);
    expect(big.cc).toBe(0);
    const lines = big.client.stdout.trimEnd().split("\n");
    expect(lines).toEqual(expected(3, 200, "ping data: "));
    expect(lines[0]).toContain("xyzABC");
  });

  it("--udp-port 5791 on both sides: the connection is made there (the server's answers to the client's MADs go to the client's 5791, not to 4791)", async () => {
    const { client, sc, cc } = await rping(2, 64, 7179, ["--udp-port", "5791"]);
    expect({ cc, sc, err: client.stderr }).toEqual({ cc: 0, sc: 0, err: "client DISCONNECT EVENT...\n" });
    expect(client.stdout.trimEnd().split("\n")).toEqual(expected(2, 64, "ping data: "));
  });

  it("a client with nobody listening: 'cma event RDMA_CM_EVENT_REJECTED, error 8', exit 1", async () => {
    const server = start("rping", "-s", "-a", SERVER, "-p", "7177", "-d", "--timeout", "20");
    await until(() => server.stdout.includes("rdma_listen\n"), 15_000);
    const client = start("rping", "-c", "-a", SERVER, "-I", CLIENT, "-p", "7178", "-C", "1", "--timeout", "20");
    expect(await client.done).toBe(1);
    expect(client.stderr).toContain("cma event RDMA_CM_EVENT_REJECTED, error 8\n");
    server.child.kill("SIGTERM");
  });

  it("flags rping refuses: no -s/-c, both, a size out of range, no server address", async () => {
    for (const [args, msg] of [
      [[], /one of -s \(server\) or -c \(client\)/],
      [["-s", "-c"], /-s and -c both given/],
      [["-s", "-S", String(RPING_MIN_BUFSIZE - 1)], /--size must be at least 23/],
      [["-s", "-S", "65536"], /--size must be at most 65535/],
      [["-c"], /the client needs -a/],
      [["-c", "-a", "not-an-address"], /-a wants an IPv4 or IPv6 address/],
    ] as const) {
      const r = start("rping", ...args);
      expect(await r.done, args.join(" ")).toBe(2);
      expect(r.stderr).toMatch(msg);
    }
  });
});
