"""Options for libvirt, VF claims and vfio (``[multimodal_virt_libvirt]``).

Imports nothing but oslo.config: no libvirt, BPF or Nova code.
"""

from oslo_config import cfg

GROUP = cfg.OptGroup(
    'multimodal_virt_libvirt',
    title='multimodal-virt libvirt, VF claims and vfio',
    help='Where VF claims are kept, how libvirt is reached and how the '
         'generated domain XML is validated.')

OPTS = [
    cfg.StrOpt('connection_uri',
               default='qemu:///system',
               help="""
libvirt connection URI used to reconcile the VF claim ledger with the
domains libvirt actually holds.

Possible values:

* ``qemu:///system``: the local system libvirtd (production).
* ``test:///<absolute path>/node.xml``: libvirt's test driver with a custom
  node-device topology (tests, demos).

Related options:

* ``ledger_path``
"""),
    cfg.StrOpt('ledger_path',
               default='/var/lib/multimodal-virt/vf-ledger.json',
               help="""
JSON file of the VF claim ledger. Written atomically (temporary file, fsync,
rename, fsync of the directory) under an exclusive file lock
``<ledger_path>.lock``, so a crash at any point leaves either the old or the
new state and two processes never interleave.

Possible values:

* An absolute path on a local filesystem whose directory exists.

Related options:

* ``connection_uri``: the ledger is reconciled with its domains on start.
"""),
    cfg.StrOpt('domain_schema',
               default='/usr/share/libvirt/schemas/domain.rng',
               help="""
RelaxNG schema that every generated domain document is validated against.
It must be the schema of the installed libvirt, so that only elements that
libvirt understands are emitted.

Possible values:

* Absolute path of libvirt's ``domain.rng``.

Related options:

* None
"""),
    cfg.StrOpt('sysfs_root',
               default='/sys',
               help="""
Root of sysfs used to rebind VFs to the vfio driver. Only tests point it
elsewhere (a fake tree in a temporary directory).

Possible values:

* An absolute, symlink-free directory path containing ``bus/pci``.

Related options:

* ``vfio_driver``
"""),
    cfg.StrOpt('vfio_driver',
               default='vfio-pci',
               regex=r'^[A-Za-z0-9_-]{1,64}$',
               help="""
Kernel driver that VFs are bound to before they are given to a guest
(through ``driver_override``).

Possible values:

* A kernel PCI driver name, normally ``vfio-pci``.

Related options:

* ``sysfs_root``
"""),
    cfg.BoolOpt('hostdev_managed',
                default=False,
                help="""
Value of ``managed`` on emitted ``<hostdev>`` elements. With ``False``
(``managed='no'``) this package binds the VF to vfio itself through
privsep; with ``True`` libvirt detaches and re-attaches the device.

Possible values:

* ``True`` / ``False``

Related options:

* ``vfio_driver``
"""),
]


def register_opts(conf):
    """Register the ``[multimodal_virt_libvirt]`` options on ``conf``."""
    conf.register_group(GROUP)
    conf.register_opts(OPTS, group=GROUP)


def list_opts():
    """Return ``[(group, opts)]`` for oslo-config-generator."""
    return [(GROUP, OPTS)]
