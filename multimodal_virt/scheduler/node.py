"""Which sample a compute node is judged by.

Nova filters and weighs compute nodes: ``HostState.host`` is the
nova-compute service host and ``HostState.nodename`` the node (the
hypervisor's host name for libvirt, a node UUID for ironic). A node is
judged by its own sample when there is one, else by its service host's
sample (libvirt nodes named by FQDN under a short service host name).
Ironic nodes only ever use their own sample: the service host's latency
says nothing about a bare-metal node, which stays neutral without one.
"""

from multimodal_virt.metrics import sample as sample_mod

IRONIC = 'ironic'


def locate(snapshot, host_state):
    """``(node key, row)``: the node's store key (``host`` or
    ``host+nodename``, see :func:`~multimodal_virt.metrics.sample.
    sample_key`) and the snapshot row it is judged by (``None`` when it
    has none).

    Called once per candidate node per request, so it does the two
    dictionary lookups at most and allocates no container (the key is a
    string): a pass over 10,000 nodes leaves the garbage collector
    nothing extra to count.
    """
    host = host_state.host
    nodename = getattr(host_state, 'nodename', None) or host
    index = snapshot.index
    if nodename == host:
        return host, index.get(host)
    key = sample_mod.sample_key(host, nodename)
    found = index.get(key)
    if (found is None and
            getattr(host_state, 'hypervisor_type', None) != IRONIC):
        found = index.get(host)
    return key, found
