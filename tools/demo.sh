#!/usr/bin/env bash
# The README's first command: prepare this host, then run the demo.
#
#   bash tools/demo.sh                    # 5 windows of 2 s, ./demo-output
#   bash tools/demo.sh --intervals 3 --output-dir /tmp/demo --format json
#
# tools/setup-host.sh installs the system packages and the virtualenv (safe
# to run again); the demo then collects on this host (eBPF as root, procfs
# otherwise) while a frames+sensors workload runs, ranks this host and the
# recorded ones through Nova's filter and weigher and explains the result.
set -euo pipefail

TOP=$(cd "$(dirname "$0")/.." && pwd)
VENV=${MMV_VENV:-$TOP/.venv}

# Set-up chatter goes to stderr: with --format json, stdout is the result.
bash "$TOP/tools/setup-host.sh" >&2
cd "$TOP"
exec "$VENV/bin/multimodal-virt" demo "$@"
