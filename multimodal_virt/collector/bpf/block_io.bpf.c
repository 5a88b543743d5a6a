// SPDX-License-Identifier: GPL-2.0-only
/* Block I/O latency, issue to complete, per device, as log2 histograms.
 *
 * tp_btf programs on block_rq_issue/block_rq_complete (no tracefs needed);
 * the issue time of a request in flight lives in a lock-free table: an
 * ARRAY of slots (a power of two), each request hashed to a group of four
 * neighbouring slots (one cache line), claimed with one compare-and-swap
 * of the request pointer and freed with plain stores at completion. An LRU
 * hash took two locks with interrupts off for the update and again for the
 * delete of every I/O, most of the cost. A request whose four slots are
 * taken is not timed: its completion counts as one without issue time, as
 * does the completion of a request issued before the probe attached. A
 * slot whose completion never came is taken over when the same request
 * (blk-mq reuses its preallocated requests) is issued again. Devices whose major number is in targ_skip_majors (loop,
 * device-mapper, md, zram: they issue requests of their own on top of the
 * disk's) are never timed, so they can neither fill the table nor be merged
 * with the disk. Histograms are cumulative: user space reads deltas and
 * deletes the entries of devices that disappeared.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>
#include "mmv_common.bpf.h"

#define MMV_MINORBITS 20
#define MMV_MKDEV(ma, mi) (((ma) << MMV_MINORBITS) | (mi))
#define MMV_MAX_SKIP 16

/* Slots of the drops map (ProbeSpec.drops, same order). */
#define MMV_DROP_START 0	/* completion without its issue time */
#define MMV_DROP_HISTS 1	/* no histogram slot left for the device */

/* Settings, written into .rodata by the loader before load. */
const volatile __u32 targ_dev = 0;	/* 0: all devices, else kernel dev_t */
const volatile __u32 targ_nskip = 0;
const volatile __u32 targ_skip_majors[MMV_MAX_SKIP] = {};

/* slots - 1 of the start array (its max_entries, a power of two). */
const volatile __u64 targ_start_mask = 16384 - 1;

struct mmv_rq_start {
	__u64 rq;		/* struct request *; 0: free slot */
	__u64 ts;		/* issue time, ns; 0 until filled */
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 16384);
	__type(key, __u32);
	__type(value, struct mmv_rq_start);
} start SEC(".maps");

/* A request may take one of MMV_RQ_WAYS neighbouring slots (one 64-byte
 * cache line), chosen by a multiplicative hash of its address. */
#define MMV_RQ_WAYS 4

static __always_inline struct mmv_rq_start *rq_slot(__u64 rq, __u32 way)
{
	__u32 index = (((rq >> 6) * 0x9E3779B97F4A7C15ULL) >> 32) ^ way;

	index &= targ_start_mask;
	return bpf_map_lookup_elem(&start, &index);
}

/* The request pointer as a number (the verifier allows no arithmetic on a
 * BTF pointer): read from the argument array. */
static __always_inline __u64 rq_key(unsigned long long *ctx)
{
	__u64 key = 0;

	bpf_probe_read_kernel(&key, sizeof(key), ctx);
	return key;
}

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, __u32);		/* kernel dev_t */
	__type(value, struct mmv_hist);
} hists SEC(".maps");

MMV_DROPS_MAP(2);

/* Kernels before 5.17 had rq->rq_disk; newer ones reach it via the queue. */
struct request___old {
	struct gendisk *rq_disk;
} __attribute__((preserve_access_index));

static __always_inline __u32 request_dev(struct request *rq)
{
	struct request___old *old = (void *)rq;
	struct gendisk *disk;

	/* tp_btf arguments are BTF-typed: plain loads, relocated by CO-RE,
	 * are cheaper than bpf_probe_read_kernel() calls. */
	if (bpf_core_field_exists(old->rq_disk))
		disk = old->rq_disk;
	else
		disk = rq->q->disk;
	if (!disk)
		return 0;
	return MMV_MKDEV(disk->major, disk->first_minor);
}

static __always_inline bool wanted(__u32 dev)
{
	__u32 major = dev >> MMV_MINORBITS;

	if (targ_dev)
		return dev == targ_dev;
	for (__u32 i = 0; i < MMV_MAX_SKIP; i++) {
		if (i >= targ_nskip)
			break;
		if (major == targ_skip_majors[i])
			return false;
	}
	return true;
}

SEC("tp_btf/block_rq_issue")
int BPF_PROG(mmv_block_rq_issue, struct request *rq)
{
	struct mmv_rq_start *sp;
	__u64 key, held;
	__u32 way;

	if (!wanted(request_dev(rq)))
		return 0;
	key = rq_key(ctx);
	if (!key)
		return 0;
	/* The first slot in way order holding this request (a requeue, or
	 * a completion never seen) or free, claimed with a compare-and-swap:
	 * no lock, where an LRU hash update and delete each take two locks
	 * with interrupts off. */
	for (way = 0; way < MMV_RQ_WAYS; way++) {
		sp = rq_slot(key, way);
		if (!sp)
			continue;
		held = sp->rq;
		if (held == key ||
		    (!held && __sync_val_compare_and_swap(&sp->rq, 0, key) == 0)) {
			sp->ts = bpf_ktime_get_ns();
			return 0;
		}
	}
	/* All four taken: its completion finds no issue time (counted). */
	return 0;
}

SEC("tp_btf/block_rq_complete")
int BPF_PROG(mmv_block_rq_complete, struct request *rq, int error,
	     unsigned int nr_bytes)
{
	static const struct mmv_hist zero;
	struct mmv_rq_start *sp = NULL;
	struct mmv_hist *hist;
	__u64 key, *tsp, ts;
	__s64 delta;
	__u32 dev, way;

	dev = request_dev(rq);
	if (!wanted(dev))
		return 0;
	key = rq_key(ctx);
	tsp = NULL;
	for (way = 0; way < MMV_RQ_WAYS; way++) {
		sp = rq_slot(key, way);
		if (sp && sp->rq == key) {
			tsp = &sp->ts;
			break;
		}
	}
	if (!tsp || !*tsp) {
		/* A zero-byte completion never issued is the end of a flush
		 * sequence: the request that asked for a flush is completed
		 * when the flush request, issued and timed in its place, is
		 * done. Not a lost measurement. */
		if (!nr_bytes)
			return 0;
		/* Evicted from the LRU table (or issued before attach). */
		mmv_count_drop(&drops, MMV_DROP_START);
		return 0;
	}
	ts = *tsp;
	sp->ts = 0;		/* free the slot: ts first, then rq */
	sp->rq = 0;
	delta = (__s64)(bpf_ktime_get_ns() - ts);
	if (delta < 0)
		return 0;
	hist = bpf_map_lookup_elem(&hists, &dev);
	if (!hist) {
		bpf_map_update_elem(&hists, &dev, &zero, BPF_NOEXIST);
		hist = bpf_map_lookup_elem(&hists, &dev);
		if (!hist) {
			/* Table full: memory stays bounded, the loss counted. */
			mmv_count_drop(&drops, MMV_DROP_HISTS);
			return 0;
		}
	}
	__sync_fetch_and_add(&hist->slots[mmv_slot(delta)], 1);
	return 0;
}

char LICENSE[] SEC("license") = "GPL v2";
