"""A fake sysfs PCI tree in a temporary directory, laid out like the real one.

``bus/pci/devices/<addr>`` is a symlink into ``devices/pci0000:3a/...`` and
``<device>/driver`` a symlink to ``bus/pci/drivers/<name>``, as on a host.
Attribute files are plain files: the writes can be read back, but nothing
reacts to them (no kernel behind), so a driver symlink only changes when
the test changes it.
"""

import os

import fixtures

VFS = ('0000:3b:00.4', '0000:3b:00.5')
HOST_DRIVER = 'nvidia'


class FakeSysfs(fixtures.Fixture):
    """Build the tree; ``self.root`` is its (symlink-free) root."""

    def _setUp(self):
        self.root = os.path.realpath(self.useFixture(fixtures.TempDir()).path)
        pci = os.path.join(self.root, 'bus', 'pci')
        os.makedirs(os.path.join(pci, 'devices'))
        self._touch(os.path.join(pci, 'drivers_probe'))
        for driver in (HOST_DRIVER, 'vfio-pci'):
            os.makedirs(os.path.join(pci, 'drivers', driver))
            for name in ('bind', 'unbind', 'new_id'):
                self._touch(os.path.join(pci, 'drivers', driver, name))
        parent = os.path.join(self.root, 'devices', 'pci0000:3a',
                              '0000:3a:00.0')
        for addr in VFS:
            real = os.path.join(parent, addr)
            os.makedirs(real)
            self._touch(os.path.join(real, 'driver_override'), '(null)\n')
            os.symlink(os.path.relpath(real, os.path.join(pci, 'devices')),
                       os.path.join(pci, 'devices', addr))
            self.set_driver(addr, HOST_DRIVER)

    @staticmethod
    def _touch(path, text=''):
        with open(path, 'w') as handle:
            handle.write(text)

    def device(self, addr):
        """Resolved directory of a device."""
        return os.path.realpath(os.path.join(self.root, 'bus', 'pci',
                                             'devices', addr))

    def set_driver(self, addr, driver):
        """Point a device's ``driver`` link at ``driver`` (None: unbound)."""
        link = os.path.join(self.device(addr), 'driver')
        if os.path.islink(link):
            os.unlink(link)
        if driver:
            os.symlink(os.path.join(self.root, 'bus', 'pci', 'drivers',
                                    driver), link)

    def read(self, *parts):
        """Content of a file under the root."""
        with open(os.path.join(self.root, *parts)) as handle:
            return handle.read()
