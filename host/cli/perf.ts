// softroce perf <test>: perftest's tests, in two processes over UDP (the server waits for a client)
// or --local between two devices in this process on the simulated wire. Flags, header lines and
// table are perftest 4.5's (perf-report.ts); what softroce adds is named in the help.
import { ALL_SIZES, ATOMIC_SIZE, DEFAULT_MTU, MAX_INLINE, MAX_QPS, MAX_TX_DEPTH, MTUS, PERF_RULE, PERF_TESTS, PerfOptionError, isBwTest, perfVerb, readsResponses, resolvePerfOptions, runPerf, sumBw, type PerfOptions, type PerfResult, type PerfTest } from "../core/perf/index.js";
import { coreModule } from "../node/wasm-source.js";
import { PERF_TCP_PORT, PerfPeerError, rcOnly, runPerfUdp, servePerfUdp, type PerfConnection, type UdpPerfOptions } from "./perf-exchange.js";
import { toolRecorder, writeCaptureFileQuietly } from "./capture-file.js";
import { openDevice, UdpBindError } from "../node/index.js";
import { isIP, isIPv4 } from "node:net";
import { type FlagSpec, type ParsedArgs, formatFlags, parseArgs, UsageError } from "./args.js";
import { PERFTEST_DEF_DURATION, PERFTEST_OUTPUTS, PERFTEST_VERSION, perftestOptions, runPerftest, type PerftestFlags, type PerftestOptions, type PerftestOutput } from "./perftest-exchange.js";
import { PERFTEST_JSON_FILE } from "./perftest-json.js";
import { RATE_LIMIT_TYPES, RATE_UNITS, type RateLimitType, type RateUnits } from "./perftest-rate.js";
import { type Command, InputError, type Io } from "./command.js";
import { fsReason } from "./decode.js";
import { DEVICE_NAME } from "./pingpong.js";
import { addressLines, bwJson, countsLine, perfHeader, perfJson, tableHeader, tableRow } from "./perf-report.js";
/** perftestOnly: a flag of perftest's that only its exchange (--perftest, -R) takes; refused without them. */
const FLAGS: (FlagSpec & { perftestOnly?: true })[] = [
  { name: "local", type: "boolean", help: "run both sides in this process, over the simulated wire" },
  { name: "perftest", type: "boolean", help: "two-process mode: speak perftest's own TCP exchange, so Debian 12's ib_*_bw / ib_*_lat is the peer (host/cli/perftest-exchange.ts)" },
  { name: "rdma_cm", short: "R", type: "boolean", help: "perftest's rdma_cm mode: the exchange as SENDs on an rdma_cm connection and the test QP connected by rdma_cm (CM MADs on QP1); implies --perftest (host/cli/perftest-rdmacm.ts)" },
  { name: "comm_rdma_cm", short: "z", type: "boolean", help: "perftest's -z: the exchange as SENDs on an rdma_cm connection (as -R's), the test QPs perftest's own, connected by the key messages (as --perftest's); implies --perftest" },
  { name: "address", type: "string", valueName: "addr", help: "two-process mode: local IPv4 or IPv6 address the device binds (its GID 0) [default: 127.0.0.1]" },
  { name: "port", short: "p", type: "int", min: 0, max: 65535, valueName: "port", help: `two-process mode: TCP port of the out-of-band exchange, as perftest's -p [default: ${PERF_TCP_PORT}]` },
  { name: "udp-port", type: "int", min: 0, max: 65535, valueName: "n", help: "two-process mode: UDP port of the device (0: any free one; the peer learns it) [default: 4791]" },
  { name: "pcap", type: "string", valueName: "file", help: "two-process mode: write this side's datagrams to a pcap file (RoCEv2 over UDP)" },
  { name: "wait", type: "int", min: 1, max: 3600, valueName: "sec", help: "two-process mode: seconds to wait for the peer and for progress; the server exits after it [default: 60]" },
  { name: "ib-dev", short: "d", type: "string", valueName: "dev", help: `use IB device <dev> (the only one: ${DEVICE_NAME})` },
  { name: "ib-port", short: "i", type: "int", min: 1, max: 255, valueName: "port", help: "use port <port> of the IB device (the only one: 1)", default: 1 },
  { name: "gid-index", short: "x", type: "int", min: 0, max: 255, valueName: "index", help: "local GID index (a bound device has one GID: 0, its address) [default: 0]" },
  { name: "connection", short: "c", type: "string", choices: ["RC", "UC", "UD"], default: "RC", help: "connection type: RC (every test), UC (send_bw, send_lat, write_bw, write_lat), UD (send_bw, send_lat; size <= mtu); UC/UD may lose or duplicate messages: counted, not failures (with --verify every message must arrive verified)" },
  { name: "size", short: "s", type: "int", min: 0, max: 1 << 24, valueName: "bytes", help: "message size [default: 65536 for *_bw, 2 for *_lat, 8 for atomic_bw and atomic_lat]" },
  { name: "all", short: "a", type: "boolean", help: "run sizes from 2 to 2^23 bytes, a row each (--local, --perftest and -R)" },
  { name: "iters", short: "n", type: "int", min: 1, max: 10_000_000, valueName: "n", help: "messages per QP [default: 5000 for *_bw, 1000 for *_lat]" },
  { name: "duration", short: "D", type: "int", min: 1, max: 3600, valueName: "sec", help: "run for <sec> seconds instead of -n messages (--local: about that long, a first run of -n messages sets how many fit; --perftest and -R: perftest's duration mode, its sample the middle half)" },
  { name: "mtu", short: "m", type: "int", valueName: "bytes", help: `path MTU: 256, 512, 1024, 2048 or 4096 [default: the port's active MTU, as perftest (two processes); ${DEFAULT_MTU} with --local]` },
  { name: "tx-depth", short: "t", type: "int", min: 1, max: MAX_TX_DEPTH, valueName: "n", help: "work requests in flight per QP [default: 128 for *_bw, 1 for *_lat]" },
  { name: "qp", short: "q", type: "int", min: 1, max: MAX_QPS, valueName: "n", help: "number of QPs", default: 1 },
  { name: "atomic_type", short: "A", type: "string", choices: ["FETCH_AND_ADD", "CMP_AND_SWAP"], help: "atomic_bw and atomic_lat operation [default: FETCH_AND_ADD]" },
  { name: "inline_size", short: "I", type: "int", min: 0, max: MAX_INLINE, valueName: "bytes", help: "post SEND/WRITE messages up to <bytes> inline (copied into the WQE) [default: 0]" },
  { name: "qp-timeout", short: "u", type: "int", min: 0, max: 31, valueName: "n", help: "QP local ACK timeout, 4.096 µs × 2^n (perftest's -u)", default: 14 },
  { name: "retry", type: "int", min: 0, max: 7, valueName: "n", aliases: ["retry_count"], help: "the RC QPs' retry count (7 is seven retries, as the IBA); with --perftest the test QPs' (perftest's own keep 7), with -R rdma_cm's, which every REQ carries, and the test connections' RNR retry count too, as perftest's --retry_count (the exchange connection's stays 7)", default: 7 },
  { name: "bidirectional", short: "b", type: "boolean", help: "bandwidth tests: both sides post at once; each side's row is the two directions summed, as perftest's -b (two-process: the client's -b rules; with --perftest and -R both sides give -b, as perftest; send_bw -b -D: each side its own row)" },
  { name: "mr_per_qp", type: "boolean", help: "bandwidth tests: an MR for each QP (default: one MR, each QP its own part of it, as perftest)" },
  { name: "events", short: "e", type: "boolean", help: "--perftest and -R: perftest's events mode (sleep on CQ events; softroce's waits always do): its header line; not on WRITE tests nor with -D, as perftest" },
  { name: "vector", perftestOnly: true, short: "X", type: "int", min: 0, max: 2048, valueName: "n", help: "--perftest and -R, with -e: the CQ's completion vector (perftest's -X; the device has one, 0)" },
  { name: "report-unsorted", short: "U", type: "boolean", help: "--perftest and -R, latency tests: before the row, every measurement in the order taken (\"n, usec\" lines, as perftest's -U)" },
  { name: "report-histogram", short: "H", type: "boolean", aliases: ["report-histogrm"], help: "--perftest and -R, latency tests: before the row, the measurements it counts, sorted (as perftest's -H)" },
  { name: "report-cycles", perftestOnly: true, short: "C", type: "boolean", help: "--perftest and -R, latency tests: the row's figures and -U, -H's lists in CPU cycles (the wall time at /proc/cpuinfo's cpu MHz, the rate perftest's cycle counter runs at on x86; the table's header says usec either way, as perftest's); a -D row stays in µs, as perftest's" },
  { name: "outs", perftestOnly: true, short: "o", type: "int", min: -2147483648, max: 2147483647, valueName: "n", help: "--perftest and -R, READ and atomic tests: outstanding reads per QP, perftest's (this side's max_dest_rd_atomic, and the peer's max_rd_atomic, as perftest's exchange gives it) [default, and 0 or less: the device's max_qp_rd_atom, 128; above it said and lowered, as perftest]" },
  { name: "rx-depth", perftestOnly: true, short: "r", type: "int", min: 1, max: 16384, valueName: "n", help: "--perftest and -R, SEND tests: receives posted per QP before the test (perftest's rx depth) [default: 512, at most -n; UC/UD up to 16000]; 1 on the other tests" },
  { name: "noPeak", perftestOnly: true, short: "N", type: "boolean", help: "--perftest and -R, bandwidth tests: no peak (0.00), as perftest's -N" },
  { name: "perform_warm_up", perftestOnly: true, type: "boolean", help: "--perftest and -R, WRITE, READ and atomic bandwidth tests: a tx depth of WRs per QP before the measured run (perftest's warm-up; the other tests ignore it, as perftest)" },
  { name: "cq-mod", perftestOnly: true, short: "Q", type: "int", min: 1, max: 1024, valueName: "n", help: "--perftest and -R, bandwidth tests: a completion every n messages of a QP (perftest's CQ moderation) [default: 100; 1 above 8 KiB messages; at most the tx depth]" },
  { name: "post_list", perftestOnly: true, short: "l", type: "int", min: 1, max: MAX_TX_DEPTH, valueName: "n", help: "--perftest and -R, bandwidth tests: post the WRs in lists of n, one doorbell each (perftest's post list; CQ moderation n unless -Q)" },
  { name: "recv_post_list", perftestOnly: true, type: "int", min: 1, max: 16384, valueName: "n", help: "--perftest and -R, bandwidth tests: a SEND test's receives posted in lists of n, one doorbell each (perftest's receive post list; -n a multiple of n; the rx depth rounded down to whole lists)" },
  { name: "margin", perftestOnly: true, short: "f", type: "int", min: 0, max: 3600, valueName: "sec", help: "--perftest and -R, with -D: the seconds before and after the measured sample (perftest's margin) [default: a quarter of -D]; -D must exceed twice it" },
  { name: "latency_gap", perftestOnly: true, type: "int", min: 0, max: 10_000_000, valueName: "us", help: "--perftest and -R, latency tests: wait <us> µs before each post (perftest's gap; as perftest's, each measurement includes it: a SEND or WRITE row's half round trip grows by half the gap)" },
  { name: "wait_destroy", perftestOnly: true, type: "int", min: 0, max: 3600, valueName: "sec", help: "--perftest and -R: at the end, wait <sec> seconds before the test's resources (and with -R its connections) go, saying so, as perftest's" },
  { name: "use_old_post_send", perftestOnly: true, type: "boolean", help: "--perftest and -R: perftest's ibv_post_send instead of its ibv_wr_* API (accepted: softroce's perftest posts with ibv_post_send, and the header says \"ibv_wr* API : OFF\" either way, as Linux's against rxe)" },
  { name: "cpu_util", perftestOnly: true, type: "boolean", help: "--perftest and -R, with -D: after each row the machine's CPU use over the sample, % (perftest's CPU_Util[%] column: /proc/stat's user time over user and idle time; a row the side did not measure, as write_bw's server printing the client's report, 0.00); without -D said and left off, as perftest" },
  { name: "run_infinitely", perftestOnly: true, type: "boolean", help: `--perftest and -R, bandwidth tests: run until stopped (a signal), a row for every -D seconds [default: ${PERFTEST_DEF_DURATION}], each its period's messages, no peak (perftest's); not with -e, -a, -f, -w, -y, --report-both, --pcap, nor send_bw -b, as perftest or as a run without an end needs; the server of WRITE, READ and atomics prints nothing until the client ends` },
  { name: "dualport", perftestOnly: true, short: "O", type: "boolean", help: "--perftest and -R: refused — perftest's dual-port mode runs QPs on ports 1 and 2, and the device has one port (perftest: ' Unable to query port 2 attributes'; on a latency test ' Dual-port mode only supports BW tests.')" },
  { name: "reversed", perftestOnly: true, type: "boolean", help: "--perftest: the test's roles reversed, as perftest's --reversed: the server (the side without an address) runs the client's part of the test (a bandwidth test's sender) and the client the server's, while the TCP exchange keeps its roles; give it on both sides; not with -R or -z (perftest's rdma_cm would connect from the side without the server's address)" },
  { name: "pkey_index", perftestOnly: true, type: "int", min: 0, max: 65535, valueName: "index", help: "--perftest and -R: the test QPs' P_Key index (perftest's; the device has one P_Key, 0xffff at index 0: a larger index is said and taken as 0, as perftest does past a device's max_pkeys; with -R rdma_cm's route sets it)" },
  { name: "version", perftestOnly: true, short: "V", type: "boolean", help: `--perftest and -R: print perftest's version line (Version: ${PERFTEST_VERSION}, the version the exchange sends) and exit 1, as perftest's -V (its parser's VERSION_EXIT ends it with FAILURE); checks perftest makes after its parser are not made` },
  { name: "dont_xchg_versions", perftestOnly: true, type: "boolean", help: "--perftest and -R: refused — perftest (4.5 and since) then skips the version exchange yet checks the version it never received, and exits with 'Current implementation is not compatible with versions older than 5.70' whatever its peer" },
  { name: "rate_limit", perftestOnly: true, type: "string", valueName: "rate", help: "--perftest and -R, bandwidth tests: the sender posts at most <rate> (--rate_units), in bursts of --burst_size messages, one burst a gap (perftest's SW rate limiter; its default HW type takes only ibv_rate's 2.5, 5, 10 … 300 Gb/s, and a RoCE QP takes no HW rate, so it falls back to SW saying so, as perftest against rxe; not with -R unless --rate_limit_type SW)" },
  { name: "rate_units", perftestOnly: true, type: "string", choices: RATE_UNITS, valueName: "units", help: "--perftest and -R: --rate_limit's unit: M (MiB/s), g (Gb/s) or p (messages a second) [default: g]; p only with --rate_limit_type SW, as perftest" },
  { name: "rate_limit_type", perftestOnly: true, type: "string", choices: RATE_LIMIT_TYPES, valueName: "type", help: "--perftest and -R: SW (the sender's bursts; one-way bandwidth tests but atomic_bw, as perftest), HW (the QP's static rate: a RoCE port has none, so it fails, as perftest against rxe) or PP (packet pacing: Raw Ethernet only, refused) [default: HW with --rate_limit]" },
  { name: "burst_size", perftestOnly: true, type: "int", min: 0, max: 1 << 24, valueName: "n", help: "--perftest and -R, with a rate limit: the messages of a burst [default (or 0): the tx depth, said on stderr with --rate_limit_type SW, as perftest]" },
  { name: "tos", perftestOnly: true, short: "T", type: "int", min: 0, max: 255, valueName: "value", help: "-R: the type of service of rdma_cm's connections (rdma_set_option RDMA_OPTION_ID_TOS: the path's traffic class, the IP header's TOS byte), as perftest's -T; not without -R, as perftest" },
  { name: "tclass", perftestOnly: true, type: "int", min: 0, max: 255, valueName: "value", help: "--perftest: the traffic class of the test's GRH (the IP header's TOS byte, DSCP and ECN), as perftest's --tclass; not with -R" },
  { name: "sl", perftestOnly: true, short: "S", type: "int", min: 0, max: 15, valueName: "sl", help: "--perftest: the service level of the test QPs' address vectors, as perftest's -S (RoCE carries no SL on the wire, nor does rxe: the QPs' attributes hold it); with -R rdma_cm's route gives it (0), as perftest's [default: 0]" },
  { name: "hop_limit", perftestOnly: true, short: "L", type: "int", min: 0, max: 255, valueName: "n", help: "--perftest and -R: perftest's Raw Ethernet hop limit; another than its default, 64, is perftest's refusal (its RC, UC and UD QPs' GRH hop limit is 0xff)" },
  { name: "report-counters", perftestOnly: true, short: "W", type: "string", valueName: "list", help: "--perftest and -R: after each row, the change of each of these port counters since the last read (perftest's -W; comma-separated, named as in the port's sysfs directory: hw_counters/ and one of the device's counters, rxe's hw_counters and its drop reasons — hw_counters/sent_pkts,hw_counters/rcvd_pkts)" },
  { name: "source_ip", perftestOnly: true, type: "string", valueName: "ip", help: "--perftest and -R: perftest's source IP (IPv4) of the connection's establishment: the exchange's TCP connection is made from it, and without --address the device binds it (with -R and -z rdma_cm's source is the device's address, so --address must be it)" },
  { name: "force-link", perftestOnly: true, type: "string", valueName: "type", help: "--perftest and -R: the link taken as IB or Ethernet (perftest's, by the word's start, any case), whatever the port's (Ethernet); IB: the header says so, and without -x there is no GID (nor its lines), so the QPs' address vectors have no GRH, which a RoCE QP refuses at RTR, as perftest's against rxe (with -R rdma_cm's route has one)" },
  { name: "server", perftestOnly: true, short: "Z", type: "boolean", help: "--perftest and -R: perftest's side choice for its Raw Ethernet tests (accepted: on RC, UC and UD tests the side without a server address is the server whatever -Z or -P says, as perftest's)" },
  { name: "client", perftestOnly: true, short: "P", type: "boolean", help: "--perftest and -R: as -Z, the client side (accepted, as perftest's)" },
  { name: "flow_label", perftestOnly: true, type: "int", min: 0, max: 2147483647, valueName: "n", help: "--perftest and -R: perftest's IPv6 flow label of its Raw Ethernet packets (accepted: perftest 4.5 puts it in no RC, UC or UD packet)" },
  { name: "ipv6", perftestOnly: true, type: "boolean", help: "--perftest and -R: perftest's choice of an IPv6 GID before an IPv4 one when -x is not given; the device has one GID, its --address, which perftest takes whatever --ipv6 says (accepted; give --address an IPv6 address for IPv6)" },
  { name: "use-srq", perftestOnly: true, type: "boolean", help: "--perftest and -R, SEND tests: the receiving side's QPs share one SRQ (its depth the rx depth, shared out among the QPs), as perftest's --use-srq" },
  { name: "disable_pcie_relaxed", perftestOnly: true, type: "boolean", help: "--perftest and -R: MRs without PCIe relaxed ordering (softroce has none to give: the header says OFF either way; --out_json's file says OFF instead of perftest's ON)" },
  { name: "limit_bw", perftestOnly: true, short: "w", type: "string", valueName: "value", help: "--perftest and -R, bandwidth tests: exit 1 with perftest's \"Error: BW result is below bw limit\" unless a row's BW average reaches value (MB/sec, or Gb/sec with --report_gbits; with -a one row reaching it is enough, as perftest)" },
  { name: "limit_msgrate", perftestOnly: true, short: "y", type: "string", valueName: "value", help: "--perftest and -R, bandwidth tests: the same for the message rate, Mpps (perftest 4.5 checks -y only together with -w; softroce checks it alone too)" },
  { name: "report-both", perftestOnly: true, type: "boolean", help: "--perftest and -R, bandwidth tests with -b: after the summed row, each side's own under \"Local results\" and \"Remote results\" (perftest's; not with -a, and without -b nothing, as perftest)" },
  { name: "out_json", perftestOnly: true, type: "boolean", help: "--perftest and -R: perftest's report file as well (its test_info and results blocks, rewritten at each row, so the last row's stays)" },
  { name: "out_json_file", perftestOnly: true, type: "string", valueName: "file", help: `--perftest and -R, with --out_json: the report file [default: ${PERFTEST_JSON_FILE}, in the working directory, as perftest]` },
  { name: "output", perftestOnly: true, type: "string", choices: PERFTEST_OUTPUTS, valueName: "units", help: "--perftest and -R: print each row as its one figure (%lf) and nothing but the rows: bandwidth (BW average) or message_rate on bandwidth tests, latency (t_avg) on latency tests; no header, address lines or table (perftest's verbosity)" },
  { name: "report_gbits", type: "boolean", help: "report bandwidth in Gb/sec (10^9 bits) instead of MB/sec" },
  { name: "CPU-freq", short: "F", type: "boolean", help: "do not fail on CPU frequency scaling (accepted; softroce measures wall time, not cycles)" },
  { name: "loss", type: "string", valueName: "p", help: "--local: probability that the wire loses a datagram, 0..1" },
  { name: "dup", type: "string", valueName: "p", help: "--local: probability that the wire duplicates a datagram, 0..1" },
  { name: "reorder", type: "string", valueName: "p", help: "--local: probability that the wire delays a datagram past later ones, 0..1" },
  { name: "corrupt", type: "string", valueName: "p", help: "--local: probability that the wire flips a bit, 0..1" },
  { name: "delay", type: "string", valueName: "us", help: "--local: one-way delay of the wire in µs" },
  { name: "rate", type: "string", valueName: "gbps", help: "--local: link rate of the wire in Gb/s (default: unlimited)" },
  { name: "seed", type: "int", min: 0, max: 0xffffffff, valueName: "n", help: "--local: seed of the wire's faults and of the verify pattern [default: 1]" },
  { name: "verify", type: "boolean", help: "--local: check every message byte for byte (a seeded pattern carrying its sequence number)" },
  { name: "json", short: "j", type: "boolean", help: "print one JSON object (keys name their unit: docs/CLI.md) instead of the perftest table" },
  { name: "help", short: "h", type: "boolean", help: "show this help" },
];


