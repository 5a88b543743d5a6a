"""Hard-IRQ counts per IRQ line, from eBPF."""

from multimodal_virt.collector.bpf import decode
from multimodal_virt.collector.bpf import probe
from multimodal_virt.collector.bpf import spec
from multimodal_virt.collector.probes import base

SPEC = spec.ProbeSpec(
    source='irq',
    programs=(
        spec.Program('mmv_irq_handler_entry', 'irq:irq_handler_entry',
                     'tp_btf'),
    ),
    maps=(spec.Map('counts', 'I', 'Q', 'max_irq_lines'),),
    drops=('counts',),
)


class IrqProbe(probe.BpfProbe):
    """Hard IRQs per line since the previous collection.

    Enable with ``[multimodal_virt_probes] enabled = irq,...``.
    """

    name = 'irq'
    spec = SPEC

    def __init__(self, conf, host=None):
        super().__init__(conf, host)
        self._previous = {}

    def read(self):
        current = {irq: count
                   for (irq,), (count,) in self.loaded.read('counts').items()}
        counts = decode.counter_deltas(current, self._previous)
        self._previous = current
        return base.ProbeReading(source='ebpf', irq_counts=counts,
                                 events=self.events)
