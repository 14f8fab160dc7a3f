// softroce mckey: rdma-core's librdmacm/examples/mckey.c over softroce's rdma_cm — a UD QP
// joins an IPv4 multicast group through rdma_join_multicast (RoCEv2: the group's address as
// the MGID, no MADs; the QP attached to it, the device's UDP link joins the IP group), then
// the sender (-s) SENDs `-C` messages WITH IMMEDIATE to QPN 0xFFFFFF at the group and the
// others receive them. Like mckey, both sides wait 3 s after joining before the data (mckey
// gives the subnet manager time; here it gives the receivers time to join), nothing is resent
// when a datagram is lost (--timeout ends such a run), and the status is rdma_leave_multicast's.
import { isIPv4, isIPv6 } from "node:net";
import { formatGid, GRH_SIZE, type Device } from "../core/verbs/index.js";
import { McJoinFlag, PortSpace, RdmaCmEventType as E, type EventChannel, type RdmaCmEvent, type RdmaCmId } from "../core/cm/index.js";
import { formatFlags, parseArgs, type FlagSpec, UsageError } from "./args.js";
import { optionsCommand, type Io } from "./command.js";
import { cmatoseAddresses, runCmatoseTest, udPortSpaceNumber } from "./cm-tool.js";
import { UdCmTest, type UdNode } from "./udaddy.js";

/** mckey's pause between the join and the data (its sleep(3)). */
const JOIN_PAUSE_MS = 3000;

const FLAGS: FlagSpec[] = [
  { name: "multicast-address", short: "m", type: "string", valueName: "addr", help: "the multicast group to join (an IPv4 address in 224.0.0.0/4)" },
  { name: "sender", short: "s", type: "boolean", help: "send the messages (without: receive them)" },
  { name: "bind-address", short: "b", type: "string", valueName: "addr", help: "bind address" },
  { name: "connections", short: "c", type: "int", min: 1, max: 64, default: 1, valueName: "n", help: "joins (each its own ID and QP)" },
  { name: "message-count", short: "C", type: "int", min: 0, max: 4096, default: 10, valueName: "n", help: "messages the sender sends on each join" },
  { name: "message-size", short: "S", type: "int", min: 0, max: 1 << 20, default: 100, valueName: "bytes", help: "message size (at most the port's active MTU)" },
  { name: "port-space", short: "p", type: "string", valueName: "n", help: "port space: 0x111 for UDP (default), 0x2 for IPoIB" },
  { name: "send-only", short: "o", type: "boolean", help: "join as a send-only full member (the QP is not attached: it only sends)" },
  { name: "address", type: "string", valueName: "addr", help: "softroce: local IPv4 address of the device (default: -b, else 127.0.0.1)" },
  { name: "udp-port", type: "int", min: 1, max: 65535, default: 4791, valueName: "n", help: "softroce: UDP port of the device and of the group" },
  { name: "timeout", type: "int", min: 0, max: 86400, default: 0, valueName: "sec", help: "softroce: give up after <sec> seconds (0: never, as mckey)" },
  { name: "help", short: "h", type: "boolean", help: "show this help" },
];

const HELP = `usage: softroce mckey -m multicast_address [-s] [-b bind_address] [-c connections]
                      [-C message_count] [-S message_size] [-p port_space] [-o]

rdma-core's mckey over softroce's rdma_cm: UD QPs join an IPv4 multicast group (rdma_join_multicast),
the sender (-s) SENDs to it and the others receive. -M (an unmapped address) and -l (no multicast
loopback) are not supported; IPv6 groups fail to join with error 524 (ENOTSUPP), as on Linux.

${formatFlags(FLAGS)}
`;

export interface MckeyOptions {
  group: string;
  sender: boolean;
  sendOnly: boolean;
  bind?: string;
  ps: number;
  connections: number;
  count: number;
  size: number;
  address: string;
  udpPort: number;
  timeoutMs: number;
}

