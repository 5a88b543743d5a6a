"""Exception hierarchy for multimodal-virt.

Every error raised on purpose by this package derives from
:class:`MultimodalVirtError`, so callers (Nova's scheduler included) can
catch one base class and fall back safely.
"""


class MultimodalVirtError(Exception):
    """Base class for all errors raised by this package."""


class InvalidSample(MultimodalVirtError, ValueError):
    """A host sample failed validation (bad type, NaN, negative, too big)."""


class InvalidHistogram(InvalidSample):
    """A latency histogram is malformed."""


class InvalidExtraSpec(MultimodalVirtError, ValueError):
    """A flavor extra spec of ours has a malformed value."""


class StoreError(MultimodalVirtError):
    """The stats store could not be read or written."""


class StoreUnavailable(StoreError):
    """The stats store backend is down or unreachable."""


class InvalidPciAddress(MultimodalVirtError, ValueError):
    """A PCI address string is not ``DDDD:BB:SS.F``."""


class PciDiscoveryError(MultimodalVirtError):
    """Discovering SR-IOV devices from sysfs failed."""


class ClaimError(MultimodalVirtError):
    """A VF claim could not be made or released."""


class VfioBindError(MultimodalVirtError):
    """A VF could not be (re)bound to a driver through sysfs."""


class InvalidDomainXML(MultimodalVirtError, ValueError):
    """Generated or parsed libvirt XML is invalid."""


class ProbeError(MultimodalVirtError):
    """An eBPF or procfs probe failed to load, attach or read."""


class BPFUnavailable(ProbeError):
    """BPF cannot be used on this host (no privileges, no BTF, no libbpf)."""


class PublishError(MultimodalVirtError):
    """Publishing a sample (store or Placement) failed."""


class CollectorConfigError(MultimodalVirtError, ValueError):
    """Collector options are inconsistent (e.g. tier thresholds)."""


class UnknownHost(MultimodalVirtError, LookupError):
    """A host named on the command line has no sample in the store."""


class DemoError(MultimodalVirtError):
    """The demo could not run (output directory, workload, collector)."""


class CloudApiError(MultimodalVirtError):
    """An OpenStack API (Keystone, Nova) refused or failed a request."""
