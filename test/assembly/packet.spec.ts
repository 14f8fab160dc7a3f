// parse: every error code, every truncation; emit -> parse round trips.
import { hexWrite, hexRead } from "./wire-hex.include";
import {
  parse_packet, parse_udp_payload, emit_packet, REPR_SIZE, INFO_SIZE,
  R_IP_VERSION, R_SRC, R_DST, R_IP_ID, R_IP_FLAGS, R_TTL, R_TOS, R_SPORT, R_DPORT, R_OPCODE, R_PADCNT, R_PKEY,
  R_DESTQP, R_PSN, R_ACKREQ, R_RETH_VA, R_RETH_RKEY, R_RETH_LEN, R_IMMDT, R_PAYLOAD_PTR, R_PAYLOAD_LEN, R_ICRC,
  R_ICRC_EXPECTED, R_UDP_LEN, R_IP_TOTAL_LEN, R_IP_CSUM, R_MIGREQ, R_BECN,
  I_STATUS, I_BTH_OFF, I_PAYLOAD_OFF, I_PAYLOAD_LEN, I_ICRC_OFF, I_HDR_OFF, I_PACKET_LEN,
  ERR_TRUNCATED, ERR_BAD_IP_VERSION, ERR_BAD_IP_HEADER, ERR_NOT_UDP, ERR_NOT_ROCE_PORT, ERR_BAD_UDP_LENGTH,
  ERR_TRUNCATED_BTH, ERR_BAD_TVER, ERR_UNKNOWN_OPCODE, ERR_TRUNCATED_HEADERS, ERR_BAD_PAYLOAD, ERR_IP_FRAGMENT,
  EMIT_BUFFER_TOO_SMALL, EMIT_UNKNOWN_OPCODE, EMIT_BAD_PAYLOAD, EMIT_BAD_IP_VERSION,
} from "../../assembly/wire/packet";
import { pkt_error_name } from "../../assembly/wire/exports";
import { opcode_valid, opcode_mask, opcode_length, M_PAYLOAD, M_ATOMIC_WRITE, HDR_RETH, HDR_IMMDT } from "../../assembly/wire/opcode";

const PKT = heap.alloc(2048);
const OUT = heap.alloc(2048);
const PAY = heap.alloc(2048);
const R = heap.alloc(REPR_SIZE);
const INF = heap.alloc(INFO_SIZE);

const UC_SEND = "45010040047840004011b4d5c0a80007c0a80007c00012b7002caca22460ffff000000d300cf"
  + "17104630818be28935d90e9a95505401be885e50000078f353f3";
const CNP = "45c2003c718c4000401191610a0011010a001201000012b7"
  + "002800008100ffff40000118000000000000000000000000000000000000000082fd002a";

@inline function rd(off: u32): u32 { return load<u32>(R + off); }
function cname(p: usize): string {
  let s = "";
  while (load<u8>(p) != 0) { s += String.fromCharCode(load<u8>(p)); p++; }
  return s;
}

function mutate(at: u32, v: u8): u32 {
  const n = hexWrite(PKT, UC_SEND);
  store<u8>(PKT + at, v);
  return parse_packet(PKT, n, R, INF);
}