/** perftest's GPU memory options. */
const GPU = "perftest's buffers in GPU memory: softroce's buffers are its wasm instance's linear memory, no GPU's";

/** perftest's -g (and -M, its group), which softroce perf does not run. */
const MCG = "perftest's multicast, its UD SEND tests to a group the server's QP attaches to, is not in softroce perf; softroce mckey runs rdma_cm's multicast, Linux's mckey its peer";

/** perftest's Raw Ethernet options (its raw_ethernet_* tests). */
const RAW_ETH = "perftest's Raw Ethernet tests' (raw_ethernet_bw, _lat, _burst_lat, _fs_rate: packets the application builds whole), which softroce perf does not run: its QPs are RoCE's RC, UC and UD";
/** Their flags, long and short. */
const RAW_ETH_FLAGS = [
  "--source_mac", "--dest_mac", "--dest_ip", "--dest_port", "--source_port", "--ethertype", "--mac_fwd",
  "--use_rss", "--remote_mac", "--local_mac", "--remote_ip", "--local_ip", "--remote_port", "--local_port",
  "--tcp", "--typical_pkt_size", "--raw_ipv6", "--promiscuous", "--sniffer", "--raw_mcast", "--flows",
  "--flows_burst", "--reply_every", "--vlan_en", "--vlan_pcp", "-B", "-E", "-J", "-K", "-k", "-Y", "-G",
  "-v",
];
/** perftest's options for mlx5 devices' own features. */
const MLX5 = "perftest's option for an mlx5 device's own feature (DC, out-of-order placement, AES-XTS), which neither rxe nor softroce has";
/** Their flags. */
const MLX5_FLAGS = [
  "--use_ooo", "--log_dci_streams", "--log_active_dci_streams", "--aes_xts", "--encrypt_on_tx",
  "--sig_before", "--aes_block_size", "--kek_path", "--credentials_path", "--data_enc_keys_number",
  "--data_enc_key_app_path",
];

