// softroce devinfo: ibv_devinfo for a softroce device bound to UDP: the device, its port, and with
// -v its limits, GID table and counters (rxe's hw counters and the drop reasons, as `rdma stat`).
import { isIPv4, isIPv6 } from "node:net";
import { datapathOf, openDevice, sourcePortsOf } from "../node/index.js";
import { type Device, DeviceCapFlags, mtuBytes, PortState } from "../core/verbs/index.js";
import { type FlagSpec, formatFlags, parseArgs, UsageError } from "./args.js";
import type { Command, Io } from "./command.js";
import { DEVICE_NAME } from "./pingpong.js";
import { devinfoTraceLines } from "./devinfo-trace.js";

const FLAGS: FlagSpec[] = [
  { name: "ib-dev", short: "d", type: "string", valueName: "dev", help: `use IB device <dev> (default all devices: ${DEVICE_NAME})` },
  { name: "ib-port", short: "i", type: "int", min: 1, max: 255, valueName: "port", help: "use port <port> of IB device (default all ports)" },
  { name: "list", short: "l", type: "boolean", help: "print only the IB devices names" },
  { name: "verbose", short: "v", type: "boolean", help: "print all the attributes of the IB device(s), its GID table and counters" },
  { name: "address", type: "string", valueName: "addr", default: "127.0.0.1", help: "softroce: local IPv4 or IPv6 address the device binds (its GID 0)" },
  { name: "udp-port", type: "int", min: 0, max: 65535, default: 4791, valueName: "n", help: "softroce: UDP port of the device (0: any free port)" },
  { name: "help", short: "h", type: "boolean", help: "show this help" },
];

const HELP = `usage: softroce devinfo [-v] [-d <dev>] [-i <port>] [-l] [--address <addr>] [--udp-port <n>]

ibv_devinfo for a softroce device: opens it bound to UDP at --address:--udp-port (GID 0 is that
address) and prints the device and its port; -v adds the limits, the GID table and the counters.

${formatFlags(FLAGS)}
`;

const PORT_STATE = ["PORT_NOP", "PORT_DOWN", "PORT_INIT", "PORT_ARMED", "PORT_ACTIVE", "PORT_ACTIVE_DEFER"];
const PHYS_STATE = ["", "SLEEP", "POLLING", "DISABLED", "PORT_CONFIGURATION_TRAINNING", "LINK_UP", "LINK_ERROR_RECOVERY", "PHY TEST"];
const CAP_NAMES: [number, string][] = Object.entries(DeviceCapFlags).map(([k, v]) => [v, k]);

function guid(g: bigint): string {
  const h = g.toString(16).padStart(16, "0");
  return `${h.slice(0, 4)}:${h.slice(4, 8)}:${h.slice(8, 12)}:${h.slice(12, 16)}`;
}

/** "key:" then tabs to the value column (8-column tabs), as ibv_devinfo lines up its values. */
function kv(indent: number, key: string, value: string | number): string {
  const width = indent * 8 + key.length + 1;
  const col = indent <= 1 ? 40 : 48;
  const tabs = Math.max(1, Math.ceil((col - width) / 8));
  return `${"\t".repeat(indent)}${key}:${"\t".repeat(tabs)}${value}`;
}

const mtu = (m: number) => `${mtuBytes(m) || "invalid MTU"} (${m})`;

