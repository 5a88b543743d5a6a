/* SPDX-License-Identifier: GPL-2.0-only */
/* Shared helpers for the multimodal-virt CO-RE probes. */
#ifndef MMV_COMMON_BPF_H
#define MMV_COMMON_BPF_H

/* Log2 slots of a histogram; slot i counts values v with floor(log2 v) == i
 * (slot 0 also holds 0), the layout of LatencyHistogram and biolatency. */
#define MMV_MAX_SLOTS 32

struct mmv_hist {
	__u64 slots[MMV_MAX_SLOTS];
};

static __always_inline __u32 mmv_log2(__u32 v)
{
	__u32 shift, r;

	r = (v > 0xFFFF) << 4; v >>= r;
	shift = (v > 0xFF) << 3; v >>= shift; r |= shift;
	shift = (v > 0xF) << 2; v >>= shift; r |= shift;
	shift = (v > 0x3) << 1; v >>= shift; r |= shift;
	r |= (v >> 1);
	return r;
}

static __always_inline __u32 mmv_log2l(__u64 v)
{
	__u32 hi = v >> 32;

	if (hi)
		return mmv_log2(hi) + 32;
	return mmv_log2(v);
}

/* 64-bit on purpose: with a 32-bit slot clang bounds-checks a zero-extended
 * copy and indexes with the original register, which the verifier of older
 * kernels (6.1) cannot relate ("unbounded memory access"). */
static __always_inline __u64 mmv_slot(__u64 delta_ns)
{
	__u64 slot = mmv_log2l(delta_ns / 1000);

	if (slot >= MMV_MAX_SLOTS)
		slot = MMV_MAX_SLOTS - 1;
	return slot;
}

/* A dropped-events counter beside every bounded map: one ARRAY map named
 * "drops" per object, slot i counting the events lost because bounded map i
 * was full (the probe's ProbeSpec.drops names the maps in slot order).
 * Drops are rare, so one shared atomic counter costs nothing measurable. */
#define MMV_DROPS_MAP(nr_maps)						\
	struct {							\
		__uint(type, BPF_MAP_TYPE_ARRAY);			\
		__uint(max_entries, nr_maps);				\
		__type(key, __u32);					\
		__type(value, __u64);					\
	} drops SEC(".maps")

#define mmv_count_drop(map, slot)					\
	({								\
		__u32 __mmv_slot = (slot);				\
		__u64 *__mmv_value = bpf_map_lookup_elem(map, &__mmv_slot); \
		if (__mmv_value)					\
			__sync_fetch_and_add(__mmv_value, 1);		\
	})

/* The histogram stored under key in hist_map, created empty when missing.
 * NULL when the map is full, with slot drop of drops_map counted. */
static const struct mmv_hist mmv_zero_hist;

#define mmv_hist_of(hist_map, key, drops_map, drop)			\
	({								\
		struct mmv_hist *__mmv_h = bpf_map_lookup_elem(hist_map, key); \
		if (!__mmv_h) {						\
			/* -EEXIST: another CPU created it; -E2BIG: full. */ \
			if (bpf_map_update_elem(hist_map, key, &mmv_zero_hist, \
						BPF_NOEXIST) != -7)	\
				__mmv_h = bpf_map_lookup_elem(hist_map, key); \
			if (!__mmv_h)					\
				mmv_count_drop(drops_map, drop);	\
		}							\
		__mmv_h;						\
	})

#endif /* MMV_COMMON_BPF_H */
