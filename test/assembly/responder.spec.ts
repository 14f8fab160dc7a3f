// Pure parts of the RC responder: opcode-sequence rule, QP access rule, READ
// packet count, RNR syndrome, and the resource ring / ACK ordering records.
import { opSeqNext, qpAccessAllows, readPackets, RespState, RESP_STATE_NAMES } from "../../assembly/transport/responder";
import { aeth_rnr_syndrome } from "../../assembly/wire/aeth";
import {
  ackQueue, resDone, resEntry, resFind, resOldestPending, resQueue, ACK_PENDING, RESF_PENDING, RES_FIRST_PSN,
  RES_FLAGS, RES_LAST_PSN, RES_SEQ, RES_TYPE, XB_ACK_MSN, XB_ACK_PSN, XB_ACK_SEQ, XB_ACK_SYN, XB_PENDING,
  RES_SIZE, respLayout, respUseLayout,
} from "../../assembly/transport/resources";
import {
  opcode_mask, M_ATOMIC, M_READ, TR_RC, OP_SEND_FIRST, OP_SEND_MIDDLE, OP_SEND_LAST, OP_SEND_LAST_IMM, OP_SEND_ONLY,
  OP_WRITE_FIRST, OP_WRITE_MIDDLE, OP_WRITE_LAST, OP_WRITE_LAST_IMM, OP_WRITE_ONLY, OP_READ_REQUEST, OP_CMP_SWAP,
  OP_FLUSH, OP_ATOMIC_WRITE,
} from "../../assembly/wire/opcode";
import { feth_pack, FETH_PLT_GLOBAL, FETH_PLT_PERSISTENT, FETH_SEL_REGION } from "../../assembly/wire/feth";
import {
  ACCESS_FLUSH_GLOBAL, ACCESS_FLUSH_PERSISTENT, ACCESS_REMOTE_ATOMIC, ACCESS_REMOTE_READ, ACCESS_REMOTE_WRITE,
} from "../../assembly/mem/access";

function m(op: u32): u32 { return opcode_mask(TR_RC | op); }
function seq(last: i32, op: u32): RespState {
  return opSeqNext(last < 0 ? 0 : m(<u32>last), last >= 0, m(op));
}

describe("opcode sequence (check_op_seq, RC)", () => {
  it("lets a message continue with its own MIDDLE/LAST", () => {
    expect(seq(OP_SEND_FIRST, OP_SEND_MIDDLE)).toBe(RespState.CHK_OP_VALID);
    expect(seq(OP_SEND_MIDDLE, OP_SEND_LAST)).toBe(RespState.CHK_OP_VALID);
    expect(seq(OP_SEND_FIRST, OP_SEND_LAST_IMM)).toBe(RespState.CHK_OP_VALID);
    expect(seq(OP_WRITE_FIRST, OP_WRITE_MIDDLE)).toBe(RespState.CHK_OP_VALID);
    expect(seq(OP_WRITE_MIDDLE, OP_WRITE_LAST_IMM)).toBe(RespState.CHK_OP_VALID);
  });
  it("refuses anything else inside a message (missing LAST, class C)", () => {
    expect(seq(OP_SEND_FIRST, OP_SEND_ONLY)).toBe(RespState.ERR_MISSING_OPCODE_LAST_C);
    expect(seq(OP_SEND_MIDDLE, OP_SEND_FIRST)).toBe(RespState.ERR_MISSING_OPCODE_LAST_C);
    expect(seq(OP_SEND_FIRST, OP_WRITE_MIDDLE)).toBe(RespState.ERR_MISSING_OPCODE_LAST_C);
    expect(seq(OP_WRITE_FIRST, OP_SEND_LAST)).toBe(RespState.ERR_MISSING_OPCODE_LAST_C);
    expect(seq(OP_WRITE_FIRST, OP_READ_REQUEST)).toBe(RespState.ERR_MISSING_OPCODE_LAST_C);
  });
  it("refuses a MIDDLE or LAST without a FIRST", () => {
    expect(seq(-1, OP_SEND_MIDDLE)).toBe(RespState.ERR_MISSING_OPCODE_FIRST);
    expect(seq(OP_SEND_LAST, OP_SEND_LAST)).toBe(RespState.ERR_MISSING_OPCODE_FIRST);
    expect(seq(OP_WRITE_ONLY, OP_WRITE_MIDDLE)).toBe(RespState.ERR_MISSING_OPCODE_FIRST);
    expect(seq(OP_SEND_ONLY, OP_WRITE_LAST_IMM)).toBe(RespState.ERR_MISSING_OPCODE_FIRST);
  });
  it("starts anything after a complete message", () => {
    expect(seq(-1, OP_SEND_FIRST)).toBe(RespState.CHK_OP_VALID);
    expect(seq(OP_SEND_LAST, OP_WRITE_ONLY)).toBe(RespState.CHK_OP_VALID);
    expect(seq(OP_WRITE_LAST, OP_READ_REQUEST)).toBe(RespState.CHK_OP_VALID);
    expect(seq(OP_READ_REQUEST, OP_CMP_SWAP)).toBe(RespState.CHK_OP_VALID);
  });
});

