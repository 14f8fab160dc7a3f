#!/bin/bash
# Starts, drives and stops the interop guest (build it first with build-guest.sh).
#
#   guest.sh start                 netns + tap, boot qemu (TCG) in the background, wait for GUEST-READY
#   guest.sh exec 'shell text' [timeout_s]   run shell text in the guest (control shell, TCP 7000)
#   guest.sh capture-start FILE [MAXLEN]  tshark on the tap (UDP 4791 only) -> FILE (pcap), in the background;
#                                  with MAXLEN only the frames of at most MAXLEN bytes
#   guest.sh capture-stop          stop that tshark (by saved PID), print its packet count
#   guest.sh ns CMD ...            run CMD inside the netns
#   guest.sh stop                  stop tshark and qemu by their saved PIDs, delete the netns
#   guest.sh status
#
# Network: everything stays inside netns $INTEROP_NS (default softroce-interop):
#   tap0 (host side)  192.0.2.1/24  fd00:4791::1/64   <- the Node host runs here: guest.sh ns node ...
#   guest eth0        192.0.2.2/24  fd00:4791::2/64   rxe0 on eth0: GID 1 ::ffff:192.0.2.2, GID 2 fd00:4791::2
# Env: INTEROP_WORK (default test/.out/interop), INTEROP_NS, INTEROP_ACCEL (tcg | kvm, default tcg),
#      INTEROP_BOOT_TIMEOUT (s, default 180), INTEROP_MEM (MB, default 768).
#      INTEROP_RUN (this run's directory, default $INTEROP_WORK/run; the system suites give each run its own).
# Files in $INTEROP_RUN: serial.log (the console's output), serial.sock (the console: a shell on it), qemu.pid,
#   qemu.out, tshark.pid, tshark.err
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT_DIR="$(cd "$HERE/../.." && pwd)"
WORK="${INTEROP_WORK:-$ROOT_DIR/test/.out/interop}"; RUN="${INTEROP_RUN:-$WORK/run}"
NS="${INTEROP_NS:-softroce-interop}"; TAP=tap0
GUEST4=192.0.2.2
mkdir -p "$RUN"

nsx() { ip netns exec "$NS" "$@"; }
has_ns() { ip netns list | awk '{print $1}' | grep -qx "$NS"; }
# PID from FILE if that process is still alive and its command name matches
live_pid() { local f=$1 name=$2 pid; [ -s "$f" ] || return 1; pid=$(cat "$f")
  kill -0 "$pid" 2>/dev/null && [[ "$(cat "/proc/$pid/comm" 2>/dev/null)" == "$name"* ]] && echo "$pid"; }
stop_pid() { local pid=$1; kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 30); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done; kill -KILL "$pid" 2>/dev/null || true; }

netns_up() {
  has_ns || ip netns add "$NS"
  ip -n "$NS" link set lo up
  ip -n "$NS" link show "$TAP" >/dev/null 2>&1 || nsx ip tuntap add dev "$TAP" mode tap
  nsx sysctl -qw net.ipv6.conf.all.accept_dad=0 net.ipv6.conf.default.accept_dad=0 "net.ipv6.conf.$TAP.accept_dad=0"
  ip -n "$NS" link set "$TAP" up
  ip -n "$NS" addr replace 192.0.2.1/24 dev "$TAP"
  ip -n "$NS" -6 addr replace fd00:4791::1/64 dev "$TAP" nodad
}

capture_stop() {
  local pid
  if pid=$(live_pid "$RUN/tshark.pid" tshark); then
    stop_pid "$pid"
    # tshark flushes on SIGTERM; its dumpcap child goes with it
  fi
  rm -f "$RUN/tshark.pid"
  local f; f=$(cat "$RUN/tshark.file" 2>/dev/null || true)
  if [ -n "$f" ] && [ -f "$f" ]; then echo "capture: $f $(stat -c %s "$f") bytes"; fi
  rm -f "$RUN/tshark.file"
}

stop_all() {
  capture_stop >/dev/null
  local pid
  if pid=$(live_pid "$RUN/qemu.pid" qemu-system); then stop_pid "$pid"; fi
  rm -f "$RUN/qemu.pid"
  if has_ns; then ip netns del "$NS"; fi
  echo "stopped (netns $NS deleted)"
}

