"""Apply a flavor's disk tuning to the guest XML Nova built.

Nova's ``_get_guest_xml`` output is parsed, tuned with
:mod:`multimodal_virt.libvirt_xml.iotune` (iothreads, ``io``, ``queues`` on
every ``<disk device='disk'>``), validated against the installed libvirt's
``domain.rng`` plus our cross-reference checks, and returned as text. A
flavor without tuning specs gets Nova's XML back untouched (same object).

A spec the host cannot honour raises
:class:`~multimodal_virt.compute.errors.UnsupportedFlavorSpec` naming the
disk and the reason; nothing is dropped silently.
"""

from lxml import etree
from oslo_log import log as logging

from multimodal_virt.compute import errors
from multimodal_virt.compute import specs
from multimodal_virt import exception
from multimodal_virt.libvirt_xml import iotune
from multimodal_virt.libvirt_xml import validate

LOG = logging.getLogger(__name__)

# io='native' is Linux AIO: QEMU refuses it without O_DIRECT.
DIRECT_CACHE_MODES = ('none', 'directsync')
# Disk types whose I/O goes through QEMU's file AIO (io= applies).
LOCAL_DISK_TYPES = ('file', 'block')
# io='io_uring': libvirt 6.3.0 and QEMU 5.0.0.
IO_URING_MIN_LIBVIRT = (6, 3, 0)
IO_URING_MIN_QEMU = (5, 0, 0)


def _unsupported(reason):
    return errors.UnsupportedFlavorSpec(reason=reason)


def _guest_disks(root):
    for disk in root.iterfind('devices/disk'):
        if disk.get('device', 'disk') == 'disk':
            target = disk.find('target')
            if target is not None and target.get('dev'):
                yield disk, target


def _check_disk(disk, target, tuning):
    dev, bus = target.get('dev'), target.get('bus')
    if (tuning.iothreads or tuning.queues) and bus != 'virtio':
        raise _unsupported(
            "disk %s is on bus %r: %s and %s need bus 'virtio' "
            '(image property hw_disk_bus)'
            % (dev, bus, specs.DISK_IOTHREADS, specs.DISK_QUEUES))
    if tuning.io is None:
        return
    if disk.get('type') not in LOCAL_DISK_TYPES:
        raise _unsupported(
            "disk %s has type %r: %s=%s applies to file and block disks "
            'only' % (dev, disk.get('type'), specs.DISK_IO, tuning.io))
    cache = (disk.find('driver').get('cache')
             if disk.find('driver') is not None else None)
    if tuning.io == 'native' and cache not in DIRECT_CACHE_MODES:
        raise _unsupported(
            "disk %s uses cache=%r; %s=native needs cache 'none' or "
            "'directsync' (nova.conf [libvirt] disk_cachemodes, and a "
            'filesystem with O_DIRECT under the instances path)'
            % (dev, cache, specs.DISK_IO))


def check_host(tuning, host):
    """Refuse tuning the hypervisor cannot do.

    :param tuning: :class:`~multimodal_virt.compute.specs.GuestTuning`.
    :param host: Nova's ``nova.virt.libvirt.host.Host`` (``has_min_version``).
    :raises UnsupportedFlavorSpec: io_uring on a libvirt/QEMU without it.
    """
    if tuning.io == 'io_uring' and not host.has_min_version(
            lv_ver=IO_URING_MIN_LIBVIRT, hv_ver=IO_URING_MIN_QEMU):
        raise _unsupported(
            '%s=io_uring needs libvirt >= %s and QEMU >= %s'
            % (specs.DISK_IO, '.'.join(map(str, IO_URING_MIN_LIBVIRT)),
               '.'.join(map(str, IO_URING_MIN_QEMU))))


def tune(xml, tuning, schema):
    """Return ``xml`` with ``tuning`` applied and validated.

    :param xml: the domain XML text Nova built.
    :param tuning: :class:`~multimodal_virt.compute.specs.GuestTuning`.
    :param schema: :class:`~multimodal_virt.libvirt_xml.validate.DomainSchema`.
    :returns: XML text; ``xml`` itself when ``tuning`` is empty.
    :raises UnsupportedFlavorSpec: a disk or the schema refuses the tuning.
    """
    if not tuning:
        return xml
    root = etree.fromstring(xml.encode('utf-8') if isinstance(xml, str)
                            else xml,
                            etree.XMLParser(resolve_entities=False,
                                            no_network=True))
    disks = []
    for disk, target in _guest_disks(root):
        _check_disk(disk, target, tuning)
        disks.append(iotune.DiskTuning(target=target.get('dev'),
                                       io=tuning.io, queues=tuning.queues))
    if (tuning.iothreads or tuning.queues or tuning.io) and not disks:
        raise _unsupported('the flavor asks for disk tuning but the guest '
                           'has no disk to tune')
    # With hw:emulator_threads_policy Nova pins the emulator threads away
    # from the guest's dedicated vCPUs: the iothreads go with them.
    emulatorpin = root.find('cputune/emulatorpin')
    pinning = None
    if tuning.iothreads and emulatorpin is not None and emulatorpin.get(
            'cpuset'):
        pinning = {ident: emulatorpin.get('cpuset')
                   for ident in range(1, tuning.iothreads + 1)}
    try:
        plan = iotune.plan_tuning(iothreads=tuning.iothreads or 0,
                                  disks=disks, pinning=pinning)
        tuned = iotune.apply_tuning(root, plan)
        validate.validate_domain(tuned, schema)
    except exception.InvalidDomainXML as err:
        raise _unsupported('the tuned guest XML is not valid for the '
                           'installed libvirt: %s' % err)
    text = etree.tostring(tuned, encoding='unicode', pretty_print=True)
    LOG.debug('Applied guest tuning %(tuning)s to disks %(disks)s',
              {'tuning': tuning, 'disks': [d.target for d in disks]})
    return text
