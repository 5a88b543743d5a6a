#!/usr/bin/env python3
"""Benchmark SR-IOV VF discovery, pool build and claim/free against Nova.

Builds a sysfs tree of ``--pfs`` PFs x ``--vfs`` VFs in a temp dir, then
times:

* discovery: :func:`multimodal_virt.pci.sysfs.discover` over that tree;
* pool build: our :class:`VfPools` vs Nova's ``PciDeviceStats.add_device``
  for every VF (real ``nova.objects.PciDevice`` objects, device_spec parsed
  by Nova's ``Whitelist`` from our generated JSON);
* ``--cycles`` claim/free cycles of one VF: our ``claim``/``free`` vs Nova's
  ``consume_requests``/``add_device`` (the pool work Nova's PCI tracker does
  on claim and free), without and with NUMA affinity.

Prints per-operation cost for ours and Nova's, ratio ours/Nova last.

Usage: tools/bench_pci.py [--pfs 8] [--vfs 64] [--cycles 10000] [--repeat 3]
"""

import argparse
import json
import shutil
import sys
import tempfile
import time

from nova import objects
from nova.pci import stats as nova_stats
from nova.pci import whitelist
from oslo_utils import uuidutils

from multimodal_virt.pci import nova_config
from multimodal_virt.pci import pools
from multimodal_virt.pci import sysfs
from multimodal_virt.pci import sysfs_builder


def best_of(repeat, func):
    """Smallest wall time of ``repeat`` runs of ``func()`` (seconds)."""
    best = None
    for _ in range(repeat):
        start = time.perf_counter()
        func()
        elapsed = time.perf_counter() - start
        best = elapsed if best is None else min(best, elapsed)
    return best


def nova_setup(pfs, specs):
    """Nova's PciDeviceStats over real PciDevice objects for ``pfs``."""
    objects.register_all()
    dev_filter = whitelist.Whitelist([json.dumps(s) for s in specs])
    devices = [objects.PciDevice(
        compute_node_id=1, address=str(vf.address), vendor_id=vf.vendor_id,
        product_id=vf.product_id, dev_type=vf.dev_type, status='available',
        parent_addr=str(vf.parent), numa_node=vf.numa_node, extra_info={},
        request_id=None, instance_uuid=None)
        for pf in pfs for vf in pf.vfs]

    def build():
        stats = nova_stats.PciDeviceStats(None, dev_filter=dev_filter)
        for dev in devices:
            stats.add_device(dev)
        return stats

    return build


def nova_request(vendor_id, product_id):
    return objects.InstancePCIRequest(
        count=1, request_id=uuidutils.generate_uuid(), alias_name='bench',
        spec=[{'vendor_id': vendor_id, 'product_id': product_id,
               'dev_type': 'type-VF'}])


def nova_cell(node):
    return objects.InstanceNUMACell(id=node, cpuset=set(), pcpuset=set(),
                                    memory=0)


def row(name, ours_s, nova_s, ops):
    ours_us = ours_s / ops * 1e6
    if nova_s is None:
        print('%-34s %12.2f %12s %8s' % (name, ours_us, '-', '-'))
    else:
        nova_us = nova_s / ops * 1e6
        print('%-34s %12.2f %12.2f %8.3f' % (name, ours_us, nova_us,
                                             ours_us / nova_us))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--pfs', type=int, default=8)
    parser.add_argument('--vfs', type=int, default=64)
    parser.add_argument('--cycles', type=int, default=10000)
    parser.add_argument('--repeat', type=int, default=3)
    args = parser.parse_args(argv)

    root = tempfile.mkdtemp(prefix='mmv-bench-sysfs-')
    try:
        sysfs_builder.build(
            sysfs_builder.synthetic_layout(args.pfs, args.vfs), root)
        pfs = sysfs.discover(root)
        discover_s = best_of(args.repeat, lambda: sysfs.discover(root))
    finally:
        shutil.rmtree(root)
    num_vfs = sum(len(pf.vfs) for pf in pfs)
    settings = nova_config.Settings()
    specs = nova_config.device_specs(pfs, settings)
    tags = nova_config.pool_tags(pfs, settings)
    vendor_id, product_id = pfs[0].vf_models()[0]

    nova_build = nova_setup(pfs, specs)
    ours_build_s = best_of(args.repeat, lambda: pools.VfPools(pfs, tags))
    nova_build_s = best_of(args.repeat, nova_build)

    def ours_cycles(numa):
        vf_pools = pools.VfPools(pfs, tags)
        kwargs = {'numa_nodes': [1]} if numa else {}

        def run():
            for _ in range(args.cycles):
                claimed = vf_pools.claim(1, vendor_id=vendor_id,
                                         product_id=product_id, **kwargs)
                vf_pools.free(claimed)
        return run

    def nova_cycles(numa):
        stats = nova_build()
        request = nova_request(vendor_id, product_id)
        cells = [nova_cell(1)] if numa else None

        def run():
            for _ in range(args.cycles):
                (dev,) = stats.consume_requests([request], cells)
                stats.add_device(dev)
        return run

    results = []
    for numa in (False, True):
        results.append((numa, best_of(args.repeat, ours_cycles(numa)),
                        best_of(args.repeat, nova_cycles(numa))))

    print('SR-IOV VF benchmark: %d PFs x %d VFs = %d VFs, %d claim/free '
          'cycles, best of %d (Python %s)' % (
              args.pfs, args.vfs, num_vfs, args.cycles, args.repeat,
              sys.version.split()[0]))
    print('%-34s %12s %12s %8s' % ('operation', 'ours us/op', 'nova us/op',
                                   'ours/nova'))
    row('discover (sysfs walk, per tree)', discover_s, None, 1)
    row('discover (per VF)', discover_s, None, num_vfs)
    row('pool build (per tree)', ours_build_s, nova_build_s, 1)
    for numa, ours_s, nova_s in results:
        row('claim+free 1 VF%s' % (' (NUMA node 1)' if numa else ''),
            ours_s, nova_s, args.cycles)
    return 0


if __name__ == '__main__':
    sys.exit(main())
