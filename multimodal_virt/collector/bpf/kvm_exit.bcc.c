/* SPDX-License-Identifier: GPL-2.0-only */
/* bcc twin of kvm_exit.bpf.c; each program is compiled only when the
 * loader found its tracepoint (MMV_*_HAVE). */
#include "mmv_bcc.h"

#ifndef MMV_EXITS_MAX
#define MMV_EXITS_MAX 8192
#endif

struct exit_key {
	u32 tgid;
	u32 event;
	u32 reason;
	u32 isa;
};

BPF_HASH(exits, struct exit_key, u64, MMV_EXITS_MAX);
MMV_DROPS_MAP(1);	/* slot 0: exits full */

static inline void count(u32 event, u32 reason, u32 isa)
{
	struct exit_key key = {};
	u64 zero = 0;
	u64 *value;

	key.tgid = bpf_get_current_pid_tgid() >> 32;
	key.event = event;
	key.reason = reason;
	key.isa = isa;
	value = exits.lookup_or_try_init(&key, &zero);
	if (value)
		__sync_fetch_and_add(value, 1);
	else
		drops.atomic_increment(0);
}

#ifdef MMV_MMV_KVM_EXIT_HAVE
TRACEPOINT_PROBE(kvm, kvm_exit)
{
	count(1, args->exit_reason, args->isa);
	return 0;
}
#endif

#ifdef MMV_MMV_KVM_USERSPACE_EXIT_HAVE
TRACEPOINT_PROBE(kvm, kvm_userspace_exit)
{
	count(2, args->reason, 0);
	return 0;
}
#endif
