#!/usr/bin/env bash
# The test suite: prepares the host (tools/setup-host.sh: apt packages,
# venv with Nova/Placement, BPF objects, libvirtd) and runs every unit and
# functional test with stestr. Functional tests use real Nova, Placement,
# libvirt, memcached and eBPF; with CI=true a missing host feature fails
# the run instead of skipping. Extra arguments are passed to `stestr run`
# (e.g. a test-name regex).
set -euo pipefail

TOP=$(cd "$(dirname "$0")/.." && pwd)
cd "$TOP"
bash tools/setup-host.sh
# A hung test fails after this many seconds instead of blocking the run.
export OS_TEST_TIMEOUT=${OS_TEST_TIMEOUT:-600}
export PYTHONDONTWRITEBYTECODE=1
rc=0
.venv/bin/stestr --test-path ./tests run "$@" || rc=$?
# One plain closing line for humans and CI: "N passed, N failed, N skipped".
.venv/bin/stestr last --subunit | .venv/bin/python -c '
import sys, subunit, testtools
result = testtools.StreamSummary()
case = subunit.ByteStreamToStreamResult(sys.stdin.buffer)
result.startTestRun()
case.run(result)
result.stopTestRun()
failed = len(result.errors) + len(result.failures)
skipped = len(result.skipped)
passed = result.testsRun - failed - skipped
print("tests: %d passed, %d failed, %d skipped" % (passed, failed, skipped))
' || true
exit "$rc"
