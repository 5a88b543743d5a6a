#!/usr/bin/env bash
# Package count and installed size of `pip install .` without extras and
# with each extra, each in a fresh throwaway virtualenv (removed after).
#
#   bash tools/measure-install.sh                 # base, plotting, nova-client, collector
#   bash tools/measure-install.sh base collector  # a subset
#
# Counts the distributions pip installed besides pip/setuptools/wheel, and
# the size of site-packages beyond an empty venv's. Times include pip's
# download cache state: the first run on a machine is the slow one.
# libvirt-python (collector extra) builds against libvirt-dev.
set -euo pipefail

TOP=$(cd "$(dirname "$0")/.." && pwd)
PYTHON=${MMV_PYTHON:-python3}
WORK=$(mktemp -d /tmp/mmv-measure.XXXXXX)
trap 'rm -rf "$WORK"' EXIT

variants=("$@")
[ ${#variants[@]} -gt 0 ] || variants=(base plotting nova-client collector)

site_kib() {
    du -sk "$("$1/bin/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')" | cut -f1
}

"$PYTHON" -m venv "$WORK/empty"
empty_kib=$(site_kib "$WORK/empty")

printf '%-12s %8s %10s %8s\n' variant packages size_MiB seconds
for variant in "${variants[@]}"; do
    venv="$WORK/$variant"
    spec=$TOP
    [ "$variant" = base ] || spec="$TOP[$variant]"
    "$PYTHON" -m venv "$venv"
    start=$(date +%s)
    "$venv/bin/pip" install -q "$spec" > "$WORK/$variant.log" 2>&1 \
        || { echo "$variant: pip install failed:"; tail -5 "$WORK/$variant.log"; continue; }
    seconds=$(( $(date +%s) - start ))
    count=$("$venv/bin/pip" list --format freeze 2>/dev/null \
        | grep -cvE '^(pip|setuptools|wheel|multimodal-virt)==')
    kib=$(( $(site_kib "$venv") - empty_kib ))
    printf '%-12s %8d %10.1f %8d\n' "$variant" "$count" \
        "$(echo "$kib / 1024" | bc -l)" "$seconds"
    if [ "$variant" = base ] && "$venv/bin/python" -c 'import matplotlib' 2>/dev/null; then
        echo "base install pulled matplotlib" >&2
        exit 1
    fi
    rm -rf "$venv"
done