describe("parse", () => {
  it("fills repr and info from the scapy UC SEND_ONLY", () => {
    const n = hexWrite(PKT, UC_SEND);
    expect(parse_packet(PKT, n, R, INF)).toBe(0);
    expect(rd(R_IP_VERSION)).toBe(4);
    expect(hexRead(R + R_SRC, 4)).toBe("c0a80007");
    expect(rd(R_IP_ID)).toBe(0x0478);
    expect(rd(R_IP_FLAGS)).toBe(2);
    expect(rd(R_TOS)).toBe(1);
    expect(rd(R_TTL)).toBe(64);
    expect(rd(R_IP_CSUM)).toBe(0xb4d5);
    expect(rd(R_SPORT)).toBe(0xc000);
    expect(rd(R_DPORT)).toBe(4791);
    expect(rd(R_UDP_LEN)).toBe(44);
    expect(rd(R_OPCODE)).toBe(0x24);
    expect(rd(R_MIGREQ)).toBe(1);
    expect(rd(R_PADCNT)).toBe(2);
    expect(rd(R_PKEY)).toBe(0xffff);
    expect(rd(R_DESTQP)).toBe(211);
    expect(rd(R_PSN)).toBe(13571856);
    expect(rd(R_PAYLOAD_LEN)).toBe(18);
    expect(rd(R_PAYLOAD_PTR)).toBe(<u32>(PKT + 40));
    expect(rd(R_ICRC)).toBe(0x78f353f3);
    expect(rd(R_ICRC_EXPECTED)).toBe(0x78f353f3);
    expect(rd(R_IP_TOTAL_LEN)).toBe(64);
    expect(load<u32>(INF + I_STATUS)).toBe(0);
    expect(load<u32>(INF + I_BTH_OFF)).toBe(28);
    expect(load<u32>(INF + I_PAYLOAD_OFF)).toBe(40);
    expect(load<u32>(INF + I_PAYLOAD_LEN)).toBe(18);
    expect(load<u32>(INF + I_ICRC_OFF)).toBe(60);
    expect(load<i32>(INF + I_HDR_OFF)).toBe(-1);
    expect(load<u32>(INF + I_PACKET_LEN)).toBe(64);
  });
  it("accepts trailing bytes after the IP packet (Ethernet padding) and ignores them", () => {
    const n = hexWrite(PKT, CNP);
    store<u32>(PKT + n, 0xffffffff);
    expect(parse_packet(PKT, n + 4, R, INF)).toBe(0);
    expect(rd(R_OPCODE)).toBe(0x81);
    expect(rd(R_BECN)).toBe(1);
    expect(rd(R_PAYLOAD_LEN)).toBe(0);
    expect(rd(R_ICRC)).toBe(rd(R_ICRC_EXPECTED));
  });
  it("returns each error code", () => {
    expect(mutate(0, 0x55)).toBe(ERR_BAD_IP_VERSION);
    expect(mutate(0, 0x46)).toBe(ERR_BAD_IP_HEADER);
    expect(mutate(3, 0x10)).toBe(ERR_BAD_IP_HEADER); // total length 16 < 20
    expect(mutate(3, 0x44)).toBe(ERR_TRUNCATED); // total length beyond the buffer
    expect(mutate(6, 0x20)).toBe(ERR_IP_FRAGMENT); // MF
    expect(mutate(7, 0x01)).toBe(ERR_IP_FRAGMENT); // offset
    expect(mutate(9, 6)).toBe(ERR_NOT_UDP);
    expect(mutate(23, 0xb8)).toBe(ERR_NOT_ROCE_PORT);
    expect(mutate(25, 0x2b)).toBe(ERR_BAD_UDP_LENGTH);
    expect(mutate(29, 0x61)).toBe(ERR_BAD_TVER);
    expect(mutate(28, 0x15)).toBe(ERR_UNKNOWN_OPCODE);
    expect(mutate(28, 0x31)).toBe(ERR_UNKNOWN_OPCODE);
    expect(mutate(28, 0x13)).toBe(ERR_TRUNCATED_HEADERS); // CMP_SWAP needs 40 header bytes
    expect(mutate(28, 0x11)).toBe(ERR_BAD_PAYLOAD); // ACK carries no payload
    expect(mutate(28, 0x1d)).toBe(ERR_BAD_PAYLOAD); // ATOMIC WRITE: exactly 8 bytes
    expect(parse_packet(PKT, 0, R, INF)).toBe(ERR_TRUNCATED);
    expect(load<u32>(INF + I_STATUS)).toBe(ERR_TRUNCATED);
  });
  it("refuses a UDP payload too short for a BTH, and a pad longer than the payload", () => {
    // IPv4 + UDP + 12 bytes: BTH but no room for the ICRC
    let n = hexWrite(PKT, "4500002800004000401100000102030405060708" + "000012b700140000" + "0400ffff000000010000000a");
    expect(parse_packet(PKT, n, R, INF)).toBe(ERR_TRUNCATED_BTH);
    // RC ACK with pad count 1 and nothing to pad
    n = hexWrite(PKT, "4500003000004000401100000102030405060708" + "000012b7001c0000" + "1110ffff000000010000000a" + "1f000001" + "00000000");
    expect(parse_packet(PKT, n, R, INF)).toBe(ERR_BAD_PAYLOAD);
    // UDP length below 8
    n = hexWrite(PKT, "4500001800004000401100000102030405060708" + "000012b7");
    expect(parse_packet(PKT, n, R, INF)).toBe(ERR_BAD_UDP_LENGTH);
  });
  it("every truncation of a valid packet is an error, never a read past the end", () => {
    const n = hexWrite(PKT, UC_SEND);
    for (let len: u32 = 0; len < n; len++) expect(parse_packet(PKT, len, R, INF)).toBe(ERR_TRUNCATED);
  });
  it("names every error", () => {
    expect(cname(pkt_error_name(ERR_TRUNCATED))).toBe("TRUNCATED");
    expect(cname(pkt_error_name(ERR_IP_FRAGMENT))).toBe("IP_FRAGMENT");
    expect(cname(pkt_error_name(ERR_TRUNCATED_HEADERS))).toBe("TRUNCATED_HEADERS");
    expect(cname(pkt_error_name(<u32>EMIT_BUFFER_TOO_SMALL))).toBe("BUFFER_TOO_SMALL");
    expect(cname(pkt_error_name(<u32>EMIT_BAD_IP_VERSION))).toBe("BAD_IP_VERSION");
    expect(cname(pkt_error_name(99))).toBe("");
  });
});

