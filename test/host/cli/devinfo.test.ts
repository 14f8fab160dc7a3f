// softroce devinfo: ibv_devinfo's fields for a device bound to UDP, -v's limits, GID table and
// counters, and its usage errors. This file's addresses: 127.0.43.0/24 (and the default, 127.0.0.1, on
// a free port).
import { describe, expect, it } from "vitest";
import { devinfoCommand, formatDevinfo } from "../../../host/cli/devinfo.js";
import { openDevice } from "../../../host/node/index.js";
import { connectQp } from "../../../host/core/verbs/connect.js";
import { Access, QpType, SendFlags, WrOpcode } from "../../../host/core/verbs/enums.js";
import { runCommand, type Io } from "../../../host/cli/command.js";
import { datapathAddon } from "../../../host/node/datapath.js";

async function run(...argv: string[]) {
  let out = "";
  let err = "";
  const io: Io = { out: (t) => void (out += t), err: (t) => void (err += t) };
  const code = await runCommand(devinfoCommand, argv, io);
  return { code, out, err };
}

/** "key: value" pairs of the output, tabs collapsed. */
function fields(out: string): Map<string, string> {
  const m = new Map<string, string>();
  for (const line of out.split("\n")) {
    const x = /^\t*([A-Za-z_]+(?:\[ *\d+\])?):\t+(.*)$/.exec(line);
    if (x) m.set(x[1], x[2]);
  }
  return m;
}

