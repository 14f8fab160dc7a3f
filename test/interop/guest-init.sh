#!/bin/sh
# /init of the interop guest (build-guest.sh installs it): brings up eth0 and
# rxe0 (Linux rdma_rxe), prints the GID table, starts the control shell on
# TCP 7000 (one /bin/sh per connection, used by guestexec.mjs) and a shell on the serial console, and prints
# "== GUEST-READY". The guest then idles until the host kills qemu.
# Kernel command line: rxe.ip4=192.0.2.2/24 rxe.ip6=fd00:4791::2/64 rxe.mtu=1500
export PATH=/usr/sbin:/usr/bin:/sbin:/bin
mount -t proc proc /proc; mount -t sysfs sys /sys; mount -t devtmpfs dev /dev
mkdir -p /dev/pts /dev/shm; mount -t devpts devpts /dev/pts
mount -t tmpfs tmp /tmp; mount -t tmpfs run /run; mount -t tmpfs shm /dev/shm
up() { read u _ < /proc/uptime; echo "$u"; }
echo "== GUEST-INIT uptime=$(up)"
IP4=192.0.2.2/24; IP6=fd00:4791::2/64; MTU=1500
for a in $(cat /proc/cmdline); do
  case "$a" in rxe.ip4=*) IP4=${a#*=};; rxe.ip6=*) IP6=${a#*=};; rxe.mtu=*) MTU=${a#*=};; esac
done
hostname rxeguest
# Debian's static busybox shell prefers its own applets to PATH: call iproute2 by path
# (busybox ip knows no `nodad`).
ip() { /usr/bin/ip "$@"; }
for m in virtio_pci virtio_net crc32_pclmul crc32_generic rdma_rxe ib_uverbs rdma_ucm ib_umad af_packet; do
  modprobe $m 2>/dev/null || echo "== modprobe $m failed"
done
ulimit -l unlimited
ip link set lo up
sysctl -qw net.ipv6.conf.all.accept_dad=0 net.ipv6.conf.default.accept_dad=0 2>/dev/null
sysctl -qw net.ipv6.conf.eth0.accept_dad=0 net.ipv6.conf.eth0.router_solicitations=0 2>/dev/null
ip link set eth0 mtu "$MTU" up
ip addr add "$IP4" dev eth0
ip -6 addr add "$IP6" dev eth0 nodad
/usr/bin/rdma link add rxe0 type rxe netdev eth0 && echo "== rxe0 created uptime=$(up)"
# The GID table fills in asynchronously: wait (<= 10 s) for the link-local, IPv4 and IPv6 entries.
# (Forks are slow under TCG: read sysfs with the shell's read builtin.)
P=/sys/class/infiniband/rxe0/ports/1; Z=0000:0000:0000:0000:0000:0000:0000:0000
i=0
while [ $i -lt 100 ]; do
  read g0 < $P/gids/0; read g1 < $P/gids/1; read g2 < $P/gids/2
  [ "$g0" != $Z ] && [ "$g1" != $Z ] && [ "$g2" != $Z ] && break
  sleep 0.1; i=$((i + 1))
done
echo "== GID table (index gid type ndev)"
for g in $P/gids/*; do
  idx=${g##*/}; read gid < "$g"
  [ "$gid" = $Z ] && continue
  read typ < $P/gid_attrs/types/$idx; read ndev < $P/gid_attrs/ndevs/$idx
  echo "GID $idx $gid $typ $ndev"
done
setsid nc -ll -p 7000 -e /bin/sh </dev/null >/dev/null 2>&1 &
# A way in that does not go through eth0: a shell on the serial console (guest.sh gives qemu's serial
# port a socket, interop-guest.mjs's console()), so a guest that stopped answering on its NIC can
# still say whether its kernel runs and what eth0 has seen.
# (A line at a time, not an interactive shell: no prompt or line editing in the serial log.)
setsid sh -c 'while read -r line; do eval "$line"; done </dev/ttyS0 >/dev/ttyS0 2>&1' &
echo "== GUEST-READY uptime=$(up)"
while :; do sleep 3600; done
