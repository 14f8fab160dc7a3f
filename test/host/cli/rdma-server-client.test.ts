// softroce rdma_server and rdma_client as rdma-core's (librdmacm/examples): two processes on
// 127.0.15.31 / 127.0.15.32 (UDP 4791, this suite's own loopback addresses): one RC connection, a
// 16-byte inline SEND each way, rdma-core's two lines each; a client whose port nobody listens on.
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