/** The text ibv_devinfo prints for one device (tab layout as rdma-core's). */
export function formatDevinfo(dev: Device, opts: { verbose: boolean; ibPort?: number; address: string; udpPort: number }): string {
  const a = dev.query();
  const L: string[] = [];
  L.push(`hca_id:\t${DEVICE_NAME}`);
  L.push(kv(1, "transport", `InfiniBand (0)`));
  L.push(kv(1, "fw_ver", `${a.fwVer}`));
  L.push(kv(1, "node_guid", `${guid(a.nodeGuid)}`));
  L.push(kv(1, "sys_image_guid", `${guid(a.sysImageGuid)}`));
  L.push(kv(1, "vendor_id", `0x${a.vendorId.toString(16).padStart(4, "0")}`));
  L.push(kv(1, "vendor_part_id", `${a.vendorPartId}`));
  L.push(kv(1, "hw_ver", `0x${a.hwVer.toString(16).toUpperCase()}`));
  L.push(kv(1, "phys_port_cnt", `${a.physPortCnt}`));
  L.push(kv(1, "udp_address", `${opts.address.includes(":") ? `[${opts.address}]` : opts.address}:${opts.udpPort}`));
  if (opts.verbose) {
    const rows: [string, string | number][] = [
      ["max_mr_size", `0x${a.maxMrSize.toString(16)}`],
      ["page_size_cap", `0x${a.pageSizeCap.toString(16)}`],
      ["max_qp", a.maxQp],
      ["max_qp_wr", a.maxQpWr],
      ["device_cap_flags", `0x${(a.deviceCapFlags >>> 0).toString(16).padStart(8, "0")}`],
    ];
    for (const [k, v] of rows) L.push(kv(1, k, v));
    for (const [bit, name] of CAP_NAMES) if (a.deviceCapFlags & bit) L.push(`\t\t\t\t\t${name}`);
    const more: [string, string | number][] = [
      ["max_sge", a.maxSge], ["max_sge_rd", a.maxSgeRd], ["max_cq", a.maxCq], ["max_cqe", a.maxCqe], ["max_mr", a.maxMr],
      ["max_pd", a.maxPd], ["max_qp_rd_atom", a.maxQpRdAtom], ["max_ee_rd_atom", a.maxEeRdAtom], ["max_res_rd_atom", a.maxResRdAtom],
      ["max_qp_init_rd_atom", a.maxQpInitRdAtom], ["max_ee_init_rd_atom", a.maxEeInitRdAtom],
      ["atomic_cap", a.atomicCap === 1 ? "ATOMIC_HCA (1)" : a.atomicCap === 2 ? "ATOMIC_GLOB (2)" : "ATOMIC_NONE (0)"],
      ["max_ee", a.maxEe], ["max_rdd", a.maxRdd], ["max_mw", a.maxMw], ["max_raw_ipv6_qp", a.maxRawIpv6Qp],
      ["max_raw_ethy_qp", a.maxRawEthyQp], ["max_mcast_grp", a.maxMcastGrp], ["max_mcast_qp_attach", a.maxMcastQpAttach],
      ["max_total_mcast_qp_attach", a.maxTotalMcastQpAttach], ["max_ah", a.maxAh], ["max_fmr", a.maxFmr],
      ["max_srq", a.maxSrq], ["max_srq_wr", a.maxSrqWr], ["max_srq_sge", a.maxSrqSge], ["max_pkeys", a.maxPkeys],
      ["local_ca_ack_delay", a.localCaAckDelay],
    ];
    for (const [k, v] of more) L.push(kv(1, k, v));
    // which UDP path the host runs: the native batched datapath, or node:dgram (and why)
    const dp = datapathOf(dev);
    if (dp) L.push(kv(1, "udp_datapath", dp.path === "native" ? "native (sendmmsg/GSO, recvmmsg/GRO)" : `dgram${dp.reason ? ` (${dp.reason})` : ""}`));
    if (dp?.icrcOffload) L.push(kv(1, "icrc_offload", dp.icrcOffload));
    if (dp?.busyPoll) L.push(kv(1, "udp_busy_poll", dp.busyPoll));
    if (dp?.busyPollStats) {
      const b = dp.busyPollStats;
      L.push(kv(1, "udp_busy_poll_windows", `${b.windows} (caught a datagram ${b.hits}, held back by the gate ${b.gated})`));
    }
    // each QP's UDP source port: rxe's per-QP port through a socket pool, or the device's
    const sp = sourcePortsOf(dev);
    if (sp) {
      L.push(kv(1, "udp_source_ports", sp.mode === "per-qp" ? `per-qp (0xc000-0xffff as rxe; pool cap ${sp.cap}, open ${sp.open})` : `device (${opts.udpPort})`));
      if (sp.mode === "per-qp") {
        L.push(kv(1, "udp_source_port_fallbacks", `${sp.fallbacks} (bind failures ${sp.bindFailures}, cap refusals ${sp.capRefusals}, swept ports ${sp.sweptRefusals})`));
        if (sp.lastFailure) L.push(kv(1, "udp_source_port_last_failure", sp.lastFailure));
      }
    }
  }
  for (let p = 1; p <= a.physPortCnt; p++) {
    if (opts.ibPort !== undefined && opts.ibPort !== p) continue;
    const pa = dev.queryPort(p);
    L.push(`\t\tport:\t${p}`);
    L.push(kv(3, "state", `${PORT_STATE[pa.state] ?? "invalid state"} (${pa.state})`));
    L.push(kv(3, "max_mtu", `${mtu(pa.maxMtu)}`));
    L.push(kv(3, "active_mtu", `${mtu(pa.activeMtu)}`));
    L.push(kv(3, "sm_lid", `${pa.smLid}`));
    L.push(kv(3, "port_lid", `${pa.lid}`));
    L.push(kv(3, "port_lmc", `0x${pa.lmc.toString(16).padStart(2, "0")}`));
    L.push(kv(3, "link_layer", `${pa.linkLayer === 2 ? "Ethernet" : pa.linkLayer === 1 ? "InfiniBand" : "Unknown"}`));
    if (opts.verbose) {
      L.push(kv(3, "max_msg_sz", `0x${pa.maxMsgSz.toString(16)}`));
      L.push(kv(3, "port_cap_flags", `0x${(pa.portCapFlags >>> 0).toString(16).padStart(8, "0")}`));
      L.push(kv(3, "max_vl_num", `${pa.maxVlNum}`));
      L.push(kv(3, "bad_pkey_cntr", `0x${pa.badPkeyCntr.toString(16)}`));
      L.push(kv(3, "qkey_viol_cntr", `0x${pa.qkeyViolCntr.toString(16)}`));
      L.push(kv(3, "sm_sl", `${pa.smSl}`));
      L.push(kv(3, "pkey_tbl_len", `${pa.pkeyTblLen}`));
      L.push(kv(3, "gid_tbl_len", `${pa.gidTblLen}`));
      L.push(kv(3, "subnet_timeout", `${pa.subnetTimeout}`));
      L.push(kv(3, "init_type_reply", `${pa.initTypeReply}`));
      L.push(kv(3, "active_width", `${pa.activeWidth === 1 ? "1X" : pa.activeWidth} (${pa.activeWidth})`));
      L.push(kv(3, "active_speed", `${pa.activeSpeed === 1 ? "2.5 Gbps" : pa.activeSpeed} (${pa.activeSpeed})`));
      L.push(kv(3, "phys_state", `${PHYS_STATE[pa.physState] ?? "invalid physical state"} (${pa.physState})`));
      for (let i = 0; i < dev.gidTableSize; i++) {
        L.push(`\t\t\tGID[${String(i).padStart(3)}]:\t\t${dev.queryGid(i, p)}, RoCE v2`);
      }
      L.push(`\t\t\tcounters:`);
      const c = dev.queryCounters();
      const w = Math.max(...Object.keys(c).map((k) => k.length));
      for (const [k, v] of Object.entries(c)) L.push(`\t\t\t\t${k.padEnd(w)}  ${v}`);
    }
  }
  if (opts.verbose) L.push(...devinfoTraceLines(dev));
  return L.join("\n") + "\n\n";
}

