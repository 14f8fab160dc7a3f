import { ackReqPolicy, nextOpcode, packetCount, windowFull, wrClass } from "../../assembly/transport/requester";
import { WQE_LOCAL } from "../../assembly/transport/req_line";
import {
  QPT_RC, QPT_UC, QPT_UD, WR_ATOMIC_CMP_AND_SWP, WR_ATOMIC_FETCH_AND_ADD, WR_ATOMIC_WRITE, WR_BIND_MW, WR_FLUSH,
  WR_LOCAL_INV, WR_RDMA_READ, WR_RDMA_WRITE, WR_RDMA_WRITE_WITH_IMM, WR_SEND, WR_SEND_WITH_IMM, WR_SEND_WITH_INV,
} from "../../assembly/verbs/enums";
import { M_ATOMIC, M_ATOMIC_WRITE, M_FLUSH, M_READ, M_SEND, M_WRITE } from "../../assembly/wire/opcode";

const NONE: i32 = -1;

describe("requester: opcode choice (rxe next_opcode_rc/uc)", () => {
  it("SEND: ONLY or FIRST from the start, MIDDLE or LAST inside a message", () => {
    expect(nextOpcode(QPT_RC, WR_SEND, NONE, true)).toBe(0x04);
    expect(nextOpcode(QPT_RC, WR_SEND, NONE, false)).toBe(0x00);
    expect(nextOpcode(QPT_RC, WR_SEND, 0x00, false)).toBe(0x01);
    expect(nextOpcode(QPT_RC, WR_SEND, 0x01, false)).toBe(0x01);
    expect(nextOpcode(QPT_RC, WR_SEND, 0x01, true)).toBe(0x02);
    expect(nextOpcode(QPT_RC, WR_SEND, 0x02, true)).toBe(0x04); // after a LAST a new message starts
    expect(nextOpcode(QPT_RC, WR_SEND, 0x0a, false)).toBe(0x00); // after a WRITE ONLY
  });
  it("SEND with immediate / invalidate end with their LAST/ONLY variants", () => {
    expect(nextOpcode(QPT_RC, WR_SEND_WITH_IMM, NONE, true)).toBe(0x05);
    expect(nextOpcode(QPT_RC, WR_SEND_WITH_IMM, 0x00, true)).toBe(0x03);
    expect(nextOpcode(QPT_RC, WR_SEND_WITH_IMM, 0x00, false)).toBe(0x01);
    expect(nextOpcode(QPT_RC, WR_SEND_WITH_INV, NONE, true)).toBe(0x17);
    expect(nextOpcode(QPT_RC, WR_SEND_WITH_INV, 0x01, true)).toBe(0x16);
    expect(nextOpcode(QPT_UC, WR_SEND_WITH_INV, NONE, true)).toBe(NONE);
  });
  it("WRITE and WRITE with immediate", () => {
    expect(nextOpcode(QPT_RC, WR_RDMA_WRITE, NONE, true)).toBe(0x0a);
    expect(nextOpcode(QPT_RC, WR_RDMA_WRITE, NONE, false)).toBe(0x06);
    expect(nextOpcode(QPT_RC, WR_RDMA_WRITE, 0x06, false)).toBe(0x07);
    expect(nextOpcode(QPT_RC, WR_RDMA_WRITE, 0x07, true)).toBe(0x08);
    expect(nextOpcode(QPT_RC, WR_RDMA_WRITE_WITH_IMM, NONE, true)).toBe(0x0b);
    expect(nextOpcode(QPT_RC, WR_RDMA_WRITE_WITH_IMM, 0x07, true)).toBe(0x09);
    expect(nextOpcode(QPT_RC, WR_RDMA_WRITE, 0x00, false)).toBe(0x06); // a SEND FIRST is not a WRITE in progress
  });
  it("single-packet requests exist on RC only", () => {
    expect(nextOpcode(QPT_RC, WR_RDMA_READ, NONE, false)).toBe(0x0c);
    expect(nextOpcode(QPT_RC, WR_ATOMIC_CMP_AND_SWP, NONE, true)).toBe(0x13);
    expect(nextOpcode(QPT_RC, WR_ATOMIC_FETCH_AND_ADD, NONE, true)).toBe(0x14);
    expect(nextOpcode(QPT_RC, WR_FLUSH, NONE, true)).toBe(0x1c);
    expect(nextOpcode(QPT_RC, WR_ATOMIC_WRITE, NONE, true)).toBe(0x1d);
    expect(nextOpcode(QPT_UC, WR_RDMA_READ, NONE, true)).toBe(NONE);
    expect(nextOpcode(QPT_RC, 10, NONE, true)).toBe(NONE); // TSO
  });
  it("UC uses the UC opcode block", () => {
    expect(nextOpcode(QPT_UC, WR_SEND, NONE, false)).toBe(0x20);
    expect(nextOpcode(QPT_UC, WR_SEND, 0x20, true)).toBe(0x22);
    expect(nextOpcode(QPT_UC, WR_RDMA_WRITE_WITH_IMM, NONE, true)).toBe(0x2b);
  });
});

