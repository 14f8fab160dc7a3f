// The address handle's path attributes and each QP's UDP source port on the wire, for both Node UDP
// paths (the native datapath and node:dgram): inside a network namespace of its own, two devices on
// 127.0.0.1 / 127.0.0.2 (and two IPv6 addresses on lo) exchange UD datagrams whose address handles set a hop
// limit, a traffic class and a flow label, and an RC WRITE; tshark captures lo (each GSO segment its own frame). Checked per
// datagram: the native path's TTL / hop limit and TOS / traffic class are the address handle's (per-datagram cmsgs), and
// its IPv6 flow label too (sin6_flowinfo with IPV6_FLOWINFO_SEND; 0 stays 0: IPV6_AUTOFLOWLABEL off; our decoder and tshark), the
// UDP source port is the sending QP's (rxe's: 0xC000 + hash_32(qpn, 14) for UD, rdma_get_udp_sport
// for RC), and every ICRC recomputes over the headers as captured. Needs root (a namespace) and tshark.
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { ROOT, requireTools, run, runProcess, tempDir, test } from "./lib/harness.mjs";

const CLI = join(ROOT, "dist/cli/softroce.js");
const NS = `sr-path-${process.pid}`;

requireTools([
  { cmd: "tshark", args: ["--version"], pkg: "tshark" },
  { cmd: "ip", args: ["-V"], pkg: "iproute2" },
]);

function sh(...args) {
  const r = spawnSync(args[0], args.slice(1), { encoding: "utf8", timeout: 30_000 });
  if (r.status !== 0) throw new Error(`${args.join(" ")}: ${(r.stderr || r.error?.message || "").trim()}`);
  return r.stdout;
}
function teardown() {
  spawnSync("ip", ["netns", "del", NS], { stdio: "ignore" });
}
process.on("exit", teardown);

/** The program run in the namespace: devices on `a` and `b`, UD sends with path attributes, one RC WRITE; prints JSON. */
const PROGRAM = `
import { openDevice, connectQp, QpType, WrOpcode, SendFlags, WcStatus, Access } from ${JSON.stringify(join(ROOT, "dist/node/index.js"))};
const [a1, a2, datapath] = process.argv.slice(2);
const A = await openDevice({ address: a1, datapath });
const B = await openDevice({ address: a2, datapath });
const out = { datapath, ud: [], rc: {} };
const side = (d, qpType) => {
  const pd = d.allocPd(), cq = d.createCq(64);
  const qp = pd.createQp({ qpType, sendCq: cq, recvCq: cq, cap: { maxSendWr: 16, maxRecvWr: 16, maxSendSge: 1, maxRecvSge: 1 } });
  return { d, pd, cq, qp, mr: pd.regMr(65536, Access.LOCAL_WRITE | Access.REMOTE_WRITE) };
};
const ua = side(A, QpType.UD), ub = side(B, QpType.UD);
connectQp(ua.qp, undefined, { sqPsn: 0 });
connectQp(ub.qp, undefined, { sqPsn: 0 });
for (const [hopLimit, trafficClass, flowLabel] of [[7, 0x28, 0x12345], [64, 0, 0], [200, 0xb8, 0xfffff]]) {
  const ah = ua.pd.createAh({ grh: { dgid: B.queryGid(0), sgidIndex: 0, hopLimit, trafficClass, flowLabel }, isGlobal: true, portNum: 1 });
  ub.qp.postRecv({ wrId: 1n, sgList: [ub.mr.sge(0, 4096)] });
  ua.qp.postSend({ wrId: 2n, opcode: WrOpcode.SEND, sendFlags: SendFlags.SIGNALED, sgList: [ua.mr.sge(0, 100)], ud: { ah, remoteQpn: ub.qp.qpNum, remoteQkey: 0x11111111 } });
  if ((await ua.cq.next()).status !== WcStatus.SUCCESS || (await ub.cq.next()).status !== WcStatus.SUCCESS) throw new Error("UD send failed");
  out.ud.push({ hopLimit, trafficClass, flowLabel, qpn: ua.qp.qpNum, sport: ua.qp.udpSourcePort });
}
const ra = side(A, QpType.RC), rb = side(B, QpType.RC);
const acc = Access.LOCAL_WRITE | Access.REMOTE_WRITE;
connectQp(ra.qp, { qpNum: rb.qp.qpNum, psn: 0, gid: B.queryGid(0) }, { sqPsn: 0, qpAccessFlags: acc });
connectQp(rb.qp, { qpNum: ra.qp.qpNum, psn: 0, gid: A.queryGid(0) }, { sqPsn: 0, qpAccessFlags: acc });
ra.qp.postSend({ wrId: 3n, opcode: WrOpcode.RDMA_WRITE, sendFlags: SendFlags.SIGNALED, sgList: [ra.mr.sge(0, 3000)], rdma: { remoteAddr: rb.mr.addr, rkey: rb.mr.rkey } });
if ((await ra.cq.next()).status !== WcStatus.SUCCESS) throw new Error("RC WRITE failed");
out.rc = { qpnA: ra.qp.qpNum, qpnB: rb.qp.qpNum, sportA: ra.qp.udpSourcePort, sportB: rb.qp.udpSourcePort };
A.close();
B.close();
console.log(JSON.stringify(out));
`;

function rxeSport(a, b) {
  let v = BigInt(a) * BigInt(b);
  v ^= v >> 20n;
  v ^= v >> 40n;
  const fl = Number(v & 0xfffffn);
  return 0xc000 | ((fl & 0x3fff) ^ (fl >> 14));
}
const createSport = (qpn) => 0xc000 + Number(((BigInt(qpn) * 0x61c88647n) & 0xffffffffn) >> 18n);

