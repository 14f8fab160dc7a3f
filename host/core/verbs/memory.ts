// Typed access to the device's linear memory. Ring indices go through Atomics so
// the same code works when the memory is a SharedArrayBuffer shared with a worker.
//
// The views are taken once and kept: linear memory grows while the device opens
// (dev_open's one growth, the TX ring, the RX batch area) and not afterwards, so
// the packet path never asks `memory.buffer` (a call into the engine) again.
// Growth is still caught: it detaches a plain buffer (every view reads as
// length 0), and a shared one is replaced by a longer one, so an access past
// the end of the views re-derives them before it reads.

export class DeviceMemory {
  private _dv!: DataView;
  private _i32!: Int32Array;
  private _u8!: Uint8Array;
  /** A SharedArrayBuffer grows without detaching: its views stay valid but short. */
  private readonly shared: boolean;

  constructor(readonly memory: WebAssembly.Memory) {
    this.shared = typeof SharedArrayBuffer !== "undefined" && memory.buffer instanceof SharedArrayBuffer;
    this.refresh();
  }

  /** Takes the views again if the memory grew since they were taken (cheap when it did not). */
  refresh(): void {
    const b = this.memory.buffer;
    if (this._u8 !== undefined && b === this._u8.buffer) return;
    this._dv = new DataView(b);
    this._i32 = new Int32Array(b);
    this._u8 = new Uint8Array(b);
  }

  /** The views, re-derived first when `end` (one past the last byte about to be touched) lies outside them. */
  private check(end: number): void {
    if (end > this._u8.length) this.refresh();
  }

  /** A DataView over the whole memory (detached views are re-derived; on shared memory, it is checked every time). */
  get dv(): DataView {
    if (this.shared || this._u8.length === 0) this.refresh();
    return this._dv;
  }
  /** A byte view over the whole memory (as `dv`). */
  get u8(): Uint8Array {
    if (this.shared || this._u8.length === 0) this.refresh();
    return this._u8;
  }
  get byteLength(): number {
    if (this.shared || this._u8.length === 0) this.refresh();
    return this._u8.length;
  }

  u32(p: number): number {
    this.check(p + 4);
    return this._dv.getUint32(p, true);
  }
  setU32(p: number, v: number): void {
    this.check(p + 4);
    this._dv.setUint32(p, v >>> 0, true);
  }
  u64(p: number): bigint {
    this.check(p + 8);
    return this._dv.getBigUint64(p, true);
  }
  setU64(p: number, v: bigint): void {
    this.check(p + 8);
    this._dv.setBigUint64(p, BigInt.asUintN(64, v), true);
  }
  /** Atomic load of an i32-aligned ring index (u32 value). */
  loadIndex(p: number): number {
    this.check(p + 4);
    return Atomics.load(this._i32, p >>> 2) >>> 0;
  }
  /** Atomic store of a ring index: publishes everything written before it. */
  storeIndex(p: number, v: number): void {
    this.check(p + 4);
    Atomics.store(this._i32, p >>> 2, v | 0);
  }
  fill(p: number, len: number, v = 0): void {
    this.check(p + len);
    this._u8.fill(v, p, p + len);
  }
  /** A live view of [p, p + len). */
  view(p: number, len: number): Uint8Array {
    this.check(p + len);
    return new Uint8Array(this._u8.buffer, p, len);
  }
}
