import { describe, expect, it } from "vitest";
import { Access, AsyncEvent, Mtu, QpAttrMask, QpState, QpType, deriveMask, type QpAttr, type QueuePair } from "../../../host/core/verbs/index.js";
import { AV, expectVerbsError, rcQp, smallDevice, tick, toRts } from "../support/verbs-helpers.js";

const S = QpState;
const NAMES = ["RESET", "INIT", "RTR", "RTS", "SQD", "SQE", "ERR"];

async function fixture(extra = {}) {
  const dev = await smallDevice(extra);
  const pd = dev.allocPd();
  const cq = dev.createCq(64);
  return { dev, pd, cq };
}

// the attributes of each forward step, per type (rc_pingpong / ud_pingpong)
const STEP: Record<number, Record<number, QpAttr>> = {
  [QpType.RC]: {
    [S.INIT]: { pkeyIndex: 0, portNum: 1, qpAccessFlags: Access.LOCAL_WRITE },
    [S.RTR]: { pathMtu: Mtu.MTU_1024, destQpNum: 0x20, rqPsn: 5, ahAttr: AV, maxDestRdAtomic: 1, minRnrTimer: 12 },
    [S.RTS]: { sqPsn: 9, timeout: 14, retryCnt: 7, rnrRetry: 7, maxRdAtomic: 1 },
  },
  [QpType.UC]: {
    [S.INIT]: { pkeyIndex: 0, portNum: 1, qpAccessFlags: Access.LOCAL_WRITE },
    [S.RTR]: { pathMtu: Mtu.MTU_1024, destQpNum: 0x20, rqPsn: 5, ahAttr: AV },
    [S.RTS]: { sqPsn: 9 },
  },
  [QpType.UD]: {
    [S.INIT]: { pkeyIndex: 0, portNum: 1, qkey: 0x11111111 },
    [S.RTR]: {},
    [S.RTS]: { sqPsn: 9 },
  },
};

/** Drives a fresh QP of `type` into `state` by legal transitions. */
function reach(qp: QueuePair, state: number): void {
  const steps = STEP[qp.qpType]!;
  const path = state === S.ERR ? [] : state === S.SQD ? [S.INIT, S.RTR, S.RTS, S.SQD] : [S.INIT, S.RTR, S.RTS].filter((s) => s <= state);
  for (const s of path) qp.modify({ qpState: s, ...(steps[s] ?? {}) });
  if (state === S.ERR) qp.modify({ qpState: S.ERR });
  expect(qp.state).toBe(state);
}

const VALID: Record<number, number[]> = {
  [S.RESET]: [S.RESET, S.INIT, S.ERR],
  [S.INIT]: [S.RESET, S.INIT, S.RTR, S.ERR],
  [S.RTR]: [S.RESET, S.RTS, S.ERR],
  [S.RTS]: [S.RESET, S.RTS, S.SQD, S.ERR],
  [S.SQD]: [S.RESET, S.RTS, S.SQD, S.ERR],
  [S.ERR]: [S.RESET, S.ERR],
};