describe("QP access flags (check_qp_attr_access)", () => {
  it("gates each remote operation by its flag", () => {
    expect(qpAccessAllows(0, m(OP_SEND_ONLY), 0)).toBe(true);
    expect(qpAccessAllows(0, m(OP_WRITE_ONLY), 0)).toBe(false);
    expect(qpAccessAllows(ACCESS_REMOTE_WRITE, m(OP_WRITE_ONLY), 0)).toBe(true);
    expect(qpAccessAllows(ACCESS_REMOTE_WRITE, m(OP_READ_REQUEST), 0)).toBe(false);
    expect(qpAccessAllows(ACCESS_REMOTE_READ, m(OP_READ_REQUEST), 0)).toBe(true);
    expect(qpAccessAllows(ACCESS_REMOTE_READ | ACCESS_REMOTE_WRITE, m(OP_CMP_SWAP), 0)).toBe(false);
    expect(qpAccessAllows(ACCESS_REMOTE_ATOMIC, m(OP_CMP_SWAP), 0)).toBe(true);
    expect(qpAccessAllows(ACCESS_REMOTE_ATOMIC, m(OP_ATOMIC_WRITE), 0)).toBe(false); // ATOMIC_WRITE needs REMOTE_WRITE
    expect(qpAccessAllows(ACCESS_REMOTE_WRITE, m(OP_ATOMIC_WRITE), 0)).toBe(true);
  });
  it("gates FLUSH by its placement type", () => {
    const g = feth_pack(FETH_PLT_GLOBAL, FETH_SEL_REGION);
    const p = feth_pack(FETH_PLT_PERSISTENT, FETH_SEL_REGION);
    expect(qpAccessAllows(0, m(OP_FLUSH), g)).toBe(false);
    expect(qpAccessAllows(ACCESS_FLUSH_GLOBAL, m(OP_FLUSH), g)).toBe(true);
    expect(qpAccessAllows(ACCESS_FLUSH_GLOBAL, m(OP_FLUSH), p)).toBe(false);
    expect(qpAccessAllows(ACCESS_FLUSH_PERSISTENT, m(OP_FLUSH), p)).toBe(true);
  });
});

describe("small rules", () => {
  it("counts READ response packets (one for zero length)", () => {
    expect(readPackets(0, 1024)).toBe(1);
    expect(readPackets(1, 1024)).toBe(1);
    expect(readPackets(1024, 1024)).toBe(1);
    expect(readPackets(1025, 1024)).toBe(2);
    expect(readPackets(8192, 1024)).toBe(8);
    expect(readPackets(0x80000000, 4096)).toBe(0x80000);
  });
  it("builds RNR NAK syndromes 0x20 | timer", () => {
    expect(aeth_rnr_syndrome(12)).toBe(0x2c);
    expect(aeth_rnr_syndrome(0)).toBe(0x20);
    expect(aeth_rnr_syndrome(31)).toBe(0x3f);
  });
  it("names every state", () => {
    expect(RESP_STATE_NAMES.split(",").length).toBe(<i32>RespState.COUNT);
  });
});

const RES_AT: usize = respLayout(27);
const blk: usize = heap.alloc(RES_AT + 8 * RES_SIZE);
memory.fill(blk, 0, RES_AT + 8 * RES_SIZE);
respUseLayout(RES_AT);

describe("resource ring and ACK order", () => {
  it("lays a block out as header, SRQ WQE copy (max_srq_sge SGEs), resources on 64-byte lines", () => {
    expect(respLayout(27)).toBe(576); // 64 + 32 + 27 * 16 = 528
    expect(respLayout(32)).toBe(640);
    expect(respLayout(0)).toBe(128);
  });

  it("finds a resource by PSN range, across the 2^24 wrap", () => {
    const r = resEntry(blk, 3);
    store<u32>(r + RES_TYPE, M_READ);
    store<u32>(r + RES_FIRST_PSN, 0xfffffe);
    store<u32>(r + RES_LAST_PSN, 0x000001);
    expect(resFind(blk, 8, 0xfffffe)).toBe(r);
    expect(resFind(blk, 8, 0xffffff)).toBe(r);
    expect(resFind(blk, 8, 0x000001)).toBe(r);
    expect(resFind(blk, 8, 0x000002)).toBe(0);
    expect(resFind(blk, 8, 0xfffffd)).toBe(0);
    expect(resFind(blk, 3, 0xffffff)).toBe(0); // only the first max_dest_rd_atomic entries count
  });

  it("sends responses and the coalesced ACK in the order they were decided", () => {
    const a = resEntry(blk, 0);
    const b = resEntry(blk, 1);
    store<u32>(a + RES_TYPE, M_ATOMIC);
    store<u32>(b + RES_TYPE, M_READ);
    ackQueue(blk, 0x1f, 10, 1); // ACK for PSN 10
    resQueue(blk, a); // then an atomic
    resQueue(blk, b); // then a READ
    expect(load<u32>(blk + XB_PENDING)).toBe(2);
    expect(resOldestPending(blk, 8)).toBe(a);
    expect(<i32>(load<u32>(blk + XB_ACK_SEQ) - load<u32>(a + RES_SEQ)) < 0).toBe(true);
    ackQueue(blk, 0x1f, 14, 3); // a later ACK replaces the first and goes after both
    expect(load<u32>(blk + XB_ACK_SYN)).toBe(0x1f | ACK_PENDING);
    expect(load<u32>(blk + XB_ACK_PSN)).toBe(14);
    expect(load<u32>(blk + XB_ACK_MSN)).toBe(3);
    expect(<i32>(load<u32>(blk + XB_ACK_SEQ) - load<u32>(b + RES_SEQ)) > 0).toBe(true);
    resQueue(blk, a); // a duplicate atomic: re-queued once, now last
    expect(load<u32>(blk + XB_PENDING)).toBe(2);
    expect(resOldestPending(blk, 8)).toBe(b);
    resDone(blk, b);
    expect(resOldestPending(blk, 8)).toBe(a);
    resDone(blk, a);
    resDone(blk, a); // idempotent
    expect(load<u32>(blk + XB_PENDING)).toBe(0);
    expect(load<u32>(a + RES_FLAGS) & RESF_PENDING).toBe(0);
    expect(resOldestPending(blk, 8)).toBe(0);
  });
});