/** Old or other tools' names that would mean something else here: the error says which flag to use. */
const RENAMED: Record<string, string> = {
  "--tcp-port": "the TCP port is -p/--port, as in perftest",
  "--timeout": "the QP's ACK timeout exponent is -u/--qp-timeout (as perftest); seconds to wait are --wait",
  // perftest's memory options: softroce's buffers are its wasm instance's linear memory
  "--odp": "perftest's on-demand paging: the device registers no MR on demand, nor does rxe in Linux 6.1, where perftest fails with 'Couldn't create IB resources'",
  "--use_hugepages": "perftest's buffers in huge pages: softroce's buffers are its wasm instance's linear memory, which huge pages do not back",
  "--mmap": "perftest's buffer mapped from a file: softroce's buffers are its wasm instance's linear memory, which no file can be mapped into",
  "--mmap-offset": "the offset of perftest's --mmap file, which softroce does not take: its buffers are its wasm instance's linear memory",
  "--report-per-port": "perftest's per-port rows of its dual-port mode (-O), which a one-port device does not run",
  "--dlid": "perftest's destination LID for InfiniBand: a RoCE QP is addressed by its GID (its LID is 0)",
  "--use_cuda": GPU,
  "--use_cuda_bus_id": GPU,
  "--use_cuda_dmabuf": GPU,
  "--use_rocm": GPU,
  "-g": MCG,
  "--mcg": MCG,
  "-M": MCG,
  "--MGID": MCG,
  ...Object.fromEntries(RAW_ETH_FLAGS.map((f) => [f, RAW_ETH])),
  ...Object.fromEntries(MLX5_FLAGS.map((f) => [f, MLX5])),
};


