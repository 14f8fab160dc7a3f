// The MTU of the interface that holds a local address, and the RoCE active MTU it allows: rxe's
// rule (eth_mtu_int_to_enum(netdev MTU - 80), rounded down to 256..4096), so a device bound to a
// 1500-byte interface offers 1024 and one on loopback 4096. Linux only (/sys/class/net); elsewhere
// undefined, and callers keep their default.
import { networkInterfaces } from "node:os";
import { kernelText } from "./kernel-text.js";

/** The interface MTU in bytes of the interface owning `address`, when it can be read. */
export function interfaceMtu(address: string): number | undefined {
  const want = address.toLowerCase();
  for (const [name, list] of Object.entries(networkInterfaces())) {
    if (!list?.some((a) => a.address.toLowerCase() === want)) continue;
    const v = Number(kernelText(`/sys/class/net/${name}/mtu`)?.trim());
    return Number.isInteger(v) && v > 0 ? v : undefined;
  }
  // 127.0.0.0/8 beyond 127.0.0.1 is loopback too
  if (/^127\./.test(want)) return interfaceMtu("127.0.0.1");
  return undefined;
}

/** The largest IB MTU in bytes (256..4096) whose RoCEv2 packets fit an interface MTU (rxe: MTU - 80). */
export function roceMtuFor(ifMtu: number): number {
  let m = 4096;
  while (m > 256 && m > ifMtu - 80) m >>= 1;
  return m;
}
