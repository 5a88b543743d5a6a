// SPDX-License-Identifier: GPL-2.0-only
/* GPU job latency from the dma_fence lifecycle: dma_fence_emit (the driver
 * hands the job to the GPU, or to the host renderer for virtio-gpu) to
 * dma_fence_signaled (the job is done), kernel monotonic clock, one log2
 * histogram per (driver, emitting process).
 *
 * The fence pointer is the key of the in-flight map; the driver is the
 * address of fence->ops->get_driver_name, which user space names through
 * /proc/kallsyms (a kernel address is never published). dma_fence_destroy
 * frees an entry whose fence was never signaled, so the in-flight map
 * stays bounded by the fences alive. Every bounded map has a counter of
 * what it could not hold (map "drops", slots in ProbeSpec.drops order),
 * published in every sample; signals without an emit and fences destroyed
 * unsignaled are counted apart (map "anomalies"): they lose no measurement
 * of ours.
 *
 * Production programs are tp_btf. The raw_tp "synth" programs run the same
 * code with the fence, the clock and the driver taken from their arguments;
 * they are never attached, only driven with BPF_PROG_TEST_RUN (tests and
 * tools/bench_collector.py) to check the arithmetic, the per-process keys,
 * the map bounds and the drop counters on the real kernel.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>
#include "mmv_common.bpf.h"

/* Slots of the drops map (ProbeSpec.drops, same order). */
#define MMV_DROP_INFLIGHT 0	/* emit not recorded: inflight full */
#define MMV_DROP_HIST 1		/* latency not recorded: hist full */
/* Slots of the anomalies map (gpu_fence.ANOMALIES). */
#define MMV_FENCE_UNMATCHED 0	/* signaled with no emit seen */
#define MMV_FENCE_UNSIGNALED 1	/* destroyed, never signaled */
#define MMV_FENCE_NANOMALIES 2

struct mmv_fence_start {
	__u64 ts;
	__u64 driver;
	__u32 tgid;
	__u32 pad;
};

struct mmv_fence_key {
	__u64 driver;
	__u32 tgid;
	__u32 pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16384);
	__type(key, __u64);			/* struct dma_fence * */
	__type(value, struct mmv_fence_start);
} inflight SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, struct mmv_fence_key);
	__type(value, struct mmv_hist);
} hist SEC(".maps");

MMV_DROPS_MAP(2);

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, MMV_FENCE_NANOMALIES);
	__type(key, __u32);
	__type(value, __u64);
} anomalies SEC(".maps");

static const struct mmv_hist mmv_zero_hist;

static __always_inline void fence_emit(__u64 fence, __u64 driver, __u64 now)
{
	struct mmv_fence_start start = {};

	start.ts = now;
	start.driver = driver;
	start.tgid = bpf_get_current_pid_tgid() >> 32;
	if (bpf_map_update_elem(&inflight, &fence, &start, BPF_ANY))
		mmv_count_drop(&drops, MMV_DROP_INFLIGHT);
}

static __always_inline void fence_signaled(__u64 fence, __u64 now)
{
	struct mmv_fence_start *sp;
	struct mmv_fence_key key = {};
	struct mmv_hist *h;
	__s64 delta;

	sp = bpf_map_lookup_elem(&inflight, &fence);
	if (!sp) {
		mmv_count_drop(&anomalies, MMV_FENCE_UNMATCHED);
		return;
	}
	delta = (__s64)(now - sp->ts);
	key.driver = sp->driver;
	key.tgid = sp->tgid;
	bpf_map_delete_elem(&inflight, &fence);
	if (delta < 0)
		return;
	h = bpf_map_lookup_elem(&hist, &key);
	if (!h) {
		/* -EEXIST: another CPU created it; anything else: full. */
		if (bpf_map_update_elem(&hist, &key, &mmv_zero_hist,
					BPF_NOEXIST) == -7 /* -E2BIG */) {
			mmv_count_drop(&drops, MMV_DROP_HIST);
			return;
		}
		h = bpf_map_lookup_elem(&hist, &key);
		if (!h) {
			mmv_count_drop(&drops, MMV_DROP_HIST);
			return;
		}
	}
	__sync_fetch_and_add(&h->slots[mmv_slot(delta)], 1);
}

static __always_inline void fence_destroy(__u64 fence)
{
	if (bpf_map_delete_elem(&inflight, &fence) == 0)
		mmv_count_drop(&anomalies, MMV_FENCE_UNSIGNALED);
}

SEC("tp_btf/dma_fence_emit")
int BPF_PROG(mmv_fence_emit, struct dma_fence *fence)
{
	__u64 driver = (__u64)BPF_CORE_READ(fence, ops, get_driver_name);

	fence_emit((__u64)fence, driver, bpf_ktime_get_ns());
	return 0;
}

SEC("tp_btf/dma_fence_signaled")
int BPF_PROG(mmv_fence_signaled, struct dma_fence *fence)
{
	fence_signaled((__u64)fence, bpf_ktime_get_ns());
	return 0;
}

SEC("tp_btf/dma_fence_destroy")
int BPF_PROG(mmv_fence_destroy, struct dma_fence *fence)
{
	fence_destroy((__u64)fence);
	return 0;
}

/* Synthetic events: ctx[0] fence, ctx[1] clock in ns (0: now), ctx[2]
 * driver. */
static __always_inline __u64 synth_now(__u64 *ctx)
{
	return ctx[1] ? ctx[1] : bpf_ktime_get_ns();
}

SEC("raw_tp/dma_fence_emit")
int mmv_fence_emit_synth(__u64 *ctx)
{
	fence_emit(ctx[0], ctx[2], synth_now(ctx));
	return 0;
}

SEC("raw_tp/dma_fence_signaled")
int mmv_fence_signaled_synth(__u64 *ctx)
{
	fence_signaled(ctx[0], synth_now(ctx));
	return 0;
}

SEC("raw_tp/dma_fence_destroy")
int mmv_fence_destroy_synth(__u64 *ctx)
{
	fence_destroy(ctx[0]);
	return 0;
}

char LICENSE[] SEC("license") = "GPL v2";
