// Address handle (ibv_ah): where UD sends go.
import { AhRec } from "./abi.js";
import { readAv, writeAv, type AhAttr, type AhAttrOut } from "./av.js";
import { check, fail } from "./errors.js";
import type { ProtectionDomain } from "./pd.js";

export type { AhAttr } from "./av.js";

export class AddressHandle {
  private destroyed = false;

  private constructor(readonly pd: ProtectionDomain, readonly handle: number) {}

  static create(pd: ProtectionDomain, attr: AhAttr): AddressHandle {
    const d = pd.device;
    const args = d.core.dev_args();
    try {
      writeAv(d.mem, args, attr);
    } catch (e) {
      fail("ibv_create_ah", "EINVAL", (e as Error).message);
    }
    const h = check("ibv_create_ah", d.call(() => d.core.ah_create(pd.handle)));
    return new AddressHandle(pd, h);
  }

  /** The address vector as stored. */
  query(): AhAttrOut {
    const d = this.pd.device;
    const rec = d.core.ah_ptr(this.handle);
    if (!rec) fail("ibv_query_ah", "EINVAL", "AH destroyed");
    return readAv(d.mem, rec + AhRec.AV);
  }

  /** ibv_destroy_ah. A second call does nothing. */
  destroy(): void {
    if (this.destroyed) return;
    const d = this.pd.device;
    check("ibv_destroy_ah", d.call(() => d.core.ah_destroy(this.handle)));
    this.destroyed = true;
  }

  get isDestroyed(): boolean {
    return this.destroyed;
  }
}
