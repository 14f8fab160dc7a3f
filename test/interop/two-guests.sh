#!/bin/bash
# Two interop guests (A, B), each Linux rdma_rxe, on one bridge inside a private network namespace:
# kernel rxe <-> kernel rxe, for captures of real Linux traffic. Uses the image build-guest.sh makes.
#
#   two-guests.sh start                      boot A and B (background qemu, TCG), wait for both GUEST-READY
#   two-guests.sh exec A|B 'shell text' [s]  run shell text in guest A or B (control shell, TCP 7000)
#   two-guests.sh capture-start NAME [bpf]   tshark on br0 -> $RUN/NAME.pcap (pcap format)
#                                            default filter: udp port 4791 or (tcp and not port 7000)
#   two-guests.sh capture-stop               stop that tshark (by saved PID), print its packet count
#   two-guests.sh pair NAME 'server cmd' 'client cmd'
#                                            server cmd in A (background; '' for none), capture, then
#                                            client cmd in B, wait for the server, stop the capture.
#                                            Logs: $RUN/NAME.{server,client}.{out,err} (stdout and
#                                            stderr apart), NAME.{server,client}.rc. The commands may
#                                            use $A4 $B4 $A6 $B6 (the guests' addresses).
#                                            Env: PRE_A / PRE_B shell text run first in A / B;
#                                            SERVER_WAIT (s, default 3), CLIENT_TIMEOUT (s, default 120),
#                                            SERVER_DONE_WAIT (s, default 60; then the server is killed),
#                                            CAPTURE_FILTER (bpf, default as for capture-start).
#   two-guests.sh status | stop              stop: tshark and both qemu by saved PID, delete the netns
#
# Network (everything inside netns $INTEROP_NS, default sr-cap2g; nothing leaves it):
#   br0   192.0.2.1/24  fd00:4791::1/64   (bridge, promiscuous; host end of the control shells only)
#   tapa -> guest A  eth0 52:54:00:47:91:02  192.0.2.2/24  fd00:4791::2/64  rxe0 (GID 1 ::ffff:192.0.2.2, GID 2 fd00:4791::2)
#   tapb -> guest B  eth0 52:54:00:47:91:03  192.0.2.3/24  fd00:4791::3/64  rxe0 (GID 1 ::ffff:192.0.2.3, GID 2 fd00:4791::3)
# The bridge forwards A<->B; being promiscuous, br0 also sees those frames, so a capture on br0 has
# both directions. Env: INTEROP_WORK (default test/.out/interop), INTEROP_NS, INTEROP_MEM (MB, default 768),
# INTEROP_BOOT_TIMEOUT (s, default 300). Files: $INTEROP_WORK/2g/{A,B}/{serial.log,qemu.pid,qemu.out},
# $INTEROP_WORK/2g/NAME.pcap and logs, tshark.pid.
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT_DIR="$(cd "$HERE/../.." && pwd)"
WORK="${INTEROP_WORK:-$ROOT_DIR/test/.out/interop}"; RUN="$WORK/2g"
NS="${INTEROP_NS:-sr-cap2g}"; BR=br0
declare -A IP4=([A]=192.0.2.2 [B]=192.0.2.3) IP6=([A]=fd00:4791::2 [B]=fd00:4791::3)
declare -A MAC=([A]=52:54:00:47:91:02 [B]=52:54:00:47:91:03) TAP=([A]=tapa [B]=tapb)
ADDRS="A4=${IP4[A]} B4=${IP4[B]} A6=${IP6[A]} B6=${IP6[B]}"
mkdir -p "$RUN/A" "$RUN/B"

nsx() { ip netns exec "$NS" "$@"; }
has_ns() { ip netns list | awk '{print $1}' | grep -qx "$NS"; }
# PID from FILE if that process is alive and its command name starts with NAME
live_pid() { local f=$1 name=$2 pid; [ -s "$f" ] || return 1; pid=$(cat "$f")
  kill -0 "$pid" 2>/dev/null && [[ "$(cat "/proc/$pid/comm" 2>/dev/null)" == "$name"* ]] && echo "$pid"; }
stop_pid() { local pid=$1; kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done; kill -KILL "$pid" 2>/dev/null || true; }

netns_up() {
  has_ns || ip netns add "$NS"
  ip -n "$NS" link set lo up
  nsx sysctl -qw net.ipv6.conf.all.accept_dad=0 net.ipv6.conf.default.accept_dad=0
  ip -n "$NS" link show "$BR" >/dev/null 2>&1 || ip -n "$NS" link add "$BR" type bridge stp_state 0
  # no multicast snooping: the bridge floods IPv4/IPv6 multicast (rdma_cm joins send no IGMP/MLD on RoCE)
  nsx ip link set "$BR" type bridge mcast_snooping 0
  for g in A B; do
    local t=${TAP[$g]}
    ip -n "$NS" link show "$t" >/dev/null 2>&1 || nsx ip tuntap add dev "$t" mode tap
    nsx sysctl -qw "net.ipv6.conf.$t.disable_ipv6=1" || true     # bridge ports carry no addresses
    ip -n "$NS" link set "$t" master "$BR" up
  done
  ip -n "$NS" link set "$BR" promisc on up
  ip -n "$NS" addr replace 192.0.2.1/24 dev "$BR"
  ip -n "$NS" -6 addr replace fd00:4791::1/64 dev "$BR" nodad
}