start() {
  [ -s "$WORK/vmlinuz" ] && [ -s "$WORK/initrd.cpio" ] || { echo "no guest image in $WORK: run test/interop/build-guest.sh" >&2; exit 1; }
  if live_pid "$RUN/qemu.pid" qemu-system >/dev/null; then echo "a guest is running already (pid $(cat "$RUN/qemu.pid")): guest.sh stop" >&2; exit 1; fi
  local accel=${INTEROP_ACCEL:-tcg} acc
  # No usable KVM on the machines this ran on (kvm_pvm cannot boot a stock kernel): TCG by default.
  if [ "$accel" = kvm ]; then acc=(-accel kvm -cpu host); else acc=(-accel tcg,thread=multi -cpu max); fi
  netns_up
  rm -f "$RUN/serial.log" "$RUN/serial.sock"
  local t0; t0=$(date +%s.%N)
  # `ip netns exec` execs qemu, so $! is qemu's PID
  ip netns exec "$NS" qemu-system-x86_64 "${acc[@]}" -machine q35 -smp 1 -m "${INTEROP_MEM:-768}" -nographic \
    -monitor none -chardev "socket,id=ser0,path=$RUN/serial.sock,server=on,wait=off,logfile=$RUN/serial.log" -serial chardev:ser0 -no-reboot -kernel "$WORK/vmlinuz" -initrd "$WORK/initrd.cpio" \
    -append "console=ttyS0 panic=-1 loglevel=4" \
    -netdev "tap,id=n0,ifname=$TAP,script=no,downscript=no" -device "virtio-net-pci,netdev=n0,mac=52:54:00:47:91:02" \
    </dev/null >"$RUN/qemu.out" 2>&1 &
  echo $! > "$RUN/qemu.pid"
  local limit=$(( ${INTEROP_BOOT_TIMEOUT:-180} * 5 ))
  for _ in $(seq "$limit"); do
    grep -q "== GUEST-READY" "$RUN/serial.log" 2>/dev/null && break
    if ! kill -0 "$(cat "$RUN/qemu.pid")" 2>/dev/null; then
      echo "qemu exited during boot:" >&2; cat "$RUN/qemu.out" >&2; tail -20 "$RUN/serial.log" >&2 || true; stop_all >&2; exit 1
    fi
    sleep 0.2
  done
  if ! grep -q "== GUEST-READY" "$RUN/serial.log"; then
    echo "guest not ready after ${INTEROP_BOOT_TIMEOUT:-180} s:" >&2; tail -20 "$RUN/serial.log" >&2; stop_all >&2; exit 1
  fi
  printf 'GUEST-READY after %.1f s (%s, qemu pid %s, netns %s)\n' "$(awk "BEGIN{print $(date +%s.%N) - $t0}")" \
    "$accel" "$(cat "$RUN/qemu.pid")" "$NS"
  grep -E '^(GID |== )' "$RUN/serial.log" | tr -d '\r'
}

capture_start() {
  local f=$1 filter="udp port 4791"
  [ -n "${2:-}" ] && filter="$filter and less $2"
  capture_stop >/dev/null
  rm -f "$f" "$RUN/tshark.err"
  ip netns exec "$NS" tshark -q -n -i "$TAP" -f "$filter" -F pcap -w "$f" </dev/null >/dev/null 2>"$RUN/tshark.err" &
  echo $! > "$RUN/tshark.pid"; echo "$f" > "$RUN/tshark.file"
  for _ in $(seq 100); do grep -q "Capturing on" "$RUN/tshark.err" 2>/dev/null && break; sleep 0.1; done
  grep -q "Capturing on" "$RUN/tshark.err" || { echo "tshark did not start:" >&2; cat "$RUN/tshark.err" >&2; exit 1; }
  echo "capturing on $TAP -> $f"
}

case "${1:-}" in
  start) start;;
  stop) stop_all;;
  exec) shift; [ $# -ge 1 ] || { echo "exec 'shell text' [timeout_s]" >&2; exit 2; }
        exec ip netns exec "$NS" node "$HERE/guestexec.mjs" "$GUEST4" "$1" "${2:-60}";;
  capture-start) shift; capture_start "${1:?capture-start FILE [MAXLEN]}" "${2:-}";;
  capture-stop) capture_stop;;
  ns) shift; exec ip netns exec "$NS" "$@";;
  status) if pid=$(live_pid "$RUN/qemu.pid" qemu-system); then echo "qemu running, pid $pid"; else echo "no qemu"; fi
          has_ns && echo "netns $NS" || echo "no netns $NS";;
  *) sed -n '2,18p' "$0"; exit 2;;
esac