describe("queue pair creation (ibv_create_qp)", () => {
  it("numbers QPs by a random map of the range: not from its base, not the same on two devices, and inside qpnBase + qpnCount", async () => {
    const firsts: number[] = [];
    for (let i = 0; i < 4; i++) {
      const { pd, cq } = await fixture();
      firsts.push(rcQp(pd, cq).qpNum);
    }
    expect(new Set(firsts).size).toBeGreaterThan(1);
    const dev = await smallDevice({ maxQp: 8, qpnBase: 1000, qpnCount: 8 });
    const pd = dev.allocPd();
    const cq = dev.createCq(16);
    const nums = Array.from({ length: 8 }, () => rcQp(pd, cq).qpNum);
    expect([...nums].sort((a, b) => a - b)).toEqual([1000, 1001, 1002, 1003, 1004, 1005, 1006, 1007]);
    await expect(smallDevice({ qpnBase: 0xffff00, qpnCount: 0x1000 })).rejects.toMatchObject({ code: "EINVAL" });
  });

  it("creates RC, UC and UD QPs in RESET with distinct QP numbers in the device's range and the caps granted", async () => {
    const { pd, cq } = await fixture();
    const qps = [QpType.RC, QpType.UC, QpType.UD].map((t) =>
      pd.createQp({ qpType: t, sendCq: cq, recvCq: cq, cap: { maxSendWr: 10, maxRecvWr: 3, maxSendSge: 2, maxRecvSge: 1, maxInlineData: 64 } }),
    );
    const nums = qps.map((q) => q.qpNum);
    expect(new Set(nums).size).toBe(3);
    for (const n of nums) expect(n >= 17 && n <= 0xfffffe, `QPN ${n}`).toBe(true);
    for (const q of qps) {
      expect(q.state).toBe(S.RESET);
      expect(q.cap.maxSendWr).toBe(16);
      expect(q.cap.maxRecvWr).toBe(4);
      expect(q.cap.maxSendSge).toBe(2);
      expect(q.cap.maxRecvSge).toBe(1);
      expect(q.cap.maxInlineData).toBe(64);
      const { attr, initAttr } = q.query();
      expect(attr.qpState).toBe(S.RESET);
      expect(attr.pathMtu).toBe(Mtu.MTU_256); // rxe's default path MTU
      expect(initAttr.sendCq).toBe(cq);
      expect(initAttr.cap).toEqual(q.cap);
    }
  });

  it("bad flow: illegal caps are EINVAL (rxe_qp_chk_cap)", async () => {
    const { dev, pd, cq } = await fixture();
    const a = dev.query();
    const mk = (cap: object) => () => pd.createQp({ qpType: QpType.RC, sendCq: cq, recvCq: cq, cap });
    expectVerbsError(mk({ maxSendWr: a.maxQpWr + 1 }), "EINVAL", "ibv_create_qp");
    expectVerbsError(mk({ maxRecvWr: a.maxQpWr + 1 }), "EINVAL", "ibv_create_qp");
    expectVerbsError(mk({ maxSendSge: a.maxSge + 1 }), "EINVAL", "ibv_create_qp");
    expectVerbsError(mk({ maxRecvSge: a.maxSge + 1 }), "EINVAL", "ibv_create_qp");
    expectVerbsError(mk({ maxInlineData: 513 }), "EINVAL", "ibv_create_qp");
    expectVerbsError(mk({ maxSendWr: -1 }), "EINVAL", "ibv_create_qp");
    // with an SRQ the receive caps are not looked at
    const srq = pd.createSrq({ attr: { maxWr: 4, maxSge: 1 } });
    const q = pd.createQp({ qpType: QpType.RC, sendCq: cq, recvCq: cq, srq, cap: { maxRecvWr: a.maxQpWr + 1, maxRecvSge: 99 } });
    expect(q.cap.maxRecvWr).toBe(0);
    q.destroy();
  });

  it("bad flow: missing or dead CQs (EINVAL), unsupported QP types (EPERM raw, EOPNOTSUPP others)", async () => {
    const { dev, pd, cq } = await fixture();
    const other = (await smallDevice()).createCq(4);
    expectVerbsError(() => pd.createQp({ qpType: QpType.RC, sendCq: cq } as never), "EINVAL", "ibv_create_qp");
    expectVerbsError(() => pd.createQp({ qpType: QpType.RC, sendCq: cq, recvCq: other }), "EINVAL", "ibv_create_qp");
    const dead = dev.createCq(4);
    dead.destroy();
    expectVerbsError(() => pd.createQp({ qpType: QpType.RC, sendCq: cq, recvCq: dead }), "EINVAL", "ibv_create_qp");
    expectVerbsError(() => pd.createQp({ qpType: QpType.RAW_PACKET, sendCq: cq, recvCq: cq }), "EPERM", "ibv_create_qp");
    expectVerbsError(() => pd.createQp({ qpType: QpType.XRC_SEND, sendCq: cq, recvCq: cq }), "EOPNOTSUPP", "ibv_create_qp");
    // RoCE has no QP0: the SMI type is EOPNOTSUPP (the GSI, QP1, is test/host/cm/qp1-transport.test.ts)
    expectVerbsError(() => pd.createQp({ qpType: QpType.SMI, sendCq: cq, recvCq: cq }), "EOPNOTSUPP", "ibv_create_qp");
  });

  it("bad flow: more QPs than max_qp (EINVAL as rxe_pool); destroy frees the slot and its rings", async () => {
    const { dev, pd, cq } = await fixture();
    const qps = Array.from({ length: dev.query().maxQp }, () => rcQp(pd, cq));
    expectVerbsError(() => rcQp(pd, cq), "EINVAL", "ibv_create_qp");
    const last = qps.pop()!;
    const freed = last.qpNum;
    last.destroy();
    const again = rcQp(pd, cq);
    expect(again.qpNum).toBe(freed); // the one free slot, and a slot keeps its QPN
    expect(() => again.destroy()).not.toThrow();
    expect(() => again.destroy()).not.toThrow(); // second destroy: no-op
    expectVerbsError(() => again.modify({ qpState: S.INIT }), "EINVAL", "ibv_modify_qp");
    expect(again.state).toBe(S.UNKNOWN);
  });
});

