// Storage carved from the heap at open (the stub runtime's bump allocator):
// the one home for "allocate, align, zero". Called only while the device opens
// or carves its packet path, never on the packet path itself.

/** `bytes` of zeroed heap memory (the stub runtime's heap.alloc does not zero what it reuses). */
export function allocZeroed(bytes: usize): usize {
  const p = heap.alloc(bytes);
  memory.fill(p, 0, bytes);
  return p;
}

/** `bytes` of zeroed heap memory starting on a 64-byte (cache line) boundary. */
export function allocZeroedLine(bytes: usize): usize {
  const p = (heap.alloc(bytes + 64) + 63) & ~(<usize>63);
  memory.fill(p, 0, bytes);
  return p;
}
