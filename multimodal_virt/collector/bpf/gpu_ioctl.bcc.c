/* SPDX-License-Identifier: GPL-2.0-only */
/* bcc twin of gpu_ioctl.bpf.c, selecting GPU ioctls by the ioctl type byte
 * (_IOC_TYPE(cmd): 'd' DRM/accel, 'F' NVIDIA, 'K' AMD KFD) read from the
 * tracepoint arguments. bcc compiles against the installed kernel headers
 * without BTF, so it does not walk task->files to the fd's device: with
 * headers of another kernel those struct offsets would be wrong. */
#include "mmv_bcc.h"

#ifndef MMV_TARG_NTYPES
#define MMV_TARG_NTYPES 0
#endif
#ifndef MMV_TARG_TYPES
#define MMV_TARG_TYPES {0}
#endif
#ifndef MMV_START_MAX
#define MMV_START_MAX 10240
#endif
#define MMV_MAX_TYPES 32
#define MMV_IOC_TYPE(cmd) (((cmd) >> 8) & 0xff)

/* Entry time per thread, only for matched ioctls; LRU keeps it bounded. */
BPF_TABLE("lru_hash", u64, u64, start, MMV_START_MAX);
BPF_ARRAY(hist, struct mmv_hist, 1);

static inline int cmd_is_target(u32 cmd)
{
	u32 types[MMV_MAX_TYPES] = MMV_TARG_TYPES;
	u32 type = MMV_IOC_TYPE(cmd);

#pragma unroll
	for (int i = 0; i < MMV_MAX_TYPES; i++) {
		if (i >= MMV_TARG_NTYPES)
			break;
		if (types[i] == type)
			return 1;
	}
	return 0;
}

TRACEPOINT_PROBE(syscalls, sys_enter_ioctl)
{
	u64 id = bpf_get_current_pid_tgid();
	u64 ts;

	if (!cmd_is_target((u32)args->cmd))
		return 0;
	ts = bpf_ktime_get_ns();
	start.update(&id, &ts);
	return 0;
}

TRACEPOINT_PROBE(syscalls, sys_exit_ioctl)
{
	u64 id = bpf_get_current_pid_tgid();
	struct mmv_hist *h;
	u32 zero = 0;
	u64 *tsp;
	s64 delta;

	tsp = start.lookup(&id);
	if (!tsp)
		return 0;	/* enter did not match (or was evicted) */
	delta = (s64)(bpf_ktime_get_ns() - *tsp);
	start.delete(&id);
	if (delta < 0)
		return 0;
	h = hist.lookup(&zero);
	if (h)
		__sync_fetch_and_add(&h->slots[mmv_slot(delta)], 1);
	return 0;
}
