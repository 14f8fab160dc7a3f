// Exports of assembly/crc (placeholder until the layer lands).
export function crc_abi_version(): u32 { return 1; }
