"""Host metrics model: log2 latency histograms and host samples."""