const HELP = `usage: softroce perf <test> [flags]            server: waits for a client
       softroce perf <test> <server> [flags]   client: runs the test against the server
       softroce perf <test> --local [flags]    both sides here, on the simulated wire

Tests: ${PERF_TESTS.join(", ")}.
Two processes run the test over UDP (RoCEv2): the server (no host argument) binds its device to
--address:--udp-port and listens on TCP -p/--port (perftest's port, 18515); the client (with the
server's host) connects there. Both print perftest's header, the local and remote address lines
and the table (BW in MB/sec, MB being 2^20 bytes as perftest, or Gb/sec with --report_gbits;
latency in µs, half the round trip for send/write, the round trip for read); the server's row is
measured on its side (from connection to the client's end), latency rows are the client's.
Out-of-band exchange (protocol softroce-perf/1): one JSON line each way over TCP (test, sizes,
depths, timeout, GID, UDP port, per QP {qpn, psn, rkey, addr}); the server checks them, connects
and answers (or {error}). As perftest, each side takes its port's active MTU (from the interface
MTU, as rxe: 1500 -> 1024, loopback -> 4096) or its -m lowered to it (saying so as perftest does),
and the two run with the smaller of the two. Two devices on one host need
two addresses (127.0.0.1 and 127.0.0.2) or --udp-port 0 on one side.
--local runs the client and the server as two devices in this process, connected by the
simulated wire (faults are seeded, so a run is reproducible); figures are on the wall clock when
the wire has no faults, on its virtual clock otherwise (both in --json).
--json prints one object; its keys name their unit (docs/CLI.md), and it carries only what
applies: the wire, faults and seed with --local, verified with --verify.
Exit status: 0 every message completed once (and verified, with --verify); 1 a message was lost
or duplicated (on UC/UD: a message --verify did not verify), corrupted or completed with an error,
or the peer failed; with --perftest and -R, 17 where perftest's main exits 17 (send_bw, send_lat,
read_lat, atomic_lat and read_bw -a whose test failed under way); 2 usage error.

${formatFlags(FLAGS)}
`;

