// Memory region (ibv_mr): a range of the device's linear memory.
import { MrRec } from "./abi.js";
import { check, fail } from "./errors.js";
import { ReregMrFlags } from "./enums.js";
import type { ProtectionDomain } from "./pd.js";

export class MemoryRegion {
  readonly lkey: number;
  readonly rkey: number;
  /** start address: an offset into device.memory (what SGEs and remote peers use) */
  readonly addr: bigint;
  readonly length: number;
  private _access: number;
  private _pd: ProtectionDomain;
  /** the region's bytes, a live view of device.memory */
  readonly bytes: Uint8Array;
  private destroyed = false;

  constructor(pd: ProtectionDomain, key: number) {
    this._pd = pd;
    const m = pd.device.mem;
    const rec = pd.device.core.mr_ptr(key);
    this.lkey = m.u32(rec + MrRec.KEY);
    this.rkey = this.lkey;
    this.addr = m.u64(rec + MrRec.ADDR);
    this.length = Number(m.u64(rec + MrRec.LEN));
    this._access = m.u32(rec + MrRec.ACCESS);
    this.bytes = m.view(Number(this.addr), this.length);
  }

  /** ibv_access_flags as registered (or re-registered) */
  get access(): number {
    return this._access;
  }
  get pd(): ProtectionDomain {
    return this._pd;
  }

  /**
   * ibv_rereg_mr, as rxe: move the MR to another PD and/or change its access
   * flags in place; the keys stay. The flags are derived from the fields given,
   * or taken from `flags` (ReregMrFlags). A new translation is EOPNOTSUPP.
   */
  rereg(change: { pd?: ProtectionDomain; access?: number; flags?: number }): void {
    const verb = "ibv_rereg_mr";
    if (this.destroyed) fail(verb, "EINVAL", "MR deregistered");
    let flags = change.flags;
    if (flags === undefined) {
      flags = 0;
      if (change.pd !== undefined) flags |= ReregMrFlags.CHANGE_PD;
      if (change.access !== undefined) flags |= ReregMrFlags.CHANGE_ACCESS;
    }
    const d = this._pd.device;
    const pd = change.pd ?? this._pd;
    if (pd.device !== d) fail(verb, "EINVAL", "PD of another device");
    const access = change.access ?? this._access;
    if (!Number.isInteger(access) || access < 0 || access > 0xffffffff) fail(verb, "EINVAL", `access ${access}`);
    check(verb, d.call(() => d.core.mr_rereg(this.lkey, flags!, pd.handle, access)));
    if (flags & ReregMrFlags.CHANGE_PD) this._pd = pd;
    if (flags & ReregMrFlags.CHANGE_ACCESS) this._access = access;
  }

  /** ibv_dereg_mr: the keys become invalid at once. A second call does nothing. */
  destroy(): void {
    if (this.destroyed) return;
    const d = this._pd.device;
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