describe("QP state machine (ibv_modify_qp, IB core qp_state_table)", () => {
  for (const type of [QpType.RC, QpType.UC, QpType.UD]) {
    const tn = type === QpType.RC ? "RC" : type === QpType.UC ? "UC" : "UD";
    it(`${tn}: walks RESET -> INIT -> RTR -> RTS -> SQD -> RTS -> ERR -> RESET`, async () => {
      const { pd, cq } = await fixture();
      const qp = pd.createQp({ qpType: type, sendCq: cq, recvCq: cq });
      reach(qp, S.SQD);
      qp.modify({ qpState: S.RTS });
      qp.modify({ qpState: S.ERR });
      qp.modify({ qpState: S.RESET });
      expect(qp.state).toBe(S.RESET);
      reach(qp, S.RTS);
    });

    it(`${tn}: every illegal transition is EINVAL and leaves the state alone`, async () => {
      const { pd, cq } = await fixture({ maxQp: 16 });
      let n = 0;
      for (const from of [S.RESET, S.INIT, S.RTR, S.RTS, S.SQD, S.ERR]) {
        for (let to = 0; to <= S.ERR; to++) {
          if (VALID[from]!.includes(to)) continue;
          const qp = pd.createQp({ qpType: type, sendCq: cq, recvCq: cq });
          reach(qp, from);
          // give it the attributes the target would need, so only legality decides
          const e = expectVerbsError(() => qp.modify({ qpState: to, ...(STEP[type]![to] ?? {}) }), "EINVAL", "ibv_modify_qp");
          expect(e.message).toContain("EINVAL");
          expect(qp.state, `${NAMES[from]} -> ${NAMES[to]}`).toBe(from);
          qp.destroy();
          n++;
        }
      }
      expect(n).toBe(6 * 7 - 20); // 42 pairs from reachable states (SQE is entered only by the device), 20 valid
    });
  }

  it("bad flow: each required attribute missing is EINVAL (RC, UC, UD)", async () => {
    const { pd, cq } = await fixture();
    for (const type of [QpType.RC, QpType.UC, QpType.UD]) {
      for (const to of [S.INIT, S.RTR, S.RTS]) {
        const step = STEP[type]![to]!;
        for (const k of Object.keys(step)) {
          const qp = pd.createQp({ qpType: type, sendCq: cq, recvCq: cq });
          reach(qp, to - 1);
          const partial: Record<string, unknown> = { ...step, qpState: to };
          delete partial[k];
          expectVerbsError(() => qp.modify(partial as QpAttr), "EINVAL", "ibv_modify_qp");
          expect(qp.state).toBe(to - 1);
          qp.destroy();
        }
      }
    }
  });

  it("bad flow: attributes of the wrong QP type are EINVAL", async () => {
    const { pd, cq } = await fixture();
    const make = (t: number) => pd.createQp({ qpType: t, sendCq: cq, recvCq: cq });
    const rc = make(QpType.RC);
    expectVerbsError(() => rc.modify({ qpState: S.INIT, ...STEP[QpType.RC]![S.INIT], qkey: 1 }), "EINVAL");
    const ud = make(QpType.UD);
    expectVerbsError(() => ud.modify({ qpState: S.INIT, ...STEP[QpType.UD]![S.INIT], qpAccessFlags: 0 }), "EINVAL");
    reach(ud, S.INIT);
    expectVerbsError(() => ud.modify({ qpState: S.RTR, ahAttr: AV }), "EINVAL");
    expectVerbsError(() => ud.modify({ qpState: S.RTR, destQpNum: 3 }), "EINVAL");
    const uc = make(QpType.UC);
    reach(uc, S.RTR);
    expectVerbsError(() => uc.modify({ qpState: S.RTS, sqPsn: 1, timeout: 14 }), "EINVAL");
    expectVerbsError(() => uc.modify({ qpState: S.RTS, sqPsn: 1, maxRdAtomic: 1 }), "EINVAL");
    // cap is never a modify attribute
    expectVerbsError(() => rc.modify({ qpState: S.INIT, ...STEP[QpType.RC]![S.INIT], cap: { maxSendWr: 1 } }), "EINVAL");
    // rate limit is for raw packet QPs only
    reach(rc, S.RTR);
    expectVerbsError(() => rc.modify({ qpState: S.RTS, ...STEP[QpType.RC]![S.RTS], rateLimit: 10 }), "EINVAL");
  });

  it("bad flow: attribute values rxe refuses", async () => {
    const { pd, cq } = await fixture();
    const rc = rcQp(pd, cq);
    const init = STEP[QpType.RC]![S.INIT]!;
    expectVerbsError(() => rc.modify({ qpState: S.INIT, ...init, portNum: 2 }), "EINVAL");
    expectVerbsError(() => rc.modify({ qpState: S.INIT, ...init, pkeyIndex: 64 }), "EINVAL"); // max_pkeys 64
    expectVerbsError(() => rc.modify({ qpState: S.INIT, ...init, qpAccessFlags: 1 << 15 }), "EINVAL");
    // any index below max_pkeys, as rxe's QPs take them (each names the port's one P_Key, 0xffff)
    rc.modify({ qpState: S.INIT, ...init, pkeyIndex: 63 });
    expect(rc.query().attr.pkeyIndex).toBe(63);
    const rtr = STEP[QpType.RC]![S.RTR]!;
    expectVerbsError(() => rc.modify({ qpState: S.RTR, ...rtr, pathMtu: 6 }), "EINVAL");
    expectVerbsError(() => rc.modify({ qpState: S.RTR, ...rtr, pathMtu: 0 }), "EINVAL");
    expectVerbsError(() => rc.modify({ qpState: S.RTR, ...rtr, maxDestRdAtomic: 129 }), "EINVAL");
    expectVerbsError(() => rc.modify({ qpState: S.RTR, ...rtr, minRnrTimer: 32 }), "EINVAL");
    expectVerbsError(() => rc.modify({ qpState: S.RTR, ...rtr, destQpNum: 1 << 24 }), "EINVAL");
    expectVerbsError(() => rc.modify({ qpState: S.RTR, ...rtr, ahAttr: { portNum: 1 } }), "EINVAL"); // RoCE needs a GRH
    expectVerbsError(() => rc.modify({ qpState: S.RTR, ...rtr, ahAttr: { ...AV, grh: { ...AV.grh, sgidIndex: 2 } } }), "EINVAL");
    expectVerbsError(() => rc.modify({ qpState: S.RTR, ...rtr, ahAttr: { ...AV, grh: { dgid: "not-a-gid" } } }), "EINVAL");
    rc.modify({ qpState: S.RTR, ...rtr });
    const rts = STEP[QpType.RC]![S.RTS]!;
    expectVerbsError(() => rc.modify({ qpState: S.RTS, ...rts, timeout: 32 }), "EINVAL");
    expectVerbsError(() => rc.modify({ qpState: S.RTS, ...rts, retryCnt: 8 }), "EINVAL");
    expectVerbsError(() => rc.modify({ qpState: S.RTS, ...rts, rnrRetry: 8 }), "EINVAL");
    expectVerbsError(() => rc.modify({ qpState: S.RTS, ...rts, maxRdAtomic: 129 }), "EINVAL");
    expectVerbsError(() => rc.modify({ qpState: S.RTS, ...rts, sqPsn: -1 }), "EINVAL");
    expect(rc.state).toBe(S.RTR);
  });

  it("bad flow: a privileged qkey (bit 31) needs CAP_NET_RAW: EPERM unless the device allows it", async () => {
    const { pd, cq } = await fixture();
    const ud = pd.createQp({ qpType: QpType.UD, sendCq: cq, recvCq: cq });
    expectVerbsError(() => ud.modify({ qpState: S.INIT, pkeyIndex: 0, portNum: 1, qkey: 0x80010000 }), "EPERM", "ibv_modify_qp");
    const f2 = await fixture({ privilegedQkey: true });
    const ud2 = f2.pd.createQp({ qpType: QpType.UD, sendCq: f2.cq, recvCq: f2.cq });
    ud2.modify({ qpState: S.INIT, pkeyIndex: 0, portNum: 1, qkey: 0x80010000 });
    expect(ud2.query().attr.qkey).toBe(0x80010000);
  });

  it("stores what was set; PSNs masked to 24 bits; rd_atomic depths rounded up to a power of two (rxe)", async () => {
    const { pd, cq } = await fixture();
    const qp = rcQp(pd, cq);
    qp.modify({ qpState: S.INIT, pkeyIndex: 0, portNum: 1, qpAccessFlags: Access.REMOTE_READ | Access.LOCAL_WRITE });
    qp.modify({ qpState: S.RTR, pathMtu: Mtu.MTU_4096, destQpNum: 0xabcdef, rqPsn: 0x1234567, ahAttr: { ...AV, grh: { ...AV.grh, flowLabel: 7, trafficClass: 3 } }, maxDestRdAtomic: 3, minRnrTimer: 12 });
    qp.modify({ qpState: S.RTS, sqPsn: 0xffffffff, timeout: 14, retryCnt: 6, rnrRetry: 5, maxRdAtomic: 5 });
    const { attr } = qp.query();
    expect(attr).toMatchObject({
      qpState: S.RTS, qpAccessFlags: Access.REMOTE_READ | Access.LOCAL_WRITE, pathMtu: Mtu.MTU_4096, destQpNum: 0xabcdef,
      rqPsn: 0x234567, sqPsn: 0xffffff, maxDestRdAtomic: 4, maxRdAtomic: 8, minRnrTimer: 12, timeout: 14, retryCnt: 6, rnrRetry: 5, portNum: 1,
    });
    expect(attr.ahAttr.grh).toEqual({ dgid: "::ffff:127.0.0.2", flowLabel: 7, sgidIndex: 1, hopLimit: 64, trafficClass: 3 });
    expect(attr.ahAttr.isGlobal).toBe(1);
    expect(attr.ahAttr.destPort).toBe(4791);
    // RTS -> RTS may change only its optional attributes
    qp.modify({ minRnrTimer: 1, qpAccessFlags: 0 });
    expect(qp.query().attr.minRnrTimer).toBe(1);
    expectVerbsError(() => qp.modify({ sqPsn: 1 }), "EINVAL");
  });

  it("derives the mask from the fields present; an explicit attrMask wins", async () => {
    expect(deriveMask({ qpState: 1, pkeyIndex: 0, portNum: 1, qpAccessFlags: 0 })).toBe(
      QpAttrMask.STATE | QpAttrMask.PKEY_INDEX | QpAttrMask.PORT | QpAttrMask.ACCESS_FLAGS,
    );
    expect(deriveMask({ ahAttr: AV, altTimeout: 1, enSqdAsyncNotify: true })).toBe(
      QpAttrMask.AV | QpAttrMask.ALT_PATH | QpAttrMask.EN_SQD_ASYNC_NOTIFY,
    );
    const { pd, cq } = await fixture();
    const qp = rcQp(pd, cq);
    const init = { qpState: S.INIT, pkeyIndex: 0, portNum: 1, qpAccessFlags: 0 };
    expectVerbsError(() => qp.modify({ ...init, attrMask: QpAttrMask.STATE | QpAttrMask.PKEY_INDEX | QpAttrMask.PORT }), "EINVAL");
    qp.modify({ ...init, attrMask: QpAttrMask.STATE | QpAttrMask.PKEY_INDEX | QpAttrMask.PORT | QpAttrMask.ACCESS_FLAGS });
    expect(qp.state).toBe(S.INIT);
  });

  it("CUR_STATE is allowed only from RTR, RTS, SQD, SQE", async () => {
    const { pd, cq } = await fixture();
    const qp = rcQp(pd, cq);
    reach(qp, S.INIT);
    expectVerbsError(() => qp.modify({ curQpState: S.INIT, qpState: S.INIT }), "EINVAL");
    reach(qp, S.RTS);
    qp.modify({ curQpState: S.RTS, qpState: S.RTS });
    expect(qp.state).toBe(S.RTS);
  });

  it("RTS -> SQD with an empty SQ raises SQ_DRAINED; ERR with an SRQ raises QP_LAST_WQE_REACHED", async () => {
    const { dev, pd, cq } = await fixture();
    const events: AsyncEvent[] = [];
    dev.on("event", (e) => events.push(e));
    const qp = rcQp(pd, cq);
    toRts(qp);
    qp.modify({ qpState: S.SQD, enSqdAsyncNotify: 1 });
    await tick();
    expect(events.map((e) => [e.eventName, e.qp === qp])).toEqual([["SQ_DRAINED", true]]);
    const srq = pd.createSrq({ attr: { maxWr: 8, maxSge: 1 } });
    const q2 = pd.createQp({ qpType: QpType.RC, sendCq: cq, recvCq: cq, srq });
    q2.modify({ qpState: S.ERR });
    q2.modify({ qpState: S.ERR });
    await tick();
    expect(events.slice(1).map((e) => [e.eventName, e.qp?.qpNum])).toEqual([["QP_LAST_WQE_REACHED", q2.qpNum]]);
    expect(q2.query().attr.qpState).toBe(S.ERR);
  });

  it("SQD with WQEs outstanding drains (sqDraining) and then only ERR is allowed", async () => {
    const { pd, cq } = await fixture();
    const qp = rcQp(pd, cq);
    toRts(qp);
    qp.postSend({ wrId: 1n, opcode: 2 });
    qp.modify({ qpState: S.SQD });
    expect(qp.query().attr.sqDraining).toBe(1);
    expectVerbsError(() => qp.modify({ qpState: S.RTS }), "EINVAL");
    qp.modify({ qpState: S.ERR });
    expect(cq.poll(4).map((w) => w.wrId)).toEqual([1n]);
  });
});
