// The vocabulary of Linux's ib_cm (include/rdma/ib_cm.h, drivers/infiniband/
// core/cm.c): its states and events with their numbers and names, the REJ
// reasons and SIDR statuses with the text ibcm_reject_msg prints, and the two
// time formulas every timer of the CM comes from.

/** enum ib_cm_state; the names double as trace vocabulary. */
export const CmState = {
  IDLE: 0,
  LISTEN: 1,
  REQ_SENT: 2,
  REQ_RCVD: 3,
  MRA_REQ_SENT: 4,
  MRA_REQ_RCVD: 5,
  REP_SENT: 6,
  REP_RCVD: 7,
  MRA_REP_SENT: 8,
  MRA_REP_RCVD: 9,
  ESTABLISHED: 10,
  DREQ_SENT: 11,
  DREQ_RCVD: 12,
  TIMEWAIT: 13,
  SIDR_REQ_SENT: 14,
  SIDR_REQ_RCVD: 15,
} as const;
export type CmState = (typeof CmState)[keyof typeof CmState];
export const CM_STATE_NAMES = Object.keys(CmState) as readonly (keyof typeof CmState)[];

/** enum ib_cm_event_type. */
export const IbCmEventType = {
  REQ_ERROR: 0,
  REQ_RECEIVED: 1,
  REP_ERROR: 2,
  REP_RECEIVED: 3,
  RTU_RECEIVED: 4,
  USER_ESTABLISHED: 5,
  DREQ_ERROR: 6,
  DREQ_RECEIVED: 7,
  DREP_RECEIVED: 8,
  TIMEWAIT_EXIT: 9,
  MRA_RECEIVED: 10,
  REJ_RECEIVED: 11,
  LAP_ERROR: 12,
  LAP_RECEIVED: 13,
  APR_RECEIVED: 14,
  SIDR_REQ_ERROR: 15,
  SIDR_REQ_RECEIVED: 16,
  SIDR_REP_RECEIVED: 17,
} as const;
export type IbCmEventType = (typeof IbCmEventType)[keyof typeof IbCmEventType];
export const IB_CM_EVENT_NAMES = Object.keys(IbCmEventType) as readonly (keyof typeof IbCmEventType)[];

/** enum ib_cm_rej_reason. */
export const RejReason = {
  NO_QP: 1,
  NO_EEC: 2,
  NO_RESOURCES: 3,
  TIMEOUT: 4,
  UNSUPPORTED: 5,
  INVALID_COMM_ID: 6,
  INVALID_COMM_INSTANCE: 7,
  INVALID_SERVICE_ID: 8,
  INVALID_TRANSPORT_TYPE: 9,
  STALE_CONN: 10,
  RDC_NOT_EXIST: 11,
  INVALID_GID: 12,
  INVALID_LID: 13,
  INVALID_SL: 14,
  INVALID_TRAFFIC_CLASS: 15,
  INVALID_HOP_LIMIT: 16,
  INVALID_PACKET_RATE: 17,
  INVALID_ALT_GID: 18,
  INVALID_ALT_LID: 19,
  INVALID_ALT_SL: 20,
  INVALID_ALT_TRAFFIC_CLASS: 21,
  INVALID_ALT_HOP_LIMIT: 22,
  INVALID_ALT_PACKET_RATE: 23,
  PORT_CM_REDIRECT: 24,
  PORT_REDIRECT: 25,
  INVALID_MTU: 26,
  INSUFFICIENT_RESP_RESOURCES: 27,
  CONSUMER_DEFINED: 28,
  INVALID_RNR_RETRY: 29,
  DUPLICATE_LOCAL_COMM_ID: 30,
  INVALID_CLASS_VERSION: 31,
  INVALID_FLOW_LABEL: 32,
  INVALID_ALT_FLOW_LABEL: 33,
  VENDOR_OPTION_NOT_SUPPORTED: 35,
} as const;

/** ibcm_reject_msg's strings (rdma_reject_msg on IB and RoCE). */
const REJ_TEXT: Record<number, string> = {
  1: "no QP", 2: "no EEC", 3: "no resources", 4: "timeout", 5: "unsupported", 6: "invalid comm ID",
  7: "invalid comm instance", 8: "invalid service ID", 9: "invalid transport type", 10: "stale conn",
  11: "RDC not exist", 12: "invalid GID", 13: "invalid LID", 14: "invalid SL", 15: "invalid traffic class",
  16: "invalid hop limit", 17: "invalid packet rate", 18: "invalid alt GID", 19: "invalid alt LID",
  20: "invalid alt SL", 21: "invalid alt traffic class", 22: "invalid alt hop limit", 23: "invalid alt packet rate",
  24: "port CM redirect", 25: "port redirect", 26: "invalid MTU", 27: "insufficient resp resources",
  28: "consumer defined", 29: "invalid RNR retry", 30: "duplicate local comm ID", 31: "invalid class version",
  32: "invalid flow label", 33: "invalid alt flow label",
};

export function rejectMessage(reason: number): string {
  return REJ_TEXT[reason] ?? "unrecognized reason";
}

/** enum ib_cm_sidr_status. */
export const SidrStatus = { SUCCESS: 0, UNSUPPORTED: 1, REJECT: 2, NO_QP: 3, REDIRECT: 4, UNSUPPORTED_VERSION: 5 } as const;

/** enum cm_msg_response: which message a REJ or MRA answers. */
export const MsgResponse = { REQ: 0, REP: 1, OTHER: 2 } as const;

/** REQ transport service type (IBTA Table 106; cm_req_set_qp_type). */
export const TransportServiceType = { RC: 0, UC: 1, RD: 2, XRC: 3 } as const;

/** ib_send_cm_mra: send the MRA only when a duplicate arrives (IB_CM_MRA_FLAG_DELAY). */
export const MRA_FLAG_DELAY = 0x80;

/** The CM's send/receive counters (/sys/class/infiniband_cm/…/cm_tx_msgs and friends), per message. */
export const CM_COUNTER_GROUPS = ["cm_tx_msgs", "cm_tx_retries", "cm_rx_msgs", "cm_rx_duplicates"] as const;

/** cm_convert_to_ms: 4.096 µs × 2^t, approximated in whole milliseconds (at least 1). */
export function cmConvertToMs(ibaTime: number): number {
  return 2 ** Math.max(ibaTime - 8, 0);
}

/**
 * cm_ack_timeout: local ACK timeout = 2 × packet life time + the CA's ACK delay,
 * in the 4.096 µs × 2^t encoding: the larger of the two, rounded up one step when
 * the other is within half of it; at most 31.
 */
export function cmAckTimeout(caAckDelay: number, packetLifeTime: number): number {
  let ackTimeout = packetLifeTime + 1;
  if (ackTimeout >= caAckDelay) ackTimeout += caAckDelay >= ackTimeout - 1 ? 1 : 0;
  else ackTimeout = caAckDelay + (ackTimeout >= caAckDelay - 1 ? 1 : 0);
  return Math.min(31, ackTimeout);
}
