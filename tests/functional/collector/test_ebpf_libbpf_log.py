"""libbpf's own messages reach oslo.log (not stderr)."""

import logging

import fixtures

from multimodal_virt.collector.probes import irq
from multimodal_virt import exception
from tests.functional.collector import ebpf_base


class TestLibbpfLog(ebpf_base.EbpfTestCase):

    def setUp(self):
        super().setUp()
        ebpf_base.logger_enabled(self, 'multimodal_virt.collector.bpf.libbpf')

    def test_load_messages_go_through_oslo_log(self):
        logs = self.useFixture(fixtures.FakeLogger(
            name='multimodal_virt.collector.bpf.libbpf', level=logging.DEBUG,
            format='%(levelname)s %(message)s'))
        self.started(irq.IrqProbe)
        self.assertIn('DEBUG libbpf: ', logs.output)

    def test_load_failure_logged_as_warning_and_quoted(self):
        logs = self.useFixture(fixtures.FakeLogger(
            name='multimodal_virt.collector.bpf.libbpf', level=logging.INFO,
            format='%(levelname)s %(message)s'))
        # A map larger than the kernel allows: libbpf prints why.
        self.flags('multimodal_virt_probes', max_irq_lines=2 ** 31)
        probe = irq.IrqProbe(self.conf)
        self.addCleanup(probe.stop)
        err = self.assertRaises(exception.MultimodalVirtError, probe.start)
        self.assertIn('WARNING libbpf: ', logs.output)
        self.assertIn('counts', str(err))
