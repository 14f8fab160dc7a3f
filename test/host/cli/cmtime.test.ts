// softroce cmtime as rdma-core's cmtime (librdmacm/examples/cmtime.c): server and client as two
// processes on 127.0.15.29 / 127.0.15.30 (UDP 4791, this suite's own loopback addresses): -c
// connections made, broken and destroyed at once, the step table; the server tears every one down
// (--serve: it stops after that many); a port nobody listens on; the flags it refuses.
import { describe, expect, it } from "vitest";
import { useCli } from "../support/cli-process.js";

const { start } = useCli("cli-test-cmtime");
const SERVER = "127.0.15.29";
const CLIENT = "127.0.15.30";
/**
 * A row of the table: "%-13s: %11.2f%11.2f%11.2f%11.2f"; a figure wider than 11 runs into the one before
 * it, as printf writes it (cmtime's min is 999999999.00 when no connection took the step).
 */
function row(line: string) {
  expect(line, line).toMatch(/^.{13}: (?: *\d+\.\d\d){4}$/);
  const [total, max, min, perConn] = line.slice(15).match(/\d+\.\d\d/g)!.map(Number);
  return { step: line.slice(0, 13).trimEnd(), total: total!, max: max!, min: min!, perConn: perConn! };
}

function table(out: string) {
  const lines = out.trimEnd().split("\n");
  const head = lines.indexOf("step              total ms     max ms     min us  us / conn");
  expect(head, out).toBeGreaterThan(0);
  return { progress: lines.slice(0, head), rows: lines.slice(head + 1).map(row) };
}

describe("cmtime, two processes over rdma_cm", () => {
  it("-c 1000 with -b (above the device's default 256 QPs): every step's line, the table with every step, no error; the server tore all 1000 down", async () => {
    const server = start("cmtime", "-b", SERVER, "-p", "7481", "--serve", "1000", "--timeout", "60");
    await new Promise((r) => setTimeout(r, 500));
    const client = start("cmtime", "-s", SERVER, "-b", CLIENT, "-p", "7481", "-c", "1000", "--timeout", "60");
    const [sc, cc] = await Promise.all([server.done, client.done]);
    expect({ cc, err: client.stderr }).toEqual({ cc: 0, err: "" });
    const t = table(client.stdout);
    expect(t.progress).toEqual(["creating id", "binding source address", "resolving address", "resolving route", "creating qp", "connecting", "disconnecting", "destroying id"]);
    expect(t.rows.map((r) => r.step)).toEqual(["create id", "bind addr", "resolve addr", "resolve route", "create qp", "connect", "disconnect", "destroy"]);
    expect(t.rows.every((r) => r.total >= 0 && r.max * 1000 >= r.min)).toBe(true);
    expect({ sc, out: server.stdout, err: server.stderr }).toEqual({ sc: 0, out: "", err: "softroce cmtime: served 1000 connections, tore down 1000\n" });
  });

  it("nobody listening on the port: each connection REJECTED with error 8; the table still comes (cmtime exits 0), without the bind row", async () => {
    const server = start("cmtime", "-b", SERVER, "-p", "7482", "--timeout", "20");
    await new Promise((r) => setTimeout(r, 500));
    const client = start("cmtime", "-s", SERVER, "-p", "7483", "-c", "3", "--address", CLIENT, "--timeout", "20");
    expect(await client.done).toBe(0);
    expect(client.stdout.match(/^event: RDMA_CM_EVENT_REJECTED, error: 8$/gm)).toHaveLength(3);
    const rows = table(client.stdout).rows;
    expect(rows.map((r) => r.step)).not.toContain("bind addr");
    expect(rows.find((r) => r.step === "disconnect")).toMatchObject({ max: 0, min: 999999999 }); // no connection got there
    server.child.kill("SIGTERM");
  });

  it("flags it refuses: a name for an address, -c 0", async () => {
    for (const [args, msg] of [
      [["-s", "server.example"], /-s wants a numeric IPv4 or IPv6 address/],
      [["-c", "0"], /--connections/],
    ] as const) {
      const r = start("cmtime", ...args);
      expect(await r.done, args.join(" ")).toBe(2);
      expect(r.stderr).toMatch(msg);
    }
  });
});
