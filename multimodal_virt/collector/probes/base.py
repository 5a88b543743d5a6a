"""Abstract probe and the reading a probe hands to the collector."""

import abc
import dataclasses

from oslo_config import cfg


@dataclasses.dataclass
class ProbeReading:
    """What one probe measured since its previous ``collect()``.

    Every field is optional: a probe fills in what it measures, and the
    collector merges the readings of all probes into one host sample.

    :param source: ``ebpf`` or ``procfs``.
    :param io: block I/O latency histogram
        (:class:`~multimodal_virt.metrics.histogram.LatencyHistogram`).
    :param io_by_device: ``{device name: LatencyHistogram}``.
    :param gpu_cmd: GPU command-submission (ioctl) latency histogram.
    :param vm_exits_by_pid: ``{qemu pid: exit count}``.
    :param vm_exits_by_reason: ``{reason: exit count}``.
    :param irq_counts: ``{irq line: count}``.
    :param events: kernel events (tracepoints) that were counted.
    :param gpu_submit: command-submission ioctl latency (exact numbers).
    :param gpu_wait: wait ioctl latency (exact numbers).
    :param gpu_nvidia_rm: NVIDIA resource-manager escape latency.
    :param gpu_exec: GPU job latency, dma_fence emit to signaled.
    :param gpu_exec_by_device: ``{device label: LatencyHistogram}``.
    :param gpu_exec_by_pid: ``{emitting tgid: LatencyHistogram}``.
    :param gpu_queue: GPU queue wait, DRM scheduler job queued to run.
    :param gpu_sched_exec: ``{(driver label, submitting tgid):
        LatencyHistogram}`` of DRM scheduler jobs, run to done; the sample
        builder adds to ``gpu_exec`` those of drivers no fence reading
        measured.
    :param gpu_busy_by_vf: ``{VF PCI address: engine busy %}``.
    :param gpu_observed: GPU signals this probe can measure on this host
        (``vocabulary.GPU_SIGNALS``), whether or not events came.
    :param dropped: ``{"<probe>.<map>": events lost in the window because
        that bounded BPF map was full}``; every bounded map has an entry
        (0 when nothing was lost), so an empty dict means "no bounded map".
    """

    source: str
    io: object = None
    io_by_device: dict = dataclasses.field(default_factory=dict)
    gpu_cmd: object = None
    vm_exits_by_pid: dict = dataclasses.field(default_factory=dict)
    vm_exits_by_reason: dict = dataclasses.field(default_factory=dict)
    irq_counts: dict = dataclasses.field(default_factory=dict)
    events: tuple = ()
    gpu_submit: object = None
    gpu_wait: object = None
    gpu_nvidia_rm: object = None
    gpu_exec: object = None
    gpu_exec_by_device: dict = dataclasses.field(default_factory=dict)
    gpu_exec_by_pid: dict = dataclasses.field(default_factory=dict)
    gpu_busy_by_vf: dict = dataclasses.field(default_factory=dict)
    gpu_queue: object = None
    gpu_sched_exec: dict = dataclasses.field(default_factory=dict)
    gpu_observed: tuple = ()
    dropped: dict = dataclasses.field(default_factory=dict)


class Probe(metaclass=abc.ABCMeta):
    """A source of host measurements.

    :param conf: ``oslo_config.cfg.ConfigOpts`` with the
        ``[multimodal_virt_probes]`` group registered; a probe reads only
        its own options.
    """

    #: entry point name in ``multimodal_virt.probes``.
    name = None

    def __init__(self, conf: cfg.ConfigOpts) -> None:
        self.conf = conf

    @abc.abstractmethod
    def start(self) -> None:
        """Load and attach. :raises ProbeError: (or ``BPFUnavailable``)."""

    @abc.abstractmethod
    def collect(self) -> ProbeReading:
        """Read and reset counters; return a :class:`ProbeReading`."""

    @abc.abstractmethod
    def stop(self) -> None:
        """Detach and free everything; safe to call twice."""

    def describe(self) -> str:
        """Human-readable description of what would be loaded (dump mode)."""
        return self.name
