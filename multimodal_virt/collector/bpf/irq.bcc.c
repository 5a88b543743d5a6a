/* SPDX-License-Identifier: GPL-2.0-only */
/* bcc twin of irq.bpf.c: hard-IRQ counts per line (cumulative). */
#include "mmv_bcc.h"

#ifndef MMV_COUNTS_MAX
#define MMV_COUNTS_MAX 1024
#endif

BPF_HASH(counts, u32, u64, MMV_COUNTS_MAX);
MMV_DROPS_MAP(1);	/* slot 0: counts full */

TRACEPOINT_PROBE(irq, irq_handler_entry)
{
	u32 key = args->irq;
	u64 zero = 0;
	u64 *value;

	value = counts.lookup_or_try_init(&key, &zero);
	if (value)
		__sync_fetch_and_add(value, 1);
	else
		drops.atomic_increment(0);
	return 0;
}
