// softroce devinfo -v's trace section: the ring's summary and its newest events, decoded with the
// core's names (state machine states, opcodes, receive verdicts, completion status).
import { describe, expect, it } from "vitest";
import { devinfoTraceLines, formatTraceEvent } from "../../../host/cli/devinfo-trace.js";
import { formatDevinfo } from "../../../host/cli/devinfo.js";
import { coreModule } from "../../../host/node/wasm-source.js";
import { SimNetwork } from "../../../host/core/sim/network.js";
import { TraceReader } from "../../../host/core/trace/index.js";
import { connectQp } from "../../../host/core/verbs/connect.js";
import { Access, QpType, SendFlags, WrOpcode } from "../../../host/core/verbs/enums.js";

async function sendOnce(trace: boolean) {
  const mod = await coreModule();
  const net = new SimNetwork();
  const mk = async (addr: string) => {
    const d = await net.addDevice(mod, addr);
    const pd = d.allocPd();
    const cq = d.createCq(4);
    const qp = pd.createQp({ qpType: QpType.RC, sendCq: cq, recvCq: cq, cap: { maxSendWr: 2, maxRecvWr: 2, maxSendSge: 1, maxRecvSge: 1 } });
    return { d, qp, cq, mr: pd.regMr(256, Access.LOCAL_WRITE) };
  };
  const A = await mk("127.0.10.1");
  const B = await mk("127.0.10.2");
  if (trace) new TraceReader(A.d).enable();
  connectQp(A.qp, { qpNum: B.qp.qpNum, psn: 0x10, gid: B.d.queryGid(0) }, { sqPsn: 0x20 });
  connectQp(B.qp, { qpNum: A.qp.qpNum, psn: 0x20, gid: A.d.queryGid(0) }, { sqPsn: 0x10 });
  B.qp.postRecv({ wrId: 1n, sgList: [B.mr.sge(0, 64)] });
  A.qp.postSend({ wrId: 2n, opcode: WrOpcode.SEND, sendFlags: SendFlags.SIGNALED, sgList: [A.mr.sge(0, 64)] });
  net.wire.clock.run();
  expect((await A.cq.next()).wrId).toBe(2n);
  return A;
}

describe("devinfo -v trace ring", () => {
  it("prints the newest events with rxe's state names, opcode names, verdicts and completions", async () => {
    const A = await sendOnce(true);
    const lines = devinfoTraceLines(A.d);
    expect(lines[0]).toMatch(/^\ttrace_ring:\t+(\d+) records held, \1 written, recording REQ_STATE,/);
    expect(lines[1]).toMatch(/^\t{3}last \d+ events:$/);
    const events = lines.slice(2).map((l) => l.trim());
    const qpn = `qp 0x${A.qp.qpNum.toString(16).padStart(6, "0")}`;
    expect(events.find((e) => e.includes("QP_STATE"))).toContain(`${qpn} QP_STATE RESET -> INIT`);
    expect(events.some((e) => e.includes("PKT_SENT RC Send Only psn 0x000020"))).toBe(true);
    expect(events.some((e) => /PKT_RECV RC Acknowledge psn 0x000020 ok$/.test(e))).toBe(true);
    expect(events.some((e) => e.includes("COMPLETION SEND SUCCESS byte_len 64"))).toBe(true);
    expect(events.some((e) => e.includes("REQ_STATE CHECK_LENGTH -> NEXT_OPCODE psn 0x000020"))).toBe(true);
    expect(events.some((e) => e.includes("COMP_STATE CHECK ACK -> WRITE/SEND psn 0x000020"))).toBe(true);
    // seq numbers ascend: oldest first
    const seqs = events.map((e) => Number(/^#(\d+)/.exec(e)![1]));
    expect(seqs).toEqual([...seqs].sort((x, y) => x - y));
    // the newest N only, and reading does not disturb another reader's cursor
    const r = new TraceReader(A.d);
    expect(devinfoTraceLines(A.d, 3).length).toBe(2 + 3);
    expect(devinfoTraceLines(A.d, 3).slice(2).map((l) => l.trim())).toEqual(events.slice(-3));
    expect(r.read()).toEqual([]);
    expect(() => r.recent(-1)).toThrow(RangeError);
  });

  it("says so when nothing is recorded, and devinfo -v carries the section", async () => {
    const A = await sendOnce(false);
    expect(devinfoTraceLines(A.d)).toEqual(["\ttrace_ring:\t\t\t0 records held, 0 written, recording nothing"]);
    const out = formatDevinfo(A.d, { verbose: true, address: "127.0.10.1", udpPort: 4791 });
    expect(out).toContain("\n\ttrace_ring:\t\t\t0 records held, 0 written, recording nothing\n");
    expect(formatDevinfo(A.d, { verbose: false, address: "127.0.10.1", udpPort: 4791 })).not.toContain("trace_ring");
  });

  it("formats an unknown kind's raw record without failing", () => {
    const line = formatTraceEvent({ seq: 7, kind: "KIND_31", timeUs: 1.5, a: 1, b: 2, c: 3 }, () => "?");
    expect(line).toBe("#7          1.5us qp -        KIND_31");
  });
});
