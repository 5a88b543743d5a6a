"""Explicit, loud skips for functional tests that need host features.

In CI (``CI=true``) or with ``MMV_REQUIRE_REAL=1`` a missing feature is a
failure, not a skip: these machines have BPF, libvirtd and memcached, and a
silently skipped real test would hide a broken set-up.
"""

import os


def strict():
    """True when missing host features must fail instead of skip."""
    return (os.environ.get('CI', '').lower() == 'true'
            or os.environ.get('MMV_REQUIRE_REAL') == '1')


def require(testcase, available, reason):
    """Skip ``testcase`` (or fail it in strict mode) unless ``available``."""
    if available:
        return
    if strict():
        testcase.fail('required host feature missing in CI: %s' % reason)
    testcase.skipTest('SKIPPED (host feature missing): %s' % reason)
