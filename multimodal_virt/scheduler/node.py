"""Which sample a compute node is judged by.

Nova filters and weighs compute nodes: ``HostState.host`` is the
nova-compute service host and ``HostState.nodename`` the node (the
hypervisor's host name for libvirt, a node UUID for ironic). A node is
judged by its own sample when there is one, else by its service host's
sample (libvirt nodes named by FQDN under a short service host name).
Ironic nodes only ever use their own sample: the service host's latency
says nothing about a bare-metal node, which stays neutral without one.
"""

IRONIC = 'ironic'


def node_key(host_state):
    """``(host, nodename)`` of a ``HostState``; nodename defaults to host."""
    host = host_state.host
    return host, getattr(host_state, 'nodename', None) or host


def row(snapshot, host_state):
    """The snapshot row ``host_state`` is judged by, or ``None``."""
    host, nodename = node_key(host_state)
    found = snapshot.row(host, nodename)
    if (found is None and nodename != host and
            getattr(host_state, 'hypervisor_type', None) != IRONIC):
        found = snapshot.row(host)
    return found
