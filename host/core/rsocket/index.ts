// rsockets (librdmacm's rsocket.c) over softroce's rdma_cm: the stream protocol, so that rstream and
// other rsocket programs on Linux are the peer (stream.ts says what goes on the wire).
export {
  RStream, RsocketError, RsOp, RsCtrl, rsMsg, rsMsgOp, rsMsgData, formatConnData, parseConnData, rsValueToScale, rsScaleToValue,
  RS_CONN_DATA_LEN, RS_CONN_FLAG_NET, RS_CONN_FLAG_IOMAP, RS_DEFAULTS,
  type RsSge, type RsConnData, type RsocketOptions,
} from "./stream.js";
