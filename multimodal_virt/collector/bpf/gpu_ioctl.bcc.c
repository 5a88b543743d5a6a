/* SPDX-License-Identifier: Apache-2.0 */
/* bcc twin of gpu_ioctl.bpf.c. The fd walk uses the struct layouts of the
 * installed kernel headers (bcc has no CO-RE): correct only when the
 * headers match the running kernel. */
#include <linux/sched.h>
#include <linux/fs.h>
#include <linux/fdtable.h>
#include "mmv_bcc.h"

#ifndef MMV_TARG_NDEVS
#define MMV_TARG_NDEVS 0
#endif
#ifndef MMV_TARG_DEVS
#define MMV_TARG_DEVS {0}
#endif
#ifndef MMV_START_MAX
#define MMV_START_MAX 10240
#endif
#define MMV_MAX_DEVS 64

BPF_TABLE("lru_hash", u64, u64, start, MMV_START_MAX);
BPF_ARRAY(hist, struct mmv_hist, 1);

static inline int fd_is_target(unsigned int fd)
{
	u32 devs[MMV_MAX_DEVS] = MMV_TARG_DEVS;
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	struct files_struct *files = NULL;
	struct fdtable *fdt = NULL;
	struct file **fds = NULL;
	struct file *file = NULL;
	struct inode *inode = NULL;
	unsigned int max_fds = 0;
	umode_t mode = 0;
	dev_t rdev = 0;

	bpf_probe_read_kernel(&files, sizeof(files), &task->files);
	if (!files)
		return 0;
	bpf_probe_read_kernel(&fdt, sizeof(fdt), &files->fdt);
	if (!fdt)
		return 0;
	bpf_probe_read_kernel(&max_fds, sizeof(max_fds), &fdt->max_fds);
	if (fd >= max_fds)
		return 0;
	bpf_probe_read_kernel(&fds, sizeof(fds), &fdt->fd);
	bpf_probe_read_kernel(&file, sizeof(file), &fds[fd]);
	if (!file)
		return 0;
	bpf_probe_read_kernel(&inode, sizeof(inode), &file->f_inode);
	if (!inode)
		return 0;
	bpf_probe_read_kernel(&mode, sizeof(mode), &inode->i_mode);
	if ((mode & S_IFMT) != S_IFCHR)
		return 0;
	bpf_probe_read_kernel(&rdev, sizeof(rdev), &inode->i_rdev);
#pragma unroll
	for (int i = 0; i < MMV_MAX_DEVS; i++) {
		if (i >= MMV_TARG_NDEVS)
			break;
		if (devs[i] == rdev)
			return 1;
	}
	return 0;
}

TRACEPOINT_PROBE(syscalls, sys_enter_ioctl)
{
	u64 id = bpf_get_current_pid_tgid();
	u64 ts;

	if (!fd_is_target((unsigned int)args->fd))
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
		return 0;
	delta = (s64)(bpf_ktime_get_ns() - *tsp);
	start.delete(&id);
	if (delta < 0)
		return 0;
	h = hist.lookup(&zero);
	if (h)
		__sync_fetch_and_add(&h->slots[mmv_slot(delta)], 1);
	return 0;
}
