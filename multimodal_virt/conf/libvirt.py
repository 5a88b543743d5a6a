"""Options for libvirt access and domain XML validation
(``[multimodal_virt_libvirt]``).

Imports nothing but oslo.config: no libvirt, BPF or Nova code.
"""

from oslo_config import cfg

from multimodal_virt.conf import groups

GROUP = cfg.OptGroup(
    'multimodal_virt_libvirt',
    title='multimodal-virt libvirt',
    help='How libvirt is reached (read-only) and how tuned domain XML is '
         'validated.')

OPTS = [
    cfg.StrOpt('connection_uri',
               default='qemu:///system',
               help="""
libvirt connection URI opened read-only by ``multimodal-virt pci audit`` to
find the domains holding each VF.

Possible values:

* ``qemu:///system``: the local system libvirtd (production).
* ``test:///<absolute path>/node.xml``: libvirt's test driver (tests).

Related options:

* None
"""),
    cfg.StrOpt('domain_schema',
               default='/usr/share/libvirt/schemas/domain.rng',
               help="""
RelaxNG schema that every tuned guest definition (flavor tuning specs,
applied by ``compute_driver = multimodal_virt.LibvirtDriver``) and every
emitted ``<hostdev>`` is validated against before use. It must be the
schema of the installed libvirt, so that only what libvirt understands is
defined.

Possible values:

* Absolute path of libvirt's ``domain.rng``.

Related options:

* ``[multimodal_virt_compute]`` tuning specs
"""),
]


def register_opts(conf):
    """Register the ``[multimodal_virt_libvirt]`` options on ``conf``."""
    groups.register(conf, GROUP, OPTS)


def list_opts():
    """Return ``[(group, opts)]`` for oslo-config-generator."""
    return [(GROUP, OPTS)]
