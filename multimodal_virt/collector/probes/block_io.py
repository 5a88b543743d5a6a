"""Block I/O latency (issue to complete) per device, from eBPF."""

from multimodal_virt.collector.bpf import decode
from multimodal_virt.collector.bpf import probe
from multimodal_virt.collector.bpf import spec
from multimodal_virt.collector.probes import base

SPEC = spec.ProbeSpec(
    source='block_io',
    programs=(
        spec.Program('mmv_block_rq_issue', 'block:block_rq_issue', 'tp_btf'),
        spec.Program('mmv_block_rq_complete', 'block:block_rq_complete',
                     'tp_btf'),
    ),
    maps=(
        spec.Map('start', 'Q', 'Q', 'inflight_max_entries'),
        spec.Map('hists', 'I', '32Q', 'max_block_devices'),
    ),
    rodata={'targ_dev': 'I'},
)


class BlockIOProbe(probe.BpfProbe):
    """Log2 histogram of block I/O latency, total and per device.

    Enable with ``[multimodal_virt_probes] enabled = block_io,...``.
    """

    name = 'block_io'
    spec = SPEC

    def __init__(self, conf, host=None):
        super().__init__(conf, host)
        self._previous = {}

    def settings(self):
        return {'targ_dev': 0}

    def read(self):
        current = {dev: slots
                   for (dev,), slots in self.loaded.read('hists').items()}
        total = decode.histogram_from_slots(())
        by_device = {}
        for dev, slots in current.items():
            delta = decode.slots_delta(slots, self._previous.get(dev))
            if not any(delta):
                continue
            hist = decode.histogram_from_slots(delta)
            by_device[decode.block_device_name(dev)] = hist
            total = total.merged(hist)
        self._previous = current
        return base.ProbeReading(source='ebpf', io=total,
                                 io_by_device=by_device,
                                 events=self.events)
