"""Package version, from pbr metadata."""

import pbr.version

version_info = pbr.version.VersionInfo('multimodal-virt')


def version_string():
    """Return the installed package version, e.g. ``0.1.0``."""
    try:
        return version_info.version_string()
    except Exception:  # not installed (running from a bare checkout)
        return '0.0.0'