/** The flags that run perftest's exchange, as a command line spells them. */
const PERFTEST_MODE_FLAGS = ["--perftest", "-R", "--rdma_cm", "-z", "--comm_rdma_cm"];
/** perftest's exchange with a peer: --perftest, -R or -z. */
const perftestMode = (flags: ParsedArgs["flags"]): boolean => flags.perftest === true || flags.rdma_cm === true || flags.comm_rdma_cm === true;

function probability(name: string, raw: string | undefined): number | undefined {
  if (raw === undefined) return undefined;
  const v = Number(raw);
  if (raw.trim() === "" || !Number.isFinite(v) || v < 0 || v > 1) throw new UsageError(`--${name} wants a probability from 0 to 1, got '${raw}'`);
  return v;
}

function positive(name: string, raw: string | undefined, max: number): number | undefined {
  if (raw === undefined) return undefined;
  const v = Number(raw);
  if (raw.trim() === "" || !Number.isFinite(v) || v < 0 || v > max) throw new UsageError(`--${name} wants a number from 0 to ${max}, got '${raw}'`);
  return v;
}

/** --force-link as perftest's str_link_layer reads it: "IB" by its first two letters, "Ethernet" by its eight, any case. */
function forceLink(raw: string | undefined): { linkIb?: true } {
  if (raw === undefined || /^ethernet/i.test(raw)) return {};
  if (/^ib/i.test(raw)) return { linkIb: true };
  throw new UsageError(`--force-link ${raw}: Invalid link layer value should be IB or ETHERNET. (perftest's)`);
}

/** The two-process mode's own settings. */
export interface PerfUdpArgs {
  server?: string;
  address: string;
  udpPort: number;
  tcpPort: number;
  pcap?: string;
  waitMs: number;
  /** --perftest's --source_ip: the exchange's TCP connection is made from it */
  sourceIp?: string;
}

export interface PerfArgs {
  options: PerfOptions;
  json: boolean;
  help: boolean;
  udp?: PerfUdpArgs;
  /** -a: the sizes to run, one row each */
  sizes?: number[];
  /** -D, seconds */
  durationS?: number;
  gbits: boolean;
  gidIndex: number;
  /** -I was given (perftest's notice for a device it does not know follows -I 0 too) */
  inlineAsked: boolean;
  /** -V (with --perftest or -R): perftest's version line, and exit 1 */
  version?: boolean;
  /** --perftest or -R: perftest's run, its defaults filled in and its checks passed */
  perftest?: PerftestOptions;
}

