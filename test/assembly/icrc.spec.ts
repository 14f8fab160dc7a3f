// The two independent ICRC golden vectors (scapy test/contrib/roce.uts).
import { hexWrite } from "./wire-hex.include";
import { icrc_packet } from "../../assembly/crc/exports";
import { icrc_calc, icrc_wire } from "../../assembly/crc/icrc";

const P = heap.alloc(256);

// ConnectX-4 Lx CNP, Ethernet frame; the IP packet starts at byte 14.
const CNP_FRAME = "e41d2dab2bc27cfe90643b32080045c2003c718c4000401191610a0011010a001201000012b7"
  + "002800008100ffff40000118000000000000000000000000000000000000000082fd002a";
// scapy UC SEND_ONLY example, IPv4 packet.
const UC_SEND = "45010040047840004011b4d5c0a80007c0a80007c00012b7002caca22460ffff000000d300cf"
  + "17104630818be28935d90e9a95505401be885e50000078f353f3";

describe("ICRC", () => {
  it("ConnectX CNP -> wire bytes 82 fd 00 2a", () => {
    const n = hexWrite(P, CNP_FRAME);
    const ip = P + 14;
    expect(icrc_packet(ip, n - 14)).toBe(0x82fd002a);
    expect(icrc_calc(ip, false, ip + 20, ip + 28, n - 14 - 28 - 4)).toBe(0x2a00fd82);
    expect(load<u32>(ip + n - 14 - 4)).toBe(0x2a00fd82); // stored least-significant byte first
  });
  it("scapy UC SEND_ONLY -> wire bytes 78 f3 53 f3", () => {
    const n = hexWrite(P, UC_SEND);
    expect(icrc_packet(P, n)).toBe(0x78f353f3);
    expect(icrc_wire(0x78f353f3)).toBe(0xf353f378);
  });
  it("masked fields do not change it; covered fields do", () => {
    const n = hexWrite(P, UC_SEND);
    const want = icrc_packet(P, n);
    store<u8>(P + 1, 0xaa); // TOS
    store<u8>(P + 8, 0x01); // TTL
    store<u16>(P + 10, 0x1234); // IP checksum
    store<u16>(P + 26, 0x5555); // UDP checksum
    store<u8>(P + 32, 0xc0); // FECN/BECN
    expect(icrc_packet(P, n)).toBe(want);
    store<u8>(P + 5, load<u8>(P + 5) ^ 1); // IPv4 ID is covered
    expect(icrc_packet(P, n)).not.toBe(want);
    hexWrite(P, UC_SEND);
    store<u8>(P + 21, load<u8>(P + 21) ^ 1); // UDP source port is covered
    expect(icrc_packet(P, n)).not.toBe(want);
    hexWrite(P, UC_SEND);
    store<u8>(P + 36, 0x80); // AckReq is covered
    expect(icrc_packet(P, n)).not.toBe(want);
  });
  it("IPv6: traffic class, flow label and hop limit are masked", () => {
    // An IPv6 RoCE packet (UD SEND ONLY, 4-byte payload) built by hand.
    const n = hexWrite(P, "60000000002c1140" + "fd000000000000000000000000000001" + "fd000000000000000000000000000002"
      + "c00012b7002c0000" + "6400ffff00000001000000" + "07" + "111111110000000e" + "01020304" + "00000000");
    const want = icrc_packet(P, n);
    store<u8>(P, 0x6f);
    store<u8>(P + 1, 0xff);
    store<u16>(P + 2, 0x1234);
    store<u8>(P + 7, 1);
    expect(icrc_packet(P, n)).toBe(want);
    store<u8>(P + 39, 3); // destination address is covered
    expect(icrc_packet(P, n)).not.toBe(want);
  });
});
