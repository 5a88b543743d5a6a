"""Shared helpers for the libvirt functional tests."""

import os
import uuid

from lxml import etree

from multimodal_virt.pci import address

NODE_XML = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                        'node.xml')
TEST_URI = 'test://' + NODE_XML


def quiet_libvirt(libvirt):
    """Stop libvirt printing every error to stderr (they are raised)."""
    libvirt.registerErrorHandler(lambda _ctx, _err: None, None)


def vfs_from_node_devices(conn, libvirt):
    """Inventory ``[(PciAddress, numa, parent PciAddress)]`` of the VFs.

    Read from libvirt's node devices: a VF has a ``phys_function``
    capability naming its PF.
    """
    vfs = []
    flags = libvirt.VIR_CONNECT_LIST_NODE_DEVICES_CAP_PCI_DEV
    for dev in conn.listAllDevices(flags):
        cap = etree.fromstring(dev.XMLDesc(0)).find("capability[@type='pci']")
        pf = cap.find("capability[@type='phys_function']/address")
        if pf is None:
            continue
        addr = address.PciAddress(*(int(cap.findtext(k)) for k in
                                    ('domain', 'bus', 'slot', 'function')))
        numa = cap.find('numa')
        vfs.append((addr, int(numa.get('node')) if numa is not None else None,
                    address.PciAddress.from_libvirt_attrs(pf.attrib)))
    return sorted(vfs)


def domain_xml(domain_type='test', name=None, instance_uuid=None,
               disk_path='/var/lib/multimodal-virt/test-disk.img'):
    """A small persistent domain with one virtio disk.

    :returns: ``(name, uuid, xml text)``.
    """
    instance_uuid = instance_uuid or str(uuid.uuid4())
    name = name or 'mmv-test-%s' % instance_uuid[:8]
    text = """<domain type='%(type)s'>
  <name>%(name)s</name>
  <uuid>%(uuid)s</uuid>
  <memory unit='MiB'>64</memory>
  <vcpu>2</vcpu>
  <os><type arch='x86_64' machine='pc'>hvm</type></os>
  <devices>
    <disk type='file' device='disk'>
      <driver name='qemu' type='raw'/>
      <source file='%(disk)s'/>
      <target dev='vda' bus='virtio'/>
    </disk>
  </devices>
</domain>""" % {'type': domain_type, 'name': name, 'uuid': instance_uuid,
                'disk': disk_path}
    return name, instance_uuid, text
