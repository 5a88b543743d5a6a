"""I/O tuning XML recommended by the bottleneck analysis.

Four knobs, all in libvirt 9.0's schema:

* ``<iothreads>N</iothreads>`` + ``<iothreadids>``: dedicated QEMU I/O
  threads instead of the main loop;
* ``<disk><driver io='native' cache='none' iothread='K' queues='Q'/>``:
  Linux AIO (needs O_DIRECT, hence ``cache='none'``), a disk bound to an
  iothread, multi-queue virtio-blk;
* ``<cputune><iothreadpin iothread='K' cpuset='...'/>``: iothread pinning.

Usage::

    tuning = iotune.plan_tuning(iothreads=2, disks=['vda', 'vdb'],
                                queues=4, pinning={1: '2-3', 2: [4, 5]})
    domain = iotune.apply_tuning(domain_xml, tuning)
    elements = iotune.tuning_xml(iothreads=2, disks=['vda'])
"""

import dataclasses
import re

from lxml import etree

from multimodal_virt import exception

IO_MODES = ('native', 'threads', 'io_uring')
_TARGET_RE = re.compile(r'^[a-z][a-z0-9]{1,15}$')
_CPUSET_RE = re.compile(r'^\^?\d+(-\d+)?(,\^?\d+(-\d+)?)*$')
MAX_IOTHREADS = 256
MAX_QUEUES = 1024


@dataclasses.dataclass(frozen=True)
class DiskTuning:
    """Tuning of one disk, found by its ``<target dev=...>``."""

    target: str
    iothread: object = None
    io: object = 'native'
    queues: object = None


@dataclasses.dataclass(frozen=True)
class IOTuning:
    """A validated tuning plan (see :func:`plan_tuning`)."""

    iothreads: int
    disks: tuple
    pinning: tuple  # ((iothread id, cpuset text), ...) sorted by id
    poll_max_ns: object = None


def _positive(name, value, top):
    if isinstance(value, bool) or not isinstance(value, int) \
            or not 1 <= value <= top:
        raise exception.InvalidDomainXML(
            '%s must be an integer 1..%d, got %r' % (name, top, value))
    return value


def cpuset_text(value):
    """Return libvirt cpuset text for ``'2-3'`` or an iterable of CPU ids.

    :raises InvalidDomainXML: naming the bad value.
    """
    if isinstance(value, str):
        if not _CPUSET_RE.match(value):
            raise exception.InvalidDomainXML(
                'cpuset %r: expected e.g. "2-3,6" or a list of CPU ids'
                % value)
        return value
    try:
        cpus = sorted(set(value))
    except TypeError:
        raise exception.InvalidDomainXML(
            'cpuset %r: expected a string or a list of CPU ids' % (value,))
    if not cpus or any(isinstance(c, bool) or not isinstance(c, int)
                       or c < 0 for c in cpus):
        raise exception.InvalidDomainXML(
            'cpuset %r: expected a non-empty list of CPU ids >= 0'
            % (value,))
    ranges, start = [], cpus[0]
    for prev, cur in zip(cpus, cpus[1:] + [None]):
        if cur != prev + 1:
            ranges.append(str(start) if start == prev
                          else '%d-%d' % (start, prev))
            start = cur
    return ','.join(ranges)


def _disk(spec, index, iothreads, queues, io):
    if isinstance(spec, str):
        spec = DiskTuning(target=spec, io=io)
    elif isinstance(spec, dict):
        try:
            spec = DiskTuning(**spec)
        except TypeError as err:
            raise exception.InvalidDomainXML('disk tuning %r: %s'
                                             % (spec, err))
    if not isinstance(spec, DiskTuning):
        raise exception.InvalidDomainXML(
            'disk %r: expected a target name, a dict or a DiskTuning'
            % (spec,))
    if not isinstance(spec.target, str) or not _TARGET_RE.match(spec.target):
        raise exception.InvalidDomainXML(
            'disk target %r: expected a device name such as vda'
            % (spec.target,))
    if spec.io is not None and spec.io not in IO_MODES:
        raise exception.InvalidDomainXML(
            'disk %s io=%r: expected one of %s'
            % (spec.target, spec.io, ', '.join(IO_MODES)))
    iothread = spec.iothread
    if iothread is None and iothreads:
        iothread = index % iothreads + 1  # round robin
    if iothread is not None:
        _positive('disk %s iothread' % spec.target, iothread, MAX_IOTHREADS)
        if iothread > iothreads:
            raise exception.InvalidDomainXML(
                'disk %s uses iothread %d but only %d iothread(s) are '
                'planned' % (spec.target, iothread, iothreads))
    disk_queues = spec.queues if spec.queues is not None else queues
    if disk_queues is not None:
        _positive('disk %s queues' % spec.target, disk_queues, MAX_QUEUES)
    return dataclasses.replace(spec, iothread=iothread, queues=disk_queues)


