// SPDX-License-Identifier: GPL-2.0-only
/* GPU command-submission latency: time spent in ioctl() on configured
 * character devices (selected by device number), as a log2 histogram.
 *
 * The fd is resolved in kernel with CO-RE reads of
 * task->files->fdt->fd[fd]->f_inode->i_rdev, so only ioctls on the target
 * device nodes are timed. Cumulative histogram: user space reads deltas.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include "mmv_common.bpf.h"

#define MMV_MAX_DEVS 64
#define MMV_S_IFMT 00170000
#define MMV_S_IFCHR 0020000

/* Settings, written into .rodata by the loader before load. */
const volatile __u32 targ_ndevs = 0;
const volatile __u32 targ_devs[MMV_MAX_DEVS] = {};	/* kernel dev_t */

struct {
	__uint(type, BPF_MAP_TYPE_LRU_HASH);
	__uint(map_flags, BPF_F_NO_COMMON_LRU);	/* per-CPU LRU lists: no lock */
	__uint(max_entries, 10240);
	__type(key, __u64);		/* pid_tgid */
	__type(value, __u64);		/* entry time, ns */
} start SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct mmv_hist);
} hist SEC(".maps");

static __always_inline int fd_is_target(unsigned int fd)
{
	struct task_struct *task = bpf_get_current_task_btf();
	struct file **fds;
	struct file *file = NULL;
	unsigned int max_fds;
	__u32 rdev;
	__u16 mode;
	__u32 i;

	max_fds = BPF_CORE_READ(task, files, fdt, max_fds);
	if (fd >= max_fds)
		return 0;
	fds = BPF_CORE_READ(task, files, fdt, fd);
	if (bpf_core_read(&file, sizeof(file), &fds[fd]) || !file)
		return 0;
	mode = BPF_CORE_READ(file, f_inode, i_mode);
	if ((mode & MMV_S_IFMT) != MMV_S_IFCHR)
		return 0;
	rdev = BPF_CORE_READ(file, f_inode, i_rdev);
	for (i = 0; i < MMV_MAX_DEVS; i++) {
		if (i >= targ_ndevs)
			break;
		if (targ_devs[i] == rdev)
			return 1;
	}
	return 0;
}

SEC("tracepoint/syscalls/sys_enter_ioctl")
int mmv_sys_enter_ioctl(struct trace_event_raw_sys_enter *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	__u64 ts;

	if (!fd_is_target((unsigned int)ctx->args[0]))
		return 0;
	ts = bpf_ktime_get_ns();
	bpf_map_update_elem(&start, &id, &ts, BPF_ANY);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_ioctl")
int mmv_sys_exit_ioctl(struct trace_event_raw_sys_exit *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct mmv_hist *h;
	__u32 zero = 0;
	__u64 *tsp;
	__s64 delta;

	tsp = bpf_map_lookup_elem(&start, &id);
	if (!tsp)
		return 0;
	delta = (__s64)(bpf_ktime_get_ns() - *tsp);
	bpf_map_delete_elem(&start, &id);
	if (delta < 0)
		return 0;
	h = bpf_map_lookup_elem(&hist, &zero);
	if (h)
		__sync_fetch_and_add(&h->slots[mmv_slot(delta)], 1);
	return 0;
}

char LICENSE[] SEC("license") = "GPL v2";
