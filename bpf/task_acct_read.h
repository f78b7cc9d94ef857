/* task_acct_read.h - user-space reading of a task_acct map (agent and pacer-bpf): the map
 * is per-CPU (values summed over the possible CPUs) or a shared hash (one value). */
#ifndef PACER_BPF_TASK_ACCT_READ_H
#define PACER_BPF_TASK_ACCT_READ_H

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <errno.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "bpf/task_acct.h"

#define TASK_ACCT_FIELDS (sizeof(struct task_acct) / sizeof(__u64))

/* Reads the entry of cgroup_id into *out; percpu tells the map's type. 0 or -errno
 * (-ENOENT: no such task). */
static inline int task_acct_lookup(int map_fd, bool percpu, uint64_t cgroup_id,
				   struct task_acct *out)
{
	int ncpu, rc = 0;
	struct task_acct *vals;

	if (!percpu)
		return bpf_map_lookup_elem(map_fd, &cgroup_id, out) < 0 ? -errno : 0;
	ncpu = libbpf_num_possible_cpus();
	if (ncpu <= 0)
		return ncpu < 0 ? ncpu : -EINVAL;
	vals = calloc((size_t)ncpu, sizeof(*vals));
	if (!vals)
		return -ENOMEM;
	if (bpf_map_lookup_elem(map_fd, &cgroup_id, vals) < 0) {
		rc = -errno;
	} else {
		__u64 *sum = (__u64 *)out;

		memset(out, 0, sizeof(*out));
		for (int cpu = 0; cpu < ncpu; cpu++) {
			const __u64 *v = (const __u64 *)&vals[cpu];

			for (size_t f = 0; f < TASK_ACCT_FIELDS; f++)
				sum[f] += v[f];
		}
	}
	free(vals);
	return rc;
}

/* Adds a zeroed entry for cgroup_id unless one exists (then the counts continue). */
static inline int task_acct_track(int map_fd, bool percpu, uint64_t cgroup_id)
{
	int ncpu = percpu ? libbpf_num_possible_cpus() : 1;
	struct task_acct *zero;
	int rc = 0;

	if (ncpu <= 0)
		return ncpu < 0 ? ncpu : -EINVAL;
	zero = calloc((size_t)ncpu, sizeof(*zero));
	if (!zero)
		return -ENOMEM;
	if (bpf_map_update_elem(map_fd, &cgroup_id, zero, BPF_NOEXIST) < 0 && errno != EEXIST)
		rc = -errno;
	free(zero);
	return rc;
}

#endif
