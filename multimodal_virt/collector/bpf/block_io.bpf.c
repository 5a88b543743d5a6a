// SPDX-License-Identifier: GPL-2.0-only
/* Block I/O latency, issue to complete, per device, as log2 histograms.
 *
 * tp_btf programs on block_rq_issue/block_rq_complete (no tracefs needed);
 * in-flight requests live in an LRU hash so memory stays bounded whatever
 * the I/O rate. Devices whose major number is in targ_skip_majors (loop,
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

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(map_flags, BPF_F_NO_COMMON_LRU);	/* per-CPU LRU lists: no lock */
	__uint(max_entries, 10240);
	__type(key, __u64);		/* struct request * */
	__type(value, __u64);		/* issue time, ns */
} start SEC(".maps");

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
	__u64 key = (__u64)rq;
	__u64 ts;

	if (!wanted(request_dev(rq)))
		return 0;
	ts = bpf_ktime_get_ns();
	bpf_map_update_elem(&start, &key, &ts, BPF_ANY);
	return 0;
}

SEC("tp_btf/block_rq_complete")
int BPF_PROG(mmv_block_rq_complete, struct request *rq, int error,
	     unsigned int nr_bytes)
{
	static const struct mmv_hist zero;
	__u64 key = (__u64)rq;
	struct mmv_hist *hist;
	__u64 *tsp;
	__s64 delta;
	__u32 dev;

	dev = request_dev(rq);
	if (!wanted(dev))
		return 0;
	tsp = bpf_map_lookup_elem(&start, &key);
	if (!tsp) {
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
	delta = (__s64)(bpf_ktime_get_ns() - *tsp);
	bpf_map_delete_elem(&start, &key);
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
