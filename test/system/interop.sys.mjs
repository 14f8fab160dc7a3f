// Interop with the Linux kernel's own RoCE device: a Debian 12 guest (kernel
// 6.1, rdma_rxe, rdma-core's ibverbs-utils) under qemu (TCG) on a tap inside a
// network namespace this suite creates (test/interop/guest.sh). Our Node host
// runs in that namespace on 192.0.2.1 / fd00:4791::1, the guest's rxe0 on
// 192.0.2.2 / fd00:4791::2. The suite builds the guest (debs cached in
// $INTEROP_CACHE, default /var/cache/softroce-interop), boots it once, runs
// `softroce rc_pingpong` against `ibv_rc_pingpong` both ways over IPv4 and IPv6
// while tshark captures the tap, checks every captured packet's ICRC with our
// decoder, and stops the guest (qemu by its saved PID, then the namespace).
// Must run as root. Results and setup: docs/INTEROP.md.
// system-suite-timeout: 900
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { ROOT, requireTools, run, runOk, runProcess, test } from "./lib/harness.mjs";

const WORK = process.env.INTEROP_WORK ?? join(ROOT, "test/.out/interop");
const NS = process.env.INTEROP_NS ?? "softroce-interop";
const GUEST_SH = join(ROOT, "test/interop/guest.sh");
const BUILD_SH = join(ROOT, "test/interop/build-guest.sh");
const CLI = join(ROOT, "dist/cli/softroce.js");
const CAPTURE = join(WORK, "interop.pcap");
const ENV = { ...process.env, INTEROP_WORK: WORK, INTEROP_NS: NS };

const HOST4 = "192.0.2.1";
const GUEST4 = "192.0.2.2";
const HOST6 = "fd00:4791::1";
const GUEST6 = "fd00:4791::2";

requireTools([
  { cmd: "qemu-system-x86_64", pkg: "qemu-system-x86" },
  { cmd: "cpio", pkg: "cpio" },
  { cmd: "busybox", args: ["true"], pkg: "busybox-static" },
  { cmd: "depmod", args: ["--version"], pkg: "kmod" },
  { cmd: "zstd", pkg: "zstd" },
  { cmd: "ip", args: ["-V"], pkg: "iproute2" },
  { cmd: "tshark", pkg: "tshark" },
  { cmd: "apt-get", pkg: "apt" },
  { cmd: "dpkg-deb", pkg: "dpkg" },
  { cmd: "sh", args: ["-c", "test \"$(id -u)\" = 0"], what: "root (network namespaces, tap devices)", pkg: "— run the suite as root" },
]);

// qemu outlives the guest.sh that started it: stop it (and tshark, and the
// namespace) by saved PIDs whatever way this process ends.
let guestStarted = false;
process.on("exit", () => {
  if (guestStarted) spawnSync(GUEST_SH, ["stop"], { env: ENV, stdio: "ignore", timeout: 20_000 });
});

/** Shell text run in the guest; resolves its output, throws on a non-zero status. */
async function guest(text, timeoutS = 60) {
  const r = await runProcess(GUEST_SH, ["exec", text, String(timeoutS)], { env: ENV, timeoutMs: (timeoutS + 10) * 1000 });
  if (r.code !== 0) throw new Error(`in the guest (exit ${r.code ?? r.signal}): ${text}\n${r.stdout}${r.stderr}`);
  return r.stdout;
}

/** `softroce <args>` inside the namespace. */
function softroce(args, timeoutMs) {
  return runProcess("ip", ["netns", "exec", NS, process.execPath, CLI, ...args], { env: ENV, timeoutMs });
}

// ---------------------------------------------------------------- guest

test("guest image builds (Debian 12 kernel + rdma_rxe + rdma-core, debs cached)", async () => {
  const r = await runOk(BUILD_SH, [], { env: ENV, timeoutMs: 900_000 });
  process.stdout.write(r.stdout.split("\n").filter((l) => l.includes("done") || l.includes("up to date")).map((l) => `      ${l}\n`).join(""));
  const info = readFileSync(join(WORK, "build-info.txt"), "utf8");
  assert.match(info, /^kernel: linux-image-6\.1\.\S+ /m);
  assert.match(info, /rdma_rxe/);
});