/** The PerfOptions a command line asks for (throws UsageError). */
export function perfOptionsFromArgs(argv: string[]): PerfArgs {
  // perftest's `-j <ip>` is its source IP; here -j is --json, and the address would be read as the server's
  const j = argv.indexOf("-j");
  if (j >= 0 && isIP(argv[j + 1] ?? "") && argv.some((a) => PERFTEST_MODE_FLAGS.includes(a))) {
    throw new UsageError(`-j ${argv[j + 1]}: perftest's -j is its source IP, --source_ip here (-j is softroce's --json, which perftest's output is not)`);
  }
  const { flags, positionals } = parseArgs(argv, FLAGS, 2, RENAMED);
  const base = { json: false, gbits: false, gidIndex: 0, inlineAsked: false };
  if (flags.help) return { ...base, options: { test: "write_bw" }, help: true };
  const [test, server] = positionals;
  if (test === undefined) throw new UsageError(`no test given (one of ${PERF_TESTS.join(", ")})`);
  if (!(PERF_TESTS as readonly string[]).includes(test)) throw new UsageError(`unknown test '${test}' (one of ${PERF_TESTS.join(", ")})`);
  const dev = flags["ib-dev"] as string | undefined;
  if (dev !== undefined && dev !== DEVICE_NAME) throw new UsageError(`-d/--ib-dev: no device '${dev}' (the only one is ${DEVICE_NAME})`);
  const ibPort = flags["ib-port"] as number;
  if (ibPort !== 1) throw new UsageError(`-i/--ib-port ${ibPort}: Unable to query port ${ibPort} attributes (the device has one port, 1)`);
  const gidIndex = (flags["gid-index"] as number | undefined) ?? 0;
  if (gidIndex !== 0) throw new UsageError(`-x/--gid-index ${gidIndex}: the device has one GID, index 0 (its address)`);
  const udpFlags = ["address", "port", "udp-port", "pcap", "wait"].filter((k) => flags[k] !== undefined);
  let udp: PerfUdpArgs | undefined;
  if (flags.all && flags.size !== undefined) throw new UsageError("-a/--all runs every size: drop -s/--size");
  if (flags.local) {
    if (flags.perftest || flags.rdma_cm || flags.comm_rdma_cm) throw new UsageError(`${flags.rdma_cm ? "-R/--rdma_cm" : flags.comm_rdma_cm ? "-z/--comm_rdma_cm" : "--perftest"} is a two-process mode (perftest's exchange with a peer); --local runs both sides here`);
    if (server !== undefined) throw new UsageError(`--local runs both sides here; it takes no server address (got '${server}')`);
    if (udpFlags.length) throw new UsageError(`--${udpFlags[0]} is for the two-process mode over UDP, not --local`);
  } else {
    const local = ["loss", "dup", "reorder", "corrupt", "delay", "rate", "verify", "seed"].filter((k) => flags[k] !== undefined && flags[k] !== false);
    if (local.length) throw new UsageError(`--${local[0]} applies to --local (the simulated wire) only`);
    if (flags.all && !perftestMode(flags)) {
      throw new UsageError("-a/--all between two processes runs with --perftest or -R (perftest's exchange, either peer); softroce perf's own exchange runs one size");
    }
    if (flags.duration !== undefined && !perftestMode(flags)) {
      throw new UsageError("-D/--duration between two processes runs with --perftest or -R (perftest's exchange, either peer); softroce perf's own exchange runs -n messages");
    }
    // perftest's --source_ip is an IPv4 address (inet_addr); the device binds it unless --address says otherwise
    const sourceIp = flags.source_ip as string | undefined;
    if (sourceIp !== undefined && !isIPv4(sourceIp)) throw new UsageError(`--source_ip wants an IPv4 address (perftest's), got '${sourceIp}'`);
    const address = (flags.address as string | undefined) ?? sourceIp ?? "127.0.0.1";
    if (!isIP(address)) throw new UsageError(`--address wants an IPv4 or IPv6 address, got '${address}'`);
    // -R and -z make the exchange's connection by rdma_cm, from the device's address
    const cmFlag = flags.rdma_cm === true ? "-R" : flags.comm_rdma_cm === true ? "-z" : undefined;
    if (sourceIp !== undefined && address !== sourceIp && cmFlag) {
      throw new UsageError(`--source_ip ${sourceIp} with ${cmFlag}: rdma_cm's source is the device's address (--address ${address}); give one of them`);
    }
    if (server !== undefined && server.trim() === "") throw new UsageError("the server host is empty");
    const tcpPort = (flags.port as number | undefined) ?? PERF_TCP_PORT;
    if (tcpPort === 0 && server !== undefined) throw new UsageError("-p/--port 0: the client needs the server's TCP port");
    udp = {
      server,
      address,
      udpPort: (flags["udp-port"] as number | undefined) ?? 4791,
      tcpPort,
      pcap: flags.pcap as string | undefined,
      waitMs: ((flags.wait as number | undefined) ?? 60) * 1000,
      ...(sourceIp !== undefined ? { sourceIp } : {}),
    };
  }
  const mtu = flags.mtu as number | undefined;
  if (mtu !== undefined && !(MTUS as readonly number[]).includes(mtu)) throw new UsageError(`-m/--mtu must be 256, 512, 1024, 2048 or 4096, got ${mtu}`);
  const rate = positive("rate", flags.rate as string | undefined, 10_000);
  const options: PerfOptions = {
    test: test as PerfTest,
    connection: flags.connection as "RC" | "UC" | "UD",
    size: flags.size as number | undefined,
    iterations: flags.iters as number | undefined,
    mtu,
    txDepth: flags["tx-depth"] as number | undefined,
    qps: flags.qp as number,
    atomicType: flags.atomic_type as "FETCH_AND_ADD" | "CMP_AND_SWAP" | undefined,
    faults: {
      loss: probability("loss", flags.loss as string | undefined),
      dup: probability("dup", flags.dup as string | undefined),
      reorder: probability("reorder", flags.reorder as string | undefined),
      corrupt: probability("corrupt", flags.corrupt as string | undefined),
      delayUs: positive("delay", flags.delay as string | undefined, 10_000_000),
      rateBps: rate === undefined ? undefined : rate * 1e9,
    },
    seed: (flags.seed as number | undefined) ?? 1,
    timeout: flags["qp-timeout"] as number,
    retryCnt: flags.retry as number,
    inlineSize: (flags.inline_size as number | undefined) ?? 0,
    verify: flags.verify === true,
    bidirectional: flags.bidirectional === true,
    mrPerQp: flags.mr_per_qp === true,
  };
  // perftest refuses -I on READ and atomics, whatever its value
  if (flags.inline_size !== undefined && readsResponses(options.test)) throw new UsageError(`-I/--inline_size: Inline feature not available on READ/Atomic verbs (${options.test})`);
  const atomic = perfVerb(options.test) === "atomic";
  if (options.atomicType !== undefined && !atomic) throw new UsageError("-A/--atomic_type applies to atomic_bw and atomic_lat only");
  if (flags.all && atomic) throw new UsageError(`-a/--all: ${options.test} has one size, ${ATOMIC_SIZE} bytes`);
  const perftest = perftestMode(flags);
  // perftest's -j is its --source_ip: `-j <ip>` would read here as --json and a server address
  if (flags.json && perftest) {
    throw new UsageError("-j/--json: with --perftest and -R the output is perftest's (its table, --out_json's file); perftest's -j is its source IP, --source_ip here");
  }
  if (flags.events && !perftest) throw new UsageError("-e/--events applies to --perftest and -R (perftest's events mode); softroce's waits for completions always sleep on the CQ's events");
  for (const f of FLAGS) {
    if (f.perftestOnly && flags[f.name] !== undefined && flags[f.name] !== false && !perftest) {
      throw new UsageError(`${f.short ? `-${f.short}/` : ""}--${f.name} applies to --perftest and -R (perftest's options)`);
    }
  }
  for (const [flag, name] of [["report-unsorted", "-U/--report-unsorted"], ["report-histogram", "-H/--report-histogram"]] as const) {
    if (flags[flag] && !perftest) throw new UsageError(`${name} applies to --perftest and -R (perftest's lists of latency measurements)`);
  }
  // perftest's -V prints and returns from its parser's loop: nothing after it is checked
  if (flags.version) return { ...base, options, help: false, version: true };
  const sizesAll = flags.all ? ALL_SIZES.filter((s) => options.connection !== "UD" || perftest || s <= (mtu ?? DEFAULT_MTU)) : undefined;
  const durationS = flags.duration as number | undefined;
  const gbits = flags.report_gbits === true;
  const inlineAsked = flags.inline_size !== undefined;
  // perftest's own checks and defaults (perftest-exchange.ts)
  const perftestRun =
    perftest && udp
      ? perftestOptions({ ...options, sizes: sizesAll, durationS, gbits, inlineAsked }, perftestFlagsFrom(flags), { ...udp, rdmaCm: flags.rdma_cm === true, cmExchange: flags.comm_rdma_cm === true })
      : undefined;
  // perftest takes a UD message larger than the path MTU down to it once it knows its port's MTU (perftest-exchange.ts)
  const checked = (o: PerfOptions): PerfOptions => (perftest ? { ...o, udSizeToMtu: true } : o);
  // softroce perf's own exchange runs RC only
  const ownExchange = udp !== undefined && !perftest;
  if (sizesAll) for (const size of sizesAll) resolveOrUsage(checked({ ...options, size }), ownExchange);
  else resolveOrUsage(checked(options), ownExchange);
  return { options, json: flags.json === true, help: false, udp, perftest: perftestRun, sizes: sizesAll, durationS, gbits, gidIndex, inlineAsked };
}

