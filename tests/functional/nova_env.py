"""Helpers for running Nova's own functional test base from our tests."""

import os
import sys


def api_paste_config():
    """Path of Nova's api-paste.ini as the PyPI wheel installs it.

    The wheel puts it in ``<prefix>/etc/nova/api-paste.ini`` rather than
    beside the package, where Nova's functional base looks by default.
    """
    for prefix in (sys.prefix, sys.base_prefix):
        path = os.path.join(prefix, 'etc', 'nova', 'api-paste.ini')
        if os.path.exists(path):
            return path
    raise RuntimeError('nova api-paste.ini not found under %s; install nova '
                       'from PyPI (tools/setup-host.sh)' % sys.prefix)