capture_stop() {
  local pid f
  if pid=$(live_pid "$RUN/tshark.pid" tshark); then stop_pid "$pid"; fi   # tshark flushes on SIGTERM
  rm -f "$RUN/tshark.pid"
  f=$(cat "$RUN/tshark.file" 2>/dev/null || true); rm -f "$RUN/tshark.file"
  if [ -n "$f" ] && [ -f "$f" ]; then
    echo "capture stopped: $f ($(capinfos -c -M "$f" 2>/dev/null | awk '/Number of packets/{print $NF}') packets, $(stat -c %s "$f") bytes)"
  fi
}

stop_all() {
  capture_stop >/dev/null
  local g pid
  for g in A B; do
    if pid=$(live_pid "$RUN/$g/qemu.pid" qemu-system); then stop_pid "$pid"; fi
    rm -f "$RUN/$g/qemu.pid"
  done
  if has_ns; then ip netns del "$NS"; fi
  echo "stopped (qemu A and B, netns $NS deleted)"
}

gexec() {  # gexec A|B 'text' [timeout_s]
  local g=$1
  case "$g" in A|B) ;; *) echo "exec: guest must be A or B" >&2; return 2;; esac
  nsx node "$HERE/guestexec.mjs" "${IP4[$g]}" "$ADDRS; $2" "${3:-120}"
}

start() {
  [ -s "$WORK/vmlinuz" ] && [ -s "$WORK/initrd.cpio" ] || { echo "no guest image in $WORK: run test/interop/build-guest.sh" >&2; exit 1; }
  local g
  for g in A B; do
    if live_pid "$RUN/$g/qemu.pid" qemu-system >/dev/null; then echo "guest $g is running already: two-guests.sh stop" >&2; exit 1; fi
  done
  local accel=${INTEROP_ACCEL:-tcg} acc
  # No usable KVM on the machines this ran on (kvm_pvm cannot boot a stock kernel): TCG by default.
  if [ "$accel" = kvm ]; then acc=(-accel kvm -cpu host); else acc=(-accel tcg,thread=multi -cpu max); fi
  netns_up
  local t0; t0=$(date +%s.%N)
  for g in A B; do
    rm -f "$RUN/$g/serial.log"
    # `ip netns exec` execs qemu, so $! is qemu's PID
    ip netns exec "$NS" qemu-system-x86_64 "${acc[@]}" -machine q35 -smp 1 -m "${INTEROP_MEM:-768}" -nographic \
      -monitor none -serial "file:$RUN/$g/serial.log" -no-reboot -kernel "$WORK/vmlinuz" -initrd "$WORK/initrd.cpio" \
      -append "console=ttyS0 panic=-1 loglevel=4 rxe.ip4=${IP4[$g]}/24 rxe.ip6=${IP6[$g]}/64" \
      -netdev "tap,id=n0,ifname=${TAP[$g]},script=no,downscript=no" -device "virtio-net-pci,netdev=n0,mac=${MAC[$g]}" \
      </dev/null >"$RUN/$g/qemu.out" 2>&1 &
    echo $! > "$RUN/$g/qemu.pid"
    echo "guest $g: qemu pid $! ($accel) ${IP4[$g]} ${IP6[$g]} ${MAC[$g]} on ${TAP[$g]}"
  done
  local limit=$(( ${INTEROP_BOOT_TIMEOUT:-300} * 5 )) ok
  for _ in $(seq "$limit"); do
    ok=0
    for g in A B; do
      grep -q "== GUEST-READY" "$RUN/$g/serial.log" 2>/dev/null && ok=$((ok + 1))
      if ! live_pid "$RUN/$g/qemu.pid" qemu-system >/dev/null; then
        echo "qemu $g exited during boot:" >&2; cat "$RUN/$g/qemu.out" >&2; tail -20 "$RUN/$g/serial.log" >&2 || true
        stop_all >&2; exit 1
      fi
    done
    [ $ok = 2 ] && break
    sleep 0.2
  done
  for g in A B; do
    if ! grep -q "== GUEST-READY" "$RUN/$g/serial.log"; then
      echo "guest $g not ready after ${INTEROP_BOOT_TIMEOUT:-300} s:" >&2; tail -20 "$RUN/$g/serial.log" >&2; stop_all >&2; exit 1
    fi
  done
  printf 'both GUEST-READY after %.1f s (%s, netns %s)\n' "$(awk "BEGIN{print $(date +%s.%N) - $t0}")" "$accel" "$NS"
  for g in A B; do echo "  $g: $(grep -E '^GID [12] ' "$RUN/$g/serial.log" | tr -d '\r' | tr '\n' ' ')"; done
}

