"""Shared test base classes."""

from oslo_config import cfg
from oslo_config import fixture as config_fixture
from oslotest import base

from multimodal_virt import conf as mmv_conf

#: The sample signing key every test store uses.
TEST_SIGNING_KEY = 'test-signing-key-0123456789abcdef'


class TestCase(base.BaseTestCase):
    """Unit test base: a private ConfigOpts with every group registered.

    ``self.conf`` is a fresh ``cfg.ConfigOpts`` (not the global CONF), so
    tests can set options with ``self.flags(group=..., name=value)``.
    """

    def setUp(self):
        super().setUp()
        self.conf = cfg.ConfigOpts()
        mmv_conf.register_opts(self.conf)
        self.conf([], project='multimodal-virt', default_config_files=[])
        self.conf_fixture = self.useFixture(config_fixture.Config(self.conf))
        # Stores refuse to start without a sample signing key.
        self.flags('multimodal_virt_store', signing_keys=[TEST_SIGNING_KEY])

    def flags(self, group, **kwargs):
        """Override options of ``group`` for the duration of the test."""
        for name, value in kwargs.items():
            self.conf_fixture.config(**{name: value, 'group': group})


class FakeClock(object):
    """A clock for injection: returns ``now``, which tests advance.

    :param start: the first reading, in seconds.
    """

    def __init__(self, start=0.0):
        self.now = start

    def __call__(self):
        return self.now