def plan_tuning(iothreads=0, disks=(), queues=None, pinning=None,
                io='native', poll_max_ns=None):
    """Validate a tuning request and return an :class:`IOTuning`.

    :param iothreads: number of iothreads (0 = none).
    :param disks: disk targets (``'vda'``), dicts of :class:`DiskTuning`
        fields, or :class:`DiskTuning`; disks without an ``iothread`` are
        spread round robin over the iothreads.
    :param queues: virtio-blk queues for disks that do not set their own.
    :param pinning: ``{iothread id: cpuset}``, cpuset as ``'2-3'`` or a
        list of CPU ids.
    :param io: default ``io`` mode of disks given by name.
    :param poll_max_ns: iothread polling limit; only where the installed
        schema has ``<poll>`` (see :func:`apply_tuning`).
    :raises InvalidDomainXML: naming the bad argument.
    """
    if isinstance(iothreads, bool) or not isinstance(iothreads, int) \
            or not 0 <= iothreads <= MAX_IOTHREADS:
        raise exception.InvalidDomainXML(
            'iothreads must be an integer 0..%d, got %r'
            % (MAX_IOTHREADS, iothreads))
    if isinstance(disks, (str, bytes)):
        raise exception.InvalidDomainXML(
            'disks must be a list of disks, got the string %r' % (disks,))
    planned = tuple(_disk(d, i, iothreads, queues, io)
                    for i, d in enumerate(disks))
    seen = set()
    for disk in planned:
        if disk.target in seen:
            raise exception.InvalidDomainXML(
                'disk %s is listed twice' % disk.target)
        seen.add(disk.target)
    pins = []
    for ident, cpus in sorted((pinning or {}).items(), key=lambda kv: kv[0]):
        _positive('pinned iothread id', ident, MAX_IOTHREADS)
        if ident > iothreads:
            raise exception.InvalidDomainXML(
                'pinning names iothread %d but only %d iothread(s) are '
                'planned' % (ident, iothreads))
        pins.append((ident, cpuset_text(cpus)))
    if poll_max_ns is not None:
        if isinstance(poll_max_ns, bool) or not isinstance(poll_max_ns, int) \
                or poll_max_ns < 0:
            raise exception.InvalidDomainXML(
                'poll_max_ns must be an integer >= 0, got %r'
                % (poll_max_ns,))
        if not iothreads:
            raise exception.InvalidDomainXML(
                'poll_max_ns needs iothreads >= 1')
    return IOTuning(iothreads=iothreads, disks=planned, pinning=tuple(pins),
                    poll_max_ns=poll_max_ns)


def _iothread_elements(tuning):
    count = etree.Element('iothreads')
    count.text = str(tuning.iothreads)
    ids = etree.Element('iothreadids')
    for ident in range(1, tuning.iothreads + 1):
        thread = etree.SubElement(ids, 'iothread', id=str(ident))
        if tuning.poll_max_ns is not None:
            etree.SubElement(thread, 'poll', max=str(tuning.poll_max_ns))
    return count, ids


def _disk_driver(tuning_disk, driver):
    if tuning_disk.io is not None:
        driver.set('io', tuning_disk.io)
        if tuning_disk.io == 'native' and driver.get('cache') not in (
                'none', 'directsync'):
            driver.set('cache', 'none')  # Linux AIO needs O_DIRECT
    if tuning_disk.iothread is not None:
        driver.set('iothread', str(tuning_disk.iothread))
    if tuning_disk.queues is not None:
        driver.set('queues', str(tuning_disk.queues))
    return driver


def tuning_xml(iothreads=0, disks=(), queues=None, pinning=None,
               io='native', poll_max_ns=None):
    """Return the tuning as loose elements (same arguments as plan_tuning).

    :returns: dict with ``iothreads``, ``iothreadids`` and ``cputune``
        elements (None when not needed) and ``disk_drivers``: ``{target:
        <driver> element}`` holding only the tuned attributes.
    """
    tuning = plan_tuning(iothreads, disks, queues, pinning, io, poll_max_ns)
    count, ids = _iothread_elements(tuning) if tuning.iothreads else (None,
                                                                      None)
    cputune = None
    if tuning.pinning:
        cputune = etree.Element('cputune')
        for ident, cpus in tuning.pinning:
            etree.SubElement(cputune, 'iothreadpin', iothread=str(ident),
                             cpuset=cpus)
    drivers = {d.target: _disk_driver(d, etree.Element('driver'))
               for d in tuning.disks}
    return {'iothreads': count, 'iothreadids': ids, 'cputune': cputune,
            'disk_drivers': drivers}


