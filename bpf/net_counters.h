/* net_counters.h - shared between bpf/net_counters.bpf.c and the agent: per-task network
 * counters, keyed by the task's cgroup2 id (the inode number of pacer/<agent-id>/<task-id>).
 *
 * The map is pinned at <bpffs>/pacer/<agent-id>/net_counters, so
 *   bpftool map dump pinned /sys/fs/bpf/pacer/<agent-id>/net_counters
 * prints the named fields below. The agent creates a zeroed entry when a task's cgroup is
 * prepared and deletes it at cleanup; the programs add with atomic instructions (exact). */
#ifndef PACER_BPF_NET_COUNTERS_H
#define PACER_BPF_NET_COUNTERS_H

#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

#define NET_COUNTERS_MAX_TASKS 16384
/* Deepest cgroup level searched for a task's counters when a socket sits in a cgroup below
 * the task's own (a task creating sub-cgroups). */
#define NET_COUNTERS_MAX_LEVEL 8

struct task_net_counters {
	__u64 rx_bytes;
	__u64 rx_packets;
	__u64 tx_bytes;
	__u64 tx_packets;
};

#endif
