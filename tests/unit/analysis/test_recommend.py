import os

from lxml import etree

from multimodal_virt.analysis import bottleneck
from multimodal_virt.analysis import recommend
from multimodal_virt.libvirt_xml import validate
from tests import base
from tests.unit.analysis import helpers
from tests.functional import requirements

THRESHOLDS = bottleneck.Thresholds(gpu_cmd_us=1000.0, io_us=5000.0,
                                   vm_exit_rate=10000.0, irq_rate=50000.0,
                                   slo_headroom=0.8, top_instances=2)

DOMAIN = """<domain type='kvm'><name>d</name><memory>65536</memory>
<os><type arch='x86_64'>hvm</type></os>
<devices><disk type='file' device='disk'>%s
<source file='/var/lib/d.img'/><target dev='vda' bus='virtio'/></disk>
</devices></domain>"""


def _recs(sample):
    return bottleneck.analyze(sample, THRESHOLDS, helpers.NOW,
                              60.0).recommendations


def _artefacts(rec, kind):
    return [text for k, text in rec.artefacts if k == kind]


class RecommendTest(base.TestCase):

    def test_gpu_points_at_pci_config_and_slo(self):
        rec, = _recs(helpers.host_sample('gpu-1', gpu_us=5000))
        self.assertIn('SR-IOV', rec.action)
        self.assertIn('multimodal-virt pci config --format ini '
                      '--hostname gpu-1', _artefacts(rec, 'command'))
        specs = _artefacts(rec, 'flavor_extra_spec')
        # SLO = threshold * headroom, at the analysis percentile.
        self.assertIn('multimodal_virt:gpu_cmd_p99_us=800', specs)
        self.assertTrue(any(s.startswith('pci_passthrough:alias=')
                            for s in specs))

    def test_slo_spec_is_accepted_by_the_slo_parser(self):
        from multimodal_virt.scheduler import slo
        rec, = _recs(helpers.host_sample('h', io_us=50000))
        key, value = _artefacts(rec, 'flavor_extra_spec')[0].split('=')
        parsed, = slo.from_extra_specs({key: value})
        self.assertEqual(('io', 'p99', 4000),
                         (parsed.metric, parsed.percentile, parsed.limit_us))

    def test_io_xml_has_iothreads_and_native_io(self):
        rec, = _recs(helpers.host_sample('h', io_us=50000))
        xml, = _artefacts(rec, 'libvirt_xml')
        self.assertIn('<iothreads>2</iothreads>', xml)
        self.assertIn('io="native"', xml)
        self.assertIn('cache="none"', xml)
        self.assertIn('iothread="1"', xml)

    def test_io_snippet_applies_to_a_domain_that_validates(self):
        # The snippet's elements, put into a real domain, pass libvirt's
        # own RelaxNG schema (when installed).
        snippet = recommend.iothread_snippet()
        root = etree.fromstring('<x>%s</x>' % snippet)
        driver = root.find('driver')
        domain = etree.fromstring(DOMAIN % etree.tostring(
            driver).decode())
        for tag in ('iothreads', 'iothreadids'):
            domain.insert(2, root.find(tag))
        requirements.require(
            self, os.path.exists(validate.DEFAULT_SCHEMA),
            'libvirt domain schema %s is not installed'
            % validate.DEFAULT_SCHEMA)
        self.assertEqual([], validate.DomainSchema().schema_errors(domain))

    def test_vm_exits_name_the_busiest_instances(self):
        rec, = _recs(helpers.host_sample(
            'h', vm_exit_rate=90000.0,
            by_instance={'u-small': 10.0, 'u-big': 80000.0,
                         'u-mid': 9000.0}))
        instances, = _artefacts(rec, 'instances')
        self.assertTrue(instances.startswith('u-big 80000 exits/s'))
        self.assertIn('u-mid', instances)
        self.assertNotIn('u-small', instances)  # top_instances=2

    def test_irq_pins_iothreads(self):
        rec, = _recs(helpers.host_sample('h', irq_rate=900000.0))
        xml, = _artefacts(rec, 'libvirt_xml')
        self.assertIn('<iothreadpin iothread="1" cpuset="0"/>', xml)

    def test_to_dict(self):
        rec, = _recs(helpers.host_sample('h', irq_rate=900000.0))
        data = rec.to_dict()
        self.assertEqual('irq', data['path'])
        self.assertEqual('libvirt_xml', data['artefacts'][0]['kind'])
