// SPDX-License-Identifier: GPL-2.0-only
/* GPU job latency from the dma_fence lifecycle: dma_fence_emit (the driver
 * hands the job to the GPU, or to the host renderer for virtio-gpu) to
 * dma_fence_signaled (the job is done), kernel monotonic clock, one log2
 * histogram per (driver, emitting process).
 *
 * In-flight fences live in a lock-free table: an ARRAY of slots (a power
 * of two), each fence hashed to a group of four neighbouring slots (128
 * bytes). emit claims a free slot with one compare-and-swap of the fence
 * pointer; signaled finds it, reads it and frees it with plain stores. No
 * program takes a map lock: a hash map's update and delete take a bucket
 * spinlock with interrupts off, several times per fence, which was most of
 * the per-fence cost. No program runs when a fence is destroyed (that was
 * one more program run for every fence of every driver): the slot of a
 * fence destroyed without signaling (rare: drivers signal fences, with an
 * error if need be, before releasing them) is taken over by the next fence
 * emitted at its address, or freed by user space once it is older than
 * gpu_fence.FENCE_MAX_AGE_S. The driver is the address of
 * fence->ops->get_driver_name, which user space names through
 * /proc/kallsyms (a kernel address is never published).
 *
 * Every bounded map has a counter of what it could not hold (map "drops",
 * slots in ProbeSpec.drops order: an emit that found its four slots
 * taken, a latency with no histogram left), published in every sample;
 * signals without an emit are counted apart (map "anomalies"): they lose
 * no measurement of ours.
 *
 * Production programs are tp_btf; signaled takes the time the kernel
 * stamped on the fence. The raw_tp "synth" programs run the same code with
 * the fence, the clock, the driver and the signaled state taken from their
 * arguments; they are never attached, only driven with
 * BPF_PROG_TEST_RUN (tests and tools/bench_collector.py) to check the
 * arithmetic, the per-process keys, the map bounds and the drop counters on
 * the real kernel.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>
#include "mmv_common.bpf.h"

/* Slots of the drops map (ProbeSpec.drops, same order). */
#define MMV_DROP_INFLIGHT 0	/* emit not recorded: both slots taken */
#define MMV_DROP_HIST 1		/* latency not recorded: hist full */
/* Slots of the anomalies map (gpu_fence.ANOMALIES). */
#define MMV_FENCE_UNMATCHED 0	/* signaled with no emit seen */
#define MMV_FENCE_NANOMALIES 1

/* fence->flags bits of a signaled fence and of a stamped one; the enum's
 * values moved between kernels, so CO-RE relocates them. */
static __always_inline __u64 signaled_mask(void)
{
	return 1ULL << bpf_core_enum_value(enum dma_fence_flag_bits,
					   DMA_FENCE_FLAG_SIGNALED_BIT);
}

static __always_inline __u64 timestamp_mask(void)
{
	return 1ULL << bpf_core_enum_value(enum dma_fence_flag_bits,
					   DMA_FENCE_FLAG_TIMESTAMP_BIT);
}

/* Settings, written into .rodata by the loader before load: slots - 1 of
 * the inflight array (its max_entries, a power of two). The default fits
 * the default size, for loaders that set nothing (the guest proof). */
const volatile __u64 targ_inflight_mask = 16384 - 1;

struct mmv_fence_start {
	__u64 fence;		/* struct dma_fence *; 0: free slot */
	__u64 ts;		/* emit time, ns; 0 until the slot is filled */
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
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 16384);
	__type(key, __u32);
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

/* Slots a fence may take: MMV_FENCE_WAYS neighbours (an aligned group of
 * 128 bytes), chosen by a multiplicative hash of the pointer (slab
 * objects are aligned, so the low bits carry little). With a quarter of the
 * slots taken, an emit finds its four taken about 0.4 % of the time. */
#define MMV_FENCE_WAYS 4

static __always_inline struct mmv_fence_start *fence_slot(__u64 fence,
							  __u32 way)
{
	__u32 index = (((fence >> 4) * 0x9E3779B97F4A7C15ULL) >> 32) ^ way;

	index &= targ_inflight_mask;
	return bpf_map_lookup_elem(&inflight, &index);
}

static __always_inline void fill(struct mmv_fence_start *sp, __u64 driver,
				 __u64 now)
{
	sp->driver = driver;
	sp->tgid = bpf_get_current_pid_tgid() >> 32;
	sp->ts = now;		/* last: a reader sees 0 until filled */
}

