#!/bin/bash
# Builds the interop guest: a Debian 12 kernel plus an initramfs holding the
# kernel's rdma_rxe and rdma-core's tools (ibverbs-utils, perftest, rdmacm-utils),
# and our own test tools from tools/*.c when this host can compile them.
#
#   test/interop/build-guest.sh
#
# Packages come from Debian's repositories with `apt-get download` and are kept
# in $INTEROP_CACHE (default /var/cache/softroce-interop/debs) so a re-run only
# unpacks. Output, in $INTEROP_WORK (default test/.out/interop):
#   vmlinuz, initrd.cpio (uncompressed newc, base image), build-info.txt, tools/ (compiled tools)
# The image is rebuilt only when it is older than this script, guest-init.sh or tools/*.c
# (INTEROP_REBUILD=1 forces it). INTEROP_REFRESH=1 re-resolves the package list and downloads what changed.
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT_DIR="$(cd "$HERE/../.." && pwd)"
WORK="${INTEROP_WORK:-$ROOT_DIR/test/.out/interop}"
CACHE="${INTEROP_CACHE:-/var/cache/softroce-interop}"
DEBS="$CACHE/debs"; KDIR="$WORK/kernel"; RFS="$WORK/rootfs"
mkdir -p "$DEBS" "$WORK"

# user space in the guest (its dependency closure is resolved below)
USERPKGS="libc6 busybox-static kmod iproute2 ibverbs-utils ibverbs-providers libibverbs1 perftest rdmacm-utils librdmacm1"
# modules the guest loads (their dependencies are added by modprobe --show-depends)
# (+ tc, for the suites' in-flight header rewrites and drops)
MODULES="virtio_net virtio_pci rdma_rxe ib_uverbs rdma_ucm ib_umad crc32_generic crc32_pclmul af_packet
  sch_ingress cls_u32 act_pedit act_csum act_gact"

log() { echo "[build-guest] $*"; }
need() { command -v "$1" >/dev/null || { echo "build-guest: missing host tool $1 (apt-get install $2)" >&2; exit 1; }; }
need apt-get apt; need dpkg-deb dpkg; need cpio cpio; need depmod kmod; need modprobe kmod; need ldconfig libc-bin
need busybox busybox-static

