/* SPDX-License-Identifier: GPL-2.0-only */
/* bcc twin of block_io.bpf.c: classic block tracepoints, requests keyed by
 * device and sector (bcc has no BTF-typed request pointer). */
#include "mmv_bcc.h"

#ifndef MMV_TARG_DEV
#define MMV_TARG_DEV 0
#endif
#ifndef MMV_TARG_NSKIP
#define MMV_TARG_NSKIP 0
#endif
#ifndef MMV_TARG_SKIP_MAJORS
#define MMV_TARG_SKIP_MAJORS {0u}
#endif
#ifndef MMV_START_MAX
#define MMV_START_MAX 10240
#endif
#ifndef MMV_HISTS_MAX
#define MMV_HISTS_MAX 64
#endif

struct start_key {
	u32 dev;
	u32 pad;
	u64 sector;
};

BPF_TABLE("lru_hash", struct start_key, u64, start, MMV_START_MAX);
BPF_HASH(hists, u32, struct mmv_hist, MMV_HISTS_MAX);
MMV_DROPS_MAP(2);	/* slot 0: completion without issue time, 1: hists full */

static inline bool wanted(u32 dev)
{
	u32 skip[] = MMV_TARG_SKIP_MAJORS;
	u32 major = dev >> 20;

	if (MMV_TARG_DEV)
		return dev == MMV_TARG_DEV;
#pragma unroll
	for (int i = 0; i < sizeof(skip) / sizeof(skip[0]); i++) {
		if (i < MMV_TARG_NSKIP && major == skip[i])
			return false;
	}
	return true;
}

TRACEPOINT_PROBE(block, block_rq_issue)
{
	struct start_key key = {};
	u64 ts;

	if (!wanted(args->dev))
		return 0;
	key.dev = args->dev;
	key.sector = args->sector;
	ts = bpf_ktime_get_ns();
	start.update(&key, &ts);
	return 0;
}

TRACEPOINT_PROBE(block, block_rq_complete)
{
	struct start_key key = {};
	struct mmv_hist zero = {};
	struct mmv_hist *hist;
	u64 *tsp;
	s64 delta;
	u32 dev;

	if (!wanted(args->dev))
		return 0;
	key.dev = args->dev;
	key.sector = args->sector;
	tsp = start.lookup(&key);
	if (!tsp) {
		/* Zero sectors, never issued: the end of a flush sequence (the
		 * flush itself was issued in its place). Not a loss. */
		if (!args->nr_sector)
			return 0;
		drops.atomic_increment(0);
		return 0;
	}
	delta = (s64)(bpf_ktime_get_ns() - *tsp);
	start.delete(&key);
	if (delta < 0)
		return 0;
	dev = args->dev;
	hist = hists.lookup_or_try_init(&dev, &zero);
	if (!hist) {
		drops.atomic_increment(1);
		return 0;
	}
	__sync_fetch_and_add(&hist->slots[mmv_slot(delta)], 1);
	return 0;
}