async function waitFor(cond, ms, what) {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Runs the program in the namespace while tshark captures lo; its JSON and our decoder's packets. */
async function exchange(a1, a2, datapath) {
  const dir = tempDir("path");
  const pcap = join(dir, "lo.pcap");
  const prog = join(dir, "prog.mjs");
  writeFileSync(prog, PROGRAM);
  const cap = runProcess("ip", ["netns", "exec", NS, "tshark", "-i", "lo", "-F", "pcap", "-w", pcap, "-f", "udp dst port 4791", "-a", "duration:12"], { timeoutMs: 40_000 });
  await waitFor(() => existsSync(pcap) && statSync(pcap).size >= 24, 15_000, "tshark to start capturing");
  const r = await runProcess("ip", ["netns", "exec", NS, process.execPath, prog, a1, a2, datapath], { timeoutMs: 60_000 });
  await cap; // tshark stops after its 12 s
  assert.equal(r.code, 0, `program: exit ${r.code}\n${r.stdout}${r.stderr}`);
  const out = JSON.parse(r.stdout.trim().split("\n").pop());
  const d = await runProcess(process.execPath, [CLI, "decode", "--pcap", pcap, "--json"], { timeoutMs: 60_000 });
  const packets = d.stdout.trim().split("\n").filter(Boolean).map((l) => JSON.parse(l));
  // tshark's own reading of the IPv6 flow labels, frame by frame
  const t = await runProcess("tshark", ["-r", pcap, "-T", "fields", "-e", "frame.number", "-e", "ipv6.flow"], { timeoutMs: 60_000 });
  const flows = new Map(t.stdout.trim().split("\n").filter(Boolean).map((l) => l.split("\t")).map(([n, f]) => [Number(n), f ? Number(f) : undefined]));
  return { out, packets, flows };
}

const A6 = "fd00:4791:77::1", B6 = "fd00:4791:77::2";

test(`setup: a namespace with lo up (127.0.0.1, 127.0.0.2, ${A6}, ${B6}), segmenting GSO sends before the capture`, () => {
  if (process.getuid?.() !== 0) throw new Error("network namespaces need root (run the system suite as root)");
  teardown();
  sh("ip", "netns", "add", NS);
  for (const a of [A6, B6]) sh("ip", "-n", NS, "-6", "addr", "add", `${a}/128`, "dev", "lo", "nodad");
  // loopback passes a GSO send whole (the receiver's GRO takes it so): one segment per frame for tshark
  sh("ip", "-n", NS, "link", "set", "lo", "gso_max_segs", "1");
  sh("ip", "-n", NS, "link", "set", "lo", "up");
  assert.match(sh("ip", "-n", NS, "-d", "link", "show", "lo"), /gso_max_segs 1 /);
});

for (const datapath of ["native", "dgram"]) {
  for (const [a1, a2] of [["127.0.0.1", "127.0.0.2"], [A6, B6]]) {
    const v6 = a1.includes(":");
    test(`${datapath}, ${v6 ? "IPv6" : "IPv4"}: source ports are the QPs' (rxe's), ${datapath === "native" ? `TTL and TOS${v6 ? " and flow label" : ""} the address handle's, ` : ""}every ICRC recomputes`, async () => {
      const { out, packets, flows } = await exchange(a1, a2, datapath);
      assert.ok(packets.length >= 5, `only ${packets.length} packets captured`);
      const bad = packets.filter((p) => p.icrc_ok !== true);
      assert.deepEqual(bad.map((p) => `#${p["frame.number"]} ${p.opcode_name} id ${p["ip.id"]} sport ${p["udp.srcport"]} icrc ${p.icrc} expected ${p.icrc_expected}`), [], "bad ICRCs");
      const ttl = (p) => (v6 ? p["ipv6.hlim"] : p["ip.ttl"]);
      const tos = (p) => (v6 ? p["ipv6.tclass"] : p["ip.dsfield"]);
      const ud = packets.filter((p) => p["infiniband.bth.opcode"] === 0x64);
      assert.equal(ud.length, 3, "three UD SENDs");
      ud.forEach((p, i) => {
        const want = out.ud[i];
        assert.equal(p["udp.srcport"], createSport(want.qpn), `UD ${i}: source port`);
        assert.equal(want.sport, createSport(want.qpn));
        if (datapath === "native") {
          assert.equal(ttl(p), want.hopLimit, `UD ${i}: TTL / hop limit`);
          assert.equal(tos(p), want.trafficClass, `UD ${i}: TOS / traffic class`);
          // the GRH flow label (IPV6_FLOWINFO_SEND + sin6_flowinfo), 0 kept 0 (IPV6_AUTOFLOWLABEL off)
          if (v6) assert.deepEqual([p["ipv6.flow"], flows.get(p["frame.number"])], [want.flowLabel, want.flowLabel], `UD ${i}: IPv6 flow label (ours, tshark's)`);
        }
      });
      const rc = packets.filter((p) => p["infiniband.bth.opcode"] < 0x20);
      assert.ok(rc.length >= 2, "the RC WRITE and its ACK");
      const pair = rxeSport(out.rc.qpnA, out.rc.qpnB);
      assert.deepEqual([out.rc.sportA, out.rc.sportB], [pair, pair]);
      for (const p of rc) assert.equal(p["udp.srcport"], pair, `RC ${p.opcode_name}: source port, rxe's for the QPN pair`);
      if (datapath === "native") for (const p of rc) assert.equal(ttl(p), 64, "RC at the default hop limit");
      // the RC QPs' address vectors carry flow label 0: no label made up by the kernel
      if (datapath === "native" && v6) for (const p of rc) assert.deepEqual([p["ipv6.flow"], flows.get(p["frame.number"])], [0, 0], `RC ${p.opcode_name}: IPv6 flow label`);
    });
  }
}

await run();
