// softroce mckey as rdma-core's mckey (librdmacm/examples/mckey.c): a receiver and a sender as two
// processes on 127.0.15.27 / 127.0.15.28 (UDP 4791, this suite's own loopback addresses and groups
// 239.15.0.x), each joining the group through rdma_join_multicast; the output lines are those of
// Linux's mckey in test/fixtures/captures/mcast/logs (its group 239.1.1.1 replaced by ours); several
// joins, a send-only member; an IPv6 group (ENOTSUPP, as Linux); a message above the MTU; the flags
// it refuses.
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { until, useCli } from "../support/cli-process.js";

const { start } = useCli("cli-test-mckey");
const RECEIVER = "127.0.15.27";
const SENDER = "127.0.15.28";
const LOGS = new URL("../../fixtures/captures/mcast/logs/", import.meta.url);
const linuxLog = (name: string, group: string) => readFileSync(new URL(name, LOGS), "utf8").replaceAll("239.1.1.1", group);

async function pair(group: string, receiverArgs: string[], senderArgs: string[]) {
  const receiver = start("mckey", "-m", group, "-b", RECEIVER, "--timeout", "30", ...receiverArgs);
  await until(() => receiver.stdout.includes("mckey: joined"), 15_000);
  const sender = start("mckey", "-m", group, "-b", SENDER, "-s", "--timeout", "30", ...senderArgs);
  const [rc, sc] = await Promise.all([receiver.done, sender.done]);
  return { receiver, sender, rc, sc };
}

describe("mckey, two processes joined to an IPv4 group through rdma_cm", () => {
  it("-C 3 (the captures' run): the lines Linux's mckey prints on both sides, every message received, exit 0", async () => {
    const group = "239.15.0.1";
    const { receiver, sender, rc, sc } = await pair(group, ["-C", "3"], ["-C", "3"]);
    expect({ sc, out: sender.stdout, err: sender.stderr }).toEqual({ sc: 0, out: linuxLog("mckey-v4.client.out", group), err: "" });
    expect({ rc, out: receiver.stdout, err: receiver.stderr }).toEqual({ rc: 0, out: linuxLog("mckey-v4.server.out", group), err: "" });
  });

  it("-c 2 -C 50 -S 1000, the sender a send-only member (-o): both receiver QPs get their 50", async () => {
    const group = "239.15.0.2";
    const { receiver, sender, rc, sc } = await pair(group, ["-c", "2", "-C", "50", "-S", "1000"], ["-o", "-c", "2", "-C", "50", "-S", "1000"]);
    expect({ rc, sc, err: receiver.stderr + sender.stderr }).toEqual({ rc: 0, sc: 0, err: "" });
    expect(receiver.stdout.match(/mckey: joined dgid: ::ffff:239\.15\.0\.2 mlid 0x0 sl 0\n/g)).toHaveLength(2);
    expect(receiver.stdout).toContain("receiving data transfers\ndata transfers complete\ntest complete\nreturn status 0\n");
  });

  it("on the node:dgram datapath too: the sender exits right after posting its unsignaled SENDs, and its datagrams still leave (its socket drains before it closes)", async () => {
    const group = "239.15.0.6";
    const was = process.env.SOFTROCE_DATAPATH;
    process.env.SOFTROCE_DATAPATH = "dgram"; // the children inherit it
    try {
      const { receiver, sender, rc, sc } = await pair(group, ["-C", "20"], ["-C", "20"]);
      expect({ sc, rc, err: sender.stderr + receiver.stderr }).toEqual({ sc: 0, rc: 0, err: "" });
      expect(receiver.stdout).toBe(linuxLog("mckey-v4.server.out", group));
    } finally {
      if (was === undefined) delete process.env.SOFTROCE_DATAPATH;
      else process.env.SOFTROCE_DATAPATH = was;
    }
  });

  it("a receiver whose sender never comes waits (mckey does not time out); --timeout ends it with -110", async () => {
    const r = start("mckey", "-m", "239.15.0.3", "-b", RECEIVER, "--timeout", "5");
    expect(await r.done).toBe(1);
    expect(r.stdout).toContain("receiving data transfers\n");
    expect(r.stdout).toContain("return status -110\n");
    expect(r.stderr).toContain("no end after 5 s");
  });

  it("an IPv6 group: the join fails with ENOTSUPP (error 524 on Linux 6.1, which joins only IPv4 groups over RoCEv2), exit 1", async () => {
    const r = start("mckey", "-m", "ff0e::4791:1", "-b", "::1", "--udp-port", "4811", "--timeout", "10");
    expect(await r.done).toBe(1);
    expect(r.stdout).toMatch(/^mckey: starting server\nmckey: joining\nmckey: failure joining: rdma_join_multicast: ENOTSUPP .*\n/);
    expect(r.stdout).toContain("mckey: failure leaving: rdma_leave_multicast: EADDRNOTAVAIL");
    expect(r.stdout).toContain("return status -1\n");
  });

  it("a message above the port's active MTU: mckey's line, exit 1", async () => {
    const r = start("mckey", "-m", "239.15.0.4", "-b", RECEIVER, "-S", "5000", "--timeout", "10");
    expect(await r.done).toBe(1);
    expect(r.stdout).toContain("mckey: message_size 5000 is larger than active mtu 4096\n");
  });

  it("flags it refuses: -M, -l, no -m, a name, a port space it does not know", async () => {
    for (const [args, msg] of [
      [["-M", "ff0e::1", "-b", "::1"], /-M \(an unmapped multicast address, AF_IB\) is not supported/],
      [["-m", "239.15.0.5", "-l"], /-l \(join without multicast loopback\) is not supported/],
      [["-s"], /-m <multicast address> is needed/],
      [["-m", "group.example"], /-m wants a numeric IPv4 or IPv6 address/],
      [["-m", "239.15.0.5", "-p", "0x106"], /-p wants a port space/],
    ] as const) {
      const r = start("mckey", ...args);
      expect(await r.done, args.join(" ")).toBe(2);
      expect(r.stderr).toMatch(msg);
    }
  });
});
