"""multimodal-virt: latency-aware Nova placement and SR-IOV GPU VF handling."""
