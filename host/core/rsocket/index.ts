// rsockets (librdmacm's rsocket.c) over softroce's rdma_cm: the stream protocol (stream.ts) and the
// datagram one (dgram.ts), so that rstream, udpong and other rsocket programs on Linux are the peer;
// each file says what goes on the wire.
export {
  RStream, RsocketError, RsOp, RsCtrl, rsMsg, rsMsgOp, rsMsgData, formatConnData, parseConnData, rsValueToScale, rsScaleToValue,
  RS_CONN_DATA_LEN, RS_SNDLOWAT, RS_CONN_FLAG_NET, RS_CONN_FLAG_IOMAP, RS_DEFAULTS,
  type RsSge, type RsConnData, type RsocketOptions,
} from "./stream.js";
export {
  RDgram, formatDsHeader, parseDsHeader, formatDsUdpHeader, parseDsUdpHeader, DS_UDP_TAG, DS_UDP_IPV4_HDR_LEN, DS_UDP_IPV6_HDR_LEN, DS_IPV4_HDR_LEN, DS_IPV6_HDR_LEN,
  type DsUdpSocket, type RDgramCounters, type RDgramOptions,
} from "./dgram.js";
