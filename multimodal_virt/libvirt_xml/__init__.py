"""libvirt domain XML: emit, parse and validate (lxml only, no libvirt)."""