function setAddrs(v6: bool): void {
  memory.fill(R, 0, REPR_SIZE);
  store<u32>(R + R_IP_VERSION, v6 ? 6 : 4);
  if (v6) { hexWrite(R + R_SRC, "fd000000000000000000000000000001"); hexWrite(R + R_DST, "fd000000000000000000000000000002"); }
  else { hexWrite(R + R_SRC, "0a000001"); hexWrite(R + R_DST, "0a000002"); }
  store<u32>(R + R_TTL, 64);
  store<u32>(R + R_IP_FLAGS, 2);
  store<u32>(R + R_SPORT, 0xc000);
  store<u32>(R + R_DPORT, 4791);
  store<u32>(R + R_PKEY, 0xffff);
}

describe("emit", () => {
  it("reproduces the scapy and CNP packets byte for byte from their parse", () => {
    let n = hexWrite(PKT, UC_SEND);
    expect(parse_packet(PKT, n, R, INF)).toBe(0);
    expect(emit_packet(R, OUT, 2048)).toBe(<i32>n);
    expect(hexRead(OUT, n)).toBe(UC_SEND);
    n = hexWrite(PKT, CNP);
    expect(parse_packet(PKT, n, R, INF)).toBe(0);
    expect(emit_packet(R, OUT, 2048)).toBe(<i32>n);
    expect(hexRead(OUT, n)).toBe(CNP);
    // in place, over the parsed buffer
    expect(parse_packet(PKT, n, R, INF)).toBe(0);
    expect(emit_packet(R, PKT, 2048)).toBe(<i32>n);
    expect(hexRead(PKT, n)).toBe(CNP);
  });
  it("round-trips every opcode with every payload length 0..9 over IPv4 and IPv6", () => {
    for (let i: u32 = 0; i < 16; i++) store<u8>(PAY + i, <u8>(0xa0 + i));
    for (let v = 0; v < 2; v++) {
      for (let op: u32 = 0; op < 256; op++) {
        if (!opcode_valid(op)) continue;
        const mask = opcode_mask(op);
        for (let plen: u32 = 0; plen < 10; plen++) {
          setAddrs(v == 1);
          store<u32>(R + R_OPCODE, op);
          store<u32>(R + R_DESTQP, 0xabcdef);
          store<u32>(R + R_PSN, plen * 0x100001);
          store<u32>(R + R_ACKREQ, 1);
          store<u64>(R + R_RETH_VA, 0x1122334455667788);
          store<u32>(R + R_RETH_RKEY, 0x99);
          store<u32>(R + R_RETH_LEN, plen);
          store<u32>(R + R_IMMDT, 0x01020304);
          store<u32>(R + R_PAYLOAD_PTR, <u32>PAY);
          store<u32>(R + R_PAYLOAD_LEN, plen);
          const len = emit_packet(R, OUT, 2048);
          const ok = (mask & M_ATOMIC_WRITE) ? plen == 8 : (mask & M_PAYLOAD) ? true : plen == 0;
          if (!ok) { expect(len).toBe(EMIT_BAD_PAYLOAD); continue; }
          const pad = (4 - (plen & 3)) & 3;
          expect(len).toBe(<i32>((v == 1 ? 40 : 20) + 8 + opcode_length(op) + plen + pad + 4));
          expect(parse_packet(OUT, <u32>len, R, INF)).toBe(0);
          expect(rd(R_OPCODE)).toBe(op);
          expect(rd(R_PADCNT)).toBe(pad);
          expect(rd(R_PAYLOAD_LEN)).toBe(plen);
          expect(rd(R_DESTQP)).toBe(0xabcdef);
          expect(rd(R_PSN)).toBe(plen * 0x100001);
          expect(rd(R_ICRC)).toBe(rd(R_ICRC_EXPECTED));
          expect(memory.compare(<usize>rd(R_PAYLOAD_PTR), PAY, plen)).toBe(0);
          if (load<i32>(INF + I_HDR_OFF + (HDR_RETH << 2)) >= 0) expect(load<u64>(R + R_RETH_VA)).toBe(0x1122334455667788);
          if (load<i32>(INF + I_HDR_OFF + (HDR_IMMDT << 2)) >= 0) expect(rd(R_IMMDT)).toBe(0x01020304);
        }
      }
    }
  });
  it("reports emit errors", () => {
    setAddrs(false);
    store<u32>(R + R_OPCODE, 0x15);
    expect(emit_packet(R, OUT, 2048)).toBe(EMIT_UNKNOWN_OPCODE);
    store<u32>(R + R_OPCODE, 0x04);
    store<u32>(R + R_PAYLOAD_PTR, <u32>PAY);
    store<u32>(R + R_PAYLOAD_LEN, 100);
    expect(emit_packet(R, OUT, 100)).toBe(EMIT_BUFFER_TOO_SMALL);
    expect(emit_packet(R, OUT, 20 + 8 + 12 + 100 + 4)).toBe(144);
    store<u32>(R + R_IP_VERSION, 5);
    expect(emit_packet(R, OUT, 2048)).toBe(EMIT_BAD_IP_VERSION);
  });
  it("parses a bare UDP payload with the IP/UDP facts in the repr", () => {
    const n = hexWrite(PKT, UC_SEND);
    setAddrs(false);
    hexWrite(R + R_SRC, "c0a80007");
    hexWrite(R + R_DST, "c0a80007");
    store<u32>(R + R_IP_ID, 0x0478);
    store<u32>(R + R_TOS, 1);
    expect(parse_udp_payload(PKT + 28, n - 28, R, INF)).toBe(0);
    expect(rd(R_ICRC_EXPECTED)).toBe(0x78f353f3);
    expect(rd(R_ICRC)).toBe(0x78f353f3);
    expect(rd(R_UDP_LEN)).toBe(44);
    expect(rd(R_IP_TOTAL_LEN)).toBe(64);
    expect(rd(R_IP_CSUM)).toBe(0xb4d5);
    expect(load<u32>(INF + I_BTH_OFF)).toBe(0);
    store<u32>(R + R_IP_ID, 0x0479);
    expect(parse_udp_payload(PKT + 28, n - 28, R, INF)).toBe(0);
    expect(rd(R_ICRC_EXPECTED)).not.toBe(0x78f353f3);
    expect(parse_udp_payload(PKT + 28, 10, R, INF)).toBe(ERR_TRUNCATED_BTH);
  });
});
