"""``multimodal-virt-collector``: the per-host collector service.

Usage::

    multimodal-virt-collector --config-file /etc/multimodal-virt/multimodal-virt.conf
    multimodal-virt-collector --dump-bpf    # describe the probes, load nothing
    multimodal-virt-collector --once        # one interval, publish, print, exit
    multimodal-virt-collector --build-bpf   # compile the CO-RE objects, exit

The service runs in one process on oslo.service's threading backend;
SIGTERM stops the loop and detaches every probe before the process exits;
SIGHUP re-reads the configuration files and applies the mutable options
(log level, interval, ...) without exiting. ``--build-bpf`` is run once at
install time (devstack, the kolla image build) so that compute hosts load
prebuilt CO-RE objects and need no compiler.
"""

import sys
import time

from oslo_config import cfg
from oslo_log import log as logging

from multimodal_virt.cli import bootstrap
from multimodal_virt import exception
from multimodal_virt import version

LOG = logging.getLogger(__name__)
PROG = 'multimodal-virt-collector'

CLI_OPTS = [
    cfg.BoolOpt('dump-bpf',
                default=False,
                help='Print what each enabled probe would load, then exit.'),
    cfg.BoolOpt('build-bpf',
                default=False,
                help='Compile every CO-RE eBPF object into '
                     '[multimodal_virt_libbpf] bpf_build_dir, print their '
                     'paths and exit (run once at install time).'),
    cfg.BoolOpt('once',
                default=False,
                help='Collect one interval, publish it, print the sample as '
                     'JSON and exit (status 1 if no sample was built).'),
]


def parse_args(argv):
    """Return a parsed ``ConfigOpts`` with every collector option.

    Config files, ``--config-dir``, ``--version`` and the default search
    path work as for every command (:mod:`multimodal_virt.cli.bootstrap`).
    """
    conf = bootstrap.new_conf()
    conf.register_cli_opts(CLI_OPTS)
    logging.register_options(conf)
    bootstrap.load(argv, conf=conf, prog=PROG)
    if conf.once or conf.dump_bpf or conf.build_bpf:
        # stdout carries the sample or the probe descriptions.
        conf.set_override('use_stderr', True)
    logging.setup(conf, 'multimodal-virt')
    return conf


def _dump(conf):
    from multimodal_virt.collector import service
    for name, text in service.describe_probes(conf):
        print('== %s ==\n%s\n' % (name, text))
    return 0


def _build(conf):
    from multimodal_virt.collector.bpf import build
    group = conf.multimodal_virt_libbpf
    built = build.build_all(group.bpf_build_dir, group.clang, group.bpftool)
    for name, path in sorted(built.items()):
        print('%s: %s' % (name, path))
    return 0


def _once(conf):
    from multimodal_virt.collector import service
    collector = service.CollectorService(conf)
    try:
        collector.start_probes()
        collector.load_publishers()
        time.sleep(conf.multimodal_virt_collector.interval)
        sample = collector.run_once(
            wait=conf.multimodal_virt_collector.publish_timeout)
    finally:
        collector.stop()
    if sample is None:
        print('no sample was built', file=sys.stderr)
        return 1
    print(sample.to_json().decode('utf-8'))
    return 0


def _serve(conf):
    from oslo_service import backend
    try:
        backend.init_backend(backend.BackendType.THREADING)
    except backend.exceptions.BackendAlreadySelected:
        LOG.debug('oslo.service backend already selected: %s',
                  backend.get_backend_type())
    # Imported after the backend choice: this module picks its classes
    # from the selected backend at import time.
    from oslo_service import service as oslo_service

    from multimodal_virt.collector import service

    class ReloadingLauncher(oslo_service.ProcessLauncher):
        """The no-fork launcher, with SIGHUP reloading instead of exiting.

        oslo.service's no-fork launcher raises SignalExit on SIGHUP (its
        reload is a TODO); devstack's units and operators send SIGHUP to
        reload, so here it calls the service's reset(), which re-reads
        the mutable options on a thread of its own.
        """

        def _reload_service(self, *args):
            LOG.info('SIGHUP: reloading the configuration')
            self.service.reset()

    collector = service.CollectorService(conf)
    LOG.info('multimodal-virt-collector %(version)s starting on %(host)s: '
             'probes %(probes)s, every %(interval)s s',
             {'version': version.version_string(), 'host': collector.host,
              'probes': ', '.join(conf.multimodal_virt_collector.probes),
              'interval': conf.multimodal_virt_collector.interval})
    # no_fork: one process, whose SIGTERM handler calls collector.stop().
    # Any other way out (an error) detaches too.
    try:
        launcher = ReloadingLauncher(conf, restart_method='mutate',
                                     no_fork=True)
        launcher.launch_service(collector)  # returns when stopped
        return launcher.wait() or 0
    finally:
        collector.stop()


def _main(argv):
    conf = parse_args(argv)
    try:
        if conf.dump_bpf:
            return _dump(conf)
        if conf.build_bpf:
            return _build(conf)
        if conf.once:
            return _once(conf)
        return _serve(conf)
    except exception.MultimodalVirtError as err:
        LOG.error('%s: %s', PROG, err)
        raise


def main(argv=None):
    """Run the collector; returns the process exit status.

    A bad command line or config file, or a probe/store error, is one line
    on stderr and exit status 2.
    """
    argv = sys.argv[1:] if argv is None else list(argv)
    return bootstrap.run(lambda: _main(argv), prog=PROG)


if __name__ == '__main__':
    sys.exit(main())
