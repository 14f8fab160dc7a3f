// softroce ucmatose as rdma-core's ucmatose (cmatose.c): server and client as two processes on
// 127.0.15.21 / 127.0.15.22 (UDP 4791, this suite's own loopback addresses); the output lines
// are those of Linux's ucmatose in test/fixtures/captures/cm/logs; several connections; the flags
// it refuses.
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { until, useCli } from "../support/cli-process.js";

const { start } = useCli("cli-test-ucmatose");
const SERVER = "127.0.15.21";
const CLIENT = "127.0.15.22";
const LOGS = new URL("../../fixtures/captures/cm/logs/", import.meta.url);
const linuxLog = (name: string) => readFileSync(new URL(name, LOGS), "utf8");

async function pair(port: number, extra: string[]) {
  const server = start("ucmatose", "-b", SERVER, "-p", String(port), "--timeout", "30", ...extra);
  await until(() => server.stdout.includes("cmatose: starting server\n"), 15_000);
  await new Promise((r) => setTimeout(r, 300)); // its listen follows the line
  const client = start("ucmatose", "-s", SERVER, "-b", CLIENT, "-p", String(port), "--timeout", "30", ...extra);
  const [sc, cc] = await Promise.all([server.done, client.done]);
  return { server, client, sc, cc };
}

describe("ucmatose, two processes over rdma_cm", () => {
  it("defaults (1 connection, 10 messages of 100 bytes each way): the lines Linux's ucmatose prints, exit 0", async () => {
    const { server, client, sc, cc } = await pair(7471, []);
    expect({ cc, out: client.stdout, err: client.stderr }).toEqual({ cc: 0, out: linuxLog("ucmatose-v4.client.out"), err: "" });
    expect({ sc, out: server.stdout, err: server.stderr }).toEqual({ sc: 0, out: linuxLog("ucmatose-v4.server.out"), err: "" });
  });

  it("-c 2 -C 50 -S 4000: two connections, multi-packet messages", async () => {
    const { server, client, sc, cc } = await pair(7472, ["-c", "2", "-C", "50", "-S", "4000"]);
    expect(cc).toBe(0);
    expect(sc).toBe(0);
    expect(client.stdout).toBe(linuxLog("ucmatose-v4-c2.client.out"));
    expect(server.stdout).toBe(linuxLog("ucmatose-v4-c2.server.out"));
  });

  it("a client with nobody listening on its port: 'cmatose: event: RDMA_CM_EVENT_REJECTED, error: 8', exit 1", async () => {
    const server = start("ucmatose", "-b", SERVER, "-p", "7478", "--timeout", "20");
    await until(() => server.stdout.includes("cmatose: starting server\n"), 15_000);
    await new Promise((r) => setTimeout(r, 300));
    const client = start("ucmatose", "-s", SERVER, "-b", CLIENT, "-p", "7479", "--timeout", "20");
    expect(await client.done).toBe(1);
    expect(client.stdout).toContain("cmatose: event: RDMA_CM_EVENT_REJECTED, error: 8\n");
    expect(client.stdout).toContain("return status 8\n");
    server.child.kill("SIGTERM");
  });

  it("flags it refuses: -t, -m, a name for an address, an unknown port space", async () => {
    for (const [args, msg] of [
      [["-t", "0x10"], /-t \(type of service\) and -m \(migrate\) are not supported/],
      [["-m"], /not supported/],
      [["-s", "server.example"], /-s wants a numeric IPv4 or IPv6 address/],
      [["-P", "udp"], /--port-space must be one of tcp, ib/],
    ] as const) {
      const r = start("ucmatose", ...args);
      expect(await r.done, args.join(" ")).toBe(2);
      expect(r.stderr).toMatch(msg);
    }
  });
});
