"""Probes (``multimodal_virt.probes`` plugins): eBPF programs and procfs."""
