#!/usr/bin/env python3
"""Real fences from a real DRM driver: the nested-guest gpu_fence proof.

Builds (tools/guest/build-initramfs.sh) and boots a Debian kernel with
``-device virtio-gpu-pci``. In the guest, mmv-guest-fence attaches the
collector's gpu_fence programs, creates virtio-gpu resources (each create
emits a fence that QEMU signals), and prints the fence histograms and an
independent CLOCK_MONOTONIC measure of each create-to-wait-return on the
serial console. Where the kernel package has the DRM GPU scheduler module,
mmv-guest-sched then loads it, sets the collector's gpu_sched programs'
field offsets from the module's BTF and attaches them to the scheduler's
tracepoints (virtio-gpu does not use the scheduler: this shows that they
attach on a real kernel, not that they measure). This script parses that
output, checks it and prints a JSON summary; the exit status is 0 only if
every check passed.

Acceleration: ``kvm`` where the host's KVM runs ordinary guest kernels;
on a PVM host (``/sys/module/kvm_pvm``) a stock Debian kernel does not get
past its boot stub under KVM (it needs a PVM guest kernel), so ``auto``
uses TCG there: the guest kernel, the DRM driver and the fences are real,
the CPU is emulated.

Usage: tools/guest/fence_proof.py [--workdir DIR] [--count N]
       [--accel auto|kvm|tcg] [--timeout S]
"""

import argparse
import json
import math
import os
import re
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_WORKDIR = '/var/tmp/mmv-guest-proof'
# MMV-DROPPED index 0-1: the drops map; 2: the anomalies map.
DROP_NAMES = ('inflight_full', 'hist_full', 'unmatched_signal')
_FENCE = re.compile(r'MMV-FENCE driver=(\S+) tgid=(\d+) self=(\d) '
                    r'slots=([\d,]+)')
_SUBMIT = re.compile(r'MMV-SUBMIT count=(\d+) min_ns=(\d+) max_ns=(\d+) '
                     r'mean_ns=(\d+)')


def choose_accel(requested):
    """``kvm`` or ``tcg`` for ``requested`` (``auto`` probes the host)."""
    if requested != 'auto':
        return requested
    if not os.path.exists('/dev/kvm'):
        return 'tcg'
    if os.path.exists('/sys/module/kvm_pvm'):
        return 'tcg'
    return 'kvm'


def slot(delta_ns):
    """Log2 slot of a latency, as mmv_slot() in mmv_common.bpf.h."""
    us = delta_ns // 1000
    return min(31, 0 if us <= 1 else int(math.log2(us)))


def parse(serial):
    """Parse the guest's ``MMV-`` lines into a dict."""
    result = {'attached': [], 'fences': [], 'dropped': {}, 'errors': [],
              'submit': None, 'exit': None, 'kernel': None, 'pid': None,
              'sched': None}
    for line in serial.splitlines():
        line = line.strip()
        if line.startswith('MMV-SCHED-'):
            _parse_sched(line, result)
        elif line.startswith('MMV-ATTACHED '):
            result['attached'].append(line.split()[1])
        elif line.startswith('MMV-BOOT '):
            result['kernel'] = line.split('kernel=', 1)[1]
        elif line.startswith('MMV-PID '):
            result['pid'] = int(line.split()[1])
        elif line.startswith('MMV-ERROR'):
            result['errors'].append(line)
        elif line.startswith('MMV-EXIT '):
            result['exit'] = int(line.split('rc=', 1)[1])
        elif line.startswith('MMV-DROPPED '):
            fields = dict(f.split('=') for f in line.split()[1:])
            result['dropped'][DROP_NAMES[int(fields['index'])]] = int(
                fields['count'])
        else:
            match = _FENCE.search(line)
            if match:
                slots = [int(v) for v in match.group(4).split(',')]
                result['fences'].append({
                    'driver': match.group(1), 'tgid': int(match.group(2)),
                    'self': match.group(3) == '1', 'slots': slots,
                    'count': sum(slots)})
                continue
            match = _SUBMIT.search(line)
            if match:
                result['submit'] = dict(zip(
                    ('count', 'min_ns', 'max_ns', 'mean_ns'),
                    (int(g) for g in match.groups())))
    return result


def _parse_sched(line, result):
    sched = result['sched'] = result['sched'] or {
        'offsets': {}, 'attached': {}, 'absent': {}, 'errors': [],
        'exit': None}
    kind, _, rest = line.partition(' ')
    if kind == 'MMV-SCHED-OFFSET':
        name, value = rest.split('=')
        sched['offsets'][name] = int(value)
    elif kind == 'MMV-SCHED-ATTACHED':
        program, event = rest.split()[:2]
        sched['attached'][program] = event
    elif kind == 'MMV-SCHED-ABSENT':
        program, event = rest.split()[:2]
        sched['absent'][program] = event.rstrip(':')
    elif kind == 'MMV-SCHED-EXIT':
        sched['exit'] = int(rest.split('rc=', 1)[1])
    else:
        sched['errors'].append(line)


