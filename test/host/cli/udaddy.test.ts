// softroce udaddy as rdma-core's udaddy (librdmacm/examples/udaddy.c): server and client as two
// processes on 127.0.15.23 / 127.0.15.24 (UDP 4791, this suite's own loopback addresses), a UD
// "connection" made with SIDR MADs on QP1 and SEND WITH IMMEDIATE datagrams both ways; the output
// lines are those of Linux's udaddy in test/fixtures/captures/cm/logs; several connections; a
// message above the MTU; a port nobody listens on; the flags it refuses.
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { until, useCli } from "../support/cli-process.js";
import { udaddyOptions } from "../../../host/cli/udaddy.js";
import { PortSpace } from "../../../host/core/cm/index.js";

const { start } = useCli("cli-test-udaddy");
const SERVER = "127.0.15.23";
const CLIENT = "127.0.15.24";
const LOGS = new URL("../../fixtures/captures/cm/logs/", import.meta.url);
const linuxLog = (name: string) => readFileSync(new URL(name, LOGS), "utf8");

async function startServer(port: number, extra: string[]) {
  const server = start("udaddy", "-b", SERVER, "--port", String(port), "--timeout", "30", ...extra);
  await until(() => server.stdout.includes("udaddy: starting server\n"), 15_000);
  await new Promise((r) => setTimeout(r, 300)); // its listen follows the line
  return server;
}

async function pair(port: number, extra: string[]) {
  const server = await startServer(port, extra);
  const client = start("udaddy", "-s", SERVER, "-b", CLIENT, "--port", String(port), "--timeout", "30", ...extra);
  const [sc, cc] = await Promise.all([server.done, client.done]);
  return { server, client, sc, cc };
}

describe("udaddy, two processes over rdma_cm's UD port space", () => {
  it("defaults (1 connection, 10 messages of 100 bytes each way): the lines Linux's udaddy prints, exit 0", async () => {
    const { server, client, sc, cc } = await pair(7174, []);
    expect({ cc, out: client.stdout, err: client.stderr }).toEqual({ cc: 0, out: linuxLog("udaddy-v4.client.out"), err: "" });
    expect({ sc, out: server.stdout, err: server.stderr }).toEqual({ sc: 0, out: linuxLog("udaddy-v4.server.out"), err: "" });
  });

  it("-c 2 -C 50 -S 1000, and -P ipoib: every connection's messages both ways", async () => {
    for (const [port, extra] of [[7175, []], [7176, ["-P", "ipoib"]]] as const) {
      const { server, client, sc, cc } = await pair(port, ["-c", "2", "-C", "50", "-S", "1000", ...extra]);
      expect({ cc, sc, err: client.stderr + server.stderr }).toEqual({ cc: 0, sc: 0, err: "" });
      expect(client.stdout).toBe(linuxLog("udaddy-v4.client.out"));
      expect(server.stdout).toBe(linuxLog("udaddy-v4.server.out"));
    }
  });

  it("a message above the port's active MTU: udaddy's line, return status -22, exit 1", async () => {
    const server = await startServer(7177, ["-S", "5000"]);
    const client = start("udaddy", "-s", SERVER, "-b", CLIENT, "--port", "7177", "-S", "5000", "--timeout", "30");
    expect(await client.done).toBe(1);
    expect(client.stdout).toBe("udaddy: starting client\nudaddy: connecting\nudaddy: message_size 5000 is larger than active mtu 4096\ntest complete\nreturn status -22\n");
    server.child.kill("SIGTERM");
  });

  it("a client with nobody listening on its port: the SIDR_REP's status 1 (unsupported) as UNREACHABLE, exit 1", async () => {
    const server = await startServer(7178, []);
    const client = start("udaddy", "-s", SERVER, "-b", CLIENT, "--port", "7179", "--timeout", "20");
    expect(await client.done).toBe(1);
    expect(client.stdout).toContain("udaddy: event: RDMA_CM_EVENT_UNREACHABLE, error: 1\n");
    expect(client.stdout).toContain("return status 1\n");
    server.child.kill("SIGTERM");
  });

  it("flags it refuses: -t, a name for an address, a port space number it does not know", async () => {
    for (const [args, msg] of [
      [["-t", "0x10"], /-t \(type of service\) is not supported/],
      [["-s", "server.example"], /-s wants a numeric IPv4 or IPv6 address/],
      [["-p", "0x106"], /-p wants a port space, 0x111 \(UDP\) or 0x2 \(IPoIB\), got '0x106'/],
    ] as const) {
      const r = start("udaddy", ...args);
      expect(await r.done, args.join(" ")).toBe(2);
      expect(r.stderr).toMatch(msg);
    }
  });
});

describe("udaddy's options", () => {
  const parse = (...argv: string[]) => {
    let err = "";
    const o = udaddyOptions(argv, { err: (s) => void (err += s) });
    if (o === "help") throw new Error("help");
    return { o, err };
  };

  it("port space: UDP by default; -P ipoib, -p 0x2 and -p 273 as udaddy reads them; another -P name warns and keeps UDP", () => {
    expect(parse().o.ps).toBe(PortSpace.UDP);
    expect(parse("-P", "IPoIB").o.ps).toBe(PortSpace.IPOIB);
    expect(parse("-p", "0x2").o.ps).toBe(PortSpace.IPOIB);
    expect(parse("-p", "273").o.ps).toBe(PortSpace.UDP);
    expect(parse("-P", "tcp")).toEqual({ o: expect.objectContaining({ ps: PortSpace.UDP }), err: "Warning: unknown port space format\n" });
  });

  it("no message size, no messages (create_message); the device's address from -b, else loopback of -s's family", () => {
    expect(parse("-S", "0").o.count).toBe(0);
    expect(parse("-b", "127.0.0.9").o.address).toBe("127.0.0.9");
    expect(parse("-s", "fd00::2").o.address).toBe("::1");
    expect(parse("-b", "0.0.0.0").o.address).toBe("127.0.0.1");
  });
});
