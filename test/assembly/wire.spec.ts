// Golden bytes for every header: construct (builder -> bytes) and deconstruct (bytes -> getters).
import { hexWrite, hexRead } from "./wire-hex.include";
import * as bth from "../../assembly/wire/bth";
import * as reth from "../../assembly/wire/reth";
import * as aeth from "../../assembly/wire/aeth";
import * as atmeth from "../../assembly/wire/atmeth";
import * as atmack from "../../assembly/wire/atmack";
import * as deth from "../../assembly/wire/deth";
import * as immdt from "../../assembly/wire/immdt";
import * as ieth from "../../assembly/wire/ieth";
import * as feth from "../../assembly/wire/feth";
import * as ip from "../../assembly/wire/ip";

const P = heap.alloc(128);

describe("BTH", () => {
  it("deconstructs the scapy UC SEND_ONLY BTH", () => {
    expect(hexWrite(P, "2460ffff000000d300cf1710")).toBe(12);
    expect(bth.bth_opcode(P)).toBe(0x24);
    expect(bth.bth_se(P)).toBe(0);
    expect(bth.bth_migreq(P)).toBe(1);
    expect(bth.bth_padcnt(P)).toBe(2);
    expect(bth.bth_tver(P)).toBe(0);
    expect(bth.bth_pkey(P)).toBe(0xffff);
    expect(bth.bth_fecn(P)).toBe(0);
    expect(bth.bth_becn(P)).toBe(0);
    expect(bth.bth_qpn(P)).toBe(211);
    expect(bth.bth_ackreq(P)).toBe(0);
    expect(bth.bth_psn(P)).toBe(13571856);
  });
  it("deconstructs the CNP BTH (BECN set)", () => {
    hexWrite(P, "8100ffff4000011800000000");
    expect(bth.bth_opcode(P)).toBe(0x81);
    expect(bth.bth_becn(P)).toBe(1);
    expect(bth.bth_fecn(P)).toBe(0);
    expect(bth.bth_resv6(P)).toBe(0);
    expect(bth.bth_qpn(P)).toBe(0x118);
  });
  it("constructs every field", () => {
    memory.fill(P, 0xee, 12);
    bth.bth_build(P, 0x0a, 1, 1, 3, 0x8001, 1, 0, 0xabcdef, 1, 0xfffffe);
    expect(hexRead(P, 12)).toBe("0af08001" + "80abcdef" + "80fffffe");
    bth.bth_set_padcnt(P, 1);
    expect(bth.bth_padcnt(P)).toBe(1);
    expect(bth.bth_se(P)).toBe(1);
    expect(bth.BTH_SIZE).toBe(12);
  });
});

describe("extension headers", () => {
  it("RETH", () => {
    reth.reth_build(P, 0x0102030405060708, 0x11223344, 0x00002000);
    expect(hexRead(P, reth.RETH_SIZE)).toBe("0102030405060708" + "11223344" + "00002000");
    expect(reth.reth_va(P)).toBe(0x0102030405060708);
    expect(reth.reth_rkey(P)).toBe(0x11223344);
    expect(reth.reth_len(P)).toBe(8192);
  });
  it("AETH", () => {
    aeth.aeth_build(P, 0x60, 0x000102);
    expect(hexRead(P, aeth.AETH_SIZE)).toBe("60000102");
    expect(aeth.aeth_syndrome(P)).toBe(0x60);
    expect(aeth.aeth_msn(P)).toBe(0x102);
    expect(aeth.aeth_type(0x60)).toBe(aeth.AETH_TYPE_NAK);
    expect(aeth.aeth_type(0x2c)).toBe(aeth.AETH_TYPE_RNR_NAK);
    expect(aeth.aeth_type(0x1f)).toBe(aeth.AETH_TYPE_ACK);
    expect(aeth.aeth_code(0x2c)).toBe(12);
  });
  it("AtomicETH (packed, 28 bytes)", () => {
    atmeth.atmeth_build(P, 0x1000, 0xdeadbeef, 0xffffffffffffffff, 0x0000000000000002);
    expect(atmeth.ATMETH_SIZE).toBe(28);
    expect(hexRead(P, 28)).toBe("0000000000001000" + "deadbeef" + "ffffffffffffffff" + "0000000000000002");
    expect(atmeth.atmeth_va(P)).toBe(0x1000);
    expect(atmeth.atmeth_rkey(P)).toBe(0xdeadbeef);
    expect(atmeth.atmeth_swap_add(P)).toBe(0xffffffffffffffff);
    expect(atmeth.atmeth_compare(P)).toBe(2);
  });
  it("AtomicAckETH", () => {
    atmack.atmack_build(P, 0x8000000000000001);
    expect(hexRead(P, atmack.ATMACK_SIZE)).toBe("8000000000000001");
    expect(atmack.atmack_orig(P)).toBe(0x8000000000000001);
  });
  it("DETH (reserved byte zero)", () => {
    memory.fill(P, 0xff, 8);
    deth.deth_build(P, 0x11111111, 0x000014);
    expect(hexRead(P, deth.DETH_SIZE)).toBe("1111111100000014");
    expect(deth.deth_qkey(P)).toBe(0x11111111);
    expect(deth.deth_srcqp(P)).toBe(0x14);
  });
  it("ImmDt, IETH, FETH", () => {
    immdt.immdt_build(P, 0xcafef00d);
    expect(hexRead(P, immdt.IMMDT_SIZE)).toBe("cafef00d");
    expect(immdt.immdt_data(P)).toBe(0xcafef00d);
    ieth.ieth_build(P, 0x00000108);
    expect(hexRead(P, ieth.IETH_SIZE)).toBe("00000108");
    expect(ieth.ieth_rkey(P)).toBe(0x108);
    feth.feth_build(P, feth.FETH_PLT_PERSISTENT, feth.FETH_SEL_MR);
    expect(hexRead(P, feth.FETH_SIZE)).toBe("00000012");
    expect(feth.feth_placement(feth.feth_word(P))).toBe(2);
    expect(feth.feth_selectivity(feth.feth_word(P))).toBe(1);
  });
});

