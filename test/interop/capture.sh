#!/bin/bash
# Re-makes the connection-management, perftest, memory-window and multicast captures in
# test/fixtures/captures/{cm,perftest,mw,mcast}/: real Linux rdma_rxe <-> rdma_rxe traffic between
# the two guests of two-guests.sh (server in A, started first; client in B; tshark on the bridge).
#
#   capture.sh list                 the recipes: NAME GROUP, server command, client command
#   capture.sh run [NAME...]        make the named captures (default: all) into $INTEROP_WORK/2g
#                                   (guests must be up: two-guests.sh start)
#   capture.sh install [NAME...]    copy NAME.pcap and its logs into test/fixtures/captures/GROUP/
#   capture.sh all                  build-guest.sh, two-guests.sh start, run, install, two-guests.sh stop
#
# Logs per capture: GROUP/logs/NAME.{server,client}.{out,err} (stdout and stderr apart) and .rc.
# Commands run in the guests' busybox shell; $A4 $B4 $A6 $B6 are the guests' IPv4/IPv6 addresses.
# Run as root (network namespace, tap devices, qemu). Env as for two-guests.sh.
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT_DIR="$(cd "$HERE/../.." && pwd)"
WORK="${INTEROP_WORK:-$ROOT_DIR/test/.out/interop}"; RUN="$WORK/2g"
DEST="${CAPTURE_DEST:-$ROOT_DIR/test/fixtures/captures}"
TG="$HERE/two-guests.sh"

NAMES=(); declare -A GROUP SCMD CCMD XENV
# r NAME GROUP 'server command' 'client command' [VAR=value ...]   (server '' = no server)
r() { local n=$1; NAMES+=("$n"); GROUP[$n]=$2; SCMD[$n]=$3; CCMD[$n]=$4; shift 4; XENV[$n]="${*:-}"; }

# ---- (a) connection management: rdma_cm over ib_cm MADs on QP1
r rping-v4        cm 'rping -s -v -C 5 -S 64'            'rping -c -a $A4 -v -C 5 -S 64'
r rping-v6        cm 'rping -s -a $A6 -v -C 5 -S 64'     'rping -c -a $A6 -v -C 5 -S 64'
r ucmatose-v4     cm 'ucmatose'                          'ucmatose -s $A4'
r ucmatose-v6     cm 'ucmatose -b $A6'                   'ucmatose -s $A6'
r ucmatose-v4-c2  cm 'ucmatose -c 2'                     'ucmatose -s $A4 -c 2'
r udaddy-v4       cm 'udaddy'                            'udaddy -s $A4'
r udaddy-v6       cm 'udaddy -b $A6'                     'udaddy -s $A6'
# a listener on rping's default port 7174, the client asks for 7175: REJ from A's ib_cm
r reject-port     cm 'rping -s -v -C 5 -S 64'            'rping -c -a $A4 -p 7175 -v -C 1 -S 64' SERVER_DONE_WAIT=3
# no rdma_cm listener at all in A
r reject-nolistener cm ''                                'rping -c -a $A4 -v -C 1 -S 64'
# MRA: the server process is stopped (SIGSTOP) before the REQ arrives and continued 14 s later.
# rdma_cm asks ib_cm for a delayed MRA (sent only on a duplicate REQ); B's ib_cm resends the REQ
# when its response timeout expires, A answers that with the MRA, then REP once rping runs again.
r mra             cm 'rping -s -v -C 1 -S 64 & p=$!; sleep 1; kill -STOP $p; sleep 14; kill -CONT $p; wait $p' \
                     'rping -c -a $A4 -v -C 1 -S 64'
# MADs ib_cm does not handle (tools/mad-probe.c): Get(ClassPortInfo) and others to A's QP1
r mad-probe       cm ''                                  'mad-probe -t 1000 -r 1 $A4'

# ---- perftest: rdma_cm (-R) and its own TCP exchange (port 18515). A perftest server can take
# more than 3 s under TCG before it listens (a client that comes too early gets a REJ): wait 8 s.
W=SERVER_WAIT=8
for t in write_bw read_bw send_bw; do
  r "$t-rdmacm" perftest "ib_$t -d rxe0 -R -s 4096 -m 1024 -n 5 -F" "ib_$t -d rxe0 -R -s 4096 -m 1024 -n 5 -F \$A4" $W
  r "$t-tcp"    perftest "ib_$t -d rxe0 -x 1 -s 4096 -m 1024 -n 5 -F" "ib_$t -d rxe0 -x 1 -s 4096 -m 1024 -n 5 -F \$A4" $W
