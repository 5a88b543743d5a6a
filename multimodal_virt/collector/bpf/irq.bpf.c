// SPDX-License-Identifier: GPL-2.0-only
/* Hard-IRQ counts per IRQ line (cumulative; user space reads deltas). */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include "mmv_common.bpf.h"
#include <bpf/bpf_tracing.h>

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u32);		/* irq line */
	__type(value, __u64);
} counts SEC(".maps");

MMV_DROPS_MAP(1);	/* slot 0: counts full */

SEC("tp_btf/irq_handler_entry")
int BPF_PROG(mmv_irq_handler_entry, int irq, struct irqaction *action)
{
	static const __u64 one = 1;
	__u32 key = irq;
	__u64 *value;

	value = bpf_map_lookup_elem(&counts, &key);
	if (value) {
		__sync_fetch_and_add(value, 1);
		return 0;
	}
	/* Fails when the table is full: memory stays bounded. */
	if (bpf_map_update_elem(&counts, &key, &one, BPF_NOEXIST)) {
		value = bpf_map_lookup_elem(&counts, &key);
		if (value)
			__sync_fetch_and_add(value, 1);
		else
			mmv_count_drop(&drops, 0);
	}
	return 0;
}

char LICENSE[] SEC("license") = "GPL v2";
