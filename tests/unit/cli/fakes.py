"""A file store in a temp dir with a few fresh samples, and CLI capture."""

import dataclasses
import io
import time

import fixtures

from multimodal_virt.cmd import cli
from multimodal_virt.stores import file as file_store
from tests import base
from tests.unit.analysis import helpers


def fill_store(testcase, conf, path):
    """Publish four hosts (one stale) to a FileStore at ``path``."""
    now = time.time()
    hosts = [
        helpers.host_sample('fast', gpu_us=50, io_us=100,
                            vm_exit_rate=10.0, irq_rate=100.0),
        helpers.host_sample('gpu-busy', gpu_us=9000, io_us=100),
        helpers.host_sample('disk-slow', gpu_us=60, io_us=40000),
        helpers.host_sample('gone', gpu_us=10, io_us=10, age=900),
    ]
    conf.set_override('file_path', path, 'multimodal_virt_store')
    store = file_store.FileStore(conf)
    for sample in hosts:
        age = helpers.NOW - sample.timestamp
        store.put(dataclasses.replace(sample, timestamp=now - age))
    return [s.host for s in hosts]


def key_config(testcase):
    """A config file holding the test signing key, as every host has."""
    path = testcase.useFixture(fixtures.TempDir()).join('key.conf')
    with open(path, 'w') as handle:
        handle.write('[multimodal_virt_store]\nsigning_keys = %s\n'
                     % base.TEST_SIGNING_KEY)
    return path


def run_cli(testcase, *argv):
    """Run ``multimodal-virt`` in-process; returns (rc, stdout, stderr).

    The signing key comes from a config file given first; ``argv`` may add
    more ``--config-file`` options.
    """
    out, err = io.StringIO(), io.StringIO()
    testcase.useFixture(fixtures.MonkeyPatch('sys.stdout', out))
    testcase.useFixture(fixtures.MonkeyPatch('sys.stderr', err))
    rc = cli.main(['--config-file', key_config(testcase)] + list(argv))
    return rc, out.getvalue(), err.getvalue()
