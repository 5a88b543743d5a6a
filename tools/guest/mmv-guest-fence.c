// SPDX-License-Identifier: Apache-2.0
/* mmv-guest-fence: the in-guest half of the nested-KVM fence proof.
 *
 * Runs as a static binary in a small initramfs (tools/guest/
 * build-initramfs.sh) on a kernel with a real DRM driver (virtio-gpu):
 *
 * 1. loads the collector's own gpu_fence.bpf.o with libbpf and attaches
 *    its tp_btf programs (dma_fence_emit/signaled), exactly the
 *    programs the collector attaches on a compute host;
 * 2. submits virtio-gpu work with fences: DRM_IOCTL_VIRTGPU_RESOURCE_CREATE
 *    (the driver emits a fence with the create command, QEMU answers and
 *    the fence signals), then DRM_IOCTL_VIRTGPU_WAIT on the resource,
 *    timing each submit-to-wait-return with CLOCK_MONOTONIC: an upper bound
 *    of each fence's emit-to-signaled time, measured independently;
 * 3. prints the BPF histograms, the drop counters and the independent
 *    measure as "MMV-..." lines on the console (the serial port), which
 *    the host parses.
 *
 * Usage: mmv-guest-fence OBJECT COUNT [DEVICE]
 */
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <drm.h>
#include <virtgpu_drm.h>

#define MAX_SLOTS 32
#define VIRTIO_GPU_FORMAT_B8G8R8X8_UNORM 2
#define PIPE_TEXTURE_2D 2

struct fence_key {
	uint64_t driver;
	uint32_t tgid;
	uint32_t pad;
};

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + ts.tv_nsec;
}

/* Module (or symbol) owning a kernel text address, from /proc/kallsyms. */
static void driver_name(uint64_t address, char *out, size_t len)
{
	char line[512], symbol[256], module[256], type;
	unsigned long long value;
	FILE *file = fopen("/proc/kallsyms", "r");

	snprintf(out, len, "unknown");
	if (!file)
		return;
	while (fgets(line, sizeof(line), file)) {
		module[0] = '\0';
		if (sscanf(line, "%llx %c %255s [%255[^]]]", &value, &type,
			   symbol, module) < 3)
			continue;
		if (value == address) {
			snprintf(out, len, "%s", module[0] ? module : symbol);
			break;
		}
	}
	fclose(file);
}

static int attach_fence_programs(const char *path, struct bpf_object **objp)
{
	struct bpf_program *prog;
	struct bpf_object *obj;
	int attached = 0;

	obj = bpf_object__open_file(path, NULL);
	if (!obj) {
		fprintf(stderr, "MMV-ERROR open %s: %s\n", path, strerror(errno));
		return -1;
	}
	bpf_object__for_each_program(prog, obj) {
		if (strstr(bpf_program__name(prog), "_synth"))
			bpf_program__set_autoload(prog, false);
	}
	if (bpf_object__load(obj)) {
		fprintf(stderr, "MMV-ERROR load %s: %s\n", path, strerror(errno));
		return -1;
	}
	bpf_object__for_each_program(prog, obj) {
		if (!bpf_program__autoload(prog))
			continue;
		if (!bpf_program__attach(prog)) {
			fprintf(stderr, "MMV-ERROR attach %s: %s\n",
				bpf_program__name(prog), strerror(errno));
			return -1;
		}
		printf("MMV-ATTACHED %s\n", bpf_program__name(prog));
		attached++;
	}
	*objp = obj;
	return attached;
}

/* Create, wait for and close COUNT resources; print the independent
 * submit-to-wait-return times. Returns how many completed. */
