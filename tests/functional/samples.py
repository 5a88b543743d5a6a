"""Build and publish realistic host samples for functional tests."""

import time

from multimodal_virt.metrics import histogram
from multimodal_virt.metrics import sample


def host_sample(host, io_us=None, gpu_us=None, age=0.0, events=100,
                nodename=None, gpu_exec_us=None):
    """A sample whose I/O / GPU latencies are concentrated around a value.

    :param io_us: typical I/O latency in microseconds (``None``: no I/O).
    :param gpu_us: typical GPU command-submission latency (``None``: no
        GPU ioctls), published as ``gpu_submit`` and its deprecated alias
        ``gpu_cmd``, as the collector does.
    :param age: how many seconds ago the sample window ended.
    :param nodename: compute node of ``host`` (default: named like it).
    :param gpu_exec_us: typical GPU job execution latency (``gpu_exec``;
        ``None``: not measured).
    """
    def _hist(value):
        if value is None:
            return None
        return histogram.LatencyHistogram.from_values([value] * events)

    return sample.HostSample(
        host=host, timestamp=time.time() - age, window_s=10.0,
        source='ebpf', collector_version='test',
        io=_hist(io_us), gpu_cmd=_hist(gpu_us), gpu_submit=_hist(gpu_us),
        gpu_exec=_hist(gpu_exec_us),
        vm_exit_rate=100.0,
        irq_rate=1000.0, nodename=nodename)
