// softroce srq_pingpong as rdma-core's ibv_srq_pingpong: server and client as two processes on
// 127.0.45.1 / 127.0.45.2 (this file's addresses; free UDP and TCP ports): every QP's address lines
// cross-matched, the summary lines, -c; the exchange's 256 messages (those past -q zero) spoken to
// the server over a raw TCP socket; srq_pingpong's own refusals.
import net from "node:net";
import { describe, expect, it } from "vitest";
import { ADDR_RE, freeTcpPort, freeUdpPort, parseOut, until, useCli } from "../support/cli-process.js";
import { OOB_MSG_LEN, parseDestMsg } from "../../../host/cli/pingpong.js";

const { start } = useCli("cli-test-srq-pingpong");
const S = "127.0.45.1";
const C = "127.0.45.2";

const addressLines = (out: string, which: string) =>
  out.split("\n").map((l) => ADDR_RE.exec(l)).filter((m) => m?.[1] === which).map((m) => ({ lid: m![2], qpn: m![3], psn: m![4], gid: m![5] }));

async function pingpong(extra: string[]) {
  const udp = String(await freeUdpPort(S, C));
  const tcp = String(await freeTcpPort());
  const server = start("srq_pingpong", "--address", S, "--udp-port", udp, "-p", tcp, "--timeout", "30", ...extra);
  await until(() => server.stderr.includes("waiting for a client"));
  const client = start("srq_pingpong", "--address", C, "--udp-port", udp, "-p", tcp, "--timeout", "30", ...extra, S);
  const [sc, cc] = await Promise.all([server.done, client.done]);
  expect({ code: cc, err: client.stderr }).toEqual({ code: 0, err: "" });
  expect({ code: sc, err: server.stderr.replace(/^srq_pingpong: (waiting|\d+\/).*\n/gm, "") }).toEqual({ code: 0, err: "" });
  return { server, client };
}

describe("srq_pingpong, two processes", () => {
  it("defaults but -n 400 (16 QPs on one SRQ): 16 local and 16 remote lines each, cross-matched; the summary lines", async () => {
    const { server, client } = await pingpong(["-n", "400"]);
    for (const [me, peer] of [[server, client], [client, server]] as const) {
      const local = addressLines(me.stdout, "local");
      expect(local).toHaveLength(16);
      expect(new Set(local.map((l) => l.qpn)).size).toBe(16);
      expect(addressLines(peer.stdout, "remote")).toEqual(local);
      const out = parseOut(me.stdout);
      expect(out.bytes).toBe(4096 * 400 * 2);
      expect(out.iters).toBe(400);
    }
  });

  it("-q 3 -r 8 -s 5000 -m 1024 -n 60 -c: multi-packet SENDs, a small SRQ refilled as it drains, the server validates its buffer", async () => {
    const { server, client } = await pingpong(["-q", "3", "-r", "8", "-s", "5000", "-m", "1024", "-n", "60", "-c"]);
    expect(addressLines(server.stdout, "remote")).toHaveLength(3);
    expect(server.stdout).not.toContain("invalid data");
    expect(parseOut(client.stdout).bytes).toBe(5000 * 60 * 2);
  });

  it("the exchange: 256 messages each way, our -q first and the rest all zero; then 'done'", async () => {
    const udp = String(await freeUdpPort(S, C));
    const tcp = await freeTcpPort();
    const server = start("srq_pingpong", "--address", S, "--udp-port", udp, "-p", String(tcp), "-q", "2", "--timeout", "10");
    await until(() => server.stderr.includes("waiting for a client"));
    const zero = "0000:000000:000000:" + "0".repeat(32);
    const peer = "0000:00abcd:000001:00000000000000000000ffff7f002d02";
    const msgs = Buffer.alloc(256 * OOB_MSG_LEN);
    for (let i = 0; i < 256; i++) msgs.write(i < 2 ? peer : zero, i * OOB_MSG_LEN);
    const got = await new Promise<Buffer>((resolve, reject) => {
      const sock = net.createConnection({ host: "127.0.0.1", port: tcp }, () => sock.write(msgs));
      let buf = Buffer.alloc(0);
      sock.on("data", (d) => {
        buf = Buffer.concat([buf, d]);
        if (buf.length >= 256 * OOB_MSG_LEN) {
          sock.end(Buffer.from("done\0"));
          resolve(buf);
        }
      });
      sock.on("error", reject);
    });
    const dests = Array.from({ length: 256 }, (_, i) => parseDestMsg(got.subarray(i * OOB_MSG_LEN, (i + 1) * OOB_MSG_LEN)));
    expect(dests.slice(0, 2).every((d) => d.qpn !== 0 && d.gid[15] === 1)).toBe(true);
    expect(dests.slice(2).every((d) => d.qpn === 0 && d.psn === 0 && d.gid.every((b) => b === 0))).toBe(true);
    await until(() => addressLines(server.stdout, "remote").length === 2); // printed once "done" is read
    expect(addressLines(server.stdout, "remote")).toEqual([0, 1].map(() => ({ lid: "0000", qpn: "00abcd", psn: "000001", gid: "::ffff:127.0.45.2" })));
    server.child.kill("SIGTERM");
  });

  it("srq_pingpong's refusals: fewer receives than QPs, -q at MAX_QP", async () => {
    for (const [args, msg] of [
      [["-q", "8", "-r", "4"], "rx_depth 4 is too small for 8 QPs -- must have at least one receive per QP.\n"],
      [["-q", "256"], "num_qp 256 must be less than 255\n"],
    ] as const) {
      const r = start("srq_pingpong", "--address", S, ...args);
      expect(await r.done, args.join(" ")).toBe(1);
      expect(r.stderr).toBe(`softroce srq_pingpong: ${msg}`);
    }
  });
});
