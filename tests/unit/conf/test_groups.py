"""Each ConfigOpts gets its own option groups."""

import fixtures
from oslo_config import cfg
import testtools

from multimodal_virt import conf as mmv_conf


class PrivateGroupsTest(testtools.TestCase):

    def test_override_on_one_conf_is_not_seen_by_another(self):
        path = self.useFixture(fixtures.TempDir()).join('store.conf')
        with open(path, 'w') as handle:
            handle.write('[multimodal_virt_store]\nsigning_keys = from-file\n')
        first = cfg.ConfigOpts()
        mmv_conf.register_opts(first)
        first([], default_config_files=[])
        first.set_override('signing_keys', ['overridden'],
                           'multimodal_virt_store')
        second = cfg.ConfigOpts()
        mmv_conf.register_opts(second)
        second([], default_config_files=[path])
        self.assertEqual(['from-file'],
                         second.multimodal_virt_store.signing_keys)
        self.assertEqual(['overridden'],
                         first.multimodal_virt_store.signing_keys)