/** The perftest-only flags as perftestOptions takes them (-w and -y parsed here, as they are strings). */
function perftestFlagsFrom(flags: ParsedArgs["flags"]): PerftestFlags {
  return {
    events: flags.events === true,
    compVector: flags.vector as number | undefined,
    unsorted: flags["report-unsorted"] === true,
    cycles: flags["report-cycles"] === true,
    outReads: flags.outs as number | undefined,
    histogram: flags["report-histogram"] === true,
    cqMod: flags["cq-mod"] as number | undefined,
    postList: flags.post_list as number | undefined,
    recvPostList: flags.recv_post_list as number | undefined,
    rxDepth: flags["rx-depth"] as number | undefined,
    noPeak: flags.noPeak === true,
    warmUp: flags.perform_warm_up === true,
    limitBw: positive("limit_bw", flags.limit_bw as string | undefined, 1e9),
    limitMsgRate: positive("limit_msgrate", flags.limit_msgrate as string | undefined, 1e9),
    reportBoth: flags["report-both"] === true,
    output: flags.output as PerftestOutput | undefined,
    noRelaxedOrdering: flags.disable_pcie_relaxed === true,
    srq: flags["use-srq"] === true,
    tclass: flags.tclass as number | undefined,
    tos: flags.tos as number | undefined,
    marginS: flags.margin as number | undefined,
    infinite: flags.run_infinitely === true,
    latencyGapUs: flags.latency_gap as number | undefined,
    waitDestroyS: flags.wait_destroy as number | undefined,
    cpuUtil: flags.cpu_util === true,
    rateLimitStr: flags.rate_limit as string | undefined,
    rateUnits: flags.rate_units as RateUnits | undefined,
    rateLimitType: flags.rate_limit_type as RateLimitType | undefined,
    burstSize: flags.burst_size as number | undefined,
    pkeyIndex: flags.pkey_index as number | undefined,
    sl: flags.sl as number | undefined,
    hopLimit: flags.hop_limit as number | undefined,
    counters: flags["report-counters"] as string | undefined,
    ...forceLink(flags["force-link"] as string | undefined),
    gidIndexGiven: flags["gid-index"] !== undefined,
    reversed: flags.reversed === true,
    dontXchgVersions: flags.dont_xchg_versions === true,
    dualport: flags.dualport === true,
    // perftest takes --out_json_file only as the name --out_json writes to
    outJson: flags.out_json ? (flags.out_json_file as string | undefined) ?? PERFTEST_JSON_FILE : undefined,
  };
}

function resolveOrUsage(o: PerfOptions, udp: boolean): void {
  try {
    resolvePerfOptions(o);
    if (udp) rcOnly(o);
  } catch (e) {
    if (e instanceof PerfOptionError) throw new UsageError(e.message);
    throw e;
  }
}

/** Progress on stderr, only when it is a terminal (one line rewritten in place). */
function progressLine(io: Io): { show(line: string): void; end(): void } {
  const tty = process.stderr.isTTY === true;
  let shown = false;
  return {
    show(line) {
      if (!tty) return;
      shown = true;
      io.err(`\r${line} `);
    },
    end() {
      if (shown) io.err("\n");
      shown = false;
    },
  };
}

/** Fails fast, before any TCP listen, when the device's UDP address and port cannot be bound. */
async function checkUdpBind(u: PerfUdpArgs): Promise<void> {
  if (u.udpPort === 0) return;
  const dev = await openDevice({ address: u.address, port: u.udpPort });
  dev.close();
}

async function runUdp(a: PerfArgs, u: PerfUdpArgs, io: Io): Promise<number> {
  const { options, json } = a;
  const progress = progressLine(io);
  const recorder = u.pcap !== undefined ? toolRecorder() : undefined;
  let conn: PerfConnection | undefined;
  let connectedAt = 0;
  const header = (c: PerfConnection) =>
    perfHeader({
      test: c.options.test, connection: c.options.connection, qps: c.options.qps, txDepth: c.options.txDepth, mtu: c.mtu, inlineSize: c.options.inlineSize,
      bidirectional: c.options.bidirectional, atomicType: c.options.atomicType, gidIndex: a.gidIndex, device: DEVICE_NAME, link: "udp",
    }) + addressLines(c.options.test, c);
  const common: UdpPerfOptions = {
    address: u.address,
    udpPort: u.udpPort,
    tcpPort: u.tcpPort,
    timeoutMs: u.waitMs,
    pcap: recorder,
    onStatus: (line) => io.err(`softroce perf: ${line}\n`),
    // perftest prints these on stdout, before its header; --json keeps stdout for the object
    onNotice: (line) => (json ? io.err(`softroce perf: ${line}\n`) : io.out(`${line}\n`)),
    onConnected(c) {
      conn = c;
      connectedAt = performance.now();
      if (!json) io.out(header(c));
    },
    onProgress(p) {
      progress.show(`softroce perf: ${p.done}/${p.total} (${p.total ? Math.floor((100 * p.done) / p.total) : 0}%)`);
    },
  };
  const savePcap = async () => {
    if (!recorder) return;
    let line: string | undefined;
    try {
      line = writeCaptureFileQuietly(u.pcap!, recorder);
    } catch (e) {
      throw new InputError((e as Error).message);
    }
    if (line) io.err(`softroce perf: ${line}\n`);
  };
  try {
    await checkUdpBind(u);
    if (u.server === undefined) {
      const r = await servePerfUdp(options, common);
      const usec = Math.max(1, (performance.now() - connectedAt) * 1000);
      await savePcap();
      const o = conn?.options ?? resolvePerfOptions(options);
      const messages = o.iterations * o.qps;
      // -b: perftest's row is this side's stream plus the client's (print_full_bw_report)
      const both = r.bw?.mine && r.bw.peer ? sumBw(r.bw.mine, r.bw.peer) : undefined;
      if (json) {
        io.out(JSON.stringify({
          mode: "udp", role: "server", test: r.test, size_bytes: o.size, iterations: o.iterations, qps: o.qps, received: r.received, errors: r.errors, elapsed_usec: usec,
          ...(r.bw ? { bidirectional: true, ...(both ? bwJson(both) : {}), server_to_client: r.bw.mine ? bwJson(r.bw.mine) : null, client_to_server: r.bw.peer ? bwJson(r.bw.peer) : null } : {}),
          local: conn?.local, remote: conn?.remote,
        }) + "\n");
      } else if (!conn) {
        // no client connected: nothing to tabulate
      } else if (isBwTest(o.test)) {
        const mibps = (messages * o.size * 1e6) / usec / (1 << 20);
        const row = both ?? { bw_peak_mbps: mibps, bw_avg_mbps: mibps, msg_rate_mpps: messages / usec, duration_us: usec };
        io.out(tableHeader(o.test, a.gbits) + "\n" + tableRow(o.test, o.size, o.iterations, row, a.gbits, o.qps) + "\n" + PERF_RULE + "\n");
      } else {
        io.out(` (latency: the client's table)\n${PERF_RULE}\n`);
      }
      io.err(`softroce perf: server done: ${r.test}, received ${r.received}, errors ${r.errors}\n`);
      return r.errors ? 1 : 0;
    }
    const result = await runPerfUdp(options, { ...common, server: u.server });
    progress.end();
    await savePcap();
    if (json) io.out(JSON.stringify(perfJson(result, "udp", conn)) + "\n");
    else io.out(tableHeader(result.test, a.gbits) + "\n" + tableRow(result.test, result.bytes, result.iterations, result.wall, a.gbits, result.qps) + "\n" + PERF_RULE + "\n" + countsLine(result, false));
    if (!result.ok) {
      io.err(`softroce perf: FAILED: lost ${result.lost}, duplicated ${result.duplicated}, corrupted ${result.corrupted}, errors ${result.errors}\n`);
      return 1;
    }
    return 0;
  } catch (e) {
    progress.end();
    if (e instanceof PerfPeerError || e instanceof UdpBindError) {
      io.err(`softroce perf: ${e.message}${e instanceof UdpBindError ? "" : ""}\n`);
      return 1;
    }
    throw e;
  }
}

