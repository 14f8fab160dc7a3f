// Memory window (ibv_mw): remote access to part of an MR under a key of its own.
// Type 1 windows are bound with qp.bindMw (ibv_bind_mw), type 2 with BIND_MW work
// requests; either way the bind runs in the send queue and completes there.
import { MwRec } from "./abi.js";
import { check } from "./errors.js";
import type { ProtectionDomain } from "./pd.js";

export class MemoryWindow {
  private destroyed = false;
  private _rkey: number;

  constructor(readonly pd: ProtectionDomain, key: number, readonly type: number) {
    this._rkey = key;
  }

  /**
   * The rkey: the one allocated, then the one the last bind posted gave it
   * (as ibv_bind_mw sets mw->rkey when it posts; a type 2 BIND_MW WR does the same here).
   */
  get rkey(): number {
    return this._rkey;
  }

  /** @internal the rkey a posted bind gives the window */
  setRkey(rkey: number): void {
    this._rkey = rkey >>> 0;
  }

  /** The device's view: state (MwState), bound range, access (for tests and tools). */
  query(): { state: number; rkey: number; addr: bigint; length: bigint; access: number } {
    const d = this.pd.device;
    const rec = d.core.mw_ptr(this._rkey) >>> 0;
    if (!rec) return { state: 0, rkey: this._rkey, addr: 0n, length: 0n, access: 0 };
    const m = d.mem;
    return {
      state: m.u32(rec + MwRec.STATE),
      rkey: m.u32(rec + MwRec.KEY),
      addr: m.u64(rec + MwRec.ADDR),
      length: m.u64(rec + MwRec.LEN),
      access: m.u32(rec + MwRec.ACCESS),
    };
  }

  /** ibv_dealloc_mw (its binding ends; the rkey stops working). A second call does nothing. */
  destroy(): void {
    if (this.destroyed) return;
    const d = this.pd.device;
    check("ibv_dealloc_mw", d.call(() => d.core.mw_dealloc(this._rkey)));
    this.destroyed = true;
  }

  get isDestroyed(): boolean {
    return this.destroyed;
  }
}

/** ibv_inc_rkey: the same window or MR index with the next key byte. */
export function incRkey(rkey: number): number {
  return ((rkey & ~0xff) | ((rkey + 1) & 0xff)) >>> 0;
}
