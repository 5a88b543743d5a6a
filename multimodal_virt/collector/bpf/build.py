"""Compile the CO-RE ``*.bpf.c`` sources into a cache directory.

Objects are named by a hash of everything that goes into them (sources,
shared header, kernel BTF, compiler and flags), so a changed source or
kernel rebuilds, and a cache hit costs one hash. ``vmlinux.h`` is generated
with bpftool from ``/sys/kernel/btf/vmlinux`` at build time, never
committed. Writes go to a temporary file and are renamed into place, so
parallel builders never see a half-written object.

Command line (run by ``tools/setup-host.sh``)::

    python -m multimodal_virt.collector.bpf.build [--build-dir DIR]
    python -m multimodal_virt.collector.bpf.build --dump-bpf
"""

import argparse
import hashlib
import os
import pathlib
import shutil
import subprocess
import sys
import tempfile

from oslo_log import log as logging

from multimodal_virt import exception

LOG = logging.getLogger(__name__)

SOURCE_DIR = pathlib.Path(__file__).resolve().parent
HEADERS = ('mmv_common.bpf.h',)
VMLINUX_BTF = '/sys/kernel/btf/vmlinux'
CFLAGS = ('-O2', '-g', '-target', 'bpf', '-D__TARGET_ARCH_x86', '-Wall',
          '-Wno-unused-function')
SYSTEM_DIR = '/var/lib/multimodal-virt/bpf'


def sources():
    """Return the names (without ``.bpf.c``) of the CO-RE sources."""
    return sorted(p.name[:-len('.bpf.c')]
                  for p in SOURCE_DIR.glob('*.bpf.c'))


def default_build_dir():
    """``/var/lib/multimodal-virt/bpf`` for root, else a per-user cache."""
    if os.geteuid() == 0:
        return SYSTEM_DIR
    cache = os.environ.get('XDG_CACHE_HOME') or os.path.expanduser('~/.cache')
    return os.path.join(cache, 'multimodal-virt', 'bpf')


def _digest(*parts):
    sha = hashlib.sha256()
    for part in parts:
        sha.update(part if isinstance(part, bytes) else part.encode())
        sha.update(b'\0')
    return sha.hexdigest()[:16]


def _run(argv, what, stdout=None):
    try:
        result = subprocess.run(argv, stdout=stdout, stderr=subprocess.PIPE,
                                check=False)
    except FileNotFoundError:
        raise exception.BPFUnavailable(
            '%s needs %s, which is not installed' % (what, argv[0]))
    if result.returncode != 0:
        raise exception.ProbeError(
            '%s failed (%s exit %d): %s'
            % (what, argv[0], result.returncode,
               result.stderr.decode(errors='replace').strip()[-2000:]))
    return result


def _atomic_write(path, producer):
    """Call ``producer(tmp_path)`` and rename the result to ``path``."""
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path),
                               prefix='.' + os.path.basename(path) + '.')
    os.close(fd)
    try:
        producer(tmp)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _kernel_btf():
    try:
        with open(VMLINUX_BTF, 'rb') as handle:
            return handle.read()
    except OSError as err:
        raise exception.BPFUnavailable(
            'CO-RE needs kernel BTF at %s: %s' % (VMLINUX_BTF, err))


def vmlinux_header(build_dir, bpftool='bpftool'):
    """Generate (once per kernel BTF) ``vmlinux.h``; return its directory.

    :param build_dir: cache directory.
    :param bpftool: bpftool executable.
    :returns: directory holding ``vmlinux.h``.
    """
    include = os.path.join(build_dir, 'include-' + _digest(_kernel_btf()))
    header = os.path.join(include, 'vmlinux.h')
    if os.path.exists(header):
        return include
    os.makedirs(include, exist_ok=True)

    def produce(tmp):
        with open(tmp, 'wb') as out:
            _run([bpftool, 'btf', 'dump', 'file', VMLINUX_BTF, 'format', 'c'],
                 'generating vmlinux.h', stdout=out)
    _atomic_write(header, produce)
    return include


def object_path(name, build_dir=None, clang='clang', bpftool='bpftool'):
    """Return the path of the compiled ``<name>.bpf.o``, building if needed.

    :param name: source name, one of :func:`sources`.
    :param build_dir: cache directory (default :func:`default_build_dir`).
    :param clang: clang executable.
    :param bpftool: bpftool executable (for ``vmlinux.h``).
    :returns: absolute path of an up-to-date object file.
    :raises ProbeError: unknown source or compile error.
    :raises BPFUnavailable: no BTF, clang or bpftool.
    """
    if name not in sources():
        raise exception.ProbeError(
            'no BPF source %r in %s (known: %s)'
            % (name, SOURCE_DIR, ', '.join(sources())))
    build_dir = build_dir or default_build_dir()
    os.makedirs(build_dir, exist_ok=True)
    include = vmlinux_header(build_dir, bpftool)
    source = SOURCE_DIR / (name + '.bpf.c')
    compiler = shutil.which(clang) or clang
    key = _digest(source.read_bytes(),
                  *[(SOURCE_DIR / h).read_bytes() for h in HEADERS],
                  os.path.basename(include), compiler, ' '.join(CFLAGS))
    target = os.path.join(build_dir, '%s-%s.bpf.o' % (name, key))
    if os.path.exists(target):
        return target
    LOG.info('Compiling %(src)s into %(dst)s', {'src': source,
                                                'dst': target})

    def produce(tmp):
        _run([compiler, *CFLAGS, '-I', include, '-I', str(SOURCE_DIR),
              '-c', str(source), '-o', tmp], 'compiling %s' % source.name)
    _atomic_write(target, produce)
    return target


def build_all(build_dir=None, clang='clang', bpftool='bpftool'):
    """Build every source; return ``{name: object path}``."""
    return {name: object_path(name, build_dir, clang, bpftool)
            for name in sources()}


def _dump(conf):
    from multimodal_virt.collector.bpf import probe as bpf_probe
    for text in bpf_probe.describe_enabled(conf):
        print(text)
        print()


def main(argv=None):
    """Build the objects (or, with ``--dump-bpf``, show what would load)."""
    from multimodal_virt import conf as mmv_conf

    parser = argparse.ArgumentParser(
        prog='python -m multimodal_virt.collector.bpf.build',
        description='Compile the multimodal-virt CO-RE eBPF objects.')
    parser.add_argument('--build-dir',
                        help='cache directory (default: the '
                             '[multimodal_virt_probes] bpf_build_dir option)')
    parser.add_argument('--config-file', action='append', default=[],
                        help='oslo.config file(s) to read')
    parser.add_argument('--dump-bpf', action='store_true',
                        help='print the programs, attach points, settings '
                             'and map sizes that would be loaded; load '
                             'nothing')
    args = parser.parse_args(argv)
    conf = mmv_conf.CONF
    conf([], project='multimodal-virt',
         default_config_files=args.config_file)
    if args.build_dir:
        conf.set_override('bpf_build_dir', args.build_dir,
                          group='multimodal_virt_probes')
    if args.dump_bpf:
        _dump(conf)
        return 0
    group = conf.multimodal_virt_probes
    try:
        built = build_all(group.bpf_build_dir, group.clang, group.bpftool)
    except exception.ProbeError as err:
        print('error: %s' % err, file=sys.stderr)
        return 1
    for name, path in built.items():
        print('%s: %s' % (name, path))
    return 0


if __name__ == '__main__':
    sys.exit(main())