done
r atomic_bw-rdmacm perftest 'ib_atomic_bw -d rxe0 -R -m 1024 -n 5 -F' 'ib_atomic_bw -d rxe0 -R -m 1024 -n 5 -F $A4' $W
r atomic_bw-tcp    perftest 'ib_atomic_bw -d rxe0 -x 1 -m 1024 -n 5 -F' 'ib_atomic_bw -d rxe0 -x 1 -m 1024 -n 5 -F $A4' $W
for t in write_lat read_lat send_lat; do
  r "$t-rdmacm" perftest "ib_$t -d rxe0 -R -s 64 -m 1024 -n 5 -F" "ib_$t -d rxe0 -R -s 64 -m 1024 -n 5 -F \$A4" $W
  r "$t-tcp"    perftest "ib_$t -d rxe0 -x 1 -s 64 -m 1024 -n 5 -F" "ib_$t -d rxe0 -x 1 -s 64 -m 1024 -n 5 -F \$A4" $W
done

# ---- (b) memory windows and invalidation (tools/verbs-ops.c), TCP exchange on port 18517
for s in mw2-inv mw1 local-inv inv-type1 inv-mr; do
  r "$s" mw "verbs-ops -t $s -g 1" "verbs-ops -t $s -g 1 \$A4"
done
r mw2-inv-v6 mw 'verbs-ops -t mw2-inv -g 2' 'verbs-ops -t mw2-inv -g 2 $A4'

# ---- (b) UD multicast through rdma_cm (mckey): A joins and receives, B joins and sends.
# The filter also keeps IGMP and ICMPv6 (rdma_cm's IGMP/MLD reports for the join).
MCF='udp port 4791 or (tcp and not port 7000) or igmp or icmp6'
r mckey-v4 mcast 'mckey -m 239.1.1.1 -b $A4 -C 3'   'mckey -m 239.1.1.1 -b $B4 -s -C 3'   "CAPTURE_FILTER=$MCF"
r mckey-v6 mcast 'mckey -m ff0e::4791:1 -b $A6 -C 3' 'mckey -m ff0e::4791:1 -b $B6 -s -C 3' "CAPTURE_FILTER=$MCF"

known() { [ -n "${GROUP[$1]:-}" ] || { echo "capture.sh: no recipe $1 (capture.sh list)" >&2; exit 2; }; }

run_one() {
  local n=$1
  echo "=== $n (${GROUP[$n]})"
  (
    if [ -n "${XENV[$n]}" ]; then export "${XENV[$n]%%=*}=${XENV[$n]#*=}"; fi
    "$TG" pair "$n" "${SCMD[$n]}" "${CCMD[$n]}"
  )
}

install_one() {
  local n=$1 g=${GROUP[$1]} f
  [ -s "$RUN/$n.pcap" ] || { echo "capture.sh: no $RUN/$n.pcap (capture.sh run $n)" >&2; exit 1; }
  mkdir -p "$DEST/$g/logs"
  cp "$RUN/$n.pcap" "$DEST/$g/$n.pcap"
  for f in client.out client.err client.rc server.out server.err server.rc; do
    if [ -f "$RUN/$n.$f" ]; then cp "$RUN/$n.$f" "$DEST/$g/logs/$n.$f"; else rm -f "$DEST/$g/logs/$n.$f"; fi
  done
  echo "installed $g/$n.pcap"
}

cmd=${1:-}; [ $# -gt 0 ] && shift
sel=("$@"); [ ${#sel[@]} -gt 0 ] || sel=("${NAMES[@]}")
for n in "${sel[@]}"; do known "$n"; done
case "$cmd" in
  list) for n in "${sel[@]}"; do printf '%-18s %-8s | %s | %s%s\n' "$n" "${GROUP[$n]}" "${SCMD[$n]:-(none)}" "${CCMD[$n]}" "${XENV[$n]:+ | ${XENV[$n]}}"; done;;
  run) for n in "${sel[@]}"; do run_one "$n"; done;;
  install) for n in "${sel[@]}"; do install_one "$n"; done;;
  all)
    "$HERE/build-guest.sh"
    trap '"$TG" stop' EXIT
    "$TG" start
    for n in "${sel[@]}"; do run_one "$n"; done
    for n in "${sel[@]}"; do install_one "$n"; done;;
  *) sed -n '2,16p' "$0"; exit 2;;
esac
