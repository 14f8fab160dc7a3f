// A device on a UDP socket sends from the socket's address only, and the ICRC covers the source
// address: openDevice refuses GID entries that name another address (EINVAL, a message that says
// why) instead of accepting them and failing every packet at the peer.
import { describe, expect, it } from "vitest";
import { openDevice } from "../../../host/node/index.js";
import { VerbsError } from "../../../host/core/verbs/errors.js";

async function refused(o: Parameters<typeof openDevice>[0]): Promise<VerbsError> {
  const e = await openDevice(o).then(
    (d) => {
      d.close();
      return undefined;
    },
    (e: unknown) => e,
  );
  expect(e).toBeInstanceOf(VerbsError);
  return e as VerbsError;
}

describe("openDevice: GID entries the socket cannot send from", () => {
  it("a GID for another address is EINVAL, naming the entry and the bound address", async () => {
    const e = await refused({ address: "127.0.15.31", port: 0, gids: ["::ffff:127.0.15.31", "::ffff:127.0.15.99"] });
    expect(e.code).toBe("EINVAL");
    expect(e.message).toMatch(/GID 1 ::ffff:127\.0\.15\.99: the socket is bound to 127\.0\.15\.31 and cannot send from that address/);
    const v6 = await refused({ address: "127.0.15.31", port: 0, gids: ["fe80::1"] });
    expect(v6.message).toMatch(/GID 0 fe80::1/);
  });

  it("GIDs on a wildcard socket are refused; the bound address itself is accepted (as text or bytes)", async () => {
    expect((await refused({ address: "0.0.0.0", port: 0, gids: ["::ffff:127.0.15.31"] })).message).toMatch(/need a bound address/);
    const d = await openDevice({ address: "127.0.15.31", port: 0, gids: ["0:0:0:0:0:ffff:7f00:0f1f"] });
    expect(d.queryGid(0)).toBe("::ffff:127.0.15.31");
    d.close();
    const d2 = await openDevice({ address: "127.0.15.31", port: 0 });
    expect(d2.queryGid(0)).toBe("::ffff:127.0.15.31");
    d2.close();
  });
});
