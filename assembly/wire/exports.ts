// Exports of assembly/wire (placeholder until the layer lands).
export function wire_abi_version(): u32 { return 1; }
