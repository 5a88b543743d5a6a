"""VF pools keyed exactly as Nova's ``PciDeviceStats`` keys them.

Nova (``nova/pci/stats.py``, ``_create_pool_keys_from_dev``) puts a device
into the pool identified by ``vendor_id``, ``product_id``, ``numa_node``,
``dev_type``, the device_spec tags other than ``resource_class``/``traits``,
``address`` (the parent PF address for a VF) and, for VFs/PFs, a
``remote_managed`` tag defaulting to ``'false'``. :meth:`PoolKey.as_nova_dict`
yields that same dict, so what we report and what Nova schedules agree.

Claims and frees work at pool level: a claim picks VFs from the pools that
match, NUMA-affine first, all or nothing.
"""

import dataclasses

from multimodal_virt import exception
from multimodal_virt.pci import address as pci_address
from multimodal_virt.pci import device

# Tags Nova leaves out of pool keys (PciDeviceStats.ignored_pool_tags).
IGNORED_TAGS = frozenset(('resource_class', 'traits', 'rp_uuids', 'rp_uuid'))
REMOTE_MANAGED_TAG = 'remote_managed'
# Nova's PCINUMAAffinityPolicy values we implement (socket needs the host
# NUMA topology, which pool-level claims do not have).
NUMA_POLICIES = ('required', 'legacy', 'preferred')


@dataclasses.dataclass(frozen=True)
class PoolKey:
    """Identity of one pool: Nova's pool dict without count/devices."""

    vendor_id: str
    product_id: str
    numa_node: int | None
    dev_type: str
    address: str
    tags: tuple = ()

    def as_nova_dict(self):
        """The dict Nova's ``PciDeviceStats`` uses for this pool's keys."""
        pool = {'vendor_id': self.vendor_id, 'product_id': self.product_id,
                'numa_node': self.numa_node, 'dev_type': self.dev_type,
                'address': self.address}
        pool.update(self.tags)
        if self.dev_type in (device.DEV_TYPE_VF, device.DEV_TYPE_PF):
            pool.setdefault(REMOTE_MANAGED_TAG, 'false')
        return pool

    @classmethod
    def for_vf(cls, vf, tags=None):
        """Key of the pool ``vf`` belongs to under spec ``tags``."""
        kept = tuple(sorted((str(k), str(v)) for k, v in (tags or {}).items()
                            if k not in IGNORED_TAGS))
        return cls(vf.vendor_id, vf.product_id, vf.numa_node, vf.dev_type,
                   str(vf.parent), kept)


class Pool:
    """Free and claimed VFs sharing one :class:`PoolKey`."""

    def __init__(self, key):
        self.key = key
        self.free = []
        self.claimed = {}

    @property
    def count(self):
        """Free VFs in the pool (Nova's pool ``count``)."""
        return len(self.free)

    def matches(self, vendor_id, product_id, tags):
        """True when the pool satisfies a request's ids and tags."""
        key = self.key
        if vendor_id is not None and vendor_id != key.vendor_id:
            return False
        if product_id is not None and product_id != key.product_id:
            return False
        if tags:
            mine = dict(key.tags)
            return all(str(mine.get(k, '')).lower() == str(v).lower()
                       for k, v in tags.items())
        return True


def _numa_nodes(numa_nodes):
    if numa_nodes is None:
        return None
    nodes = set()
    for node in numa_nodes:
        if isinstance(node, bool) or not isinstance(node, int) or node < 0:
            raise exception.ClaimError(
                'numa_nodes must be non-negative integers, got %r'
                % (node,))
        nodes.add(node)
    return nodes


