// Memory region (ibv_mr): a range of the device's linear memory. An MR from
// pd.allocMr (ibv_alloc_mr) is for fast registration: it maps nothing until a
// REG_MR work request maps a range; its keys, address and length follow the
// last REG_MR posted (as ib_map_mr_sg and ib_update_fast_reg_key set them).
// mapSg is ib_map_mr_sg: the IB core's ib_sg_to_pages turns a scatter list into
// a page list the device keeps (the core's mr_map_begin / mr_set_page, rxe's
// rxe_map_mr_sg / rxe_set_page), so the MR's iova range may land on pages
// anywhere in registered memory.
import { MR_PAGE_SIZE, MrRec, MrType } from "./abi.js";
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
    this._access = access;
    // the device takes the page list mapSg set since the last REG_MR, else the range as it is
    const viaPages = this._mapPending;
    this._mapPending = false;
    this.setRange(addr, length, viaPages && this._scattered);
  }

  private _scattered = false;
  private _mapPending = false;
  private setRange(addr: bigint, length: number, scattered: boolean): void {
    this._addr = addr;
    this._length = length;
    this._scattered = scattered;
    this._bytes = scattered ? new Uint8Array(0) : this._pd.device.mem.view(Number(addr), length);
  }

  /** A fast-registration MR whose pages (mapSg) are not contiguous: `bytes` is then empty; its bytes live in the MRs that own the pages. */
  get scattered(): boolean {
    return this._scattered;
  }

  /**
   * ib_map_mr_sg for an MR from allocMr: maps the scatter list `sgl` (linear-memory addresses and
   * lengths, registered memory of this MR's PD), from `offset` bytes into its first element, onto
   * pages of `pageSize` bytes (a power of two, 512 B to 1 GiB; default 4096), as the IB core's
   * ib_sg_to_pages does: elements after the first must start on a page boundary and the one before
   * must end on one, unless they continue it; mapping stops at the first that does not, and at
   * max_num_sg pages. The MR's addr (iova: the first byte's address) and length become what was
   * mapped; the next REG_MR WR without addr/length registers it. Returns how many elements were
   * mapped in full (fewer than given: the list did not fit, as ib_map_mr_sg). Throws EINVAL (empty
   * list, offset past the first element, bad page size, an MR that is VALID: invalidate it first)
   * or ENOMEM (not even the first page fits).
   */
  mapSg(sgl: readonly { addr: bigint; length: number }[], options: { offset?: number; pageSize?: number } = {}): number {
    const verb = "ib_map_mr_sg";
    if (this.destroyed) fail(verb, "EINVAL", "MR deregistered");
    if (!this.fastReg) fail(verb, "EINVAL", "not an MR from ibv_alloc_mr");
    if (!Array.isArray(sgl) || sgl.length === 0) fail(verb, "EINVAL", "empty scatter list");
    for (const sg of sgl) {
      if (typeof sg?.addr !== "bigint" || sg.addr < 0n || sg.addr >= 1n << 32n || !Number.isInteger(sg.length) || sg.length < 0 || sg.length > 0xffffffff) {
        fail(verb, "EINVAL", "scatter list element");
      }
    }
    const pageSize = options.pageSize ?? MR_PAGE_SIZE;
    let sgOffset = options.offset ?? 0;
    if (!Number.isInteger(sgOffset) || sgOffset < 0 || sgOffset > sgl[0]!.length) fail(verb, "EINVAL", `offset ${sgOffset}`);
    if (!Number.isInteger(pageSize) || pageSize <= 0 || pageSize > 0xffffffff) fail(verb, "EINVAL", `page size ${pageSize}`);
    const d = this._pd.device;
    const key = this._lkey;
    check(verb, d.call(() => d.core.mr_map_begin(key, pageSize)));
    this._mapPending = true; // the device now holds a page list for the next REG_MR, even a failed one
    const size = BigInt(pageSize);
    const pages: bigint[] = [];
    const setPage = (page: bigint): number => {
      if (page + size > 1n << 32n) return -22;
      const r = d.call(() => d.core.mr_set_page(key, Number(page)));
      if (r >= 0) pages.push(page);
      return r;
    };
    const iova = sgl[0]!.addr + BigInt(sgOffset);
    let length: bigint = 0n;
    let lastEnd = 0n;
    let lastPageOff = 0n;
    let i = 0;
    let result: number | undefined;
    for (; i < sgl.length && result === undefined; i++) {
      const sg = sgl[i]!;
      const dma = sg.addr + BigInt(sgOffset);
      const dmaLen = BigInt(sg.length - sgOffset);
      const end = dma + dmaLen;
      let page: bigint = dma - (dma % size);
      let prev: bigint = dma;
      // the second and later elements: a gap unless the last ended, and this starts, on a page boundary
      let continues = false;
      if (i > 0 && (lastPageOff !== 0n || page !== dma)) {
        if (lastEnd !== dma) break; // not contiguous: stop here
        continues = true; // coalesced with the last element's page
      }
      do {
        if (!continues) {
          const r = setPage(page);
          if (r < 0) {
            sgOffset = Number(prev - sg.addr);
            length += prev - dma;
            result = i || sgOffset ? i : r;
            break;
          }
          prev = page;
        }
        continues = false;
        page += size;
      } while (page < end);
      if (result !== undefined) break;
      length += dmaLen;
      lastEnd = end;
      lastPageOff = end % size;
      sgOffset = 0;
    }
    if (result === undefined) result = i;
    check(verb, result, "not even the first page could be mapped");
    let scattered = false;
    for (let k = 1; k < pages.length; k++) if (pages[k] !== pages[k - 1]! + size) scattered = true;
    this.setRange(iova, Number(length), scattered);
    return result;
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
