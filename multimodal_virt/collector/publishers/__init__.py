"""Publishers (``multimodal_virt.publishers`` plugins): stores, Placement."""
