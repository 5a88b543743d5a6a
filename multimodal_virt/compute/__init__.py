"""The nova-compute driver hook (loaded through ``nova.virt.multimodal_virt``).

* :mod:`.driver`: the ``LibvirtDriver`` subclass nova-compute runs;
* :mod:`.specs`: our flavor extra specs (guest tuning, GPU VF profiles);
* :mod:`.guest_tuning`: applies the tuning to the guest XML Nova builds;
* :mod:`.latency_traits`: latency-tier traits with hysteresis and dwell;
* :mod:`.gpu_profiles`: per-VF GPU scheduling profiles through privsep.
"""
