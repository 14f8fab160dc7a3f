// Creates a QP on the test device (as-pect includes this in every spec).
import { devArgs } from "../../assembly/verbs/device";
import {
  qpCreate, INIT_MAX_RECV_SGE, INIT_MAX_RECV_WR, INIT_MAX_SEND_SGE, INIT_MAX_SEND_WR, INIT_QP_TYPE, INIT_RECV_CQ,
  INIT_SEND_CQ,
} from "../../assembly/verbs/qp";

/** A QP of `type` in PD `pd` with both queues on CQ `cq`, `maxWr` WRs and one SGE each way; its handle. */
export function createTestQp(pd: u32, cq: u32, type: u32, maxWr: u32): u32 {
  const a = devArgs();
  memory.fill(a, 0, 256);
  store<u32>(a + INIT_QP_TYPE, type);
  store<u32>(a + INIT_SEND_CQ, cq);
  store<u32>(a + INIT_RECV_CQ, cq);
  store<u32>(a + INIT_MAX_SEND_WR, maxWr);
  store<u32>(a + INIT_MAX_RECV_WR, maxWr);
  store<u32>(a + INIT_MAX_SEND_SGE, 1);
  store<u32>(a + INIT_MAX_RECV_SGE, 1);
  const h = qpCreate(pd, a);
  assert(h > 0);
  return <u32>h;
}
