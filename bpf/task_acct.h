/* task_acct.h - shared between bpf/task_acct.bpf.c, the agent (agent/bpf_net.c) and
 * tools/pacer-bpf: exact per-task accounting, keyed by the task's cgroup2 id (the inode
 * number of pacer/<agent-id>/<task-id> in the unified hierarchy).
 *
 * Maps, pinned under <bpffs>/pacer/<agent-id>/ (reused after an agent restart):
 *   task_acct   cgroup id -> struct task_acct (per-CPU hash: the reader sums the CPUs).
 *               The agent makes a zeroed entry when a task's cgroup is prepared and deletes
 *               it at cleanup; the tracing programs only count cgroups that have an entry,
 *               so this map is also their "tracked cgroups" filter (a host process costs
 *               one lookup). Its network fields stay 0 for tasks attached by this build
 *               (they count in task_net); an agent upgraded from a build before task_net
 *               leaves its running tasks' old skb programs counting here. Readers add both
 *               (task_acct_read.h).
 *   task_net    cgroup id -> struct task_net: per-CPU cgroup storage, one per task cgroup
 *               the skb programs are attached to, made at attach and freed at detach (the
 *               agent's cleanup) or when the cgroup is removed. The links are pinned, so
 *               it survives agent restarts and outlives the task's processes.
 *   tracked     cgroup id -> struct tracked_task: the task id, so tools name the entries
 *               without the agent (pacer-bpf works while the agent is down).
 *   cpu_seen    task storage: the sum_exec_runtime already charged for each thread.
 * `bpftool map dump pinned .../task_acct` prints the field names below. */
#ifndef PACER_BPF_TASK_ACCT_H
#define PACER_BPF_TASK_ACCT_H

#ifndef __VMLINUX_H__
#include <linux/types.h>
#endif

#define TASK_ACCT_MAX_TASKS 16384
#define TASK_ACCT_ID_LEN 168   /* Marathon task ids: app id (<= 122) + "." + uuid */

struct task_acct {
	__u64 rx_bytes;           /* cgroup_skb ingress: skb->len, IP header included */
	__u64 rx_packets;         /* skbs (a GRO/TSO skb counts once) */
	__u64 tx_bytes;           /* cgroup_skb egress */
	__u64 tx_packets;
	__u64 tcp_connects;       /* TCP CLOSE -> SYN_SENT: connect() sent its SYN */
	__u64 tcp_accepts;        /* TCP SYN_RECV -> ESTABLISHED: passive opens */
	__u64 udp_rx_datagrams;   /* UDP skbs delivered to the task's sockets (GSO: segments) */
	__u64 udp_tx_datagrams;
	__u64 policy_denials;     /* filled by the network policy programs (isolation issue) */
	__u64 cpu_ns;             /* sum_exec_runtime of the task's threads, at sched_switch */
	__u64 vfs_read_bytes;     /* >0 returns of read/readv/pread64/preadv{,2} */
	__u64 vfs_write_bytes;    /* >0 returns of write/writev/pwrite64/pwritev{,2} */
};

/* The network counters of one task (the cgroup_skb programs' share of struct task_acct),
 * kept in its cgroup's own storage. */
struct task_net {
	__u64 rx_bytes;
	__u64 rx_packets;
	__u64 tx_bytes;
	__u64 tx_packets;
	__u64 udp_rx_datagrams;
	__u64 udp_tx_datagrams;
};

struct tracked_task {
	char task_id[TASK_ACCT_ID_LEN];
};

struct cpu_seen {
	__u64 charged_ns;
};

#endif
