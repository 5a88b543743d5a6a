// SPDX-License-Identifier: GPL-2.0-only
/* GPU queue wait and execution from the DRM GPU scheduler's tracepoints.
 *
 * Three events per job, keyed by its scheduler fence (struct
 * drm_sched_fence *, the pointer every version of the events derives its
 * printed key from: a fence pointer up to 6.16, the finished fence's
 * context:seqno from 6.17):
 *
 *   queued   drm_sched_job (<= 6.16) / drm_sched_job_queue (6.17+): the
 *            job is pushed on its entity, in the submitting process
 *   run      drm_run_job / drm_sched_job_run: handed to the hardware ring
 *   done     drm_sched_process_job / drm_sched_job_done: the hardware
 *            fence signaled
 *
 * Queue wait is queued -> run, execution run -> done, kernel monotonic
 * clock, one log2 histogram per (driver, submitting process, kind). The
 * tracepoints' arguments are the same in both generations (job, entity;
 * scheduler fence), so one program per event serves both names. The
 * driver is the address of the hardware fence's ops->get_driver_name, the
 * same key as gpu_fence's, so user space names it the same way.
 *
 * The scheduler is a module (gpu-sched) whose types are not in vmlinux'
 * BTF: the programs are raw_tp (attached by name; no module BTF object
 * needed, which libbpf could only enumerate with CAP_SYS_ADMIN) and the
 * offsets of the two module fields they read are set by the loader from
 * the module's BTF file (/sys/kernel/btf/gpu_sched). dma_fence fields are
 * vmlinux types, relocated by CO-RE.
 *
 * Bounded maps have a drop counter (map "drops", ProbeSpec.drops order);
 * a run or done with no queued job (queued before the probe attached) is
 * counted apart (map "anomalies"): it loses no measurement of ours.
 *
 * The raw_tp "synth" programs run the same code with the key, the clock
 * and the driver taken from their arguments; they are never attached,
 * only driven with BPF_PROG_TEST_RUN (tests) to check the arithmetic, the
 * per-process keys, the map bounds and the drop counters.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>
#include "mmv_common.bpf.h"

/* Slots of the drops map (ProbeSpec.drops, same order). */
#define MMV_DROP_INFLIGHT 0	/* queued job not recorded: table full */
#define MMV_DROP_HIST 1		/* latency not recorded: hist full */
/* Slots of the anomalies map (gpu_sched.ANOMALIES). */
#define MMV_SCHED_RUN_UNMATCHED 0	/* run with no queued job seen */
#define MMV_SCHED_DONE_UNMATCHED 1	/* done with no run seen */
#define MMV_SCHED_NANOMALIES 2

/* Histogram kinds. */
#define MMV_SCHED_QUEUE 0
#define MMV_SCHED_EXEC 1

/* Settings, written into .rodata by the loader from the module's BTF:
 * byte offsets of drm_sched_job.s_fence and drm_sched_fence.parent. */
const volatile __u32 targ_job_s_fence_off = 0;
const volatile __u32 targ_sfence_parent_off = 0;

struct mmv_sched_job {
	__u64 queued;		/* queued time, ns */
	__u64 run;		/* run time, ns; 0 until run */
	__u32 tgid;		/* submitting process */
	__u32 pad;
};

struct mmv_sched_key {
	__u64 driver;		/* 0 for queue wait (no hw fence yet) */
	__u32 tgid;
	__u32 kind;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 8192);
	__type(key, __u64);
	__type(value, struct mmv_sched_job);
} inflight SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, struct mmv_sched_key);
	__type(value, struct mmv_hist);
} hist SEC(".maps");

MMV_DROPS_MAP(2);

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, MMV_SCHED_NANOMALIES);
	__type(key, __u32);
	__type(value, __u64);
} anomalies SEC(".maps");

static __always_inline void record(__u64 driver, __u32 tgid, __u32 kind,
				   __u64 start, __u64 now)
{
	struct mmv_sched_key key = {
		.driver = driver, .tgid = tgid, .kind = kind,
	};
	struct mmv_hist *h;
	__s64 delta = (__s64)(now - start);

	if (delta < 0)
		return;
	h = mmv_hist_of(&hist, &key, &drops, MMV_DROP_HIST);
	if (!h)
		return;
	__sync_fetch_and_add(&h->slots[mmv_slot(delta)], 1);
}

static __always_inline void sched_queued(__u64 key, __u64 now)
{
	struct mmv_sched_job job = {
		.queued = now,
		.tgid = bpf_get_current_pid_tgid() >> 32,
	};

	if (!key)
		return;
	/* BPF_ANY: an entry left at this address by a job whose done was
	 * never seen (killed entity) is replaced, not counted as a loss. */
	if (bpf_map_update_elem(&inflight, &key, &job, BPF_ANY))
		mmv_count_drop(&drops, MMV_DROP_INFLIGHT);
}