export const devinfoCommand: Command = {
  name: "devinfo",
  summary: "ibv_devinfo for a softroce device bound to UDP (-v: limits, GID table, counters)",
  async run(argv: string[], io: Io): Promise<number> {
    const { flags } = parseArgs(argv, FLAGS, 0, { "--port": "the device's UDP port is --udp-port" });
    if (flags.help) {
      io.out(HELP);
      return 0;
    }
    const address = flags.address as string;
    if (!isIPv4(address) && !isIPv6(address)) throw new UsageError(`--address wants a local IPv4 or IPv6 address, got '${address}'`);
    if (flags.list) {
      io.out(`1 HCA found:\n\t${DEVICE_NAME}\n`);
      return 0;
    }
    const ibDev = flags["ib-dev"] as string | undefined;
    if (ibDev !== undefined && ibDev !== DEVICE_NAME) {
      io.err(`softroce devinfo: IB device '${ibDev}' wasn't found\n`);
      return 1;
    }
    const ibPort = flags["ib-port"] as number | undefined;
    if (ibPort !== undefined && ibPort !== 1) {
      io.err(`softroce devinfo: Failed to query port ${ibPort} props (device has 1 port)\n`);
      return 1;
    }
    let dev: Device;
    try {
      dev = await openDevice({ address, port: flags["udp-port"] as number });
    } catch (e) {
      io.err(`softroce devinfo: cannot open ${DEVICE_NAME} on ${address} UDP port ${flags["udp-port"]}: ${(e as Error).message}\n`);
      return 1;
    }
    try {
      const udpPort = (dev.limits as { port?: number }).port ?? (flags["udp-port"] as number);
      io.out(formatDevinfo(dev, { verbose: flags.verbose === true, ibPort, address, udpPort }));
      return dev.queryPort(1).state === PortState.ACTIVE ? 0 : 1;
    } finally {
      dev.close();
    }
  },
};