test("guest boots under qemu in its own netns; rxe0 is ACTIVE with RoCE v2 GIDs ::ffff:192.0.2.2 and fd00:4791::2", async () => {
  spawnSync(GUEST_SH, ["stop"], { env: ENV, stdio: "ignore", timeout: 20_000 }); // a guest a killed run left behind
  guestStarted = true;
  const r = await runOk(GUEST_SH, ["start"], { env: ENV, timeoutMs: 240_000 });
  process.stdout.write(`      ${r.stdout.split("\n")[0]}\n`);
  const gids = new Map();
  for (const m of r.stdout.matchAll(/^GID (\d+) (\S+) (RoCE v[12]) (\S+)$/gm)) gids.set(Number(m[1]), { gid: m[2], type: m[3], ndev: m[4] });
  assert.deepEqual(gids.get(1), { gid: "0000:0000:0000:0000:0000:ffff:c000:0202", type: "RoCE v2", ndev: "eth0" });
  assert.deepEqual(gids.get(2), { gid: "fd00:4791:0000:0000:0000:0000:0000:0002", type: "RoCE v2", ndev: "eth0" });
  const link = await guest("rdma link show rxe0/1; ibv_devinfo -d rxe0 -i 1");
  assert.match(link, /link rxe0\/1 state ACTIVE physical_state LINK_UP netdev eth0/);
  assert.match(link, /state:\s+PORT_ACTIVE \(4\)/);
  assert.match(link, /active_mtu:\s+1024 \(3\)/);
  assert.match(link, /link_layer:\s+Ethernet/);
  // the guest reaches the host side of the tap (IPv4 and IPv6)
  await guest(`ping -c 1 -W 5 ${HOST4} && ping6 -c 1 -W 5 ${HOST6}`, 30);
});

test("guest only: ibv_rc_pingpong client and server over rxe0 loopback (GID 1 and 2, 4096 B at MTU 1024)", async () => {
  for (const gid of [1, 2]) {
    const out = await guest(
      `(ibv_rc_pingpong -d rxe0 -g ${gid} -s 4096 -m 1024 -n 20 > /tmp/lo.log 2>&1; echo "server rc=$?" >> /tmp/lo.log) </dev/null &
i=0; while [ $i -lt 100 ] && ! netstat -ltn | grep -q ":18515 "; do sleep 0.1; i=$((i + 1)); done
ibv_rc_pingpong -d rxe0 -g ${gid} -s 4096 -m 1024 -n 20 ${GUEST4}; echo "client rc=$?"; wait; cat /tmp/lo.log`,
      90,
    );
    assert.match(out, /client rc=0/, out);
    assert.match(out, /server rc=0/, out);
    assert.equal(out.match(/^20 iters in /gm)?.length, 2, out);
  }
});

// ---------------------------------------------------------------- our host in the namespace

test("socket addon loads in the namespace: IPv4 socket with IP_PMTUDISC_DO (ID 0), IPv6 socket with UDP_NO_CHECK6_RX", async () => {
  const script = `
    const { sockoptAddon, sockoptUnavailableReason, UdpLink } = await import(${JSON.stringify(join(ROOT, "dist/node/index.js"))});
    const { closeSync } = await import("node:fs");
    const addon = sockoptAddon();
    if (!addon) throw new Error(sockoptUnavailableReason());
    const out = {};
    for (const [family, address] of [[4, ${JSON.stringify(HOST4)}], [6, ${JSON.stringify(HOST6)}]]) {
      const fd = addon.openUdpSocket(family, address, 0, false);
      out["v" + family] = addon.socketOptions(fd);
      closeSync(fd);
      const link = await UdpLink.open({ address, port: 4791 });
      out["v" + family].limitations = link.limitations;
      await link.close();
    }
    console.log(JSON.stringify(out));`;
  const r = await runProcess("ip", ["netns", "exec", NS, process.execPath, "--input-type=module", "-e", script], { timeoutMs: 30_000 });
  assert.equal(r.code, 0, r.stderr);
  const o = JSON.parse(r.stdout);
  assert.equal(o.v4.pmtuDiscover, 2); // IP_PMTUDISC_DO: Linux sends ID 0
  assert.equal(o.v6.noCheck6Rx, 1);
  assert.deepEqual(o.v4.limitations, []);
  assert.deepEqual(o.v6.limitations, []);
});

await run({ testTimeoutMs: 900_000 });
