// Loads the optional socket addon (host/node/native). Without it softroce
// endpoints still talk to each other through ordinary dgram sockets, but
// Linux rxe would drop our IPv4 packets (unpredictable IP ID under the ICRC)
// and the kernel would drop rxe's IPv6 packets before they reach us (UDP
// checksum 0), so the host reports what is unavailable.
import { createRequire } from "node:module";

export interface SockoptAddon {
  openUdpSocket(family: 4 | 6, address: string, port: number, reuseAddr: boolean): number;
  /** multicastIf6: the IPV6_MULTICAST_IF interface index (0 none; -1 on an IPv4 socket) */
  socketOptions(fd: number): { pmtuDiscover: number; noCheck6Rx: number; multicastIf6: number };
  /** sched_yield(): this thread's CPU to another runnable thread (absent from an addon built before it) */
  schedYield?(): void;
}

export const IP_PMTUDISC_DO = 2;

let cached: { addon?: SockoptAddon; error?: string } | undefined;

/** The addon, or undefined with the reason in `sockoptUnavailableReason()`. */
export function sockoptAddon(): SockoptAddon | undefined {
  if (!cached) {
    const require = createRequire(import.meta.url);
    // host/node/sockopt.ts and dist/<entry>/*.js both sit two levels below the package root.
    const path = new URL("../../host/node/native/build/Release/softroce_sockopt.node", import.meta.url).pathname;
    try {
      cached = { addon: require(path) as SockoptAddon };
    } catch (e) {
      cached = { error: `socket addon not loaded (${(e as Error).message.split("\n")[0]}); run \`npm rebuild softroce\` or \`node host/node/native/build.mjs\`` };
    }
  }
  return cached.addon;
}

/** The socket addon's sched_yield, or undefined when the addon is missing or predates it. */
export function schedYield(): (() => void) | undefined {
  const y = sockoptAddon()?.schedYield;
  return typeof y === "function" ? y : undefined;
}

export function sockoptUnavailableReason(): string | undefined {
  sockoptAddon();
  return cached?.error;
}
