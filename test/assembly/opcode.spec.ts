// Every opcode of the table, written out independently: mask, header length, offsets, name.
import {
  opcode_valid, opcode_mask, opcode_length, opcode_offset, opcode_name, HDR_COUNT,
  M_RETH, M_AETH, M_ATMETH, M_ATMACK, M_DETH, M_IMMDT, M_IETH, M_FETH, M_REQ, M_RESP, M_SEND, M_WRITE, M_READ,
  M_ATOMIC, M_FLUSH, M_ATOMIC_WRITE, M_PAYLOAD, M_START, M_MIDDLE, M_END, M_RWR, M_COMP, M_CNP,
} from "../../assembly/wire/opcode";
import { op_valid, op_mask, op_length, op_offset, op_name } from "../../assembly/wire/exports";

function nameOf(p: usize): string {
  let s = "";
  while (load<u8>(p) != 0) { s += String.fromCharCode(load<u8>(p)); p++; }
  return s;
}

// offsets: [RETH, AETH, ATMETH, ATMACK, DETH, IMMDT, IETH, FETH], -1 absent
function check(op: u32, mask: u32, len: u32, offs: i32[], name: string): void {
  expect(opcode_valid(op)).toBe(true, name);
  expect(opcode_mask(op)).toBe(mask, name);
  expect(opcode_length(op)).toBe(len, name);
  for (let h: u32 = 0; h < HDR_COUNT; h++) expect(opcode_offset(op, h)).toBe(offs[h], name);
  expect(nameOf(opcode_name(op))).toBe(name);
}

const N: i32 = -1;
const R = M_REQ;
const A = M_RESP;
const ONLY = M_START | M_END;

function sendWrite(base: u32, t: string): void {
  check(base | 0x00, M_PAYLOAD | R | M_SEND | M_RWR | M_START, 12, [N, N, N, N, N, N, N, N], t + " Send First");
  check(base | 0x01, M_PAYLOAD | R | M_SEND | M_MIDDLE, 12, [N, N, N, N, N, N, N, N], t + " Send Middle");
  check(base | 0x02, M_PAYLOAD | R | M_SEND | M_COMP | M_END, 12, [N, N, N, N, N, N, N, N], t + " Send Last");
  check(base | 0x03, M_IMMDT | M_PAYLOAD | R | M_SEND | M_COMP | M_END, 16, [N, N, N, N, N, 12, N, N], t + " Send Last Immediate");
  check(base | 0x04, M_PAYLOAD | R | M_SEND | M_RWR | M_COMP | ONLY, 12, [N, N, N, N, N, N, N, N], t + " Send Only");
  check(base | 0x05, M_IMMDT | M_PAYLOAD | R | M_SEND | M_RWR | M_COMP | ONLY, 16, [N, N, N, N, N, 12, N, N], t + " Send Only Immediate");
  check(base | 0x06, M_RETH | M_PAYLOAD | R | M_WRITE | M_START, 28, [12, N, N, N, N, N, N, N], t + " RDMA Write First");
  check(base | 0x07, M_PAYLOAD | R | M_WRITE | M_MIDDLE, 12, [N, N, N, N, N, N, N, N], t + " RDMA Write Middle");
  check(base | 0x08, M_PAYLOAD | R | M_WRITE | M_END, 12, [N, N, N, N, N, N, N, N], t + " RDMA Write Last");
  check(base | 0x09, M_IMMDT | M_PAYLOAD | R | M_WRITE | M_RWR | M_COMP | M_END, 16, [N, N, N, N, N, 12, N, N], t + " RDMA Write Last Immediate");
  check(base | 0x0a, M_RETH | M_PAYLOAD | R | M_WRITE | ONLY, 28, [12, N, N, N, N, N, N, N], t + " RDMA Write Only");
  check(base | 0x0b, M_RETH | M_IMMDT | M_PAYLOAD | R | M_WRITE | M_RWR | M_COMP | ONLY, 32, [12, N, N, N, N, 28, N, N], t + " RDMA Write Only Immediate");
}

