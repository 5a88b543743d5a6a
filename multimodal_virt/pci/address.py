"""PCI addresses as frozen, validated value objects.

Parse once at the edge (sysfs link targets, config, libvirt XML); everything
past the edge handles :class:`PciAddress` and never re-parses strings.
"""

import dataclasses
import re

from multimodal_virt import exception

_ADDRESS_RE = re.compile(
    r'^(?:(?P<domain>[0-9a-fA-F]{1,4}):)?(?P<bus>[0-9a-fA-F]{1,2}):'
    r'(?P<slot>[0-9a-fA-F]{1,2})\.(?P<function>[0-7])$')

MAX_DOMAIN = 0xFFFF
MAX_BUS = 0xFF
MAX_SLOT = 0x1F
MAX_FUNCTION = 0x7


@dataclasses.dataclass(frozen=True, order=True)
class PciAddress:
    """A PCI function address ``DDDD:BB:SS.F``."""

    domain: int
    bus: int
    slot: int
    function: int

    def __post_init__(self):
        for name, value, top in (('domain', self.domain, MAX_DOMAIN),
                                 ('bus', self.bus, MAX_BUS),
                                 ('slot', self.slot, MAX_SLOT),
                                 ('function', self.function, MAX_FUNCTION)):
            if isinstance(value, bool) or not isinstance(value, int) or not (
                    0 <= value <= top):
                raise exception.InvalidPciAddress(
                    'PCI %s must be an integer 0..%#x, got %r'
                    % (name, top, value))

    @classmethod
    def parse(cls, text):
        """Parse ``DDDD:BB:SS.F`` (domain optional, hex, any case).

        :raises InvalidPciAddress: naming the bad input.
        """
        if not isinstance(text, str):
            raise exception.InvalidPciAddress(
                'PCI address must be a string, got %r' % (text,))
        match = _ADDRESS_RE.match(text.strip())
        if not match:
            raise exception.InvalidPciAddress(
                'invalid PCI address %r: expected DDDD:BB:SS.F '
                '(e.g. 0000:3b:00.1)' % text)
        slot = int(match.group('slot'), 16)
        if slot > MAX_SLOT:
            raise exception.InvalidPciAddress(
                'invalid PCI address %r: slot %#x is over %#x'
                % (text, slot, MAX_SLOT))
        return cls(int(match.group('domain') or '0', 16),
                   int(match.group('bus'), 16), slot,
                   int(match.group('function')))

    def __str__(self):
        return '%04x:%02x:%02x.%x' % (self.domain, self.bus, self.slot,
                                      self.function)

    def libvirt_attrs(self):
        """Attributes of a libvirt ``<address type='pci'>`` element."""
        return {'domain': '0x%04x' % self.domain, 'bus': '0x%02x' % self.bus,
                'slot': '0x%02x' % self.slot,
                'function': '0x%x' % self.function}

    @classmethod
    def from_libvirt_attrs(cls, attrs):
        """Inverse of :meth:`libvirt_attrs` (accepts hex or decimal)."""
        try:
            return cls(*(int(attrs[key], 0) for key in
                         ('domain', 'bus', 'slot', 'function')))
        except (KeyError, TypeError, ValueError) as err:
            raise exception.InvalidPciAddress(
                'invalid libvirt PCI address %r: %s' % (dict(attrs), err))
