"""``multimodal-virt-aggregator``: every sample verified once, for every
scheduler.

Usage::

    multimodal-virt-aggregator --config-file /etc/multimodal-virt/multimodal-virt.conf
    multimodal-virt-aggregator --once   # one aggregation, print it as JSON, exit

It reads the same ``[multimodal_virt_store]`` and
``[multimodal_virt_scheduler]`` options as nova-scheduler, and runs
wherever the store can be reached (the controllers). One is enough;
several are harmless: each publishes the same samples, the newest
aggregate wins. SIGTERM and SIGINT stop it after the aggregation in
progress; SIGHUP re-reads the configuration files and applies the mutable
options (``interval``, log level).
"""

import json
import signal
import sys
import threading
import time

from oslo_config import cfg
from oslo_log import log as logging

from multimodal_virt.cli import bootstrap
from multimodal_virt import exception
from multimodal_virt import ratelimit
from multimodal_virt import version

LOG = logging.getLogger(__name__)
PROG = 'multimodal-virt-aggregator'

CLI_OPTS = [
    cfg.BoolOpt('once',
                default=False,
                help='Publish one aggregate, print what it holds as JSON '
                     'and exit.'),
]


def parse_args(argv):
    """Return a parsed ``ConfigOpts`` with every option registered."""
    conf = bootstrap.new_conf()
    conf.register_cli_opts(CLI_OPTS)
    logging.register_options(conf)
    bootstrap.load(argv, conf=conf, prog=PROG)
    if conf.once:
        conf.set_override('use_stderr', True)  # stdout carries the JSON
    logging.setup(conf, 'multimodal-virt')
    return conf


class _Signals(object):
    """SIGTERM/SIGINT ask the loop to stop, SIGHUP to reload; both wake it."""

    def __init__(self):
        self.wake = threading.Event()
        self.stopping = False
        self.reloading = False
        signal.signal(signal.SIGTERM, self._stop)
        signal.signal(signal.SIGINT, self._stop)
        signal.signal(signal.SIGHUP, self._reload)

    def _stop(self, *_):
        self.stopping = True
        self.wake.set()

    def _reload(self, *_):
        self.reloading = True
        self.wake.set()

    def sleep(self, seconds):
        self.wake.wait(max(0.0, seconds))
        self.wake.clear()


def _serve(conf, aggregator):
    signals = _Signals()
    failures = ratelimit.RateLimitedLog(LOG, interval=60.0)
    LOG.info('%(prog)s %(version)s starting: %(driver)s store, every '
             '%(interval)s s', {
                 'prog': PROG, 'version': version.version_string(),
                 'driver': conf.multimodal_virt_store.driver,
                 'interval': conf.multimodal_virt_aggregator.interval})
    while not signals.stopping:
        if signals.reloading:
            signals.reloading = False
            LOG.info('SIGHUP: reloading the configuration')
            conf.mutate_config_files()
        started = time.monotonic()
        try:
            done = aggregator.run_once()
            LOG.debug('Published the aggregate of %(nodes)d nodes '
                      '(%(bytes)d bytes, %(rejected)d refused) in '
                      '%(seconds).3f s', done)
        except exception.MultimodalVirtError as err:
            failures.warning('run', 'Aggregation failed, trying again '
                             'every interval: %(err)s', {'err': err})
        signals.sleep(conf.multimodal_virt_aggregator.interval -
                      (time.monotonic() - started))
    LOG.info('%s stopped', PROG)
    return 0


def _main(argv):
    from multimodal_virt.scheduler import aggregator as aggregator_mod

    conf = parse_args(argv)
    aggregator = aggregator_mod.Aggregator(conf)
    try:
        if conf.once:
            print(json.dumps(aggregator.run_once(), sort_keys=True))
            return 0
        return _serve(conf, aggregator)
    finally:
        aggregator.close()


def main(argv=None):
    """Run the aggregator; returns the process exit status.

    A bad command line or config file, or a store error with ``--once``,
    is one line on stderr and exit status 2.
    """
    argv = sys.argv[1:] if argv is None else list(argv)
    return bootstrap.run(lambda: _main(argv), prog=PROG)


if __name__ == '__main__':
    sys.exit(main())
