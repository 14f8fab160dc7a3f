// Typed access to the device's linear memory. Views are re-derived if the
// buffer changes (growth detaches them); ring indices go through Atomics so the
// same code works when the memory is a SharedArrayBuffer shared with a worker.

export class DeviceMemory {
  private buf: ArrayBufferLike | undefined;
  private _dv!: DataView;
  private _i32!: Int32Array;
  private _u8!: Uint8Array;

  constructor(readonly memory: WebAssembly.Memory) {
    this.refresh();
  }

  private refresh(): void {
    const b = this.memory.buffer;
    if (b === this.buf) return;
    this.buf = b;
    this._dv = new DataView(b);
    this._i32 = new Int32Array(b);
    this._u8 = new Uint8Array(b);
  }

  get dv(): DataView {
    this.refresh();
    return this._dv;
  }
  get u8(): Uint8Array {
    this.refresh();
    return this._u8;
  }
  get byteLength(): number {
    return this.memory.buffer.byteLength;
  }

  u32(p: number): number {
    return this.dv.getUint32(p, true);
  }
  setU32(p: number, v: number): void {
    this.dv.setUint32(p, v >>> 0, true);
  }
  u64(p: number): bigint {
    return this.dv.getBigUint64(p, true);
  }
  setU64(p: number, v: bigint): void {
    this.dv.setBigUint64(p, BigInt.asUintN(64, v), true);
  }
  /** Atomic load of an i32-aligned ring index (u32 value). */
  loadIndex(p: number): number {
    this.refresh();
    return Atomics.load(this._i32, p >>> 2) >>> 0;
  }
  /** Atomic store of a ring index: publishes everything written before it. */
  storeIndex(p: number, v: number): void {
    this.refresh();
    Atomics.store(this._i32, p >>> 2, v | 0);
  }
  fill(p: number, len: number, v = 0): void {
    this.u8.fill(v, p, p + len);
  }
  /** A live view of [p, p + len). */
  view(p: number, len: number): Uint8Array {
    return new Uint8Array(this.memory.buffer, p, len);
  }
}
