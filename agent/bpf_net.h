/* bpf_net.h - the agent side of bpf/task_acct.bpf.c (exact per-task accounting): one
 * loaded copy per agent with its maps pinned under <pin_dir>/ (reused after a restart, so
 * counts continue); the tracing programs (CPU, TCP connections, VFS bytes) attached once
 * per agent as bpf_links pinned at <pin_dir>/links/trace:<program> (trace:sys_exit_<call>
 * for the syscall exit tracepoints; after an upgrade a pinned link running another
 * program is replaced and one of a program no longer loaded is removed); the cgroup_skb
 * programs attached per task as links pinned at <pin_dir>/links/<task-id, '.' as ':'>:
 * {ingress,egress}, their counters in the task cgroup's task_net storage. Pinned links stay attached while the agent is down. */
#ifndef PACER_AGENT_BPF_NET_H
#define PACER_AGENT_BPF_NET_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bpf/task_acct.h"

struct bpf_net;

struct bpf_net_opts {
	bool shared_map;        /* one shared hash with atomic adds instead of per-CPU (bench) */
	uint32_t task_level;    /* cgroup2 level of the task cgroups, 0 = unknown */
	bool hooks_only;        /* programs that return at once: the attach points' own cost (bench) */
};

/* opts may be NULL (per-CPU, no ancestor lookup in the tracing programs). */
int bpf_net_open(const char *pin_dir, const struct bpf_net_opts *opts, struct bpf_net **out,
		 char *err, size_t errlen);
/* Frees the in-memory objects; pins (maps, programs, links) stay. */
void bpf_net_close(struct bpf_net *b);

/* Tracks the task (a zeroed entry unless one exists, its id in `tracked`) and attaches the
 * skb programs to the cgroup dir (pinned links). Idempotent: existing pins are kept. */
int bpf_net_attach(struct bpf_net *b, const char *task_id, const char *cgroup_dir,
		   uint64_t cgroup_id, char *err, size_t errlen);
/* True if both link pins of the task exist. */
int bpf_net_attached(struct bpf_net *b, const char *task_id);
/* The task's counters, summed over CPUs. -ENOENT: not tracked. */
int bpf_net_read(struct bpf_net *b, uint64_t cgroup_id, struct task_acct *out);
/* Unpins the task's links (detaching them) and forgets its counters and id. */
int bpf_net_detach(struct bpf_net *b, const char *task_id, uint64_t cgroup_id);

#endif