describe("IP and UDP", () => {
  it("deconstructs the CNP's IPv4 + UDP headers", () => {
    hexWrite(P, "45c2003c718c4000401191610a0011010a001201000012b700280000");
    expect(ip.ip_version(P)).toBe(4);
    expect(ip.ip4_ihl(P)).toBe(5);
    expect(ip.ip4_tos(P)).toBe(0xc2);
    expect(ip.ip4_len(P)).toBe(60);
    expect(ip.ip4_id(P)).toBe(0x718c);
    expect(ip.ip4_flags(P)).toBe(ip.IP4_FLAG_DF);
    expect(ip.ip4_frag_off(P)).toBe(0);
    expect(ip.ip4_ttl(P)).toBe(64);
    expect(ip.ip4_proto(P)).toBe(17);
    expect(ip.ip4_csum(P)).toBe(0x9161);
    expect(ip.ip4_src(P)).toBe(0x0a001101);
    expect(ip.ip4_dst(P)).toBe(0x0a001201);
    expect(ip.ip4_checksum(P, 20)).toBe(0); // a valid header sums to ones
    const u = P + 20;
    expect(ip.udp_sport(u)).toBe(0);
    expect(ip.udp_dport(u)).toBe(4791);
    expect(ip.udp_len(u)).toBe(40);
    expect(ip.udp_csum(u)).toBe(0);
  });
  it("sums 16-bit words with end-around carry; an odd byte is padded", () => {
    hexWrite(P, "010203");
    expect(ip.inet_sum(P, 3, 0)).toBe(0x0402);
    hexWrite(P, "ffff0002");
    expect(ip.inet_sum(P, 4, 0)).toBe(0x0002);
    expect(ip.inet_sum(P, 2, 0xffff)).toBe(0xffff);
  });
  it("computes the UDP checksum over the pseudo-header (a vector computed independently)", () => {
    hexWrite(P, "450000201234400040111497" + "0a0000010a000002" + "c00012b7" + "000c0000" + "01020304");
    const sum = ip.inet_sum(P + 28, 4, 0);
    expect(ip.udp_checksum(P, false, P + 20, 12, sum)).toBe(0x1516);
    hexWrite(P + 26, "abcd"); // the stored checksum field does not count
    expect(ip.udp_checksum(P, false, P + 20, 12, sum)).toBe(0x1516);
  });
  it("constructs the same IPv4 header with its checksum", () => {
    const src = heap.alloc(4);
    const dst = heap.alloc(4);
    hexWrite(src, "0a001101");
    hexWrite(dst, "0a001201");
    ip.ip4_build(P, 0xc2, 60, 0x718c, 2, 0, 64, src, dst);
    expect(hexRead(P, 20)).toBe("45c2003c718c4000401191610a0011010a001201");
    ip.udp_build(P + 20, 0, 4791, 40, 0);
    expect(hexRead(P + 20, 8)).toBe("000012b700280000");
  });
  it("constructs and deconstructs IPv6", () => {
    const src = heap.alloc(16);
    const dst = heap.alloc(16);
    hexWrite(src, "fd000000000000000000000000000001");
    hexWrite(dst, "fd000000000000000000000000000002");
    ip.ip6_build(P, 0xab, 0x12345, 300, 1, src, dst);
    expect(hexRead(P, 8)).toBe("6ab12345012c1101");
    expect(ip.ip_version(P)).toBe(6);
    expect(ip.ip6_tclass(P)).toBe(0xab);
    expect(ip.ip6_flow(P)).toBe(0x12345);
    expect(ip.ip6_plen(P)).toBe(300);
    expect(ip.ip6_next(P)).toBe(17);
    expect(ip.ip6_hops(P)).toBe(1);
    expect(hexRead(P + 24, 16)).toBe("fd000000000000000000000000000002");
  });
});
