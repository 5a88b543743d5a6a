/* SPDX-License-Identifier: GPL-2.0-only */
/* Defaults and log2 slots for the bcc sources (same layout as CO-RE). */
#ifndef MMV_BCC_H
#define MMV_BCC_H

#define MMV_MAX_SLOTS 32

struct mmv_hist {
	u64 slots[MMV_MAX_SLOTS];
};

static inline u32 mmv_slot(u64 delta_ns)
{
	u64 v = delta_ns / 1000;
	u32 r = 0;

	/* floor(log2(v)), 0 for v <= 1: bounded loop, unrolled. */
#pragma unroll
	for (int i = 0; i < 63; i++) {
		if (v > 1) {
			v >>= 1;
			r++;
		}
	}
	return r >= MMV_MAX_SLOTS ? MMV_MAX_SLOTS - 1 : r;
}

/* Dropped-events counters: slot i counts events lost because bounded map i
 * was full (same layout as MMV_DROPS_MAP in mmv_common.bpf.h). bcc cannot
 * call map functions from a macro: sources call drops.atomic_increment(i). */
#define MMV_DROPS_MAP(nr_maps) BPF_ARRAY(drops, u64, nr_maps)

#endif