# Our own guest tools (tools/*.c) are compiled on this host against Debian 12's rdma-core headers
# (libibverbs-dev, librdmacm-dev: the same release as the guest's libraries, so the dynamically
# linked binaries run there) when a compiler and the headers are present; without them the image
# is built without the tools.
can_build_tools() { command -v cc >/dev/null && [ -f /usr/include/infiniband/verbs.h ]; }
# Nothing to do when the image is newer than this script, /init, the package list and the tools' sources
# (and holds the tools whenever they can be built).
up_to_date() {
  [ "${INTEROP_REBUILD:-0}" != 1 ] && [ -s "$WORK/initrd.cpio" ] && [ -s "$WORK/vmlinuz" ] && [ -s "$CACHE/packages.txt" ] || return 1
  local f
  for f in "$HERE/build-guest.sh" "$HERE/guest-init.sh" "$CACHE/packages.txt" "$HERE"/tools/*.c; do
    [ -e "$f" ] || continue
    [ "$WORK/initrd.cpio" -nt "$f" ] || return 1
  done
  if can_build_tools && ! grep -q '^tools: .' "$WORK/build-info.txt" 2>/dev/null; then return 1; fi
  return 0
}
if up_to_date; then
  log "up to date: $WORK/initrd.cpio (INTEROP_REBUILD=1 rebuilds)"; exit 0
fi

# ---- package list (cached: the closure is the same from one run to the next)
if [ "${INTEROP_REFRESH:-0}" = 1 ] || [ ! -s "$CACHE/kernel-package.txt" ] || [ ! -s "$CACHE/packages.txt" ]; then
  kpkg=$(apt-cache depends linux-image-amd64 | awk '/Depends: linux-image-[0-9]/{print $2; exit}')
  [ -n "$kpkg" ] || { echo "build-guest: apt-cache knows no linux-image-amd64 (run apt-get update)" >&2; exit 1; }
  echo "$kpkg" > "$CACHE/kernel-package.txt"
  apt-cache depends --recurse --no-recommends --no-suggests --no-conflicts --no-breaks --no-replaces --no-enhances \
      $USERPKGS | grep -v '^[ <]' | sort -u > "$CACHE/packages.txt"
fi
KPKG=$(cat "$CACHE/kernel-package.txt")
mapfile -t PKGS < "$CACHE/packages.txt"
missing=()
for p in "${PKGS[@]}" "$KPKG"; do
  compgen -G "$DEBS/${p}_*.deb" >/dev/null || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  log "downloading ${#missing[@]} packages into $DEBS"
  (cd "$DEBS" && timeout 900 apt-get download -q -o APT::Sandbox::User=root "${missing[@]}")
fi
deb_of() { local f; f=$(compgen -G "$DEBS/${1}_*.deb" | sort -V | tail -1); [ -n "$f" ] || { echo "no deb for $1" >&2; exit 1; }; echo "$f"; }

# ---- kernel
KDEB=$(deb_of "$KPKG")
if [ ! -f "$KDIR/.unpacked" ] || [ "$KDEB" -nt "$KDIR/.unpacked" ]; then
  log "unpacking $(basename "$KDEB")"
  rm -rf "$KDIR"; mkdir -p "$KDIR"
  dpkg-deb -x "$KDEB" "$KDIR"
  touch "$KDIR/.unpacked"
fi
KVER=$(ls "$KDIR/lib/modules" | head -1)
# the Debian kernel package carries no modules.dep
[ -s "$KDIR/lib/modules/$KVER/modules.dep" ] || depmod -b "$KDIR" "$KVER"
cp "$KDIR/boot/vmlinuz-$KVER" "$WORK/vmlinuz"

# ---- root file system (merged /usr, as an installed bookworm)
log "root file system from ${#PKGS[@]} packages"
rm -rf "$RFS"; mkdir -p "$RFS"/usr/{bin,sbin,lib,lib64}
for d in bin sbin lib lib64; do ln -s "usr/$d" "$RFS/$d"; done
for p in "${PKGS[@]}"; do
  dpkg-deb --fsys-tarfile "$(deb_of "$p")" | tar -x --keep-directory-symlink -C "$RFS"
done
rm -rf "$RFS"/usr/share/{doc,man,info,locale,lintian,bug,zoneinfo} "$RFS"/usr/lib/x86_64-linux-gnu/gconv
# busybox applets for every command no package provided
for a in $(busybox --list); do
  [ -e "$RFS/usr/bin/$a" ] || [ -e "$RFS/usr/sbin/$a" ] || ln -s busybox "$RFS/usr/bin/$a"
done
mkdir -p "$RFS"/{proc,sys,dev,tmp,run,root,etc,var/log}
echo "root:x:0:0:root:/root:/bin/sh" > "$RFS/etc/passwd"
echo "root:x:0:" > "$RFS/etc/group"
printf '127.0.0.1 localhost\n192.0.2.1 host\n192.0.2.2 rxeguest\n' > "$RFS/etc/hosts"
ldconfig -r "$RFS"

mkdir -p "$RFS/lib/modules/$KVER"
cp "$KDIR/lib/modules/$KVER"/modules.{order,builtin,builtin.modinfo} "$RFS/lib/modules/$KVER/" 2>/dev/null || true
modlist=$(for m in $MODULES; do
  modprobe -d "$KDIR" -S "$KVER" --show-depends "$m" | awk '$1=="insmod"{print $2}'
done | sort -u)
for f in $modlist; do
  rel=${f#"$KDIR"}; mkdir -p "$RFS$(dirname "$rel")"; cp "$f" "$RFS$rel"
done
depmod -b "$RFS" "$KVER"
install -m 755 "$HERE/guest-init.sh" "$RFS/init"

# ---- our guest tools -> /usr/bin (on the guest shell's PATH); lib*.c: LD_PRELOAD shims -> /usr/lib
tools=""
if can_build_tools; then
  mkdir -p "$WORK/tools"
  for src in "$HERE"/tools/*.c; do
    [ -e "$src" ] || continue
    name=$(basename "$src" .c); libs="-libverbs"
    if grep -q '<rdma/rdma_cma.h>' "$src"; then
      [ -f /usr/include/rdma/rdma_cma.h ] || { log "skipping $name: no librdmacm-dev"; continue; }
      libs="$libs -lrdmacm"
    fi
    case "$name" in
      lib*) # an LD_PRELOAD shim -> /usr/lib/<name>.so
        cc -O2 -Wall -Wextra -Werror -shared -fPIC -o "$WORK/tools/$name.so" "$src" -ldl $libs
        install -m 755 "$WORK/tools/$name.so" "$RFS/usr/lib/$name.so"
        tools="$tools $name.so" ;;
      *)
        cc -O2 -Wall -Wextra -Werror -o "$WORK/tools/$name" "$src" $libs
        install -m 755 "$WORK/tools/$name" "$RFS/usr/bin/$name"
        tools="$tools $name" ;;
    esac
  done
else
  log "no cc or libibverbs-dev on this host: the image has no tools/ binaries"
fi

# ---- image
(cd "$RFS" && find . -print0 | LC_ALL=C sort -z | cpio --null -o -H newc --reproducible --quiet) > "$WORK/initrd.cpio"
ver() { dpkg-deb -f "$(deb_of "$1")" Version; }
{
  echo "kernel: $KPKG $(ver "$KPKG") ($KVER)"
  echo "rdma-core: ibverbs-utils $(ver ibverbs-utils), rdma_rxe from the kernel; perftest $(ver perftest); iproute2 $(ver iproute2)"
  echo "modules: $(for f in $modlist; do basename "$f" .ko; done | tr '\n' ' ')"
  echo "tools:$tools"
} > "$WORK/build-info.txt"
rm -rf "$RFS"
log "done: $WORK/vmlinuz, $WORK/initrd.cpio ($(du -h "$WORK/initrd.cpio" | cut -f1), $(echo "$modlist" | wc -w) modules)"