describe("requester: WR classes (rxe_wr_opcode_info)", () => {
  it("maps each WR opcode per QP type", () => {
    expect(wrClass(WR_SEND, QPT_UC)).toBe(M_SEND);
    expect(wrClass(WR_RDMA_WRITE, QPT_RC)).toBe(M_WRITE);
    expect(wrClass(WR_RDMA_READ, QPT_RC)).toBe(M_READ);
    expect(wrClass(WR_RDMA_READ, QPT_UC)).toBe(0);
    expect(wrClass(WR_ATOMIC_FETCH_AND_ADD, QPT_RC)).toBe(M_ATOMIC);
    expect(wrClass(WR_FLUSH, QPT_RC)).toBe(M_FLUSH);
    expect(wrClass(WR_ATOMIC_WRITE, QPT_RC)).toBe(M_ATOMIC_WRITE);
    expect(wrClass(WR_LOCAL_INV, QPT_RC)).toBe(WQE_LOCAL);
    expect(wrClass(WR_LOCAL_INV, QPT_UD)).toBe(0);
    expect(wrClass(WR_BIND_MW, QPT_UC)).toBe(WQE_LOCAL);
    expect(wrClass(99, QPT_RC)).toBe(0);
  });
});

describe("requester: AckReq, window, packet count", () => {
  it("requests an ACK at every message end and on the 66th packet of a long run (rxe noack_pkts++ > 64)", () => {
    const n = memory.data(4, 4);
    store<u32>(n, 0);
    let asked = 0;
    let at = 0;
    for (let i = 0; i < 200; i++) {
      if (ackReqPolicy(n, false)) {
        asked++;
        if (asked == 1) at = i;
      }
    }
    expect(at).toBe(65);
    expect(asked).toBe(3); // packets 65, 131, 197
    expect(ackReqPolicy(n, true)).toBe(1);
    expect(load<u32>(n)).toBe(0);
  });
  it("allows PSNs up to 128 past the oldest unacknowledged one, across the wrap", () => {
    expect(windowFull(0x10 + 128, 0x10)).toBe(false);
    expect(windowFull(0x10 + 129, 0x10)).toBe(true);
    expect(windowFull(0x7f, 0xffffff)).toBe(false);
    expect(windowFull(0x80, 0xffffff)).toBe(true);
  });
  it("counts at least one packet", () => {
    expect(packetCount(0, 1024)).toBe(1);
    expect(packetCount(1, 1024)).toBe(1);
    expect(packetCount(1024, 1024)).toBe(1);
    expect(packetCount(1025, 1024)).toBe(2);
    expect(packetCount(68 * 256, 256)).toBe(68);
  });
});
