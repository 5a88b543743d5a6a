// SPDX-License-Identifier: GPL-2.0-only
/* GPU ioctl latency by exact request number: entry to return of the ioctls
 * listed in gpu_ioctl_table.py (command submission, waits, NVIDIA RM
 * escapes), one log2 histogram per class.
 *
 * The request number is compared first (cheap, from the tracepoint
 * arguments); only a listed number pays for the fd walk, CO-RE reads of
 * task->files->fdt->fd[fd]->f_inode->i_rdev, which keeps only ioctls on
 * the configured device nodes. Cumulative histograms: user space reads
 * deltas. The entry times live in a hash keyed by thread: the syscall exit
 * event fires for every call that entered (a killed thread's call
 * returns through it too), so an entry only stays while its thread is
 * inside a listed ioctl, and a call that finds the table full is not timed
 * and counted (drops slot 0).
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include "mmv_common.bpf.h"

#define MMV_MAX_DEVS 64
#define MMV_MAX_CMDS 48
#define MMV_NCLASSES 4
#define MMV_S_IFMT 00170000
#define MMV_S_IFCHR 0020000

/* Settings, written into .rodata by the loader before load. */
const volatile __u32 targ_ndevs = 0;
const volatile __u32 targ_devs[MMV_MAX_DEVS] = {};	/* kernel dev_t */
const volatile __u32 targ_ncmds = 0;
/* (class << 32) | request number; class 1 submit, 2 wait, 3 NVIDIA RM. */
const volatile __u64 targ_cmds[MMV_MAX_CMDS] = {};

struct mmv_ioctl_start {
	__u64 ts;
	__u32 klass;
	__u32 pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 10240);
	__type(key, __u64);		/* pid_tgid */
	__type(value, struct mmv_ioctl_start);
} start SEC(".maps");

MMV_DROPS_MAP(1);	/* slot 0: start full */

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, MMV_NCLASSES);
	__type(key, __u32);		/* class id */
	__type(value, struct mmv_hist);
} hist SEC(".maps");

static __always_inline __u32 cmd_class(__u32 cmd)
{
	__u32 i;

	for (i = 0; i < MMV_MAX_CMDS; i++) {
		if (i >= targ_ncmds)
			break;
		if ((__u32)targ_cmds[i] == cmd)
			return targ_cmds[i] >> 32;
	}
	return 0;
}

static __always_inline int fd_is_target(unsigned int fd)
{
	/* BTF-typed task: the walk to the fd table is plain loads (the
	 * verifier turns them into fault-safe loads), cheaper than probe
	 * reads; the array slot and the file need one probe read each. */
	struct task_struct *task = bpf_get_current_task_btf();
	struct fdtable *fdt = task->files->fdt;
	struct file *file = NULL;
	struct inode *inode = NULL;
	__u32 rdev;
	__u16 mode;
	__u32 i;

	if (fd >= fdt->max_fds)
		return 0;
	if (bpf_core_read(&file, sizeof(file), &fdt->fd[fd]) || !file)
		return 0;
	if (bpf_core_read(&inode, sizeof(inode), &file->f_inode) || !inode)
		return 0;
	mode = BPF_CORE_READ(inode, i_mode);
	if ((mode & MMV_S_IFMT) != MMV_S_IFCHR)
		return 0;
	rdev = BPF_CORE_READ(inode, i_rdev);
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
	struct mmv_ioctl_start value = {};
	__u32 klass;
	__u64 id;

	/* Runs on every ioctl of the host: the request number first, no
	 * helper call before it matches. */
	klass = cmd_class((__u32)ctx->args[1]);
	if (!klass || !fd_is_target((unsigned int)ctx->args[0]))
		return 0;
	id = bpf_get_current_pid_tgid();
	value.ts = bpf_ktime_get_ns();
	value.klass = klass;
	if (bpf_map_update_elem(&start, &id, &value, BPF_ANY))
		mmv_count_drop(&drops, 0);
	return 0;
}

SEC("tracepoint/syscalls/sys_exit_ioctl")
int mmv_sys_exit_ioctl(struct trace_event_raw_sys_exit *ctx)
{
	__u64 id = bpf_get_current_pid_tgid();
	struct mmv_ioctl_start *sp;
	struct mmv_hist *h;
	__u32 klass;
	__s64 delta;

	sp = bpf_map_lookup_elem(&start, &id);
	if (!sp)
		return 0;
	delta = (__s64)(bpf_ktime_get_ns() - sp->ts);
	klass = sp->klass;
	bpf_map_delete_elem(&start, &id);
	if (delta < 0)
		return 0;
	h = bpf_map_lookup_elem(&hist, &klass);
	if (h)
		__sync_fetch_and_add(&h->slots[mmv_slot(delta)], 1);
	return 0;
}

char LICENSE[] SEC("license") = "GPL v2";
