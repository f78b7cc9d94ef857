/* task_acct_read.h - user-space reading of a task's counters (agent, pacer-bpf, tests): its
 * task_acct entry plus the network counters in its cgroup's task_net storage, each map
 * per-CPU (values summed over the possible CPUs) or shared (one value). */
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

/* True if the map behind fd keeps one value per CPU (how the loader made it). */
static inline bool task_acct_map_percpu(int fd)
{
	struct bpf_map_info info = { 0 };
	__u32 len = sizeof(info);

	if (bpf_obj_get_info_by_fd(fd, &info, &len) < 0)
		return false;
	return info.type == BPF_MAP_TYPE_PERCPU_HASH || info.type == BPF_MAP_TYPE_PERCPU_CGROUP_STORAGE;
}

/* Adds the network counters in the task_net storage of cgroup_id (net_fd; -1: the agent
 * that pinned the maps predates task_net) to *out. No storage for the cgroup (its skb
 * programs came from an agent of an older build, which counted into task_acct itself)
 * adds nothing. 0 or -errno. */
static inline int task_net_add(int net_fd, bool percpu, uint64_t cgroup_id, struct task_acct *out)
{
	int ncpu = percpu ? libbpf_num_possible_cpus() : 1;
	struct task_net *vals;
	int rc = 0;

	if (net_fd < 0)
		return 0;
	if (ncpu <= 0)
		return ncpu < 0 ? ncpu : -EINVAL;
	vals = calloc((size_t)ncpu, sizeof(*vals));
	if (!vals)
		return -ENOMEM;
	if (bpf_map_lookup_elem(net_fd, &cgroup_id, vals) < 0) {
		rc = errno == ENOENT ? 0 : -errno;
	} else {
		for (int cpu = 0; cpu < ncpu; cpu++) {
			out->rx_bytes += vals[cpu].rx_bytes;
			out->rx_packets += vals[cpu].rx_packets;
			out->tx_bytes += vals[cpu].tx_bytes;
			out->tx_packets += vals[cpu].tx_packets;
			out->udp_rx_datagrams += vals[cpu].udp_rx_datagrams;
			out->udp_tx_datagrams += vals[cpu].udp_tx_datagrams;
		}
	}
	free(vals);
	return rc;
}

/* A task's whole counters: its task_acct entry (-ENOENT: not tracked) plus its task_net
 * storage. */
static inline int task_acct_read(int acct_fd, bool acct_percpu, int net_fd, bool net_percpu,
				 uint64_t cgroup_id, struct task_acct *out)
{
	int rc = task_acct_lookup(acct_fd, acct_percpu, cgroup_id, out);

	return rc ? rc : task_net_add(net_fd, net_percpu, cgroup_id, out);
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