static __always_inline struct mmv_fence_start *fence_find(__u64 fence)
{
	struct mmv_fence_start *sp;
	__u32 way;

	for (way = 0; way < MMV_FENCE_WAYS; way++) {
		sp = fence_slot(fence, way);
		if (sp && sp->fence == fence)
			return sp;
	}
	return NULL;
}

static __always_inline void fence_emit(__u64 fence, __u64 driver, __u64 now)
{
	struct mmv_fence_start *sp;
	__u64 held;
	__u32 way;

	if (!fence)
		return;
	/* The first slot, in way order, that holds this fence (left by a
	 * freed fence at the same address: taken over) or is free (claimed;
	 * a compare-and-swap lost to another CPU's emit moves on). The scan
	 * stops there, and fence_find() looks in the same order, so it finds
	 * this emit before any older slot of the same address, which user
	 * space frees when it expires. Most emits touch one slot. */
	for (way = 0; way < MMV_FENCE_WAYS; way++) {
		sp = fence_slot(fence, way);
		if (!sp)
			continue;
		held = sp->fence;
		if (held == fence ||
		    (!held &&
		     __sync_val_compare_and_swap(&sp->fence, 0, fence) == 0)) {
			fill(sp, driver, now);
			return;
		}
	}
	mmv_count_drop(&drops, MMV_DROP_INFLIGHT);
}

static __always_inline void release(struct mmv_fence_start *sp)
{
	sp->ts = 0;
	sp->fence = 0;
}

static __always_inline void fence_signaled(__u64 fence, __u64 now)
{
	struct mmv_fence_start *sp;
	struct mmv_fence_key key = {};
	struct mmv_hist *h;
	__s64 delta;
	__u64 ts;

	sp = fence ? fence_find(fence) : NULL;
	if (!sp) {
		mmv_count_drop(&anomalies, MMV_FENCE_UNMATCHED);
		return;
	}
	ts = sp->ts;
	key.driver = sp->driver;
	key.tgid = sp->tgid;
	release(sp);
	if (!ts) {
		/* Signaled while its emit was still filling the slot. */
		mmv_count_drop(&anomalies, MMV_FENCE_UNMATCHED);
		return;
	}
	delta = (__s64)(now - ts);
	if (delta < 0)
		return;
	h = mmv_hist_of(&hist, &key, &drops, MMV_DROP_HIST);
	if (!h)
		return;
	__sync_fetch_and_add(&h->slots[mmv_slot(delta)], 1);
}

/* tp_btf arguments are BTF-typed: plain loads of their fields, relocated
 * by CO-RE, are cheaper than bpf_probe_read_kernel() calls. The pointer
 * itself is the slot key, but the verifier allows no arithmetic on (and no
 * compare-and-swap of) a kernel pointer: its value is read from the
 * argument array as a number. */
static __always_inline __u64 fence_key(unsigned long long *ctx)
{
	__u64 key = 0;

	bpf_probe_read_kernel(&key, sizeof(key), ctx);
	return key;
}

SEC("tp_btf/dma_fence_emit")
int BPF_PROG(mmv_fence_emit, struct dma_fence *fence)
{
	const struct dma_fence_ops *ops = fence->ops;
	__u64 driver = 0;

	/* Already done (an error path): there is no latency to measure. */
	if (fence->flags & signaled_mask())
		return 0;
	/* A function address: read as a number, never kept as a pointer. */
	bpf_core_read(&driver, sizeof(driver), &ops->get_driver_name);
	fence_emit(fence_key(ctx), driver, bpf_ktime_get_ns());
	return 0;
}

SEC("tp_btf/dma_fence_signaled")
int BPF_PROG(mmv_fence_signaled, struct dma_fence *fence)
{
	__u64 now;

	/* The kernel stamps a fence as it signals it, before this event, in
	 * CLOCK_MONOTONIC (bpf_ktime_get_ns's clock; a driver may pass the
	 * hardware's completion time): no clock read of our own then. The
	 * stamp shares a union with a list head, which a plain load would
	 * type as a pointer: it is read as a number. */
	if (!(fence->flags & timestamp_mask()) ||
	    bpf_core_read(&now, sizeof(now), &fence->timestamp))
		now = bpf_ktime_get_ns();
	fence_signaled(fence_key(ctx), now);
	return 0;
}

/* Synthetic events: ctx[0] fence, ctx[1] clock in ns (0: now), ctx[2]
 * driver (emit). */
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

char LICENSE[] SEC("license") = "GPL v2";