describe("opcode table", () => {
  it("RC send and write", () => { sendWrite(0x00, "RC"); });
  it("UC send and write", () => { sendWrite(0x20, "UC"); });
  it("RC read, ack, atomics, invalidate, flush, atomic write", () => {
    check(0x0c, M_RETH | R | M_READ | ONLY, 28, [12, N, N, N, N, N, N, N], "RC RDMA Read Request");
    check(0x0d, M_AETH | M_PAYLOAD | A | M_READ | M_START, 16, [N, 12, N, N, N, N, N, N], "RC RDMA Read Response First");
    check(0x0e, M_PAYLOAD | A | M_READ | M_MIDDLE, 12, [N, N, N, N, N, N, N, N], "RC RDMA Read Response Middle");
    check(0x0f, M_AETH | M_PAYLOAD | A | M_READ | M_END, 16, [N, 12, N, N, N, N, N, N], "RC RDMA Read Response Last");
    check(0x10, M_AETH | M_PAYLOAD | A | M_READ | ONLY, 16, [N, 12, N, N, N, N, N, N], "RC RDMA Read Response Only");
    check(0x11, M_AETH | A | ONLY, 16, [N, 12, N, N, N, N, N, N], "RC Acknowledge");
    check(0x12, M_AETH | M_ATMACK | A | M_ATOMIC | ONLY, 24, [N, 12, N, 16, N, N, N, N], "RC Atomic Acknowledge");
    check(0x13, M_ATMETH | R | M_ATOMIC | ONLY, 40, [N, N, 12, N, N, N, N, N], "RC Compare Swap");
    check(0x14, M_ATMETH | R | M_ATOMIC | ONLY, 40, [N, N, 12, N, N, N, N, N], "RC Fetch Add");
    check(0x16, M_IETH | M_PAYLOAD | R | M_SEND | M_COMP | M_END, 16, [N, N, N, N, N, N, 12, N], "RC Send Last Invalidate");
    check(0x17, M_IETH | M_PAYLOAD | R | M_SEND | M_RWR | M_COMP | ONLY, 16, [N, N, N, N, N, N, 12, N], "RC Send Only Invalidate");
    check(0x1c, M_FETH | M_RETH | R | M_FLUSH | ONLY, 32, [16, N, N, N, N, N, N, 12], "RC Flush");
    check(0x1d, M_RETH | M_PAYLOAD | R | M_ATOMIC_WRITE | ONLY, 28, [12, N, N, N, N, N, N, N], "RC Atomic Write");
  });
  it("UD and CNP", () => {
    check(0x64, M_DETH | M_PAYLOAD | R | M_SEND | M_RWR | M_COMP | ONLY, 20, [N, N, N, N, 12, N, N, N], "UD Send Only");
    check(0x65, M_DETH | M_IMMDT | M_PAYLOAD | R | M_SEND | M_RWR | M_COMP | ONLY, 24, [N, N, N, N, 12, 20, N, N], "UD Send Only Immediate");
    check(0x81, M_CNP, 28, [N, N, N, N, N, N, N, N], "CNP");
  });
  it("knows exactly 40 opcodes; the rest are invalid through the exports too", () => {
    let n = 0;
    for (let op: u32 = 0; op < 256; op++) if (opcode_valid(op)) n++;
    expect(n).toBe(40);
    expect(op_valid(0x15)).toBe(0); // RC RESYNC: not used by RoCE
    expect(op_valid(0x2c)).toBe(0); // no UC READ
    expect(op_valid(0x40)).toBe(0); // no RD
    expect(op_valid(0x66)).toBe(0);
    expect(op_valid(0x80)).toBe(0);
    expect(op_valid(256)).toBe(0);
    expect(op_mask(0x15)).toBe(0);
    expect(op_mask(0x104)).toBe(0);
    expect(op_length(0x15)).toBe(0);
    expect(op_offset(0x15, 0)).toBe(-1);
    expect(op_offset(0x0a, 8)).toBe(-1);
    expect(op_offset(0x0a, 0)).toBe(12);
    expect(op_valid(0x0a)).toBe(1);
    expect(op_length(0x13)).toBe(40);
    expect(nameOf(op_name(0x11))).toBe("RC Acknowledge");
    expect(nameOf(op_name(0x15))).toBe("");
  });
});
