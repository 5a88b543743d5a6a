"""Options for SR-IOV GPU VF discovery and config generation.

Group ``[multimodal_virt_pci]``. This module imports only oslo.config.
"""

from oslo_config import cfg

from multimodal_virt.conf import groups

GROUP = cfg.OptGroup(
    'multimodal_virt_pci',
    title='multimodal-virt SR-IOV GPU virtual functions',
    help='Discovery of SR-IOV GPU/accelerator virtual functions in sysfs '
         'and generation of the matching Nova [pci] and provider.yaml '
         'configuration.')

OPTS = [
    cfg.StrOpt(
        'sysfs_root',
        default='/sys',
        help='''
Root of the sysfs tree to walk for PCI devices.

Possible values:

* An absolute path; ``/sys`` on a real host, a recorded tree in tests.

Related options:

* ``device_classes``
'''),
    cfg.ListOpt(
        'device_classes',
        default=['0x03', '0x12'],
        help='''
PCI base classes whose SR-IOV physical functions are discovered.

Possible values:

* Hex base class bytes: ``0x03`` display controllers (GPUs), ``0x12``
  processing accelerators.

Related options:

* ``sysfs_root``
'''),
    cfg.StrOpt(
        'alias_name_format',
        default='mmv-{vendor}-{product_id}-vf',
        help='''
Format of the generated ``[pci] alias`` name, one alias per VF model.

Possible values:

* A Python format string with the fields ``{vendor}`` (``nvidia``, ``amd``,
  ``intel`` or the hex vendor id), ``{vendor_id}`` and ``{product_id}``
  (4 lower-case hex digits). Flavors ask ``pci_passthrough:alias=NAME:1``.

Related options:

* ``numa_policy``
'''),
    cfg.StrOpt(
        'numa_policy',
        default='preferred',
        choices=['required', 'legacy', 'preferred', 'socket'],
        help='''
NUMA affinity policy written into every generated alias.

Possible values:

* ``required``, ``legacy``, ``preferred`` or ``socket`` (Nova's
  ``PCINUMAAffinityPolicy``).

Related options:

* ``alias_name_format``
'''),
    cfg.StrOpt(
        'resource_class_format',
        default='CUSTOM_MMV_GPU_VF_{vendor_id}_{product_id}',
        help='''
Placement resource class of the VFs (``resource_class`` device_spec tag).

Possible values:

* A format string with ``{vendor}``, ``{vendor_id}`` and ``{product_id}``;
  the result is upper-cased and must be a custom resource class
  (``CUSTOM_`` + ``[A-Z0-9_]``).
* An empty string: let Nova name it ``CUSTOM_PCI_<VENDOR>_<PRODUCT>``.

Related options:

* ``traits``, ``placement_mode``
'''),
    cfg.ListOpt(
        'traits',
        default=['CUSTOM_MMV_SRIOV_GPU_VF'],
        help='''
Custom traits put on every VF resource provider.

Possible values:

* Custom trait names (``CUSTOM_`` + ``[A-Z0-9_]``).

Related options:

* ``resource_class_format``, ``host_traits``
'''),
    cfg.ListOpt(
        'host_traits',
        default=['CUSTOM_MMV_SRIOV_GPU_HOST'],
        help='''
Custom traits the generated provider.yaml puts on the compute node provider.

Possible values:

* Custom trait names; an empty list adds none.

Related options:

* ``traits``
'''),
    cfg.StrOpt(
        'placement_mode',
        default='pci_in_placement',
        choices=[('pci_in_placement',
                  'Nova reports VFs ([pci] report_in_placement); '
                  'provider.yaml only adds traits'),
                 ('provider_config',
                  'provider.yaml adds the VF inventory to the compute node')],
        help='''
How the VFs reach Placement.

Possible values:

* ``pci_in_placement``: Nova's own PCI-in-Placement owns the inventory (one
  child provider per PF); provider.yaml adds per-PF NUMA and host traits.
* ``provider_config``: provider.yaml declares the VF inventory on the
  compute node provider (for clouds without ``report_in_placement``).

Related options:

* ``[pci] report_in_placement`` and ``[filter_scheduler] pci_in_placement``
  in nova.conf.
'''),
    cfg.StrOpt(
        'device_spec_style',
        default='vf_addresses',
        choices=[('vf_addresses',
                  'regex addresses matching exactly the discovered VFs'),
                 ('pf_address',
                  'the PF address; Nova matches its VFs through sysfs')],
        help='''
How generated ``[pci] device_spec`` entries select the VFs.

Possible values:

* ``vf_addresses``: one entry per PF and slot with a function regex that
  matches exactly the discovered VFs, never the PF.
* ``pf_address``: one entry per PF carrying the PF's address; Nova then
  reads ``/sys`` on the compute host to match the PF's VFs. Refused for a
  PF whose VFs share its vendor:product id (e.g. Intel Flex 170,
  8086:56c0): the spec would match the PF too.

Related options:

* ``sysfs_root``
'''),
]


def register_opts(conf):
    """Register the ``[multimodal_virt_pci]`` options on ``conf``."""
    groups.register(conf, GROUP, OPTS)


def list_opts():
    """Return ``[(group, opts)]`` for oslo-config-generator."""
    return [(GROUP, OPTS)]
