"""Publishers (``multimodal_virt.publishers`` plugins): the stats store."""
