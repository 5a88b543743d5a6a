// SPDX-License-Identifier: Apache-2.0
/* In-guest check of the collector's gpu_sched programs (nested-guest proof).
 *
 * With the gpu-sched module loaded, this program does in C what the
 * collector's gpu_sched probe does in Python:
 * 1. reads the offsets of drm_sched_job.s_fence and drm_sched_fence.parent
 *    from the module's BTF file (/sys/kernel/btf/gpu_sched) and writes them
 *    into the object's .rodata settings before load;
 * 2. loads the collector's own gpu_sched.bpf.o (production programs only)
 *    and attaches each raw_tp program to its tracepoint by name, where the
 *    kernel offers it (one generation of names per kernel).
 * It prints MMV-SCHED-OFFSET and MMV-SCHED-ATTACHED / MMV-SCHED-ABSENT
 * lines on the serial port for tools/guest/fence_proof.py.
 *
 * Usage: mmv-guest-sched OBJECT
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>

#define MODULE_BTF "/sys/kernel/btf/gpu_sched"

static long member_offset(const struct btf *btf, const char *type,
			  const char *member)
{
	const struct btf_member *m;
	const struct btf_type *t;
	int id, i;

	id = btf__find_by_name_kind(btf, type, BTF_KIND_STRUCT);
	if (id <= 0)
		return -1;
	t = btf__type_by_id(btf, id);
	m = btf_members(t);
	for (i = 0; i < btf_vlen(t); i++, m++) {
		if (strcmp(btf__name_by_offset(btf, m->name_off), member) == 0)
			return btf_member_bit_offset(t, i) / 8;
	}
	return -1;
}

/* Write a __u32 setting into the object's .rodata initial value. */
static int set_rodata(struct bpf_object *obj, const char *name, __u32 value)
{
	const struct btf_var_secinfo *info;
	const struct btf_type *sec;
	struct bpf_map *map;
	struct btf *btf = bpf_object__btf(obj);
	const void *initial;
	size_t size;
	char *data;
	int id, i, err;

	bpf_object__for_each_map(map, obj) {
		if (strstr(bpf_map__name(map), ".rodata"))
			break;
	}
	id = btf__find_by_name_kind(btf, ".rodata", BTF_KIND_DATASEC);
	if (!map || id <= 0)
		return -1;
	sec = btf__type_by_id(btf, id);
	initial = bpf_map__initial_value(map, &size);
	if (!initial)
		return -1;
	info = btf_var_secinfos(sec);
	for (i = 0; i < btf_vlen(sec); i++, info++) {
		const struct btf_type *var = btf__type_by_id(btf, info->type);

		if (strcmp(btf__name_by_offset(btf, var->name_off), name))
			continue;
		if (info->offset + sizeof(value) > size)
			return -1;
		data = malloc(size);
		if (!data)
			return -1;
		memcpy(data, initial, size);
		memcpy(data + info->offset, &value, sizeof(value));
		err = bpf_map__set_initial_value(map, data, size);
		free(data);
		return err;
	}
	return -1;
}

int main(int argc, char **argv)
{
	static const char *const fields[][3] = {
		{"drm_sched_job", "s_fence", "targ_job_s_fence_off"},
		{"drm_sched_fence", "parent", "targ_sfence_parent_off"},
	};
	struct btf *vmlinux, *module;
	struct bpf_program *prog;
	struct bpf_object *obj;
	int attached = 0;
	unsigned int i;

	if (argc < 2) {
		fprintf(stderr, "usage: %s OBJECT\n", argv[0]);
		return 2;
	}
	vmlinux = btf__load_vmlinux_btf();
	module = vmlinux ? btf__parse_split(MODULE_BTF, vmlinux) : NULL;
	if (!module) {
		printf("MMV-SCHED-ERROR no BTF at %s: %s\n", MODULE_BTF,
		       strerror(errno));
		return 1;
	}
	obj = bpf_object__open_file(argv[1], NULL);
	if (!obj) {
		printf("MMV-SCHED-ERROR open %s: %s\n", argv[1], strerror(errno));
		return 1;
	}
	for (i = 0; i < sizeof(fields) / sizeof(fields[0]); i++) {
		long offset = member_offset(module, fields[i][0], fields[i][1]);

		printf("MMV-SCHED-OFFSET %s.%s=%ld\n", fields[i][0],
		       fields[i][1], offset);
		if (offset < 0 || set_rodata(obj, fields[i][2], offset)) {
			printf("MMV-SCHED-ERROR setting %s\n", fields[i][2]);
			return 1;
		}
	}
	bpf_object__for_each_program(prog, obj) {
		if (strstr(bpf_program__name(prog), "_synth"))
			bpf_program__set_autoload(prog, false);
	}
	if (bpf_object__load(obj)) {
		printf("MMV-SCHED-ERROR load: %s\n", strerror(errno));
		return 1;
	}
	bpf_object__for_each_program(prog, obj) {
		const char *event;

		if (!bpf_program__autoload(prog))
			continue;
		event = strchr(bpf_program__section_name(prog), '/') + 1;
		if (bpf_program__attach(prog)) {
			printf("MMV-SCHED-ATTACHED %s %s\n",
			       bpf_program__name(prog), event);
			attached++;
		} else {
			printf("MMV-SCHED-ABSENT %s %s: %s\n",
			       bpf_program__name(prog), event, strerror(errno));
		}
	}
	return attached ? 0 : 1;
}