#: The gpu_scheduler events of each kernel generation (queued, run, done),
#: as collector/probes/gpu_sched.py attaches them.
SCHED_GENERATIONS = (
    ('drm_sched_job', 'drm_run_job', 'drm_sched_process_job'),
    ('drm_sched_job_queue', 'drm_sched_job_run', 'drm_sched_job_done'),
)


def check_sched(sched):
    """Failed checks of the gpu_sched part (none when it did not run)."""
    if sched is None:
        return []
    failures = ['gpu_sched: %s' % error for error in sched['errors']]
    for name in ('drm_sched_job.s_fence', 'drm_sched_fence.parent'):
        if sched['offsets'].get(name, -1) < 0:
            failures.append('gpu_sched: offset %s = %s'
                            % (name, sched['offsets'].get(name)))
    events = set(sched['attached'].values())
    if not any(set(g) <= events for g in SCHED_GENERATIONS):
        failures.append('gpu_sched: no generation fully attached: %s'
                        % sorted(events))
    if sched['exit'] != 0:
        failures.append('gpu_sched: guest program exit %s' % sched['exit'])
    return failures


def check(result, count):
    """List of failed checks (empty: the proof holds)."""
    failures = []
    if sorted(result['attached']) != ['mmv_fence_emit', 'mmv_fence_signaled']:
        failures.append('fence programs attached: %s' % result['attached'])
    submit = result['submit'] or {}
    if submit.get('count') != count:
        failures.append('submitted %s of %d' % (submit.get('count'), count))
    own = [f for f in result['fences'] if f['self']]
    measured = sum(f['count'] for f in own)
    if measured < count:
        failures.append('%d fences of the submitting process measured, '
                        'expected >= %d' % (measured, count))
    if own and {f['driver'] for f in own} != {'virtio_gpu'}:
        failures.append('drivers %s, expected virtio_gpu'
                        % sorted({f['driver'] for f in own}))
    if own and submit.get('max_ns'):
        top = max(i for f in own for i, n in enumerate(f['slots']) if n)
        if top > slot(submit['max_ns']):
            failures.append('fence slot %d above the independent bound '
                            '(slot %d)' % (top, slot(submit['max_ns'])))
    for reason in ('inflight_full', 'hist_full'):
        if result['dropped'].get(reason, 0):
            failures.append('%s dropped %d' % (reason,
                                               result['dropped'][reason]))
    if result['errors']:
        failures.extend(result['errors'])
    if result['exit'] != 0:
        failures.append('guest program exit %s' % result['exit'])
    failures.extend(check_sched(result.get('sched')))
    return failures


def build(workdir):
    subprocess.run(['bash', os.path.join(HERE, 'build-initramfs.sh'),
                    workdir], check=True)


def boot(workdir, accel, count, timeout):
    """Run the guest; return its serial output."""
    argv = ['qemu-system-x86_64', '-accel', accel, '-m', '512', '-smp', '1',
            '-nodefaults', '-display', 'none', '-serial', 'stdio',
            '-no-reboot', '-kernel', os.path.join(workdir, 'vmlinuz'),
            '-initrd', os.path.join(workdir, 'initramfs.cpio.gz'),
            '-append', 'console=ttyS0 panic=-1 quiet mmv.count=%d' % count,
            '-device', 'virtio-gpu-pci']
    proc = subprocess.run(argv, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, timeout=timeout,
                          check=False)
    return proc.stdout.decode(errors='replace')


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--workdir', default=DEFAULT_WORKDIR)
    parser.add_argument('--count', type=int, default=50)
    parser.add_argument('--accel', default='auto',
                        choices=('auto', 'kvm', 'tcg'))
    parser.add_argument('--timeout', type=float, default=300.0)
    parser.add_argument('--skip-build', action='store_true')
    args = parser.parse_args(argv)
    if not args.skip_build:
        build(args.workdir)
    accel = choose_accel(args.accel)
    serial = boot(args.workdir, accel, args.count, args.timeout)
    with open(os.path.join(args.workdir, 'serial.log'), 'w') as handle:
        handle.write(serial)
    result = parse(serial)
    result['accel'] = accel
    result['failures'] = check(result, args.count)
    print(json.dumps(result, indent=1))
    return 1 if result['failures'] else 0


if __name__ == '__main__':
    sys.exit(main())