describe("softroce devinfo", () => {
  it("prints the device and its port as ibv_devinfo does", async () => {
    const r = await run("--udp-port", "0");
    expect(r.code).toBe(0);
    expect(r.err).toBe("");
    expect(r.out.startsWith("hca_id:\tsoftroce0\n")).toBe(true);
    const f = fields(r.out);
    expect(Object.fromEntries(f)).toMatchObject({
      transport: "InfiniBand (0)", vendor_id: "0xffffff", node_guid: expect.stringMatching(/^[0-9a-f]{4}(:[0-9a-f]{4}){3}$/),
      phys_port_cnt: "1", port: "1", state: "PORT_ACTIVE (4)", max_mtu: "4096 (5)",
      // from the interface, as rxe and as perf derive it: loopback allows 4096
      active_mtu: "4096 (5)", link_layer: "Ethernet", udp_address: expect.stringMatching(/^127\.0\.0\.1:\d+$/),
    });
    expect(f.has("max_qp")).toBe(false);
    expect(f.has("GID[  0]")).toBe(false);
  });

  it("-v adds limits, the GID table (GID 0 = the bound address) and the counters", async () => {
    const r = await run("-v", "--address", "::1", "--udp-port", "0");
    expect(r.code).toBe(0);
    const f = fields(r.out);
    expect(Object.fromEntries(f)).toMatchObject({
      max_qp: "256", max_cqe: "32767", max_sge: "32", max_srq_sge: "27", max_qp_rd_atom: "128", atomic_cap: "ATOMIC_HCA (1)",
      gid_tbl_len: "16", max_msg_sz: "0x80000000", "GID[  0]": "::1, RoCE v2", udp_address: expect.stringMatching(/^\[::1\]:\d+$/),
      // the UDP path in use: the native datapath where the addon is built (it is, here)
      udp_datapath: "native (sendmmsg/GSO, recvmmsg/GRO)",
      // and the ICRC offload: on where the CPU has PCLMULQDQ (this one does), and why not elsewhere
      icrc_offload: datapathAddon()?.crc32Clmul ? "on (TX and RX, PCLMULQDQ CRC-32 in the socket addon)" : expect.stringMatching(/^off \(/),
      // the busy poll's mode (adaptive by default) and its windows so far
      udp_busy_poll: "adaptive (200 µs windows after a received batch, gated on their hit rate)",
      udp_busy_poll_windows: "0 (caught a datagram 0, held back by the gate 0)",
    });
    expect(r.out).toContain("\t\t\tcounters:\n");
    const counters = new Map(
      r.out.split("\n").filter((l) => l.startsWith("\t\t\t\t")).map((l) => l.trim().split(/\s+/) as [string, string]),
    );
    for (const k of ["sent_pkts", "rcvd_pkts", "bad_icrc", "unknown_qpn", "retry_exceeded_err"]) expect(counters.get(k)).toBe("0");
    // the capability names under device_cap_flags
    expect(r.out).toMatch(/device_cap_flags:\t+0x01223c46\n\t{5}BAD_PKEY_CNTR\n/);
  });

  it("-v's counters are the device's: after one SEND and its ACK, sent 1, received 1, a bad version counted", async () => {
    const a = await openDevice({ address: "127.0.43.1", port: 0 });
    const b = await openDevice({ address: "127.0.43.2", port: 0 });
    try {
      const side = (d: typeof a) => {
        const pd = d.allocPd();
        const mr = pd.regMr(256, Access.LOCAL_WRITE);
        const cq = d.createCq(4);
        const qp = pd.createQp({ qpType: QpType.RC, sendCq: cq, recvCq: cq, cap: { maxSendWr: 1, maxRecvWr: 1, maxSendSge: 1, maxRecvSge: 1 } });
        return { mr, cq, qp, port: (d.limits as { port: number }).port };
      };
      const A = side(a);
      const B = side(b);
      // ACK timeout 4.3 s (20): on a loaded machine the default 67 ms can expire before the ACK is
      // read, and a retransmission would make the counts below 2
      connectQp(A.qp, { qpNum: B.qp.qpNum, psn: 5, gid: b.queryGid(0), port: B.port }, { sqPsn: 9, timeout: 20 });
      connectQp(B.qp, { qpNum: A.qp.qpNum, psn: 9, gid: a.queryGid(0), port: A.port }, { sqPsn: 5, timeout: 20 });
      B.qp.postRecv({ wrId: 1n, sgList: [B.mr.sge(0, 64)] });
      A.qp.postSend({ wrId: 2n, opcode: WrOpcode.SEND, sendFlags: SendFlags.SIGNALED, sgList: [A.mr.sge(0, 64)] });
      await A.cq.next();
      await B.cq.next();
      a.port!.receive({ src: "127.0.43.2", dst: "127.0.43.1", srcPort: B.port, dstPort: A.port, payload: new Uint8Array(40).fill(1) });
      const out = formatDevinfo(a, { verbose: true, address: "127.0.43.1", udpPort: A.port });
      const counter = (name: string) => new RegExp(`^\\t{4}${name} +(\\d+)$`, "m").exec(out)?.[1];
      expect(counter("sent_pkts")).toBe("1");
      expect(counter("rcvd_pkts")).toBe("1");
      // 40 bytes of 0x01: BTH transport version 1, dropped and counted as rxe's "bad version"
      expect(counter("bad_version")).toBe("1");
      expect(counter("rdma_sends")).toBe("1");
      expect(counter("bad_icrc")).toBe("0");
      expect(out).toContain(`udp_address:\t\t\t127.0.43.1:${A.port}\n`);
    } finally {
      a.close();
      b.close();
    }
  });

  it("-l lists the device; -d / -i name what is not there (exit 1)", async () => {
    expect(await run("-l")).toEqual({ code: 0, out: "1 HCA found:\n\tsoftroce0\n", err: "" });
    expect(await run("-d", "rxe0", "--udp-port", "0")).toEqual({ code: 1, out: "", err: "softroce devinfo: IB device 'rxe0' wasn't found\n" });
    expect((await run("-i", "2", "--udp-port", "0")).code).toBe(1);
  });

  it("usage errors exit 2 with one line", async () => {
    for (const [args, re] of [
      [["--bogus"], /unknown flag --bogus/],
      [["--udp-port", "x"], /--udp-port wants an integer, got 'x'/],
      [["--udp-port", "70000"], /--udp-port must be at most 65535/],
      [["--address", "example.com"], /--address wants a local IPv4 or IPv6 address, got 'example.com'/],
      [["extra"], /unexpected argument 'extra'/],
    ] as [string[], RegExp][]) {
      const r = await run(...args);
      expect(r.code, args.join(" ")).toBe(2);
      expect(r.err).toMatch(re);
      expect(r.err.split("\n")).toHaveLength(2);
      expect(r.out).toBe("");
    }
  });

  it("a port in use is a clear error (exit 1)", async () => {
    const dgram = await import("node:dgram");
    const s = dgram.createSocket("udp4");
    await new Promise<void>((r) => s.bind(0, "127.0.43.3", r));
    const r = await run("--address", "127.0.43.3", "--udp-port", String(s.address().port));
    s.close();
    expect(r.code).toBe(1);
    expect(r.err).toMatch(/^softroce devinfo: cannot open softroce0 on 127\.0\.43\.3 UDP port \d+: .*in use.*\n$/);
  });
});