static int submit(const char *device, int count)
{
	uint64_t t0, t1, min = UINT64_MAX, max = 0, sum = 0;
	int fd, done = 0, i;

	fd = open(device, O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		fprintf(stderr, "MMV-ERROR open %s: %s\n", device,
			strerror(errno));
		return -1;
	}
	for (i = 0; i < count; i++) {
		struct drm_virtgpu_resource_create rc = {
			.target = PIPE_TEXTURE_2D,
			.format = VIRTIO_GPU_FORMAT_B8G8R8X8_UNORM,
			.width = 64, .height = 64, .depth = 1, .array_size = 1,
		};
		struct drm_virtgpu_3d_wait wait = { 0 };
		struct drm_gem_close close_bo = { 0 };

		t0 = now_ns();
		if (ioctl(fd, DRM_IOCTL_VIRTGPU_RESOURCE_CREATE, &rc)) {
			fprintf(stderr, "MMV-ERROR RESOURCE_CREATE: %s\n",
				strerror(errno));
			break;
		}
		wait.handle = rc.bo_handle;
		if (ioctl(fd, DRM_IOCTL_VIRTGPU_WAIT, &wait)) {
			fprintf(stderr, "MMV-ERROR WAIT: %s\n", strerror(errno));
			break;
		}
		t1 = now_ns();
		close_bo.handle = rc.bo_handle;
		ioctl(fd, DRM_IOCTL_GEM_CLOSE, &close_bo);
		min = t1 - t0 < min ? t1 - t0 : min;
		max = t1 - t0 > max ? t1 - t0 : max;
		sum += t1 - t0;
		done++;
	}
	close(fd);
	if (done)
		printf("MMV-SUBMIT count=%d min_ns=%llu max_ns=%llu "
		       "mean_ns=%llu\n", done, (unsigned long long)min,
		       (unsigned long long)max,
		       (unsigned long long)(sum / done));
	return done;
}

static void print_maps(struct bpf_object *obj)
{
	int hist = bpf_object__find_map_fd_by_name(obj, "hist");
	/* Counters print as index 0-1 (drops: inflight, hist full) and 2
	 * (anomalies: unmatched signal). */
	int counters[2] = {bpf_object__find_map_fd_by_name(obj, "drops"),
			   bpf_object__find_map_fd_by_name(obj, "anomalies")};
	struct fence_key key, next, *prev = NULL;
	uint64_t slots[MAX_SLOTS], value;
	char name[256];
	uint32_t i;
	int s;

	while (bpf_map_get_next_key(hist, prev, &next) == 0) {
		key = next;
		prev = &key;
		if (bpf_map_lookup_elem(hist, &key, slots))
			continue;
		driver_name(key.driver, name, sizeof(name));
		printf("MMV-FENCE driver=%s tgid=%u self=%d slots=", name,
		       key.tgid, key.tgid == (uint32_t)getpid());
		for (s = 0; s < MAX_SLOTS; s++)
			printf("%s%llu", s ? "," : "",
			       (unsigned long long)slots[s]);
		printf("\n");
	}
	for (i = 0; i < 3; i++) {
		uint32_t slot = i % 2;

		if (bpf_map_lookup_elem(counters[i / 2], &slot, &value) == 0)
			printf("MMV-DROPPED index=%u count=%llu\n", i,
			       (unsigned long long)value);
	}
}

int main(int argc, char **argv)
{
	const char *device = argc > 3 ? argv[3] : "/dev/dri/card0";
	struct bpf_object *obj = NULL;
	int count, done;

	if (argc < 3) {
		fprintf(stderr, "usage: %s OBJECT COUNT [DEVICE]\n", argv[0]);
		return 2;
	}
	count = atoi(argv[2]);
	setvbuf(stdout, NULL, _IOLBF, 0);
	if (attach_fence_programs(argv[1], &obj) <= 0)
		return 1;
	printf("MMV-PID %d\n", getpid());
	done = submit(device, count);
	usleep(100000);		/* let late signals land */
	print_maps(obj);
	printf("MMV-DONE submitted=%d\n", done);
	bpf_object__close(obj);
	return done == count ? 0 : 1;
}
