"""Compile the CO-RE ``*.bpf.c`` sources into a private cache directory.

Objects are named by a hash of what goes into them (sources, shared header,
flags). They are CO-RE: libbpf relocates them against the running kernel's
BTF at load time, so one build serves every kernel with BTF, and a host
whose objects were built at install time (``multimodal-virt-collector
--build-bpf``) needs no compiler. ``vmlinux.h`` is generated with bpftool
from ``/sys/kernel/btf/vmlinux`` when compiling, never committed. Writes go
to a temporary file renamed into place, so parallel builders never see a
half-written object.

The directory is the trust boundary: the collector runs as root and loads
what it finds there, so the directory must be owned by the collector's user
and writable by nobody else (it is created ``0700``; a group- or
world-writable one, or one owned by another user, is refused), and every
object must be a regular file owned by that user and writable by nobody
else, or it is refused.
"""

import hashlib
import os
import pathlib
import shutil
import stat
import subprocess

from oslo_log import log as logging

from multimodal_virt import exception
from multimodal_virt import fileutils

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


def _refuse(path, why):
    raise exception.ProbeError(
        'refusing BPF build path %s: %s (it must be owned by uid %d and '
        'writable by nobody else)' % (path, why, os.geteuid()))


def private_dir(path):
    """Create ``path`` (0700) or check that an existing one is private.

    An existing directory owned by this user is tightened to 0700 unless it
    is group- or world-writable, which is refused: something else could
    have planted objects in it.

    :returns: ``path``.
    :raises ProbeError: for a symlink, a non-directory, another owner or a
        group/world-writable directory.
    """
    os.makedirs(path, mode=0o700, exist_ok=True)
    info = os.lstat(path)
    if stat.S_ISLNK(info.st_mode):
        _refuse(path, 'it is a symbolic link')
    if not stat.S_ISDIR(info.st_mode):
        _refuse(path, 'it is not a directory')
    _owned_by_us_alone(path, info)
    if stat.S_IMODE(info.st_mode) != 0o700:
        os.chmod(path, 0o700)
    return path


def trusted_file(path):
    """Check that ``path`` is a regular file only this user can write.

    :raises ProbeError: naming the path and what is wrong with it.
    """
    try:
        info = os.lstat(path)
    except OSError as err:
        _refuse(path, str(err))
    if not stat.S_ISREG(info.st_mode):
        _refuse(path, 'it is not a regular file')
    _owned_by_us_alone(path, info)
    return path


def _owned_by_us_alone(path, info):
    """Refuse ``path`` unless this user owns it and nobody else can write."""
    if info.st_uid != os.geteuid():
        _refuse(path, 'it is owned by uid %d' % info.st_uid)
    if info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        _refuse(path, 'it is writable by group or others (mode %04o)'
                % stat.S_IMODE(info.st_mode))


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
    private_dir(include)
    if os.path.exists(header):
        trusted_file(header)
        return include

    def produce(tmp):
        with open(tmp, 'wb') as out:
            _run([bpftool, 'btf', 'dump', 'file', VMLINUX_BTF, 'format', 'c'],
                 'generating vmlinux.h', stdout=out)
    fileutils.atomic_write(header, produce)
    return include


def object_key(name):
    """Hash of what goes into ``<name>.bpf.o``: sources, headers, flags.

    Neither the kernel nor the compiler's path is part of it: the object
    is CO-RE, relocated at load time against the running kernel's BTF.
    """
    return _digest((SOURCE_DIR / (name + '.bpf.c')).read_bytes(),
                   *[(SOURCE_DIR / h).read_bytes() for h in HEADERS],
                   ' '.join(CFLAGS))


def prebuilt(build_dir=None):
    """True when every source's object is already in ``build_dir``."""
    build_dir = build_dir or default_build_dir()
    return all(os.path.exists(os.path.join(
        build_dir, '%s-%s.bpf.o' % (name, object_key(name))))
        for name in sources())


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
    build_dir = private_dir(build_dir or default_build_dir())
    target = os.path.join(build_dir, '%s-%s.bpf.o' % (name, object_key(name)))
    if os.path.exists(target):
        return trusted_file(target)
    include = vmlinux_header(build_dir, bpftool)
    source = SOURCE_DIR / (name + '.bpf.c')
    compiler = shutil.which(clang) or clang
    LOG.info('Compiling %(src)s into %(dst)s', {'src': source,
                                                'dst': target})

    def produce(tmp):
        _run([compiler, *CFLAGS, '-I', include, '-I', str(SOURCE_DIR),
              '-c', str(source), '-o', tmp], 'compiling %s' % source.name)
    fileutils.atomic_write(target, produce)
    return trusted_file(target)


def build_all(build_dir=None, clang='clang', bpftool='bpftool'):
    """Build every source; return ``{name: object path}``."""
    return {name: object_path(name, build_dir, clang, bpftool)
            for name in sources()}
