// SPDX-License-Identifier: Apache-2.0
/* Block I/O latency, issue to complete, per device, as log2 histograms.
 *
 * tp_btf programs on block_rq_issue/block_rq_complete (no tracefs needed);
 * in-flight requests live in an LRU hash so memory stays bounded whatever
 * the I/O rate. Histograms are cumulative: user space reads deltas.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include <bpf/bpf_tracing.h>
#include "mmv_common.bpf.h"

#define MMV_MINORBITS 20
#define MMV_MKDEV(ma, mi) (((ma) << MMV_MINORBITS) | (mi))

/* Settings, written into .rodata by the loader before load. */
const volatile __u32 targ_dev = 0;	/* 0: all devices, else kernel dev_t */

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

SEC("tp_btf/block_rq_issue")
int BPF_PROG(mmv_block_rq_issue, struct request *rq)
{
	__u64 key = (__u64)rq;
	__u64 ts;

	if (targ_dev && request_dev(rq) != targ_dev)
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

	tsp = bpf_map_lookup_elem(&start, &key);
	if (!tsp)
		return 0;
	delta = (__s64)(bpf_ktime_get_ns() - *tsp);
	bpf_map_delete_elem(&start, &key);
	if (delta < 0)
		return 0;
	dev = request_dev(rq);
	hist = bpf_map_lookup_elem(&hists, &dev);
	if (!hist) {
		bpf_map_update_elem(&hists, &dev, &zero, BPF_NOEXIST);
		hist = bpf_map_lookup_elem(&hists, &dev);
		if (!hist)
			return 0;	/* table full: bounded, event dropped */
	}
	__sync_fetch_and_add(&hist->slots[mmv_slot(delta)], 1);
	return 0;
}

char LICENSE[] SEC("license") = "GPL";
