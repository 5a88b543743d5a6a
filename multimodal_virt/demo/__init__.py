"""``multimodal-virt demo``: the whole data path on this one machine.

``workload`` writes video frames and sensor packets with real I/O,
``recorded`` provides remote hosts, ``runner`` collects on this host,
publishes, ranks every host through Nova's own filter and weigher handlers
and explains the ranking.
"""
