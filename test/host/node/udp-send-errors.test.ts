// Datagrams the kernel refuses are counted per errno and reported once through onSendError
// (openDevice's default prints one process warning per code), with words a tool can show.
import { afterEach, describe, expect, it } from "vitest";
import { UdpLink, explainSendError, type UdpSendError } from "../../../host/node/udp.js";
import { openDevice, udpLinkOf } from "../../../host/node/index.js";
import { connectQp } from "../../../host/core/verbs/connect.js";
import { Access, QpType, SendFlags, WcStatus, WrOpcode } from "../../../host/core/verbs/enums.js";

const links: UdpLink[] = [];
afterEach(async () => {
  while (links.length) await links.pop()!.close();
});

function datagram(length: number) {
  return { src: "127.0.0.1", dst: "127.0.0.1", srcPort: 0, dstPort: 9, ipId: 0, pieces: [new Uint8Array(length)], length };
}

describe("UdpLink send errors", () => {
  it("counts EMSGSIZE per code, calls onSendError with the datagram's facts, and still releases the descriptor", async () => {
    const seen: UdpSendError[] = [];
    const link = await UdpLink.open({ address: "127.0.0.1", port: 0, onSendError: (e) => seen.push(e) });
    links.push(link);
    let released = 0;
    // larger than any IPv4 UDP datagram: the kernel says EMSGSIZE whatever the interface MTU
    for (let i = 0; i < 3; i++) link.send(datagram(70_000), () => released++);
    link.send(datagram(100), () => released++);
    const end = Date.now() + 2000;
    while (released < 4 && Date.now() < end) await new Promise((r) => setTimeout(r, 2));
    expect(released).toBe(4);
    expect(link.stats.sendErrors).toBe(3);
    expect(link.stats.sendErrorsByCode).toEqual({ EMSGSIZE: 3 });
    expect(link.stats.sent).toBe(1);
    expect(seen).toHaveLength(3);
    expect(seen[0]).toMatchObject({ code: "EMSGSIZE", length: 70_000, dst: "127.0.0.1", dstPort: 9 });
    expect(explainSendError(seen[0]!)).toBe(
      "the kernel refused a 70000-byte datagram to 127.0.0.1:9 (EMSGSIZE): it does not fit the interface MTU with DF set; use a smaller path MTU (-m)",
    );
    expect(link.queuedBytes).toBe(0);
  });

  it("openDevice's default reports a refused datagram as one process warning per errno", async () => {
    const warnings: Error[] = [];
    const onWarning = (w: Error) => warnings.push(w);
    process.on("warning", onWarning);
    // node:dgram's link: single datagrams can be handed to it directly
    const dev = await openDevice({ address: "127.0.0.1", port: 0, datapath: "dgram" });
    try {
      const link = udpLinkOf(dev) as UdpLink;
      let released = 0;
      for (let i = 0; i < 2; i++) link.send(datagram(70_000), () => released++);
      const end = Date.now() + 2000;
      while ((released < 2 || warnings.length < 1) && Date.now() < end) await new Promise((r) => setTimeout(r, 2));
      await new Promise((r) => setTimeout(r, 20));
      expect(link.stats.sendErrorsByCode).toEqual({ EMSGSIZE: 2 });
      expect(warnings.map((w) => [(w as NodeJS.ErrnoException).code, w.message])).toEqual([
        ["SOFTROCE_SEND_EMSGSIZE", explainSendError({ code: "EMSGSIZE", length: 70_000, dst: "127.0.0.1", dstPort: 9, message: "" })],
      ]);
    } finally {
      process.off("warning", onWarning);
      dev.close();
    }
  });

  it("explains other errors with the kernel's message", () => {
    expect(explainSendError({ code: "ENETUNREACH", length: 60, dst: "10.9.9.9", dstPort: 4791, message: "send ENETUNREACH 10.9.9.9:4791" })).toBe(
      "the kernel refused a 60-byte datagram to 10.9.9.9:4791: send ENETUNREACH 10.9.9.9:4791",
    );
  });
});

describe.each(["native", "dgram"] as const)("a refused datagram on the %s path", (path) => {
  it("is counted per errno and reported through onSendError; the RC sender then retries as for a loss", async () => {
    const seen: UdpSendError[] = [];
    const dev = await openDevice({ address: "127.0.0.1", port: 0, datapath: path, onSendError: (e) => seen.push(e) });
    try {
      expect(udpLinkOf(dev)!.path).toBe(path);
      const pd = dev.allocPd();
      const cq = dev.createCq(4);
      const mr = pd.regMr(4096, Access.LOCAL_WRITE);
      const qp = pd.createQp({ qpType: QpType.RC, sendCq: cq, recvCq: cq, cap: { maxSendWr: 2, maxRecvWr: 1, maxSendSge: 1, maxRecvSge: 1 } });
      // the limited broadcast address without SO_BROADCAST: the kernel refuses every datagram (EACCES)
      connectQp(qp, { qpNum: 0x20, psn: 1, gid: "::ffff:255.255.255.255", port: 4791 }, { sqPsn: 1, timeout: 10, retryCnt: 1 });
      qp.postSend({ wrId: 1n, opcode: WrOpcode.SEND, sendFlags: SendFlags.SIGNALED, sgList: [mr.sge(0, 64)] });
      const wc = await cq.next();
      expect(wc.status).toBe(WcStatus.RETRY_EXC_ERR);
      const link = udpLinkOf(dev)!;
      // the first send and one retry
      expect(link.stats.sendErrorsByCode).toEqual({ EACCES: 2 });
      expect(link.stats.sent).toBe(0);
      expect(seen.map((e) => [e.code, e.length, e.dst, e.dstPort])).toEqual([["EACCES", 80, "255.255.255.255", 4791], ["EACCES", 80, "255.255.255.255", 4791]]);
    } finally {
      dev.close();
    }
  });
});
