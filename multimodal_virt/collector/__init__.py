"""Per-host collector: eBPF/procfs probes, sample building, publishers."""
