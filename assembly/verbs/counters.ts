// Device counters: one enum and one name table (as rxe_hw_counters.h), kept in
// one block of u64 the host reads directly (device.queryCounters()).

export const enum Counter {
  SENT_PKTS = 0,
  RCVD_PKTS,
  DUPLICATE_REQUEST,
  OUT_OF_SEQ_REQUEST,
  RCVD_RNR_ERR,
  SEND_RNR_ERR,
  RCVD_SEQ_ERR,
  ACK_DEFERRED,
  RETRY_EXCEEDED_ERR,
  RETRY_RNR_EXCEEDED_ERR,
  COMPLETER_RETRY_ERR,
  SEND_ERR,
  LINK_DOWNED,
  RDMA_SENDS,
  RDMA_RECVS,
  // receive-path drop reasons (ours)
  BAD_ICRC,
  SHORT,
  BAD_VERSION,
  UNKNOWN_QPN,
  BAD_OPCODE,
  BAD_STATE,
  BAD_PKEY,
  BAD_QKEY,
  BAD_SOURCE,
  // verbs layer (ours)
  CQ_OVERFLOW,
  EVENTS_LOST,
  FLUSHED_WQES,
  COUNT,
}

/** Names in enum order, comma separated; the host splits this string. */
export const COUNTER_NAMES =
  "sent_pkts,rcvd_pkts,duplicate_request,out_of_seq_request,rcvd_rnr_err,send_rnr_err," +
  "rcvd_seq_err,ack_deferred,retry_exceeded_err,retry_rnr_exceeded_err,completer_retry_err," +
  "send_err,link_downed,rdma_sends,rdma_recvs," +
  "bad_icrc,short,bad_version,unknown_qpn,bad_opcode,bad_state,bad_pkey,bad_qkey,bad_source," +
  "cq_overflow,events_lost,flushed_wqes";

export const counterBlock: usize = memory.data(8 * 32);

@inline export function count(c: Counter, n: u64 = 1): void {
  const p = counterBlock + (<usize>c << 3);
  store<u64>(p, load<u64>(p) + n);
}

@inline export function counterValue(c: Counter): u64 { return load<u64>(counterBlock + (<usize>c << 3)); }

export function countersReset(): void { memory.fill(counterBlock, 0, 8 * 32); }
