"""Nova scheduler plugins: LatencyFilter and LatencyWeigher."""
