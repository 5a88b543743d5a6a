/* SPDX-License-Identifier: GPL-2.0-only */
/* bcc twin of gpu_ioctl.bpf.c: the same table of exact ioctl request
 * numbers (gpu_ioctl_table.py, passed as -D macros) and the same per-class
 * histograms. bcc compiles against the installed kernel headers without
 * BTF, so it does not walk task->files to the fd's device (with headers of
 * another kernel those struct offsets would be wrong): it selects by the
 * request number alone, from the tracepoint arguments. */
#include "mmv_bcc.h"

#ifndef MMV_TARG_NCMDS
#define MMV_TARG_NCMDS 0
#endif
#ifndef MMV_TARG_CMDS
#define MMV_TARG_CMDS {0}
#endif
#ifndef MMV_START_MAX
#define MMV_START_MAX 10240
#endif
#define MMV_MAX_CMDS 48
#define MMV_NCLASSES 4

struct mmv_ioctl_start {
	u64 ts;
	u32 klass;
	u32 pad;
};

/* Entry time per thread inside a listed ioctl (the exit event frees it);
 * a call that finds the table full is counted in drops slot 0. */
BPF_TABLE("hash", u64, struct mmv_ioctl_start, start, MMV_START_MAX);
MMV_DROPS_MAP(1);
BPF_ARRAY(hist, struct mmv_hist, MMV_NCLASSES);

/* Each entry is (class << 32) | request number. The table lives on the
 * stack, sized to the entries in use (at most 48: 384 of the 512 stack
 * bytes); a class array beside it would become a .rodata lookup that bcc
 * cannot load. */
#define MMV_NCMDS_ARRAY (MMV_TARG_NCMDS > 0 ? MMV_TARG_NCMDS : 1)

static inline u32 cmd_class(u32 cmd)
{
	u64 entries[MMV_NCMDS_ARRAY] = MMV_TARG_CMDS;

#pragma unroll
	for (int i = 0; i < MMV_NCMDS_ARRAY && i < MMV_MAX_CMDS; i++) {
		if ((u32)entries[i] == cmd)
			return entries[i] >> 32;
	}
	return 0;
}

TRACEPOINT_PROBE(syscalls, sys_enter_ioctl)
{
	u64 id = bpf_get_current_pid_tgid();
	struct mmv_ioctl_start value = {};
	u32 klass = cmd_class((u32)args->cmd);

	if (!klass)
		return 0;
	value.ts = bpf_ktime_get_ns();
	value.klass = klass;
	if (start.update(&id, &value))
		drops.atomic_increment(0);
	return 0;
}

TRACEPOINT_PROBE(syscalls, sys_exit_ioctl)
{
	u64 id = bpf_get_current_pid_tgid();
	struct mmv_ioctl_start *sp;
	struct mmv_hist *h;
	u32 klass;
	s64 delta;

	sp = start.lookup(&id);
	if (!sp)
		return 0;	/* enter did not match (or was evicted) */
	delta = (s64)(bpf_ktime_get_ns() - sp->ts);
	klass = sp->klass;
	start.delete(&id);
	if (delta < 0)
		return 0;
	h = hist.lookup(&klass);
	if (h)
		__sync_fetch_and_add(&h->slots[mmv_slot(delta)], 1);
	return 0;
}
