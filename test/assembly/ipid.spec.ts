import { crc32_zeros, ipidAccept, ipidReset, recover_ipv4_id } from "../../assembly/crc/ipid";
import { crc32_raw } from "../../assembly/crc/crc32";
import { icrc_calc } from "../../assembly/crc/icrc";
import { ip4_build, udp_build, IP4_SIZE, IP4_FLAG_DF } from "../../assembly/wire/ip";

const ip = heap.alloc(64);
const udp = ip + IP4_SIZE;
const bth = heap.alloc(4200);
const addrs = heap.alloc(8);

function setup(id: u32, n: u32, seed: u32): u32 {
  store<u32>(addrs, 0x0200_00c0); // 192.0.2.2 as bytes c0 00 02 02? any 4 bytes will do
  store<u32>(addrs + 4, 0x0300_00c0);
  ip4_build(ip, 0, IP4_SIZE + 8 + n + 4, id, IP4_FLAG_DF, 0, 64, addrs, addrs + 4);
  udp_build(udp, 0xc123, 4791, 8 + n + 4, 0);
  let x = seed;
  for (let i: u32 = 0; i < n; i++) {
    x = x * 1103515245 + 12345;
    store<u8>(bth + i, <u8>(x >> 16));
  }
  store<u8>(bth + 1, 0); // tver 0, no pad concerns for the CRC
  return icrc_calc(ip, false, udp, bth, n);
}

describe("IPv4 ID recovery from the ICRC", () => {
  it("finds the exact ID for many IDs and lengths", () => {
    const ids: u32[] = [0, 1, 0x8000, 0x7bfe, 0xffff, 0x1234, 0x9286];
    const lens: u32[] = [12, 16, 28, 44, 1036, 4108];
    for (let a = 0; a < ids.length; a++) {
      for (let b = 0; b < lens.length; b++) {
        const icrc = setup(ids[a], lens[b], <u32>(a * 31 + b));
        expect(recover_ipv4_id(ip, udp, bth, lens[b], icrc)).toBe(<i32>ids[a]);
      }
    }
  });

  it("refuses an ICRC that no ID explains (a corrupted packet)", () => {
    let refused = 0;
    for (let k: u32 = 0; k < 32; k++) {
      const icrc = setup(0x4242, 60, k);
      if (recover_ipv4_id(ip, udp, bth, 60, icrc ^ (1 << k)) < 0) refused++;
    }
    // a single flipped ICRC bit is never explained by an ID: the 16 ID columns
    // span no weight-1 vector for this polynomial and length
    expect(refused).toBe(32);
    const icrc = setup(0x4242, 60, 7);
    store<u8>(bth + 20, load<u8>(bth + 20) ^ 0x10);
    expect(recover_ipv4_id(ip, udp, bth, 60, icrc)).toBe(-1);
  });
});

describe("IPv4 ID prediction", () => {
  it("runs the CRC register over zeros without the pass", () => {
    const z = heap.alloc(5000);
    memory.fill(z, 0, 5000);
    const ns: u32[] = [0, 1, 2, 3, 7, 64, 1000, 4099, 5000];
    for (let i = 0; i < ns.length; i++) {
      expect(crc32_zeros(0x12345678, ns[i])).toBe(crc32_raw(0x12345678, z, ns[i]));
      expect(crc32_zeros(0xdebb20e3, ns[i])).toBe(crc32_raw(0xdebb20e3, z, ns[i]));
    }
  });

  it("takes a solved ID only right after the flow's last one or its candidate (a new flow's first seeds it)", () => {
    ipidReset();
    const a = heap.alloc(16);
    const b = heap.alloc(16);
    memory.fill(a, 0x11, 16);
    memory.fill(b, 0x22, 16);
    expect(ipidAccept(a, 0x7000, true)).toBe(true); // a new flow: no prediction yet, taken and seeds it
    expect(ipidAccept(a, 0x7001, true)).toBe(true); // next in sequence
    expect(ipidAccept(a, 0x7003, true)).toBe(true); // within the window (one lost)
    expect(ipidAccept(a, 0x7006, true)).toBe(false); // 3 ahead: refused, candidate
    expect(ipidAccept(a, 0x7007, true)).toBe(true); // the candidate confirmed: resynchronized
    expect(ipidAccept(a, 0x7007, true)).toBe(false); // the same again: refused
    expect(ipidAccept(b, 0, false)).toBe(true); // softroce: ID 0 checked directly
    expect(ipidAccept(b, 1, true)).toBe(true); // then a GSO batch 1, 2, ...
    expect(ipidAccept(b, 2, true)).toBe(true);
    expect(ipidAccept(b, 0x9999, true)).toBe(false);
    expect(ipidAccept(a, 0x7008, true)).toBe(true); // flows are kept apart
    expect(ipidAccept(a, 0xffff, true)).toBe(false);
    expect(ipidAccept(a, 0x0000, true)).toBe(true); // wraps at 2^16
  });
});
