// Linux rxe's UDP source ports, written out independently of the device's assembly/verbs/sport.ts so
// tests can check the device against them (docs/INTEROP.md gives the formulas and the capture values).

/**
 * rdma_get_udp_sport(flow_label, lqpn, rqpn): with flow label 0 the label is made from the two QPNs.
 * @param {number} fl @param {number} a @param {number} b @returns {number}
 */
export function rxeSport(fl, a, b) {
  if (fl === 0) {
    let v = BigInt(a) * BigInt(b);
    v ^= v >> 20n;
    v ^= v >> 40n;
    fl = Number(v & 0xfffffn);
  }
  return 0xc000 | ((fl & 0x3fff) ^ (fl >> 14));
}

/** rxe's create-time port: 0xC000 + hash_32(qpn, 14). @param {number} qpn @returns {number} */
export function createSport(qpn) {
  return 0xc000 + Number(((BigInt(qpn) * 0x61c88647n) & 0xffffffffn) >> 18n);
}
