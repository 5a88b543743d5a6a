"""Samples with latencies concentrated at chosen values."""

from multimodal_virt.metrics import histogram
from multimodal_virt.metrics import sample

NOW = 1.7e9


def host_sample(host, gpu_us=None, io_us=None, vm_exit_rate=None,
                irq_rate=None, age=1.0, events=200, by_instance=None,
                exec_us=None, queue_us=None):
    """A valid HostSample ``age`` seconds before :data:`NOW`.

    ``gpu_us`` is the GPU submission latency, published as ``gpu_submit``
    and its deprecated alias ``gpu_cmd`` (one histogram, as the collector
    does); ``exec_us`` the GPU job latency (``gpu_exec``); ``queue_us`` the
    GPU queue wait (``gpu_queue``).
    """
    def hist(value):
        if value is None:
            return None
        return histogram.LatencyHistogram.from_values([value] * events)

    return sample.HostSample(
        host=host, timestamp=NOW - age, window_s=10.0, source='ebpf',
        gpu_cmd=hist(gpu_us), gpu_submit=hist(gpu_us),
        gpu_exec=hist(exec_us), gpu_queue=hist(queue_us), io=hist(io_us),
        vm_exit_rate=vm_exit_rate,
        irq_rate=irq_rate, vm_exits_by_instance=by_instance or {})
