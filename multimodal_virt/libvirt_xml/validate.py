"""Validate domain documents: libvirt's RelaxNG schema plus our own checks.

The schema catches unknown elements and bad values (``managed='maybe'``),
but not cross-references: it accepts the same VF twice and a disk pointing
at an iothread that does not exist, and libvirt's test driver defines such
domains silently. :func:`semantic_errors` catches those.
"""

import collections
import threading

from lxml import etree

from multimodal_virt import exception
from multimodal_virt.pci import address as pci_address

DEFAULT_SCHEMA = '/usr/share/libvirt/schemas/domain.rng'

_PROBE_DOMAIN = """<domain type='kvm'><name>probe</name>
<memory>65536</memory><os><type>hvm</type></os>%s<devices/></domain>"""


def _parse(xml):
    if isinstance(xml, etree._Element):
        return xml
    if isinstance(xml, str):
        xml = xml.encode('utf-8')
    if not isinstance(xml, bytes):
        raise exception.InvalidDomainXML(
            'expected domain XML text or an lxml element, got %r'
            % (type(xml),))
    try:
        parser = etree.XMLParser(resolve_entities=False, no_network=True)
        return etree.fromstring(xml, parser)
    except etree.XMLSyntaxError as err:
        raise exception.InvalidDomainXML('not well-formed XML: %s' % err)


class DomainSchema(object):
    """libvirt's ``domain.rng``, compiled once on first use.

    :param path: schema path (``[multimodal_virt_libvirt] domain_schema``).
    """

    def __init__(self, path=DEFAULT_SCHEMA):
        self.path = path
        self._relaxng = None
        self._lock = threading.Lock()
        self._features = {}

    def _compiled(self):
        with self._lock:
            if self._relaxng is None:
                try:
                    self._relaxng = etree.RelaxNG(etree.parse(self.path))
                except (OSError, etree.XMLSyntaxError,
                        etree.RelaxNGParseError) as err:
                    raise exception.InvalidDomainXML(
                        'cannot load libvirt domain schema %s (option '
                        '[multimodal_virt_libvirt] domain_schema): %s'
                        % (self.path, err))
            return self._relaxng

    def schema_errors(self, xml):
        """Return RelaxNG errors of a domain document (empty when valid).

        :param xml: domain XML text or ``lxml`` element.
        :returns: list of ``'line N: message'`` strings.
        """
        root = _parse(xml)
        relaxng = self._compiled()
        with self._lock:  # the validator keeps its error log: not shareable
            if relaxng.validate(etree.ElementTree(root)):
                return []
            return ['line %s: %s' % (err.line, err.message)
                    for err in relaxng.error_log]

    def supports(self, domain_children):
        """Probe whether the schema accepts some domain-level XML.

        :param domain_children: XML text placed inside a minimal
            ``<domain>`` (e.g. an ``<iothreadids>`` block).
        :returns: True when the probe document validates.
        """
        key = domain_children
        if key not in self._features:
            self._features[key] = not self.schema_errors(
                _PROBE_DOMAIN % domain_children)
        return self._features[key]

    def supports_iothread_poll(self):
        """True when ``<iothread>`` may hold ``<poll>`` (not in libvirt 9.0)."""
        return self.supports(
            "<iothreads>1</iothreads><iothreadids><iothread id='1'>"
            "<poll max='32768'/></iothread></iothreadids>")


def _defined_iothreads(root, errors):
    listed = [int(e.get('id')) for e in root.iterfind('iothreadids/iothread')
              if (e.get('id') or '').isdigit()]
    for ident, n in collections.Counter(listed).items():
        if n > 1:
            errors.append('iothread id %d is listed %d times in <iothreadids>'
                          % (ident, n))
    count_text = root.findtext('iothreads')
    count = int(count_text) if (count_text or '').strip().isdigit() else 0
    defined = set(listed)
    candidate = 1
    while len(defined) < count:  # libvirt numbers unlisted threads itself
        if candidate not in defined:
            defined.add(candidate)
        candidate += 1
    return defined


def _iothread_refs(root):
    for disk in root.iterfind('devices/disk'):
        ref = disk.find('driver')
        if ref is not None and ref.get('iothread') is not None:
            target = disk.find('target')
            yield ('disk %s' % (target.get('dev') if target is not None
                                else '?'), ref.get('iothread'))
    for ctl in root.iterfind('devices/controller'):
        ref = ctl.find('driver')
        if ref is not None and ref.get('iothread') is not None:
            yield ('controller %s/%s' % (ctl.get('type'), ctl.get('index')),
                   ref.get('iothread'))
    for pin in root.iterfind('cputune/iothreadpin'):
        yield 'cputune iothreadpin', pin.get('iothread')


def semantic_errors(xml):
    """Return cross-reference errors the schema cannot see.

    Checks: a host PCI device in two ``<hostdev>`` elements, two disks with
    one target, duplicate ``<iothreadids>`` ids, references to iothreads
    that do not exist, and an iothread pinned twice.

    :param xml: domain XML text or ``lxml`` element.
    :returns: list of messages (empty when consistent).
    """
    root = _parse(xml)
    errors = []
    sources = collections.Counter()
    for hostdev in root.iterfind('devices/hostdev'):
        if hostdev.get('type') != 'pci':
            continue
        addr = hostdev.find('source/address')
        if addr is None:
            continue
        try:
            sources[pci_address.PciAddress.from_libvirt_attrs(
                addr.attrib)] += 1
        except exception.InvalidPciAddress as err:
            errors.append('hostdev source: %s' % err)
    for addr, n in sorted(sources.items()):
        if n > 1:
            errors.append('host PCI device %s is in %d <hostdev> elements'
                          % (addr, n))
    targets = collections.Counter(
        t.get('dev') for t in root.iterfind('devices/disk/target'))
    for dev, n in sorted(targets.items(), key=lambda kv: str(kv[0])):
        if n > 1:
            errors.append('disk target %s is used by %d disks' % (dev, n))
    defined = _defined_iothreads(root, errors)
    for where, ref in _iothread_refs(root):
        if not (ref or '').isdigit() or int(ref) not in defined:
            errors.append('%s refers to iothread %s, which is not defined '
                          '(defined: %s)' % (where, ref, ', '.join(
                              str(i) for i in sorted(defined)) or 'none'))
    pins = collections.Counter(p.get('iothread')
                               for p in root.iterfind('cputune/iothreadpin'))
    for ref, n in sorted(pins.items(), key=lambda kv: str(kv[0])):
        if n > 1:
            errors.append('iothread %s is pinned %d times' % (ref, n))
    return errors


def validate_domain(xml, schema):
    """Validate a domain document; return it as an element when valid.

    :param xml: domain XML text or ``lxml`` element.
    :param schema: a :class:`DomainSchema`.
    :returns: the ``lxml`` root element.
    :raises InvalidDomainXML: listing every schema and semantic error.
    """
    root = _parse(xml)
    if root.tag != 'domain':
        raise exception.InvalidDomainXML(
            'expected a <domain> document, got <%s>' % root.tag)
    errors = schema.schema_errors(root) + semantic_errors(root)
    if errors:
        raise exception.InvalidDomainXML(
            'domain %s is invalid: %s' % (root.findtext('name') or '?',
                                          '; '.join(errors)))
    return root
