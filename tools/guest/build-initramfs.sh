#!/bin/bash
# Build the nested-KVM GPU fence proof guest: a Debian kernel with a real
# DRM driver (virtio-gpu) and a small initramfs holding busybox, the
# collector's gpu_fence.bpf.o and the static in-guest program
# (mmv-guest-fence.c), which attaches the fence programs, submits
# virtio-gpu work with fences and prints the histograms on the serial port.
# Where the kernel package has the DRM GPU scheduler module (gpu-sched), it
# is added with the collector's gpu_sched.bpf.o and mmv-guest-sched.c, which
# attaches the gpu_sched programs after the fence proof.
#
# Usage: tools/guest/build-initramfs.sh OUTDIR
#   OUTDIR/vmlinuz and OUTDIR/initramfs.cpio.gz are written; downloaded
#   packages are cached in OUTDIR/cache.
# Needs: apt-get (Debian archive), dpkg-deb, gzip, cc, libbpf-dev,
# libelf-dev, zlib1g-dev, libdrm-dev (headers), clang and bpftool (for the
# BPF object, built by multimodal_virt.collector.bpf.build).
# tools/guest/fence_proof.py boots the result with qemu-system-x86_64.
set -euo pipefail

OUT=${1:?usage: build-initramfs.sh OUTDIR}
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
PYTHON=${PYTHON:-$REPO/.venv/bin/python}
KERNEL_META=${MMV_GUEST_KERNEL_PACKAGE:-linux-image-amd64}
# The DRM driver and what it needs, loaded in this order.
MODULES=(virtio_pci virtio-gpu)
# Optional: the DRM GPU scheduler (its tracepoints; virtio-gpu does not use it).
SCHED_MODULE=gpu-sched

mkdir -p "$OUT/cache"
OUT=$(cd "$OUT" && pwd)
CACHE=$OUT/cache
STAGE=$OUT/stage
ROOT=$OUT/root

say() { echo "[build-initramfs] $*" >&2; }

fetch() {
    # $1: package name; leaves the .deb in $CACHE.
    if ! ls "$CACHE/$1"_*.deb >/dev/null 2>&1; then
        say "apt-get download $1"
        (cd "$CACHE" && apt-get download "$1" >/dev/null 2>&1) || {
            say "cannot download $1 (is the Debian archive reachable?)"
            exit 1
        }
    fi
    ls "$CACHE/$1"_*.deb | head -n 1
}

kernel_pkg=$(apt-cache depends "$KERNEL_META" |
             awk '/Depends: linux-image-[0-9]/ {print $2; exit}')
[ -n "$kernel_pkg" ] || { say "no kernel image behind $KERNEL_META"; exit 1; }
kernel_deb=$(fetch "$kernel_pkg")
busybox_deb=$(fetch busybox-static)

rm -rf "$STAGE" "$ROOT"
mkdir -p "$STAGE" "$ROOT"/{bin,dev,proc,sys,tmp}
dpkg-deb -x "$kernel_deb" "$STAGE/kernel"
dpkg-deb -x "$busybox_deb" "$STAGE/busybox"
release=$(basename "$(ls -d "$STAGE"/kernel/lib/modules/*)")
cp "$STAGE/kernel/boot/vmlinuz-$release" "$OUT/vmlinuz"
cp "$STAGE/busybox/bin/busybox" "$ROOT/bin/busybox"

# Modules: the transitive closure of MODULES from a depmod'ed tree.
moddir=$STAGE/kernel/lib/modules/$release
"$ROOT/bin/busybox" depmod -b "$STAGE/kernel" "$release"
declare -A want=()
queue=()
for name in "${MODULES[@]}"; do
    path=$(find "$moddir/kernel" -name "$name.ko" | head -n 1)
    [ -n "$path" ] || { say "module $name not in $kernel_pkg"; exit 1; }
    queue+=("${path#"$moddir/"}")
done
sched_path=$(find "$moddir/kernel" -name "$SCHED_MODULE.ko" | head -n 1)
if [ -n "$sched_path" ]; then
    queue+=("${sched_path#"$moddir/"}")
else
    say "no $SCHED_MODULE.ko in $kernel_pkg: gpu_sched is not checked"
    SCHED_MODULE=
fi
while [ ${#queue[@]} -gt 0 ]; do
    rel=${queue[0]}
    queue=("${queue[@]:1}")
    [ -n "${want[$rel]:-}" ] && continue
    want[$rel]=1
    deps=$(awk -F': *' -v m="$rel" '$1 == m {print $2}' "$moddir/modules.dep")
    for dep in $deps; do
        queue+=("$dep")
    done
done
for rel in "${!want[@]}"; do
    mkdir -p "$ROOT/lib/modules/$release/$(dirname "$rel")"
    cp "$moddir/$rel" "$ROOT/lib/modules/$release/$rel"
done
"$ROOT/bin/busybox" depmod -b "$ROOT" "$release"
say "kernel $release with ${#want[@]} modules"

# The collector's fence object, built as the collector builds it.
object=$("$PYTHON" -c 'import sys
from multimodal_virt.collector.bpf import build
print(build.object_path("gpu_fence", sys.argv[1]))' "$OUT/bpf")
cp "$object" "$ROOT/gpu_fence.bpf.o"
object=$("$PYTHON" -c 'import sys
from multimodal_virt.collector.bpf import build
print(build.object_path("gpu_sched", sys.argv[1]))' "$OUT/bpf")
cp "$object" "$ROOT/gpu_sched.bpf.o"

cc -O2 -static -Wall -I/usr/include/libdrm -o "$ROOT/mmv-guest-fence" \
    "$HERE/mmv-guest-fence.c" -lbpf -lelf -lz
cc -O2 -static -Wall -o "$ROOT/mmv-guest-sched" "$HERE/mmv-guest-sched.c" \
    -lbpf -lelf -lz

cat > "$ROOT/init" <<'INIT'
#!/bin/busybox sh
/bin/busybox --install -s /bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
count=$(sed -n 's/.*mmv.count=\([0-9]*\).*/\1/p' /proc/cmdline)
echo "MMV-BOOT kernel=$(uname -r)"
for module in @MODULES@; do
    modprobe "$module" || echo "MMV-ERROR modprobe $module"
done
tries=0
while [ ! -e /dev/dri/card0 ] && [ $tries -lt 100 ]; do
    sleep 0.1
    tries=$((tries + 1))
done
ls /dev/dri >/dev/null 2>&1 && echo "MMV-DRI $(ls /dev/dri | tr '\n' ' ')"
/mmv-guest-fence /gpu_fence.bpf.o "${count:-50}"
echo "MMV-EXIT rc=$?"
if [ -n "@SCHED@" ]; then
    modprobe @SCHED@ || echo "MMV-SCHED-ERROR modprobe @SCHED@"
    /mmv-guest-sched /gpu_sched.bpf.o
    echo "MMV-SCHED-EXIT rc=$?"
fi
poweroff -f
INIT
sed -i "s/@MODULES@/${MODULES[*]}/; s/@SCHED@/$SCHED_MODULE/g" "$ROOT/init"
chmod 755 "$ROOT/init"

# busybox's cpio: no host cpio needed.
(cd "$ROOT" && find . | "$ROOT/bin/busybox" cpio -o -H newc | gzip -1) \
    > "$OUT/initramfs.cpio.gz"
rm -rf "$STAGE"     # the extracted packages (~400 MB); the .debs stay cached
say "wrote $OUT/vmlinuz and $OUT/initramfs.cpio.gz"