export function mckeyOptions(argv: string[]): MckeyOptions | "help" {
  if (argv.includes("-M")) throw new UsageError("-M (an unmapped multicast address, AF_IB) is not supported");
  if (argv.includes("-l")) throw new UsageError("-l (join without multicast loopback) is not supported");
  const { flags } = parseArgs(argv, FLAGS);
  if (flags.help) return "help";
  const group = flags["multicast-address"] as string | undefined;
  if (group === undefined) throw new UsageError("-m <multicast address> is needed");
  if (!isIPv4(group) && !isIPv6(group)) throw new UsageError(`-m wants a numeric IPv4 or IPv6 address, got '${group}'`);
  // -b and --address as cmatose's family reads them (the group gives the family when there is no -b)
  const { bind, address } = cmatoseAddresses({ "bind-address": flags["bind-address"], "server-address": group, address: flags.address });
  const psText = flags["port-space"] as string | undefined;
  const ps = psText === undefined ? PortSpace.UDP : udPortSpaceNumber(psText);
  const size = flags["message-size"] as number;
  return {
    group, sender: flags.sender === true, sendOnly: flags["send-only"] === true, bind, ps, connections: flags.connections as number,
    count: size ? (flags["message-count"] as number) : 0, size, address, udpPort: flags["udp-port"] as number, timeoutMs: (flags.timeout as number) * 1000,
  };
}

class Mckey extends UdCmTest {
  constructor(readonly o: MckeyOptions, io: Io, dev: Device, ch: EventChannel) {
    super("mckey", o, io, dev, ch);
  }

  /** addr_handler: verify, init_node, post_recvs (a receiver), then join the group. */
  protected override addrResolved(n: UdNode, id: RdmaCmId): number {
    return this.verifyTestParams(n) || this.attempt("failure joining", () => {
      this.initNode(n);
      if (!this.o.sender) this.postRecvs(n);
      id.joinMulticast(this.o.group, this.o.sendOnly ? McJoinFlag.SENDONLY_FULLMEMBER : McJoinFlag.FULLMEMBER);
    });
  }

  /** join_handler (MULTICAST_JOIN): the group's address handle, QPN 0xFFFFFF and Q_Key. */
  protected other(ev: RdmaCmEvent): number {
    if (ev.event !== E.MULTICAST_JOIN) return 0;
    const a = ev.param.ud!.ahAttr!;
    this.say(`mckey: joined dgid: ${formatGid(a.grh!.dgid as Uint8Array)} mlid 0x${(a.dlid ?? 0).toString(16)} sl ${a.sl ?? 0}`);
    return this.takeAddress(ev.id.context as UdNode, ev.param.ud!);
  }

  async run(): Promise<number> {
    const o = this.o;
    this.say(`mckey: starting ${o.sender ? "client" : "server"}`);
    this.say("mckey: joining");
    for (const n of this.nodes) {
      n.id = this.ch.createId(o.ps, n);
      const src = o.bind === undefined ? undefined : { address: o.bind, port: 0 };
      const ret = (src && this.attempt("addr bind failure", () => n.id!.bindAddr(src))) ||
        this.attempt("resolve addr failure", () => n.id!.resolveAddr(src, { address: o.group, port: 0 }, 2000));
      if (ret) {
        this.connectsLeft--;
        return ret;
      }
    }
    let ret = await this.events(() => this.connectsLeft);
    if (!ret) {
      await new Promise((r) => setTimeout(r, JOIN_PAUSE_MS));
      if (o.count) {
        if (o.sender) {
          this.say("initiating data transfers");
          for (const n of this.nodes) this.postSends(n, 0);
        } else {
          this.say("receiving data transfers");
          ret = await this.pollCqs();
        }
        if (!ret) this.say("data transfers complete");
      }
    }
    // mckey's `out:` leaves every node's group and returns what the last leave returned
    for (const n of this.nodes) ret = this.attempt("failure leaving", () => n.id!.leaveMulticast(o.group));
    return ret;
  }
}

export function runMckey(o: MckeyOptions, io: Io): Promise<number> {
  return runCmatoseTest("mckey", { ...o, mrBytes: (o.size + GRH_SIZE) * o.connections }, io, (dev, ch, run) => new Mckey(o, run, dev, ch));
}

export const mckeyCommand = optionsCommand("mckey", "rdma-core's mckey over rdma_cm: UD QPs join an IPv4 multicast group, one sends to it, the others receive; interoperable with Linux's", HELP, mckeyOptions, runMckey);
