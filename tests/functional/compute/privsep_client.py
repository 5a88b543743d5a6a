"""Child process for the privsep test: calls entrypoints through a real daemon.

Runs in a fresh interpreter because the stestr worker has eventlet
monkey-patched (Nova's test modules do that on import) and oslo.privsep's
daemon start-up blocks under it. Usage::

    python -m tests.functional.compute.privsep_client HELPER CONF CALLS_JSON

CONF is the config file both sides read (as nova-compute's nova.conf would
be); CALLS_JSON is ``[[function name, arg, ...], ...]`` with names from
``multimodal_virt.privileged.gpu_profile``. Prints one JSON document: per call
``{"ok": value}`` or ``{"error": class name, "message": text}``, the daemon
pid and effective capabilities, and whether the daemon exited on stop().
"""

import json
import os
import sys
import time

from oslo_config import cfg

from multimodal_virt.privileged import gpu_profile
from multimodal_virt import privsep


def _daemon_pid(ctx):
    # The accepted socket still reports the (unlinked) listening path, which
    # the helper got as --privsep_sock_path: find the process holding it.
    sockpath = ctx.channel.writer.writesock.getsockname()
    if isinstance(sockpath, bytes):
        sockpath = sockpath.decode()
    for entry in os.listdir('/proc'):
        if not entry.isdigit():
            continue
        try:
            with open('/proc/%s/cmdline' % entry, 'rb') as handle:
                args = handle.read().decode(errors='replace').split('\0')
            with open('/proc/%s/status' % entry) as handle:
                status = handle.read()
        except OSError:
            continue
        if sockpath in args and 'State:\tZ' not in status:
            return int(entry)
    return None


def _cap_eff(pid):
    with open('/proc/%d/status' % pid) as handle:
        for line in handle:
            if line.startswith('CapEff:'):
                return int(line.split()[1], 16)
    return None


def _gone(pid):
    try:
        with open('/proc/%d/status' % pid) as handle:
            return 'State:\tZ' in handle.read()
    except FileNotFoundError:
        return True


def main(argv):
    helper, config, calls = argv[0], argv[1], json.loads(argv[2])
    cfg.CONF(['--config-file', config], project='multimodal-virt')
    # As deployments write it (kolla: "... privsep-helper --config-file
    # /etc/nova/nova.conf"): the daemon reads the same config file.
    cfg.CONF.set_override('helper_command', '%s --config-file %s'
                          % (helper, config), group='multimodal_virt_privsep')
    ctx = privsep.sysfs_pctxt
    out = {'client_pid': os.getpid(), 'results': []}
    for name, *args in calls:
        try:
            out['results'].append({'ok': getattr(gpu_profile, name)(*args)})
        except Exception as err:  # reported to the test, which asserts
            out['results'].append({'error': type(err).__name__,
                                   'message': str(err)})
    pid = _daemon_pid(ctx) if ctx.channel is not None else None
    out['daemon_pid'] = pid
    out['daemon_cap_eff'] = _cap_eff(pid) if pid else None
    ctx.stop()
    deadline = time.monotonic() + 10
    while pid and not _gone(pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    out['daemon_exited'] = bool(pid) and _gone(pid)
    if pid and not out['daemon_exited']:
        os.kill(pid, 9)  # never leave a root daemon behind
    sys.stdout.write(json.dumps(out) + '\n')


if __name__ == '__main__':
    main(sys.argv[1:])
