import { nakStatus, rnrDelayUs, wcOpcode, COMP_STATE_NAMES, CompState } from "../../assembly/transport/completer";
import {
  WC_REM_ACCESS_ERR, WC_REM_INV_REQ_ERR, WC_REM_OP_ERR, WR_ATOMIC_CMP_AND_SWP, WR_ATOMIC_FETCH_AND_ADD, WR_ATOMIC_WRITE,
  WR_FLUSH, WR_RDMA_READ, WR_RDMA_WRITE, WR_RDMA_WRITE_WITH_IMM, WR_SEND, WR_SEND_WITH_IMM, WR_SEND_WITH_INV,
} from "../../assembly/verbs/enums";

describe("completer: NAK syndromes (rxe check_ack)", () => {
  it("maps each NAK code to the requester's status", () => {
    expect(nakStatus(0x60)).toBe(0); // PSN sequence error: retried, not an error status
    expect(nakStatus(0x61)).toBe(WC_REM_INV_REQ_ERR);
    expect(nakStatus(0x62)).toBe(WC_REM_ACCESS_ERR);
    expect(nakStatus(0x63)).toBe(WC_REM_OP_ERR);
    expect(nakStatus(0x64)).toBe(WC_REM_OP_ERR); // invalid RD request: not RC, remote op error
    expect(nakStatus(0x7f)).toBe(WC_REM_OP_ERR);
  });
});

describe("completer: RNR NAK timer (rnrnak_usec)", () => {
  it("follows the IBA encoding, with rxe's 61410 for code 25", () => {
    expect(rnrDelayUs(0)).toBe(655360);
    expect(rnrDelayUs(1)).toBe(10);
    expect(rnrDelayUs(5)).toBe(60);
    expect(rnrDelayUs(12)).toBe(640);
    expect(rnrDelayUs(14)).toBe(1280);
    expect(rnrDelayUs(24)).toBe(40960);
    expect(rnrDelayUs(25)).toBe(61410);
    expect(rnrDelayUs(31)).toBe(491520);
    expect(rnrDelayUs(0x2c)).toBe(640); // only the timer bits count
  });
  it("is monotonic from code 1 to 31", () => {
    for (let c: u32 = 2; c < 32; c++) expect(rnrDelayUs(c) > rnrDelayUs(c - 1)).toBe(true);
  });
});

describe("completer: send completion opcodes (rxe wr_to_wc_opcode)", () => {
  it("maps WR opcodes to WC opcodes", () => {
    expect(wcOpcode(WR_SEND)).toBe(0);
    expect(wcOpcode(WR_SEND_WITH_IMM)).toBe(0);
    expect(wcOpcode(WR_SEND_WITH_INV)).toBe(0);
    expect(wcOpcode(WR_RDMA_WRITE)).toBe(1);
    expect(wcOpcode(WR_RDMA_WRITE_WITH_IMM)).toBe(1);
    expect(wcOpcode(WR_RDMA_READ)).toBe(2);
    expect(wcOpcode(WR_ATOMIC_CMP_AND_SWP)).toBe(3);
    expect(wcOpcode(WR_ATOMIC_FETCH_AND_ADD)).toBe(4);
    expect(wcOpcode(WR_FLUSH)).toBe(8);
    expect(wcOpcode(WR_ATOMIC_WRITE)).toBe(9);
    expect(wcOpcode(10)).toBe(0xff);
  });
  it("names every state", () => {
    expect(COMP_STATE_NAMES.split(",").length).toBe(<i32>CompState.DONE + 1);
  });
});
