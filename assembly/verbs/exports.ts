// Exports of assembly/verbs (placeholder until the layer lands).
export function verbs_abi_version(): u32 { return 1; }
