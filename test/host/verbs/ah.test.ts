import { describe, expect, it } from "vitest";
import { expectVerbsError, smallDevice } from "../support/verbs-helpers.js";

describe("address handle (ibv_create_ah, ibv_destroy_ah)", () => {
  it("stores the address vector", async () => {
    const pd = (await smallDevice()).allocPd();
    const ah = pd.createAh({ grh: { dgid: "fe80::1:2", sgidIndex: 0, hopLimit: 1, trafficClass: 2, flowLabel: 3 }, sl: 1, portNum: 1, destPort: 4792 });
    expect(ah.query()).toMatchObject({ grh: { dgid: "fe80::1:2", sgidIndex: 0, hopLimit: 1, trafficClass: 2, flowLabel: 3 }, isGlobal: 1, sl: 1, portNum: 1, destPort: 4792 });
    ah.destroy();
    expect(() => ah.destroy()).not.toThrow();
    expectVerbsError(() => ah.query(), "EINVAL", "ibv_query_ah");
  });

  it("bad flow: RoCE needs a GRH, an existing port and source GID index (EINVAL)", async () => {
    const pd = (await smallDevice()).allocPd();
    const grh = { dgid: "::ffff:10.0.0.2", sgidIndex: 1 };
    expectVerbsError(() => pd.createAh({ portNum: 1 }), "EINVAL", "ibv_create_ah");
    expectVerbsError(() => pd.createAh({ grh, isGlobal: false }), "EINVAL", "ibv_create_ah");
    expectVerbsError(() => pd.createAh({ grh, portNum: 2 }), "EINVAL", "ibv_create_ah");
    expectVerbsError(() => pd.createAh({ grh: { ...grh, sgidIndex: 2 } }), "EINVAL", "ibv_create_ah");
    expectVerbsError(() => pd.createAh({ grh: { ...grh, flowLabel: 1 << 20 } }), "EINVAL", "ibv_create_ah");
    expectVerbsError(() => pd.createAh({ grh: { dgid: "1:2:3" } }), "EINVAL", "ibv_create_ah");
    expectVerbsError(() => pd.createAh({ grh: { dgid: new Uint8Array(4) } }), "EINVAL", "ibv_create_ah");
    pd.createAh({ grh }).destroy();
  });

  it("bad flow: more AHs than max_ah (EINVAL as rxe_pool)", async () => {
    const dev = await smallDevice();
    const pd = dev.allocPd();
    const ahs = Array.from({ length: dev.query().maxAh }, () => pd.createAh({ grh: { dgid: "fe80::9" } }));
    expectVerbsError(() => pd.createAh({ grh: { dgid: "fe80::9" } }), "EINVAL", "ibv_create_ah");
    ahs.forEach((a) => a.destroy());
  });
});
