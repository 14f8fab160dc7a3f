// Network-order (big-endian) loads and stores over raw pointers; every
// header file builds its field accessors from these.

@inline export function ld8(p: usize): u32 { return <u32>load<u8>(p); }
@inline export function ld16(p: usize): u32 { return <u32>bswap<u16>(load<u16>(p)); }
@inline export function ld24(p: usize): u32 {
  return (<u32>load<u8>(p) << 16) | (<u32>load<u8>(p + 1) << 8) | <u32>load<u8>(p + 2);
}
@inline export function ld32(p: usize): u32 { return bswap<u32>(load<u32>(p)); }
@inline export function ld64(p: usize): u64 { return bswap<u64>(load<u64>(p)); }

@inline export function st8(p: usize, v: u32): void { store<u8>(p, <u8>v); }
@inline export function st16(p: usize, v: u32): void { store<u16>(p, bswap<u16>(<u16>v)); }
@inline export function st24(p: usize, v: u32): void {
  store<u8>(p, <u8>(v >> 16));
  store<u8>(p + 1, <u8>(v >> 8));
  store<u8>(p + 2, <u8>v);
}
@inline export function st32(p: usize, v: u32): void { store<u32>(p, bswap<u32>(v)); }
@inline export function st64(p: usize, v: u64): void { store<u64>(p, bswap<u64>(v)); }
