// softroce rdma_server and rdma_client as rdma-core's (librdmacm/examples): two processes on
// 127.0.15.31 / 127.0.15.32 (UDP 4791, this suite's own loopback addresses): one RC connection, a
// 16-byte inline SEND each way, rdma-core's two lines each; a client whose port nobody listens on.
// rdma_xserver and rdma_xclient: one SEND from the client; their XRC mode failing as on rxe.
import { describe, expect, it } from "vitest";
import { useCli } from "../support/cli-process.js";

const { start } = useCli("cli-test-rdma-server-client");
const SERVER = "127.0.15.31";
const CLIENT = "127.0.15.32";

describe("rdma_server and rdma_client, two processes over rdma_cm", () => {
  it("one connection, a SEND each way: 'start' and 'end 0' on both sides, exit 0", async () => {
    const server = start("rdma_server", "-s", SERVER, "-p", "7495", "--timeout", "20");
    await new Promise((r) => setTimeout(r, 500));
    const client = start("rdma_client", "-s", SERVER, "-p", "7495", "--address", CLIENT, "--timeout", "20");
    const [sc, cc] = await Promise.all([server.done, client.done]);
    expect({ cc, out: client.stdout, err: client.stderr }).toEqual({ cc: 0, out: "rdma_client: start\nrdma_client: end 0\n", err: "" });
    expect({ sc, out: server.stdout, err: server.stderr }).toEqual({ sc: 0, out: "rdma_server: start\nrdma_server: end 0\n", err: "" });
  });

  it("a client whose port nobody listens on: rdma_connect fails with the REJ (status 8) as ECONNREFUSED, 'end -1', exit 1", async () => {
    const server = start("rdma_server", "-s", SERVER, "-p", "7496", "--timeout", "20");
    await new Promise((r) => setTimeout(r, 500));
    const client = start("rdma_client", "-s", SERVER, "-p", "7497", "--address", CLIENT, "--timeout", "20");
    expect(await client.done).toBe(1);
    expect(client.stdout).toBe("rdma_client: start\nrdma_connect: Connection refused (RDMA_CM_EVENT_REJECTED, status 8)\nrdma_client: end -1\n");
    server.child.kill("SIGTERM");
  });

  it("refuses a name for an address", async () => {
    const r = start("rdma_client", "-s", "server.example");
    expect(await r.done).toBe(2);
    expect(r.stderr).toMatch(/-s wants a numeric IPv4 or IPv6 address/);
  });
});

describe("rdma_xserver and rdma_xclient, two processes over rdma_cm", () => {
  it("-c r (the default): one connection (the server on 0.0.0.0), one inline SEND from the client; 'start' and 'end 0' on both sides, exit 0", async () => {
    const server = start("rdma_xserver", "-p", "7498", "--address", SERVER, "--timeout", "20");
    await new Promise((r) => setTimeout(r, 500));
    const client = start("rdma_xclient", "-s", SERVER, "-p", "7498", "--address", CLIENT, "--timeout", "20");
    const [sc, cc] = await Promise.all([server.done, client.done]);
    expect({ cc, out: client.stdout, err: client.stderr }).toEqual({ cc: 0, out: "rdma_xclient: start\nrdma_xclient: end 0\n", err: "" });
    expect({ sc, out: server.stdout, err: server.stderr }).toEqual({ sc: 0, out: "rdma_xserver: start\nrdma_xserver: end 0\n", err: "" });
  });

  it("-c x: the client fails at rdma_create_ep (no XRC, as rxe); the server rejects the first request (REJ 28, consumer defined) and fails at rdma_get_request", async () => {
    const client = start("rdma_xclient", "-s", SERVER, "-p", "7500", "-c", "x", "--address", CLIENT, "--timeout", "20");
    expect(await client.done).toBe(1);
    expect(client.stdout).toBe("rdma_xclient: start\nrdma_create_ep: Operation not supported\nrdma_xclient: end -1\n");
    // the XRC server listens in RDMA_PS_IB: ucmatose -P ib asks there
    const server = start("rdma_xserver", "-p", "7500", "-c", "X", "--address", SERVER, "--timeout", "20");
    await new Promise((r) => setTimeout(r, 500));
    const asker = start("ucmatose", "-s", SERVER, "-p", "7500", "-P", "ib", "-b", CLIENT, "--timeout", "20");
    expect(await server.done).toBe(1);
    expect(server.stdout).toBe("rdma_xserver: start\nrdma_get_request: Operation not supported\nrdma_xserver: end -1\n");
    expect(await asker.done).toBe(1);
    expect(asker.stdout).toMatch(/RDMA_CM_EVENT_REJECTED, error: 28\n/);
  });

  it("refuses a -c it does not know and an IPv6 device for the server (it listens on 0.0.0.0)", async () => {
    const c = start("rdma_xclient", "-c", "q");
    expect(await c.done).toBe(2);
    expect(c.stderr).toMatch(/-c wants r \(RC\) or x \(XRC\), got 'q'/);
    const s = start("rdma_xserver", "--address", "::1");
    expect(await s.done).toBe(2);
    expect(s.stderr).toMatch(/listens on 0\.0\.0\.0 .* give an IPv4 address/);
    const noS = start("rdma_xserver", "-s", "127.0.0.1");
    expect(await noS.done).toBe(2);
    expect(noS.stderr).toMatch(/unknown flag -s/);
  });
});
