"""Errors the compute hook raises into Nova.

:class:`UnsupportedFlavorSpec` derives from Nova's ``InvalidInput``, which
the compute manager turns into ``BuildAbortException``: the spawn fails at
once with an instance fault carrying our message (no reschedule loop that
would bury it under "Exceeded maximum number of retries").
"""

from nova import exception as nova_exception

from multimodal_virt import exception


class UnsupportedFlavorSpec(exception.MultimodalVirtError,
                            nova_exception.InvalidInput):
    """A flavor extra spec of ours that this host cannot honour."""

    msg_fmt = ('multimodal-virt cannot honour the flavor on this host: '
               '%(reason)s')
