// Protection domain (ibv_pd): the verbs that create objects inside it.
import { AddressHandle, initAhFromWc, type AhAttr } from "./ah.js";
import type { WorkCompletion } from "./cq.js";
import type { Device } from "./device.js";
import { check, fail } from "./errors.js";
import { MemoryRegion } from "./mr.js";
import { MemoryWindow } from "./mw.js";
import { MwType } from "./enums.js";
import { MR_PAGE_SIZE } from "./abi.js";
import { QueuePair, type QpInitAttr } from "./qp.js";
import { SharedReceiveQueue, type SrqInitAttr } from "./srq.js";

export class ProtectionDomain {
  private destroyed = false;

  constructor(readonly device: Device, readonly handle: number) {}

  /**
   * ibv_reg_mr: registers `length` bytes of the device's MR arena (zeroed) with
   * ibv_access_flags `access`. The MR's `bytes` is a view of the region.
   */
  regMr(length: number, access = 0): MemoryRegion {
    if (!Number.isInteger(length) || length < 0 || length > 0xffffffff) fail("ibv_reg_mr", "EINVAL", `length ${length}`);
    if (!Number.isInteger(access) || access < 0 || access > 0xffffffff) fail("ibv_reg_mr", "EINVAL", `access ${access}`);
    const d = this.device;
    d.refillEntropy();
    const r = d.call(() => d.core.mr_reg(this.handle, length, access));
    if (r === -12) {
      const arena = d.limits.mrArenaBytes;
      fail("ibv_reg_mr", "ENOMEM", `no room for ${length} bytes in the MR arena (device option mrArenaBytes = ${arena}; raise it, up to the 4 GiB wasm32 limit)`);
    }
    return new MemoryRegion(this, check("ibv_reg_mr", r));
  }

  /**
   * ibv_alloc_mr (IB_MR_TYPE_MEM_REG): an MR for fast registration of up to
   * `maxNumSg` pages of 4096 bytes. It maps nothing (no access) until a REG_MR
   * work request maps a range of memory registered in this PD.
   */
  allocMr(arg: number | { maxNumSg: number }): MemoryRegion {
    const verb = "ibv_alloc_mr";
    const maxNumSg = typeof arg === "number" ? arg : arg?.maxNumSg;
    if (!Number.isInteger(maxNumSg) || maxNumSg <= 0 || maxNumSg * MR_PAGE_SIZE > 0xffffffff) fail(verb, "EINVAL", `maxNumSg ${maxNumSg}`);
    const d = this.device;
    d.refillEntropy();
    const key = check(verb, d.call(() => d.core.mr_alloc_fast(this.handle, maxNumSg)));
    return new MemoryRegion(this, key);
  }

  /** ibv_alloc_mw: a memory window of type 1 or 2 (MwType). */
  allocMw(type: number = MwType.TYPE_1): MemoryWindow {
    const verb = "ibv_alloc_mw";
    if (type !== MwType.TYPE_1 && type !== MwType.TYPE_2) fail(verb, "EINVAL", `type ${type}`);
    const d = this.device;
    const key = check(verb, d.call(() => d.core.mw_alloc(this.handle, type)));
    return new MemoryWindow(this, key, type);
  }

  /** ibv_create_qp */
  createQp(init: QpInitAttr): QueuePair {
    return QueuePair.create(this, init);
  }

  /** ibv_create_srq */
  createSrq(init: SrqInitAttr): SharedReceiveQueue {
    return SharedReceiveQueue.create(this, init);
  }

  /** ibv_create_ah */
  createAh(attr: AhAttr): AddressHandle {
    return AddressHandle.create(this, attr);
  }

  /**
   * ibv_create_ah_from_wc: an AH to answer a UD receive (initAhFromWc's address; `grh` is the receive
   * buffer's first 40 bytes). `destPort` is softroce's: the peer device's UDP port (default 4791).
   */
  createAhFromWc(wc: WorkCompletion, grh: Uint8Array, portNum = 1, destPort?: number): AddressHandle {
    return AddressHandle.create(this, { ...initAhFromWc(this.device, portNum, wc, grh), destPort });
  }

  /** ibv_dealloc_pd: EBUSY while MRs, QPs, SRQs or AHs remain. A second call does nothing. */
  destroy(): void {
    if (this.destroyed) return;
    const d = this.device;
    check("ibv_dealloc_pd", d.call(() => d.core.pd_dealloc(this.handle)));
    this.destroyed = true;
  }

  get isDestroyed(): boolean {
    return this.destroyed;
  }
}
