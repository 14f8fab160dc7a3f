import { modifyIsOk, transitionValid } from "../../assembly/verbs/qp_state";
import { QPT_RC, QPT_UC, QPT_UD, QP_STATE, QP_PKEY_INDEX, QP_PORT, QP_ACCESS_FLAGS, QP_QKEY, QP_AV, QP_PATH_MTU, QP_DEST_QPN, QP_RQ_PSN, QP_MAX_DEST_RD_ATOMIC, QP_MIN_RNR_TIMER, QP_SQ_PSN, QP_TIMEOUT, QP_RETRY_CNT, QP_RNR_RETRY, QP_MAX_QP_RD_ATOMIC, QP_CUR_STATE, QP_EN_SQD_ASYNC_NOTIFY, QP_CAP } from "../../assembly/verbs/enums";

const RESET: u32 = 0, INIT: u32 = 1, RTR: u32 = 2, RTS: u32 = 3, SQD: u32 = 4, SQE: u32 = 5, ERR: u32 = 6;
const RC_INIT = QP_STATE | QP_PKEY_INDEX | QP_PORT | QP_ACCESS_FLAGS;
const UD_INIT = QP_STATE | QP_PKEY_INDEX | QP_PORT | QP_QKEY;
const UC_RTR = QP_STATE | QP_AV | QP_PATH_MTU | QP_DEST_QPN | QP_RQ_PSN;
const RC_RTR = UC_RTR | QP_MAX_DEST_RD_ATOMIC | QP_MIN_RNR_TIMER;
const RC_RTS = QP_STATE | QP_TIMEOUT | QP_RETRY_CNT | QP_RNR_RETRY | QP_SQ_PSN | QP_MAX_QP_RD_ATOMIC;

describe("QP state table", () => {
  it("lists exactly the transitions of ib_modify_qp_is_ok", () => {
    // rows: from state; bit n set = transition to state n is valid
    const rows: StaticArray<u32> = [
      0b1000011, // RESET -> RESET, INIT, ERR
      0b1000111, // INIT -> RESET, INIT, RTR, ERR
      0b1001001, // RTR -> RESET, RTS, ERR
      0b1011001, // RTS -> RESET, RTS, SQD, ERR
      0b1011001, // SQD -> RESET, RTS, SQD, ERR
      0b1001001, // SQE -> RESET, RTS, ERR
      0b1000001, // ERR -> RESET, ERR
    ];
    for (let from: u32 = 0; from < 7; from++) {
      for (let to: u32 = 0; to < 7; to++) {
        expect(transitionValid(from, to)).toBe(((rows[from] >> to) & 1) == 1);
      }
    }
    expect(transitionValid(7, 0)).toBe(false);
    expect(transitionValid(0, 7)).toBe(false);
  });

  it("requires the RC, UC and UD attributes of each step", () => {
    expect(modifyIsOk(RESET, INIT, QPT_RC, RC_INIT)).toBe(true);
    expect(modifyIsOk(RESET, INIT, QPT_RC, RC_INIT & ~QP_ACCESS_FLAGS)).toBe(false);
    expect(modifyIsOk(RESET, INIT, QPT_UD, UD_INIT)).toBe(true);
    expect(modifyIsOk(RESET, INIT, QPT_UD, RC_INIT)).toBe(false); // access flags are not a UD attribute
    expect(modifyIsOk(RESET, INIT, QPT_RC, RC_INIT | QP_QKEY)).toBe(false); // qkey is not an RC attribute
    expect(modifyIsOk(INIT, RTR, QPT_RC, RC_RTR)).toBe(true);
    expect(modifyIsOk(INIT, RTR, QPT_RC, UC_RTR)).toBe(false);
    expect(modifyIsOk(INIT, RTR, QPT_UC, UC_RTR)).toBe(true);
    expect(modifyIsOk(INIT, RTR, QPT_UC, RC_RTR)).toBe(false);
    expect(modifyIsOk(INIT, RTR, QPT_UD, QP_STATE)).toBe(true);
    expect(modifyIsOk(RTR, RTS, QPT_RC, RC_RTS)).toBe(true);
    expect(modifyIsOk(RTR, RTS, QPT_RC, QP_STATE | QP_SQ_PSN)).toBe(false);
    expect(modifyIsOk(RTR, RTS, QPT_UC, QP_STATE | QP_SQ_PSN)).toBe(true);
    expect(modifyIsOk(RTR, RTS, QPT_UD, QP_STATE | QP_SQ_PSN | QP_QKEY)).toBe(true);
    expect(modifyIsOk(RTS, SQD, QPT_RC, QP_STATE | QP_EN_SQD_ASYNC_NOTIFY)).toBe(true);
    expect(modifyIsOk(RTS, RTS, QPT_RC, QP_CAP)).toBe(false);
  });

  it("allows CUR_STATE only from RTR, RTS, SQD, SQE", () => {
    expect(modifyIsOk(RTS, RTS, QPT_UD, QP_CUR_STATE)).toBe(true);
    expect(modifyIsOk(INIT, INIT, QPT_UD, QP_CUR_STATE)).toBe(false);
    expect(modifyIsOk(SQE, RTS, QPT_UC, QP_STATE | QP_CUR_STATE)).toBe(true);
    expect(modifyIsOk(ERR, RESET, QPT_RC, QP_STATE)).toBe(true);
    expect(modifyIsOk(ERR, RTS, QPT_RC, QP_STATE)).toBe(false);
  });
});