static __always_inline void sched_run(__u64 key, __u64 now)
{
	struct mmv_sched_job *job;

	job = key ? bpf_map_lookup_elem(&inflight, &key) : NULL;
	if (!job) {
		mmv_count_drop(&anomalies, MMV_SCHED_RUN_UNMATCHED);
		return;
	}
	record(0, job->tgid, MMV_SCHED_QUEUE, job->queued, now);
	job->run = now;
}

static __always_inline void sched_done(__u64 key, __u64 driver, __u64 now)
{
	struct mmv_sched_job *job;
	__u64 run;
	__u32 tgid;

	job = key ? bpf_map_lookup_elem(&inflight, &key) : NULL;
	if (!job) {
		mmv_count_drop(&anomalies, MMV_SCHED_DONE_UNMATCHED);
		return;
	}
	run = job->run;
	tgid = job->tgid;
	bpf_map_delete_elem(&inflight, &key);
	if (!run) {
		mmv_count_drop(&anomalies, MMV_SCHED_DONE_UNMATCHED);
		return;
	}
	record(driver, tgid, MMV_SCHED_EXEC, run, now);
}

/* The scheduler fence of a job: *(job + offsetof(drm_sched_job, s_fence)),
 * read as a number (the key). */
static __always_inline __u64 job_key(__u64 job)
{
	__u64 s_fence = 0;

	if (bpf_probe_read_kernel(&s_fence, sizeof(s_fence),
				  (void *)(job + targ_job_s_fence_off)))
		return 0;
	return s_fence;
}

/* The driver of a scheduler fence: its hardware fence's (parent's)
 * ops->get_driver_name, a function address read as a number. */
static __always_inline __u64 fence_driver(__u64 s_fence)
{
	struct dma_fence *parent = NULL;
	const struct dma_fence_ops *ops;
	__u64 driver = 0;

	if (bpf_probe_read_kernel(&parent, sizeof(parent),
				  (void *)(s_fence + targ_sfence_parent_off))
	    || !parent)
		return 0;
	ops = BPF_CORE_READ(parent, ops);
	if (ops)
		bpf_core_read(&driver, sizeof(driver), &ops->get_driver_name);
	return driver;
}

/* Production programs: raw tracepoints, args (job, entity) or (s_fence).
 * Two names per event (before and after the 6.17 rename); the loader
 * attaches those the kernel offers. */
SEC("raw_tp/drm_sched_job")
int mmv_sched_queued(__u64 *ctx)
{
	sched_queued(job_key(ctx[0]), bpf_ktime_get_ns());
	return 0;
}

SEC("raw_tp/drm_sched_job_queue")
int mmv_sched_queued_v2(__u64 *ctx)
{
	sched_queued(job_key(ctx[0]), bpf_ktime_get_ns());
	return 0;
}

SEC("raw_tp/drm_run_job")
int mmv_sched_run(__u64 *ctx)
{
	sched_run(job_key(ctx[0]), bpf_ktime_get_ns());
	return 0;
}

SEC("raw_tp/drm_sched_job_run")
int mmv_sched_run_v2(__u64 *ctx)
{
	sched_run(job_key(ctx[0]), bpf_ktime_get_ns());
	return 0;
}

SEC("raw_tp/drm_sched_process_job")
int mmv_sched_done(__u64 *ctx)
{
	sched_done(ctx[0], fence_driver(ctx[0]), bpf_ktime_get_ns());
	return 0;
}

SEC("raw_tp/drm_sched_job_done")
int mmv_sched_done_v2(__u64 *ctx)
{
	sched_done(ctx[0], fence_driver(ctx[0]), bpf_ktime_get_ns());
	return 0;
}

/* Synthetic events: ctx[0] scheduler fence (the key), ctx[1] clock in ns
 * (0: now), ctx[2] driver (done). */
static __always_inline __u64 synth_now(__u64 *ctx)
{
	return ctx[1] ? ctx[1] : bpf_ktime_get_ns();
}

SEC("raw_tp/drm_sched_job")
int mmv_sched_queued_synth(__u64 *ctx)
{
	sched_queued(ctx[0], synth_now(ctx));
	return 0;
}

SEC("raw_tp/drm_run_job")
int mmv_sched_run_synth(__u64 *ctx)
{
	sched_run(ctx[0], synth_now(ctx));
	return 0;
}

SEC("raw_tp/drm_sched_process_job")
int mmv_sched_done_synth(__u64 *ctx)
{
	sched_done(ctx[0], ctx[2], synth_now(ctx));
	return 0;
}

char LICENSE[] SEC("license") = "GPL v2";
