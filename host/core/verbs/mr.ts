// Memory region (ibv_mr): a range of the device's linear memory.
import { MrRec } from "./abi.js";
import { check } from "./errors.js";
import type { ProtectionDomain } from "./pd.js";

export class MemoryRegion {
  readonly lkey: number;
  readonly rkey: number;
  /** start address: an offset into device.memory (what SGEs and remote peers use) */
  readonly addr: bigint;
  readonly length: number;
  readonly access: number;
  /** the region's bytes, a live view of device.memory */
  readonly bytes: Uint8Array;
  private destroyed = false;

  constructor(readonly pd: ProtectionDomain, key: number) {
    const m = pd.device.mem;
    const rec = pd.device.core.mr_ptr(key);
    this.lkey = m.u32(rec + MrRec.KEY);
    this.rkey = this.lkey;
    this.addr = m.u64(rec + MrRec.ADDR);
    this.length = Number(m.u64(rec + MrRec.LEN));
    this.access = m.u32(rec + MrRec.ACCESS);
    this.bytes = m.view(Number(this.addr), this.length);
  }

  /** ibv_dereg_mr: the keys become invalid at once. A second call does nothing. */
  destroy(): void {
    if (this.destroyed) return;
    const d = this.pd.device;
    check("ibv_dereg_mr", d.call(() => d.core.mr_dereg(this.lkey)));
    this.destroyed = true;
  }

  get isDestroyed(): boolean {
    return this.destroyed;
  }

  /** An SGE covering [offset, offset + length) of this MR. */
  sge(offset = 0, length = this.length - offset): { addr: bigint; length: number; lkey: number } {
    return { addr: this.addr + BigInt(offset), length, lkey: this.lkey };
  }
}
