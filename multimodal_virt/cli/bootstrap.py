"""One start-up path for every command: config files, version, errors.

``multimodal-virt`` (every sub-command) and ``multimodal-virt-collector``
load their configuration here, as nova.config does for Nova's services:

* the default search path of oslo.config (``~/.multimodal-virt/``, ``~/``,
  ``/etc/multimodal-virt/``, ``/etc/`` for ``multimodal-virt.conf``, and
  ``multimodal-virt.conf.d`` directories) when no ``--config-file`` is
  given;
* ``--config-file`` and ``--config-dir`` anywhere on the command line
  (:func:`split_config_arguments` takes them out before the sub-command
  parser sees the rest);
* every option value checked once at start-up, so a bad value is reported
  before any work starts;
* oslo.config, keystoneauth and our own errors printed as one line,
  exit status 2 (:func:`run`); a missing optional dependency names the
  extra that provides it.
"""

import sys

from oslo_config import cfg
from oslo_log import log as logging

from multimodal_virt import conf as mmv_conf
from multimodal_virt import exception
from multimodal_virt import version

PROJECT = 'multimodal-virt'
EXIT_ERROR = 2
CONFIG_ARGUMENTS = ('--config-file', '--config-dir')
# Optional modules and the setup.cfg extra that installs each.
OPTIONAL_MODULES = {
    'matplotlib': 'plotting',
    'novaclient': 'nova-client',
    'libvirt': 'collector',
    'oslo_service': 'collector',
    'cotyledon': 'collector',
    'futurist': 'collector',
}


def split_config_arguments(argv):
    """Take ``--config-file``/``--config-dir`` out of ``argv``, anywhere.

    Both ``--config-file PATH`` and ``--config-file=PATH`` are accepted;
    arguments after ``--`` are left alone.

    :param argv: command line arguments (without the program name).
    :returns: ``(config_files, config_dirs, rest)``.
    :raises MultimodalVirtError: when an option has no value.
    """
    found = {name: [] for name in CONFIG_ARGUMENTS}
    rest = []
    argv = list(argv)
    index = 0
    while index < len(argv):
        arg = argv[index]
        if arg == '--':
            rest.extend(argv[index:])
            break
        name, sep, value = arg.partition('=')
        if name in found:
            if not sep:
                index += 1
                if index >= len(argv) or argv[index].startswith('--'):
                    raise exception.MultimodalVirtError(
                        '%s needs a path' % name)
                value = argv[index]
            found[name].append(value)
        else:
            rest.append(arg)
        index += 1
    return found['--config-file'], found['--config-dir'], rest


def add_config_arguments(parser):
    """Document ``--config-file``/``--config-dir`` and add ``--version``.

    The values themselves are taken out by :func:`split_config_arguments`
    before ``parser`` runs, so they work before or after a sub-command.
    """
    parser.add_argument(
        '--config-file', action='append', default=[], metavar='PATH',
        help='oslo.config file, anywhere on the command line (repeatable; '
             'default: multimodal-virt.conf found in ~/.multimodal-virt, '
             '~, /etc/multimodal-virt, /etc)')
    parser.add_argument(
        '--config-dir', action='append', default=[], metavar='DIR',
        help='directory of *.conf files read after the config files '
             '(repeatable)')
    parser.add_argument('--version', action='version',
                        version='%(prog)s ' + version.version_string())


def new_conf():
    """A ``ConfigOpts`` with every option group of the package registered."""
    conf = cfg.ConfigOpts()
    mmv_conf.register_opts(conf)
    return conf


def check_values(conf):
    """Read every registered option once, so a bad value fails now.

    oslo.config converts values lazily: without this, an invalid value in a
    config file raises wherever the option is first read.

    :raises oslo_config.cfg.Error: the first invalid value.
    """
    for name in conf:
        value = conf[name]  # a [DEFAULT] option is converted here
        if isinstance(value, cfg.ConfigOpts.GroupAttr):
            for key in value:
                getattr(value, key)


def load(argv=(), conf=None, prog=PROJECT, check=True):
    """Parse oslo.config arguments and the config files they name.

    :param argv: oslo.config command line (``--config-file``,
        ``--config-dir`` and any CLI options registered on ``conf``).
    :param conf: a ``ConfigOpts`` with options registered (default:
        :func:`new_conf`).
    :param prog: program name for oslo.config's messages.
    :param check: read every option once (:func:`check_values`).
    :returns: the parsed ``ConfigOpts``.
    :raises oslo_config.cfg.Error: missing file, parse error, bad value.
    """
    conf = new_conf() if conf is None else conf
    conf(list(argv), project=PROJECT, prog=prog,
         version=version.version_string())
    if check:
        check_values(conf)
    return conf


def conf_from_args(args):
    """The configuration named by parsed ``multimodal-virt`` arguments.

    :param args: namespace with ``config_file`` and ``config_dir`` lists
        (either may be missing).
    :returns: a parsed ``ConfigOpts`` with every group registered.
    """
    argv = []
    for path in getattr(args, 'config_file', None) or ():
        argv += ['--config-file', path]
    for path in getattr(args, 'config_dir', None) or ():
        argv += ['--config-dir', path]
    return load(argv)


def one_line(err):
    """The text of ``err`` on one line."""
    return ' '.join(str(err).split()) or type(err).__name__


def describe_error(err):
    """A one-line message for an error a command should not trace back.

    :returns: the message, or ``None`` when ``err`` is not one of ours,
        oslo.config's, keystoneauth's or a missing optional module.
    """
    if isinstance(err, exception.MultimodalVirtError):
        return one_line(err)
    if isinstance(err, cfg.Error):
        return 'configuration: %s' % one_line(err)
    if isinstance(err, ModuleNotFoundError):
        top = (err.name or '').split('.')[0]
        extra = OPTIONAL_MODULES.get(top)
        if extra:
            return ('this command needs %s, part of the %s extra: pip '
                    "install 'multimodal-virt[%s]'" % (top, extra, extra))
        return None
    try:
        from keystoneauth1 import exceptions as ks_exceptions
    except ImportError:  # pragma: no cover - keystoneauth1 is required
        return None
    if isinstance(err, ks_exceptions.ClientException):
        return 'OpenStack API: %s (%s)' % (one_line(err),
                                           type(err).__name__)
    return None


def run(func, prog=PROJECT, err=None):
    """Call ``func()``; known errors become one line and exit status 2.

    :param func: callable returning an exit status (``None`` is 0).
    :param prog: program name that prefixes the error line.
    :param err: stream for the error line (default: stderr).
    :returns: the exit status.
    """
    err = err or sys.stderr
    try:
        return func() or 0
    except Exception as error:  # filtered by describe_error
        message = describe_error(error)
        if message is None:
            raise
        logging.getLogger(__name__).debug('%s failed', prog, exc_info=True)
        err.write('%s: error: %s\n' % (prog, message))
        return EXIT_ERROR