def _replace(root, tag, new, before=('devices',)):
    old = root.find(tag)
    if old is not None:
        old.getparent().replace(old, new)
        return
    for anchor in before:
        found = root.find(anchor)
        if found is not None:
            found.addprevious(new)
            return
    root.append(new)


def apply_tuning(domain_xml, tuning, schema=None):
    """Return a copy of a ``<domain>`` with ``tuning`` applied.

    :param domain_xml: domain XML text or element (left unchanged).
    :param tuning: an :class:`IOTuning` from :func:`plan_tuning`.
    :param schema: a ``validate.DomainSchema``; required when the plan
        asks for iothread polling, to check the installed libvirt has it.
    :returns: a new ``<domain>`` element.
    :raises InvalidDomainXML: unknown disk target, an iothread on a
        non-virtio disk, or polling the installed schema lacks.
    """
    if not isinstance(tuning, IOTuning):
        raise exception.InvalidDomainXML(
            'tuning must be an IOTuning from plan_tuning(), got %r'
            % (type(tuning),))
    if tuning.poll_max_ns is not None and (
            schema is None or not schema.supports_iothread_poll()):
        raise exception.InvalidDomainXML(
            'iothread polling (<iothread><poll/>) is not in the installed '
            'libvirt domain schema %s; drop poll_max_ns'
            % (getattr(schema, 'path', '(none given)'),))
    if isinstance(domain_xml, etree._Element):
        text = etree.tostring(domain_xml)
    elif isinstance(domain_xml, (str, bytes)):
        text = domain_xml.encode('utf-8') if isinstance(domain_xml, str) \
            else domain_xml
    else:
        raise exception.InvalidDomainXML(
            'expected domain XML text or an lxml element, got %r'
            % (type(domain_xml),))
    try:
        root = etree.fromstring(text, etree.XMLParser(
            resolve_entities=False, no_network=True))
    except etree.XMLSyntaxError as err:
        raise exception.InvalidDomainXML('not well-formed XML: %s' % err)
    if root.tag != 'domain':
        raise exception.InvalidDomainXML(
            'expected a <domain> document, got <%s>' % root.tag)
    if tuning.iothreads:
        count, ids = _iothread_elements(tuning)
        _replace(root, 'iothreads', count)
        _replace(root, 'iothreadids', ids)
        for pin in root.findall('cputune/iothreadpin'):
            ident = pin.get('iothread', '')
            if not ident.isdigit() or int(ident) > tuning.iothreads:
                pin.getparent().remove(pin)  # would dangle
    if tuning.pinning:
        cputune = root.find('cputune')
        if cputune is None:
            cputune = etree.Element('cputune')
            _replace(root, 'cputune', cputune)
        pinned = {ident for ident, _ in tuning.pinning}
        for old in cputune.findall('iothreadpin'):
            if old.get('iothread', '').isdigit() and \
                    int(old.get('iothread')) in pinned:
                cputune.remove(old)
        for ident, cpus in tuning.pinning:
            etree.SubElement(cputune, 'iothreadpin', iothread=str(ident),
                             cpuset=cpus)
    for disk_tuning in tuning.disks:
        _tune_disk(root, disk_tuning)
    return root


def _tune_disk(root, disk_tuning):
    for disk in root.iterfind('devices/disk'):
        target = disk.find('target')
        if target is None or target.get('dev') != disk_tuning.target:
            continue
        bus = target.get('bus')
        if (disk_tuning.iothread is not None
                or disk_tuning.queues is not None) and bus != 'virtio':
            raise exception.InvalidDomainXML(
                'disk %s is on bus %r: iothread and queues need '
                "bus='virtio'" % (disk_tuning.target, bus))
        driver = disk.find('driver')
        if driver is None:
            driver = etree.Element('driver', name='qemu')
            disk.insert(0, driver)
        _disk_driver(disk_tuning, driver)
        return
    raise exception.InvalidDomainXML(
        'domain has no disk with target dev=%r' % disk_tuning.target)