class VfPools:
    """All VF pools of one host, with pool-level claim and free.

    :param pfs: discovered :class:`~multimodal_virt.pci.device.
        PhysicalFunction` objects.
    :param tags: optional mapping of PF :class:`PciAddress` to the
        device_spec tags that match its VFs (as Nova would see them).
    """

    def __init__(self, pfs, tags=None):
        tags = tags or {}
        self._pools = {}
        self._owner = {}
        self._vfs = {}
        for pf in pfs:
            pf_tags = tags.get(pf.address)
            for vf in pf.vfs:
                key = PoolKey.for_vf(vf, pf_tags)
                pool = self._pools.get(key)
                if pool is None:
                    pool = self._pools[key] = Pool(key)
                pool.free.append(vf.address)
                self._owner[vf.address] = pool
                self._vfs[vf.address] = vf

    @property
    def pools(self):
        """Pools in a stable order (by PF address, then key)."""
        return sorted(self._pools.values(),
                      key=lambda pool: (pool.key.address, repr(pool.key)))

    def free_count(self):
        """Free VFs over all pools."""
        return sum(pool.count for pool in self._pools.values())

    def summary(self):
        """Nova-style pool dicts with ``count`` (no device objects)."""
        result = []
        for pool in self.pools:
            entry = pool.key.as_nova_dict()
            entry['count'] = pool.count
            result.append(entry)
        return result

    def vf(self, address):
        """The :class:`VirtualFunction` at ``address``."""
        try:
            return self._vfs[address]
        except KeyError:
            raise exception.ClaimError('no VF at %s on this host' % address)

    def _candidates(self, count, vendor_id, product_id, tags, nodes, policy):
        pools = [pool for pool in self._pools.values()
                 if pool.count and pool.matches(vendor_id, product_id, tags)]
        pools.sort(key=lambda pool: (pool.key.address, repr(pool.key)))
        if nodes is None:
            return pools
        affine = [p for p in pools if p.key.numa_node in nodes]
        if policy == 'required' or sum(p.count for p in affine) >= count:
            return affine
        legacy = affine + [p for p in pools if p.key.numa_node is None]
        if policy == 'legacy' or sum(p.count for p in legacy) >= count:
            return legacy
        return affine + [p for p in pools if p not in affine]

    def claim(self, count=1, request_id=None, vendor_id=None,
              product_id=None, tags=None, numa_nodes=None,
              numa_policy='legacy'):
        """Claim ``count`` VFs, NUMA-affine first; all or nothing.

        :param count: how many VFs (>= 1).
        :param request_id: recorded with the claim (e.g. instance uuid).
        :param vendor_id: required vendor id (any form), or None.
        :param product_id: required product id (any form), or None.
        :param tags: required pool tags, compared case-insensitively.
        :param numa_nodes: host NUMA nodes of the guest, or None.
        :param numa_policy: ``required``, ``legacy`` or ``preferred``.
        :returns: list of claimed :class:`VirtualFunction`.
        :raises ClaimError: bad arguments or not enough matching VFs.
        """
        if isinstance(count, bool) or not isinstance(count, int) or (
                count < 1):
            raise exception.ClaimError(
                'count must be a positive integer, got %r' % (count,))
        if numa_policy not in NUMA_POLICIES:
            raise exception.ClaimError(
                'numa_policy must be one of %s, got %r'
                % (', '.join(NUMA_POLICIES), numa_policy))
        if vendor_id is not None:
            vendor_id = device.normalize_id(vendor_id, 'vendor_id')
        if product_id is not None:
            product_id = device.normalize_id(product_id, 'product_id')
        nodes = _numa_nodes(numa_nodes)
        pools = self._candidates(count, vendor_id, product_id, tags, nodes,
                                 numa_policy)
        if sum(pool.count for pool in pools) < count:
            raise exception.ClaimError(
                'cannot claim %d VF(s) (vendor_id=%s product_id=%s '
                'numa_nodes=%s policy=%s): %d matching free'
                % (count, vendor_id, product_id,
                   sorted(nodes) if nodes is not None else None,
                   numa_policy, sum(pool.count for pool in pools)))
        claimed = []
        for pool in pools:
            while pool.free and len(claimed) < count:
                address = pool.free.pop()
                pool.claimed[address] = request_id
                claimed.append(self._vfs[address])
            if len(claimed) == count:
                break
        return claimed

    def free(self, addresses):
        """Return claimed VFs to their pools.

        :param addresses: iterable of :class:`PciAddress` (or
            :class:`VirtualFunction`).
        :raises ClaimError: an address is unknown or not claimed; nothing
            is freed then.
        """
        resolved = []
        seen = set()
        for item in addresses:
            address = getattr(item, 'address', item)
            if not isinstance(address, pci_address.PciAddress):
                raise exception.ClaimError(
                    'expected a PciAddress or VirtualFunction, got %r'
                    % (item,))
            pool = self._owner.get(address)
            if pool is None or address not in pool.claimed or (
                    address in seen):
                raise exception.ClaimError(
                    'VF %s is not claimed on this host' % address)
            seen.add(address)
            resolved.append((pool, address))
        for pool, address in resolved:
            del pool.claimed[address]
            pool.free.append(address)
