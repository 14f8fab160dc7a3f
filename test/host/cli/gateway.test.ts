// softroce gateway's command line: flags to options (repeatable lists, defaults, the env token),
// usage errors, and a run that starts, logs a refusal as one JSON line, and stops.
import { describe, expect, it } from "vitest";
import WebSocket from "ws";
import { gatewayCommand, gatewayOptionsFromArgs, runGateway } from "../../../host/cli/gateway.js";
import { runCommand, type Io } from "../../../host/cli/command.js";
import { parseFrame, FrameKind } from "../../../host/core/tunnel/frames.js";
import { datapathAddon } from "../../../host/node/datapath.js";

describe("softroce gateway", () => {
  it("reads repeatable --allow/--origin/--dst-port and the defaults", () => {
    const o = gatewayOptionsFromArgs(["--allow", "127.0.0.1", "--allow=10.0.0.0/8,fd00::/8", "--origin", "https://a.example",
      "--dst-port", "4791", "--dst-port=5000", "--token", "t", "--port", "0", "-q"])!;
    expect(o).toMatchObject({
      allow: ["127.0.0.1", "10.0.0.0/8", "fd00::/8"], origins: ["https://a.example"], dstPorts: [4791, 5000], token: "t", port: 0,
      listen: "127.0.0.1", udpAddress: "127.0.0.1", udpPort: 4791, maxClients: 64, maxClientsPerAddress: 8, qpnCount: 1024,
      idleTimeoutMs: 120000, heartbeatMs: 30000, logRate: 20, quiet: true,
    });
    expect(gatewayOptionsFromArgs(["--log-rate", "3"])!.logRate).toBe(3);
    expect(gatewayOptionsFromArgs([])!.udpBusyPollUs).toBe(0);
    expect(gatewayOptionsFromArgs(["--busy-poll", "150"])!.udpBusyPollUs).toBe(150);
    expect(gatewayOptionsFromArgs([])!.relayBusyPollUs).toBeUndefined(); // the gateway's default
    expect(gatewayOptionsFromArgs(["--relay-poll", "0"])!.relayBusyPollUs).toBe(0);
    expect(gatewayOptionsFromArgs([])!.relayRequestPollUs).toBeUndefined(); // the gateway's default (or its env)
    expect(gatewayOptionsFromArgs(["--relay-request-poll", "300"])!.relayRequestPollUs).toBe(300);
    expect(gatewayOptionsFromArgs([])!.relayJoinAcks).toBeUndefined(); // the gateway's default (or its env)
    expect(gatewayOptionsFromArgs(["--relay-join-acks", "off"])!.relayJoinAcks).toBe(false);
    expect(gatewayOptionsFromArgs(["--relay-join-acks", "on"])!.relayJoinAcks).toBe(true);
    expect(gatewayOptionsFromArgs([])).toMatchObject({ allow: ["127.0.0.1"], dstPorts: [4791], origins: [], token: undefined, quiet: false });
    expect(gatewayOptionsFromArgs([], { SOFTROCE_GATEWAY_TOKEN: "envtok" })!.token).toBe("envtok");
    expect(gatewayOptionsFromArgs(["--help"])).toBeUndefined();
  });

  it("refuses bad flags with exit 2 and one line", async () => {
    for (const [argv, msg] of [
      [["--allow", "10.0.0.0/33"], "--allow: bad prefix length in \"10.0.0.0/33\""],
      [["--allow", "example.com"], "--allow: not an address or CIDR block: \"example.com\""],
      [["--dst-port", "0"], "--dst-port: bad UDP port \"0\""],
      [["--allow"], "--allow needs a value"],
      [["--log-rate", "-1"], "--log-rate must be at least 0, got -1"],
      [["--busy-poll", "2001"], "--busy-poll must be at most 2000, got 2001"],
      [["--relay-poll", "10001"], "--relay-poll must be at most 10000, got 10001"],
      [["--relay-request-poll", "10001"], "--relay-request-poll must be at most 10000, got 10001"],
      [["--relay-join-acks", "yes"], "--relay-join-acks must be one of on, off, got 'yes'"],
      [["--bogus"], "unknown flag --bogus"],
    ] as const) {
      let err = "";
      const io: Io = { out: () => {}, err: (t) => void (err += t) };
      expect(await runCommand(gatewayCommand, [...argv], io)).toBe(2);
      expect(err).toBe(`softroce gateway: ${msg} (see 'softroce gateway --help')\n`);
    }
  });

  it("runs: a startup line, JSON refusal lines, ?token= accepted, stops cleanly", async () => {
    let out = "";
    let err = "";
    const io: Io = { out: (t) => void (out += t), err: (t) => void (err += t) };
    let stop!: () => void;
    const done = runGateway(["--port", "0", "--udp-port", "0", "--token", "tok"], io, new Promise<void>((r) => (stop = r)));
    const t0 = Date.now();
    while (!out.includes("\n") && Date.now() - t0 < 5000) await new Promise((r) => setTimeout(r, 10));
    const m = /^softroce gateway: ws:\/\/127\.0\.0\.1:(\d+)\/tunnel -> udp 127\.0\.0\.1:(\d+) \((native datapath: sendmmsg\/recvmmsg|node:dgram)\); allow 127\.0\.0\.1 ports 4791; token required/.exec(out);
    expect(m).not.toBeNull();
    // the UDP side the gateway runs on: the addon's datapath when built (as here), else node:dgram
    expect(m![3]).toBe(datapathAddon() ? "native datapath: sendmmsg/recvmmsg" : "node:dgram");
    // the banner says that browsers are refused until an Origin is allowed, and how to allow one
    expect(out).toContain("browser Origins: none allowed, every browser page is refused (allow one with --origin <origin>");
    const port = Number(m![1]);
    const refused = await new Promise<number>((resolve) => {
      const s = new WebSocket(`ws://127.0.0.1:${port}/tunnel`);
      s.on("unexpected-response", (_q, res) => resolve(res.statusCode!));
      s.on("error", () => {});
    });
    expect(refused).toBe(401);
    const hello = await new Promise<ReturnType<typeof parseFrame>>((resolve, reject) => {
      const s = new WebSocket(`ws://127.0.0.1:${port}/tunnel?token=tok`);
      s.on("message", (d: Buffer) => { resolve(parseFrame(d)); s.close(); });
      s.on("error", reject);
    });
    expect(hello).toMatchObject({ kind: FrameKind.HELLO, port: Number(m![2]), qpnBase: 1024 });
    stop();
    expect(await done).toBe(0);
    const lines = err.trim().split("\n").map((l) => JSON.parse(l));
    expect(lines[0]).toMatchObject({ event: "listening" });
    expect(lines.find((l) => l.event === "refused")).toMatchObject({ reason: "no_token", remote: "127.0.0.1", detail: "no token" });
    expect(lines.some((l) => l.event === "connected")).toBe(true);
    expect(out).toMatch(/stopped \(\{"clientsAccepted":1,/);
  });
});
