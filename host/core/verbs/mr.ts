// Memory region (ibv_mr): a range of the device's linear memory. An MR from
// pd.allocMr (ibv_alloc_mr) is for fast registration: it maps nothing until a
// REG_MR work request maps a range; its keys, address and length follow the
// last REG_MR posted (as ib_map_mr_sg and ib_update_fast_reg_key set them).
import { MrRec, MrType } from "./abi.js";
import { check, fail } from "./errors.js";
import { ReregMrFlags } from "./enums.js";
import type { ProtectionDomain } from "./pd.js";

export class MemoryRegion {
  private _lkey: number;
  private _addr: bigint;
  private _length: number;
  private _bytes: Uint8Array;
  private _access: number;
  private _pd: ProtectionDomain;
  private destroyed = false;
  /** an MR for fast registration (pd.allocMr) */
  readonly fastReg: boolean;
  /** fast registration: the most bytes a REG_MR may map (maxNumSg pages) */
  readonly maxLength: number;

  constructor(pd: ProtectionDomain, key: number) {
    this._pd = pd;
    const m = pd.device.mem;
    const rec = pd.device.core.mr_ptr(key) >>> 0;
    this._lkey = m.u32(rec + MrRec.KEY);
    this._addr = m.u64(rec + MrRec.ADDR);
    this._length = Number(m.u64(rec + MrRec.LEN));
    this._access = m.u32(rec + MrRec.ACCESS);
    this.fastReg = m.u32(rec + MrRec.TYPE) === MrType.FAST_REG;
    this.maxLength = this.fastReg ? m.u32(rec + MrRec.MAX_LEN) : this._length;
    this._bytes = m.view(Number(this._addr), this._length);
  }

  get lkey(): number {
    return this._lkey;
  }
  /** rkey == lkey (as rxe) */
  get rkey(): number {
    return this._lkey;
  }
  /** start address: an offset into device.memory (what SGEs and remote peers use) */
  get addr(): bigint {
    return this._addr;
  }
  get length(): number {
    return this._length;
  }
  /** the region's bytes, a live view of device.memory */
  get bytes(): Uint8Array {
    return this._bytes;
  }

  /** @internal a REG_MR was posted: the MR's keys, range and access are those it sets */
  mapped(key: number, addr: bigint, length: number, access: number): void {
    this._lkey = key >>> 0;
    this._addr = addr;
    this._length = length;
    this._access = access;
    this._bytes = this._pd.device.mem.view(Number(addr), length);
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
    if (this.fastReg) fail(verb, "EINVAL", "a fast-registration MR changes through REG_MR work requests");
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

  /** ibv_dereg_mr: the keys become invalid at once; EINVAL while memory windows are bound to it (rxe). A second call does nothing. */
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
