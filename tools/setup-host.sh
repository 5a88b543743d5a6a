#!/usr/bin/env bash
# Install everything the demo and the test suite need on a fresh Debian 12
# host: system packages (clang/libbpf for the eBPF probes, memcached,
# libvirt + QEMU, bpftrace/bcc peers), a virtualenv in .venv with Nova and
# Placement from PyPI, and the host state the tests rely on (tracefs,
# /dev/kvm permissions, libvirtd running). Safe to run again.
set -euo pipefail

TOP=$(cd "$(dirname "$0")/.." && pwd)
VENV=${MMV_VENV:-$TOP/.venv}
PYTHON=${MMV_PYTHON:-python3}

APT_PACKAGES=(
    clang llvm libbpf-dev libbpf1 bpftool bpftrace
    memcached
    libvirt-dev libvirt-daemon-system pkg-config qemu-system-x86 qemu-utils
    bpfcc-tools python3-bpfcc libbpfcc linux-headers-amd64
    shellcheck
)

log() { printf '[setup-host] %s\n' "$*" >&2; }

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

install_packages() {
    local missing=()
    local pkg
    for pkg in "${APT_PACKAGES[@]}"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' \
            || missing+=("$pkg")
    done
    if [ ${#missing[@]} -eq 0 ]; then
        log "system packages already installed"
        return
    fi
    log "installing: ${missing[*]}"
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
        --no-install-recommends "${missing[@]}" >/dev/null
}

prepare_kernel_interfaces() {
    if [ ! -d /sys/kernel/tracing/events ]; then
        as_root mount -t tracefs nodev /sys/kernel/tracing 2>/dev/null \
            || log "could not mount tracefs (classic tracepoints unavailable)"
    fi
    if [ -e /dev/kvm ]; then
        as_root chown root:kvm /dev/kvm 2>/dev/null || true
        as_root chmod 0660 /dev/kvm || true
    fi
}

start_libvirtd() {
    if virsh -c qemu:///system version >/dev/null 2>&1; then
        return
    fi
    log "starting libvirtd"
    if command -v systemctl >/dev/null && systemctl is-system-running >/dev/null 2>&1; then
        as_root systemctl start libvirtd || true
    fi
    if ! virsh -c qemu:///system version >/dev/null 2>&1; then
        as_root /usr/sbin/libvirtd -d || true
        for _ in $(seq 1 30); do
            virsh -c qemu:///system version >/dev/null 2>&1 && break
            sleep 0.5
        done
    fi
}

create_venv() {
    local stamp="$VENV/.mmv-requirements"
    local want
    want=$(cat "$TOP/requirements.txt" "$TOP/test-requirements.txt" | sha256sum | cut -d' ' -f1)
    if [ ! -x "$VENV/bin/python" ]; then
        log "creating virtualenv $VENV"
        "$PYTHON" -m venv "$VENV"
    fi
    if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
        log "installing Python requirements (Nova, Placement, test tools)"
        "$VENV/bin/pip" install -q --upgrade pip setuptools wheel
        "$VENV/bin/pip" install -q -r "$TOP/requirements.txt" -r "$TOP/test-requirements.txt"
        echo "$want" > "$stamp"
    fi
    # pbr needs git metadata; an editable install keeps entry points current.
    "$VENV/bin/pip" install -q --no-deps -e "$TOP"
    link_nova_shim
}

link_nova_shim() {
    # Nova loads compute_driver only as nova.virt.<name>. A wheel install
    # puts our shim into site-packages/nova/virt/multimodal_virt; an
    # editable install cannot add a module inside Nova's regular package,
    # so link it there (compute_driver = multimodal_virt.LibvirtDriver).
    local virt
    virt=$("$VENV/bin/python" -c \
        'import os, nova.virt; print(os.path.dirname(nova.virt.__file__))')
    ln -sfn "$TOP/nova/virt/multimodal_virt" "$virt/multimodal_virt"
}

link_kernel_headers() {
    # bcc compiles against /lib/modules/<release>/build; on kernels without
    # a matching package, point it at the installed Debian headers.
    local mod hdr
    mod="/lib/modules/$(uname -r)"
    [ -e "$mod/build" ] && return
    hdr=$(find /usr/src -maxdepth 1 -name 'linux-headers-*-amd64' | sort -V | tail -1)
    [ -n "$hdr" ] || { log "no kernel headers for bcc"; return; }
    as_root mkdir -p "$mod"
    as_root ln -sfn "$hdr" "$mod/build"
    as_root ln -sfn "${hdr%-amd64}-common" "$mod/source"
}

build_bpf_objects() {
    "$VENV/bin/multimodal-virt-collector" --build-bpf \
        || log "could not build the CO-RE eBPF objects"
}

install_packages
prepare_kernel_interfaces
link_kernel_headers
start_libvirtd
create_venv
build_bpf_objects
log "ready: $VENV"
