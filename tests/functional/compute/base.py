"""Nova's libvirt functional base with ``compute_driver`` set to our shim.

Real Nova API, conductor, scheduler and compute manager, real Placement,
Nova's libvirt driver code over fakelibvirt; only the driver class differs:
``[DEFAULT] compute_driver = multimodal_virt.LibvirtDriver``, loaded by
Nova's own ``load_compute_driver`` from ``nova.virt.multimodal_virt``.
"""

import fixtures
from nova.tests.fixtures import libvirt as fakelibvirt
from nova.tests.functional.libvirt import base as libvirt_base
from nova.tests.functional.libvirt import test_pci_sriov_servers

from tests.functional import nova_env

SHIM_DRIVER = 'multimodal_virt.LibvirtDriver'


class DefinedXML(fixtures.Fixture):
    """Records every domain XML document defined on a fake connection."""

    def _setUp(self):
        self.documents = []
        original = fakelibvirt.Connection.defineXML

        def define(connection, xml):
            self.documents.append(xml)
            return original(connection, xml)

        self.useFixture(fixtures.MonkeyPatch(
            'nova.tests.fixtures.libvirt.Connection.defineXML', define))

    def last(self):
        return self.documents[-1]


class ShimMixin:
    """Start computes with our driver; record the XML they define."""

    def setUp(self):
        self.flags(api_paste_config=nova_env.api_paste_config(),
                   group='wsgi')
        super().setUp()
        self.defined = self.useFixture(DefinedXML())

    def _setup_compute_service(self):
        self.flags(compute_driver=SHIM_DRIVER)


class ShimServersTestBase(ShimMixin, libvirt_base.ServersTestBase):
    """``ServersTestBase`` running our driver."""

    ADMIN_API = True
    microversion = 'latest'


class ShimPCIServersTestBase(ShimMixin,
                             test_pci_sriov_servers._PCIServersTestBase):
    """``_PCIServersTestBase`` (PCI devices, aliases) running our driver."""

    ADMIN_API = True
    microversion = 'latest'
