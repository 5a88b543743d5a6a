"""Reconcile the VF claim ledger with the domains libvirt really holds.

Run on start (and whenever wanted): list every domain, active and
persistent-inactive, read the PCI ``<hostdev>`` source addresses from its
XML and make the ledger agree. The domain UUID is the Nova instance UUID.
"""

import libvirt
from oslo_log import log as logging

from multimodal_virt.libvirt_xml import hostdev
from multimodal_virt.pci import ledger as vf_ledger

LOG = logging.getLogger(__name__)


def domain_hostdevs(conn):
    """Read the PCI hostdevs of every domain on a libvirt connection.

    :param conn: an open ``libvirt.virConnect``.
    :returns: list of ``(uuid, active, [PciAddress, ...])`` tuples sorted
        by UUID; domains that vanish while being read are skipped.
    """
    result = []
    for dom in conn.listAllDomains(0):
        try:
            uuid = dom.UUIDString()
            active = bool(dom.isActive())
            xml = dom.XMLDesc(0)
        except libvirt.libvirtError as err:
            if err.get_error_code() == libvirt.VIR_ERR_NO_DOMAIN:
                LOG.debug('Domain vanished while reconciling: %s', err)
                continue
            raise
        addresses = [h.address for h in hostdev.parse_domain_hostdevs(xml)]
        result.append((uuid, active, addresses))
    result.sort(key=lambda item: item[0])
    return result


def resolve_owners(domains):
    """Map each host VF to the one domain that owns it.

    A VF in several domain definitions (possible for shut-off domains) goes
    to a running domain if there is one, else to the lowest UUID; each such
    conflict is logged as an error because one of the guests cannot start.

    :param domains: output of :func:`domain_hostdevs`.
    :returns: ``{PciAddress: uuid}``.
    """
    holders = {}
    for uuid, active, addresses in domains:
        for addr in addresses:
            holders.setdefault(addr, []).append((not active, uuid))
    owners = {}
    for addr, candidates in holders.items():
        candidates.sort()
        owners[addr] = candidates[0][1]
        if len(candidates) > 1:
            LOG.error('VF %s is in %d domains (%s); counting it for %s',
                      addr, len(candidates),
                      ', '.join(u for _, u in candidates), owners[addr])
    return owners


def reconcile(ledger, conn):
    """Make ``ledger`` agree with the domains on ``conn``.

    :param ledger: a :class:`multimodal_virt.pci.ledger.Ledger`.
    :param conn: an open ``libvirt.virConnect``.
    :returns: the ledger's :class:`ReconcileReport`.
    """
    report = ledger.reconcile(resolve_owners(domain_hostdevs(conn)))
    LOG.info('Reconciled VF ledger %s: %d adopted, %d moved, %d promoted, '
             '%d freed, %d claims pending', ledger.path, len(report.adopted),
             len(report.moved), len(report.promoted), len(report.freed),
             len(report.pending))
    return report


def reconcile_on_start(conf):
    """Open the configured ledger and libvirt, reconcile, close.

    :param conf: a ``ConfigOpts`` with ``[multimodal_virt_libvirt]``.
    :returns: the :class:`ReconcileReport`.
    """
    group = conf.multimodal_virt_libvirt
    ledger = vf_ledger.Ledger(group.ledger_path)
    conn = libvirt.openReadOnly(group.connection_uri)
    try:
        return reconcile(ledger, conn)
    finally:
        conn.close()
