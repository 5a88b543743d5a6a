// SPDX-License-Identifier: GPL-2.0-only
/* VM exits per qemu process (tgid), by event and exit reason.
 *
 * kvm_exit carries the hardware exit reason (VMX/SVM); paravirtual hosts
 * may never fire it, so kvm_userspace_exit (exits handed to qemu, reason =
 * KVM_EXIT_*) is counted too. The loader only loads programs whose
 * tracepoint the kernel offers. Entries are read and deleted by user space.
 */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include "mmv_common.bpf.h"

#define MMV_EV_KVM_EXIT 1
#define MMV_EV_KVM_USERSPACE_EXIT 2

struct exit_key {
	__u32 tgid;
	__u32 event;
	__u32 reason;
	__u32 isa;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 8192);
	__type(key, struct exit_key);
	__type(value, __u64);
} exits SEC(".maps");

MMV_DROPS_MAP(1);	/* slot 0: exits full */

static __always_inline void count(__u32 event, __u32 reason, __u32 isa)
{
	struct exit_key key = {
		.tgid = bpf_get_current_pid_tgid() >> 32,
		.event = event,
		.reason = reason,
		.isa = isa,
	};
	static const __u64 one = 1;
	__u64 *value;

	value = bpf_map_lookup_elem(&exits, &key);
	if (value) {
		__sync_fetch_and_add(value, 1);
		return;
	}
	/* Fails when the table is full: memory stays bounded. */
	if (bpf_map_update_elem(&exits, &key, &one, BPF_NOEXIST)) {
		value = bpf_map_lookup_elem(&exits, &key);
		if (value)
			__sync_fetch_and_add(value, 1);
		else
			mmv_count_drop(&drops, 0);
	}
}

SEC("tracepoint/kvm/kvm_exit")
int mmv_kvm_exit(struct trace_event_raw_kvm_exit *ctx)
{
	count(MMV_EV_KVM_EXIT, ctx->exit_reason, ctx->isa);
	return 0;
}

SEC("tracepoint/kvm/kvm_userspace_exit")
int mmv_kvm_userspace_exit(struct trace_event_raw_kvm_userspace_exit *ctx)
{
	count(MMV_EV_KVM_USERSPACE_EXIT, ctx->reason, 0);
	return 0;
}

char LICENSE[] SEC("license") = "GPL v2";