async function runLocal(a: PerfArgs, io: Io): Promise<number> {
  let mod: WebAssembly.Module;
  try {
    mod = await coreModule();
  } catch (e) {
    throw new InputError(`cannot load the device core build/softroce.wasm (run 'npm run build'): ${fsReason(e)}`);
  }
  const progress = progressLine(io);
  const one = async (o: PerfOptions): Promise<PerfResult> => {
    try {
      return await runPerf(mod, o, {
        progressEveryMs: 1000,
        onProgress(p) {
          if (p.wallMs < 1000) return;
          const pct = p.total ? Math.floor((100 * p.done) / p.total) : 0;
          progress.show(`softroce perf: ${p.done}/${p.total} (${pct}%) after ${(p.wallMs / 1000).toFixed(1)} s, virtual ${(p.virtualUs / 1e6).toFixed(3)} s`);
        },
      });
    } catch (e) {
      if (e instanceof PerfOptionError) throw new UsageError(e.message);
      throw e;
    } finally {
      progress.end();
    }
  };
  const runs: PerfOptions[] = a.sizes ? a.sizes.map((size) => ({ ...a.options, size })) : [a.options];
  const results: PerfResult[] = [];
  const first = resolvePerfOptions(runs[0]!);
  if (!a.json) {
    io.out(perfHeader({ test: first.test, connection: first.connection, qps: first.qps, txDepth: first.txDepth, mtu: first.mtu, inlineSize: first.inlineSize, bidirectional: first.bidirectional, atomicType: first.atomicType, gidIndex: a.gidIndex, device: DEVICE_NAME, link: "simulated" }));
    io.out(tableHeader(first.test, a.gbits) + "\n");
  }
  for (let o of runs) {
    if (a.durationS !== undefined) {
      // -D: a first run of -n messages says how many fit in the duration; then that many run
      const probe = await one(o);
      const perMs = (probe.iterations * probe.qps) / Math.max(1, probe.wall_ms);
      o = { ...o, iterations: Math.max(1, Math.min(10_000_000, Math.round((perMs * a.durationS * 1000) / (probe.qps || 1)))) };
    }
    const r = await one(o);
    results.push(r);
    if (!a.json) io.out(tableRow(r.test, r.bytes, r.iterations, r.clock === "wall" ? r.wall : r.sim!, a.gbits, r.qps) + "\n");
  }
  if (a.json) {
    const js = results.map((r) => perfJson(r, "local"));
    io.out(JSON.stringify(js.length === 1 ? js[0] : { mode: "local", runs: js }) + "\n");
  } else {
    io.out(PERF_RULE + "\n");
    for (const r of results) {
      if (results.length > 1) io.out(` ${r.bytes} bytes:\n`);
      const other = r.clock === "wall" ? r.sim : r.wall;
      io.out(r.clock === "wall" ? " (wall clock)" + (other ? "; on the virtual clock of the simulated wire:\n" : "\n") : " (virtual clock of the simulated wire, which has faults); on the wall clock:\n");
      if (other) io.out(tableRow(r.test, r.bytes, r.iterations, other, a.gbits, r.qps) + "\n");
      const f = r.faults;
      io.out(` faults: loss ${f.loss} dup ${f.dup} reorder ${f.reorder} corrupt ${f.corrupt} delay ${f.delayUs}us rate ${f.rateBps ? `${f.rateBps / 1e9}Gb/s` : "unlimited"} seed ${r.seed}\n`);
      io.out(countsLine(r, true));
    }
    io.out(PERF_RULE + "\n");
  }
  const bad = results.filter((r) => !r.ok);
  for (const c of bad) {
    io.err(`softroce perf: FAILED${results.length > 1 ? ` (${c.bytes} bytes)` : ""}: lost ${c.lost}, duplicated ${c.duplicated}, corrupted ${c.corrupted}, errors ${c.errors}` + (c.verify ? `, verified ${c.verified} of ${c.messages}` : "") + "\n");
  }
  return bad.length ? 1 : 0;
}

export const perfCommand: Command = {
  name: "perf",
  summary: "perftest's bandwidth and latency tests (two processes over UDP, or --local on the simulated wire)",
  async run(argv: string[], io: Io): Promise<number> {
    const a = perfOptionsFromArgs(argv);
    if (a.help) {
      io.out(HELP);
      return 0;
    }
    if (a.version) {
      io.out(`Version: ${PERFTEST_VERSION}\n`);
      return 1;
    }
    if (a.perftest) return runPerftest(a.perftest, io);
    if (a.udp) return runUdp(a, a.udp, io);
    return runLocal(a, io);
  },
};
