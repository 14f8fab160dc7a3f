// examples/hello-rdma runs as written: WRITE, READ, SEND and FETCH_ADD over real UDP on loopback.
import { describe, expect, it } from "vitest";
import { exampleAddresses, runExample } from "./run-example.js";

const [A, B] = exampleAddresses("hello-rdma", 2);

describe("examples/hello-rdma", () => {
  it("prints what each operation did and exits 0", async () => {
    const r = await runExample("examples/hello-rdma/hello.mjs", [A, B]);
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    expect(r.stdout.trim().split("\n")).toEqual([
      `WRITE: B's memory now says "hello, RDMA"`,
      `READ: A fetched "read me"`,
      `SEND: B received 9 bytes: "a message"`,
      `FETCH_ADD: the counter was 41, now 42`,
    ]);
  });

  it("fails with a message, not a hang, on an address it cannot bind", async () => {
    const r = await runExample("examples/hello-rdma/hello.mjs", ["192.0.2.123", B], 30_000);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/Cannot assign requested address|EADDRNOTAVAIL/);
  });
});
