// envInteger (host/node/env.ts): the one reader of numeric settings from the environment — unset or
// empty is "no setting", a decimal integer in range is the value, anything else a RangeError that
// names the variable, the value and the range.
import { afterEach, describe, expect, it } from "vitest";
import { envChoice, envInteger } from "../../../host/node/env.js";
import { datapathOf, openDevice, udpLinkOf } from "../../../host/node/index.js";
import { NativeUdpLink } from "../../../host/node/native-link.js";

const NAME = "SOFTROCE_TEST_ENV_INTEGER";
afterEach(() => {
  delete process.env[NAME];
});

describe("envInteger", () => {
  it("unset or empty: undefined", () => {
    delete process.env[NAME];
    expect(envInteger(NAME, 0, 10)).toBeUndefined();
    process.env[NAME] = "";
    expect(envInteger(NAME, 0, 10)).toBeUndefined();
  });

  it("a decimal integer in range, the ends included", () => {
    for (const [v, n] of [["0", 0], ["7", 7], ["10", 10], ["007", 7]] as const) {
      process.env[NAME] = v;
      expect(envInteger(NAME, 0, 10)).toBe(n);
    }
    process.env[NAME] = "5";
    expect(envInteger(NAME, 5, 5)).toBe(5);
  });

  it("anything else: a RangeError naming the variable, the value and the range", () => {
    for (const bad of ["11", "-1", "1.5", "1e1", "0x5", " 5", "5 ", "+5", "five", "NaN", "Infinity", "99999999999999999999"]) {
      process.env[NAME] = bad;
      expect(() => envInteger(NAME, 0, 10, "µs")).toThrow(new RangeError(`${NAME}=${JSON.stringify(bad)}: an integer 0 .. 10 µs`));
    }
    process.env[NAME] = "3";
    expect(() => envInteger(NAME, 4, 8)).toThrow(new RangeError(`${NAME}="3": an integer 4 .. 8`));
  });
});

describe("envChoice", () => {
  it("unset or empty: undefined; one of the choices: itself", () => {
    delete process.env[NAME];
    expect(envChoice(NAME, ["a", "b"])).toBeUndefined();
    process.env[NAME] = "";
    expect(envChoice(NAME, ["a", "b"])).toBeUndefined();
    process.env[NAME] = "b";
    expect(envChoice(NAME, ["a", "b"])).toBe("b");
  });

  it("anything else: a RangeError naming the variable, the value and the choices", () => {
    for (const bad of ["c", "A", " a", "a ", "ab"]) {
      process.env[NAME] = bad;
      expect(() => envChoice(NAME, ["a", "b"])).toThrow(new RangeError(`${NAME}=${JSON.stringify(bad)}: one of a, b`));
    }
  });
});

// the Node host's own settings go through them: a value the host cannot take stops openDevice with
// the variable's name instead of opening a device configured some other way
describe("the Node host's environment settings", () => {
  const SETTINGS = [
    ["SOFTROCE_DATAPATH", "fast", "one of native, dgram"],
    ["SOFTROCE_UDP_SOURCE_PORTS", "perqp", "one of per-qp, device"],
    ["SOFTROCE_FLUSH", "later", "one of defer, now"],
    ["SOFTROCE_ICRC_OFFLOAD", "off", "one of 0, 1"],
    ["SOFTROCE_BUSY_POLL_US", "1e2", "adaptive or an integer 0 .. 1000 µs"],
    ["SOFTROCE_ACK_HOLD", "all", "one of more, every"],
  ] as const;
  afterEach(() => {
    for (const [name] of SETTINGS) delete process.env[name];
  });

  for (const [name, bad, says] of SETTINGS) {
    it(`${name}=${bad} is refused by openDevice`, async () => {
      process.env[name] = bad;
      await expect(openDevice({ address: "127.0.31.1", port: 0 })).rejects.toThrow(`${name}=${JSON.stringify(bad)}: ${says}`);
    });
  }

  it("good values open the device they ask for", async () => {
    process.env.SOFTROCE_DATAPATH = "dgram";
    const d = await openDevice({ address: "127.0.31.1", port: 0 });
    try {
      expect(datapathOf(d)?.path).toBe("dgram");
    } finally {
      await d.close();
    }
    process.env.SOFTROCE_DATAPATH = "native";
    process.env.SOFTROCE_ICRC_OFFLOAD = "0";
    const n = await openDevice({ address: "127.0.31.1", port: 0 });
    try {
      const dp = datapathOf(n);
      if (dp?.path === "native") expect(dp.icrcOffload).toBe("off (SOFTROCE_ICRC_OFFLOAD=0)");
      else expect(dp?.reason).toBeTruthy(); // no addon: the fallback says why
    } finally {
      await n.close();
    }
  });

  it("SOFTROCE_ACK_HOLD picks which received batches hold their ACKs on the native link", async () => {
    for (const [value, every] of [[undefined, false], ["more", false], ["every", true]] as const) {
      if (value === undefined) delete process.env.SOFTROCE_ACK_HOLD;
      else process.env.SOFTROCE_ACK_HOLD = value;
      const d = await openDevice({ address: "127.0.31.1", port: 0, datapath: "native" });
      try {
        const l = udpLinkOf(d);
        if (l instanceof NativeUdpLink) expect(l.holdEveryBatch).toBe(every);
        else expect(datapathOf(d)?.reason).toBeTruthy(); // no addon: nothing to hold
      } finally {
        await d.close();
      }
    }
  });
});
