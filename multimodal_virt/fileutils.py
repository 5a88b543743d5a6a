"""Replace a file whole or not at all."""

import os
import tempfile


def atomic_write(path, fill, mode=0o644):
    """Create or replace ``path`` so that readers see the old or new file.

    ``fill(tmp_path)`` writes a temporary file beside ``path`` (its name
    starts with a dot, which the stats store's readers skip); it is given
    ``mode``, flushed to disk and renamed over ``path``. On any error the
    temporary file is removed and ``path`` is left as it was.

    :param path: the file to write.
    :param fill: callable taking the temporary file's path.
    :param mode: permission bits of the new file.
    """
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path) or '.',
                               prefix='.' + os.path.basename(path) + '.')
    os.close(fd)
    try:
        fill(tmp)
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fchmod(fd, mode)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    finally:
        if os.path.lexists(tmp):
            os.unlink(tmp)


def write_bytes(path, payload, mode=0o644):
    """:func:`atomic_write` of ``payload`` (bytes) to ``path``."""
    def fill(tmp):
        with open(tmp, 'wb') as handle:
            handle.write(payload)
    atomic_write(path, fill, mode)
