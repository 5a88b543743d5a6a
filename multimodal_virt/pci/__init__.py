"""SR-IOV GPU virtual functions: discovery, pools, claims and libvirt XML."""