capture_start() {
  local name=$1 filter=${2:-"udp port 4791 or (tcp and not port 7000)"}
  capture_stop >/dev/null
  local f="$RUN/$name.pcap"; rm -f "$f" "$RUN/tshark.err"
  # started directly so that $! is tshark itself (`ip netns exec` execs it)
  ip netns exec "$NS" tshark -q -n -i "$BR" -f "$filter" -F pcap -w "$f" </dev/null >/dev/null 2>"$RUN/tshark.err" &
  echo $! > "$RUN/tshark.pid"; echo "$f" > "$RUN/tshark.file"
  for _ in $(seq 100); do grep -q "Capturing on" "$RUN/tshark.err" 2>/dev/null && break; sleep 0.1; done
  grep -q "Capturing on" "$RUN/tshark.err" || { echo "tshark did not start:" >&2; cat "$RUN/tshark.err" >&2; return 1; }
  echo "capturing on $BR -> $f (filter: $filter)"
}

pair() {  # pair NAME 'server cmd' 'client cmd'
  local name=$1 scmd=$2 ccmd=$3 i
  rm -f "$RUN/$name".{pcap,server.out,server.err,server.rc,client.out,client.err,client.rc}
  [ -n "${PRE_A:-}" ] && gexec A "$PRE_A"
  [ -n "${PRE_B:-}" ] && gexec B "$PRE_B"
  gexec A "rm -f /tmp/srv.out /tmp/srv.err /tmp/srv.rc /tmp/srv.pid" >/dev/null
  capture_start "$name" "${CAPTURE_FILTER:-}"
  if [ -n "$scmd" ]; then
    echo "### A (server): $scmd"
    gexec A "cd /tmp; ( { $scmd; } </dev/null >/tmp/srv.out 2>/tmp/srv.err; echo \$? > /tmp/srv.rc ) </dev/null >/dev/null 2>&1 &
             echo \$! > /tmp/srv.pid" >/dev/null
    sleep "${SERVER_WAIT:-3}"
  fi
  echo "### B (client): $ccmd"
  set +e
  gexec B "cd /tmp; rm -f /tmp/cli.out /tmp/cli.err; ( $ccmd ) </dev/null >/tmp/cli.out 2>/tmp/cli.err; echo \$? > /tmp/cli.rc" \
    "${CLIENT_TIMEOUT:-120}" >/dev/null
  if [ -n "$scmd" ]; then
    i=0
    while [ $i -lt "${SERVER_DONE_WAIT:-60}" ]; do gexec A "test -s /tmp/srv.rc" 10 && break; sleep 1; i=$((i + 1)); done
    # a server that did not end by itself: kill its process group's members by the saved PID of the subshell
    gexec A 'test -s /tmp/srv.rc || { p=$(cat /tmp/srv.pid); for c in $(cat /proc/$p/task/*/children 2>/dev/null); do kill $c; done; sleep 1; echo killed > /tmp/srv.rc; }' >/dev/null
  fi
  sleep 1
  capture_stop
  gexec B "cat /tmp/cli.out" > "$RUN/$name.client.out"; gexec B "cat /tmp/cli.err" > "$RUN/$name.client.err"
  gexec B "cat /tmp/cli.rc 2>/dev/null || echo none" > "$RUN/$name.client.rc"
  if [ -n "$scmd" ]; then
    gexec A "cat /tmp/srv.out" > "$RUN/$name.server.out"; gexec A "cat /tmp/srv.err" > "$RUN/$name.server.err"
    gexec A "cat /tmp/srv.rc 2>/dev/null || echo none" > "$RUN/$name.server.rc"
  fi
  set -e
  echo "client rc=$(cat "$RUN/$name.client.rc")${scmd:+ server rc=$(cat "$RUN/$name.server.rc")}"
}

case "${1:-}" in
  start) start;;
  stop) stop_all;;
  exec) shift; [ $# -ge 2 ] || { echo "exec A|B 'shell text' [timeout_s]" >&2; exit 2; }; gexec "$@";;
  capture-start) shift; capture_start "${1:?capture-start NAME [filter]}" "${2:-}";;
  capture-stop) capture_stop;;
  pair) shift; [ $# = 3 ] || { echo "pair NAME 'server cmd' 'client cmd'" >&2; exit 2; }; pair "$@";;
  status) for g in A B; do
            if pid=$(live_pid "$RUN/$g/qemu.pid" qemu-system); then echo "$g running, pid $pid"; else echo "$g not running"; fi
          done
          has_ns && echo "netns $NS" || echo "no netns $NS";;
  *) sed -n '2,30p' "$0"; exit 2;;
esac
