"""eBPF programs (CO-RE ``*.bpf.c``, bcc ``*.bcc.c``) and their loaders.

``build`` compiles the CO-RE sources, ``libbpf`` and ``bcc_backend`` load
them, ``backend`` picks a loader by probing the host, ``decode`` turns raw
map contents into metrics. Nothing here does work at import time.
"""
