// Protection domain (ibv_pd): the verbs that create objects inside it.
import { AddressHandle, type AhAttr } from "./ah.js";
import type { Device } from "./device.js";
import { check, fail } from "./errors.js";
import { MemoryRegion } from "./mr.js";
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
    const key = check("ibv_reg_mr", d.call(() => d.core.mr_reg(this.handle, length, access)));
    return new MemoryRegion(this, key);
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
