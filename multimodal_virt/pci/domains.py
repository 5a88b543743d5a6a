"""Read every libvirt domain's PCI hostdevs, read-only (for ``pci audit``)."""

import libvirt
from oslo_log import log as logging

from multimodal_virt import exception
from multimodal_virt.pci import audit

LOG = logging.getLogger(__name__)


def read_domains(uri):
    """:class:`~multimodal_virt.pci.audit.DomainInfo` of every domain.

    Opens ``uri`` read-only; domains that vanish while being read are
    skipped.

    :raises MultimodalVirtError: libvirt cannot be reached.
    """
    try:
        conn = libvirt.openReadOnly(uri)
    except libvirt.libvirtError as err:
        raise exception.MultimodalVirtError(
            'cannot open libvirt %s read-only ([multimodal_virt_libvirt] '
            'connection_uri): %s' % (uri, err))
    try:
        result = []
        for dom in conn.listAllDomains(0):
            try:
                result.append(audit.parse_domain(
                    dom.name(), dom.UUIDString(), dom.isActive(),
                    dom.XMLDesc(0)))
            except libvirt.libvirtError as err:
                if err.get_error_code() != libvirt.VIR_ERR_NO_DOMAIN:
                    raise
                LOG.debug('Domain vanished while being read: %s', err)
        return result
    finally:
        conn.close()
