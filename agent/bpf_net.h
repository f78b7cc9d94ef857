/* bpf_net.h - the agent side of bpf/net_counters.bpf.c: one loaded copy per agent, the
 * counters map pinned at <pin_dir>/net_counters (reused after a restart, so counts
 * continue), and per-task cgroup attachments as bpf_links pinned at
 * <pin_dir>/links/<task-id, '.' as ':'>:{ingress,egress} (they survive the agent's restart). */
#ifndef PACER_AGENT_BPF_NET_H
#define PACER_AGENT_BPF_NET_H

#include <stddef.h>
#include <stdint.h>

#include "bpf/net_counters.h"

struct bpf_net;

int bpf_net_open(const char *pin_dir, struct bpf_net **out, char *err, size_t errlen);
/* Frees the in-memory objects; pins (map, programs, links) stay. */
void bpf_net_close(struct bpf_net *b);

/* Zeroes the task's counters and attaches both programs to the cgroup dir (pinned links).
 * Idempotent: existing link pins are kept. */
int bpf_net_attach(struct bpf_net *b, const char *task_id, const char *cgroup_dir,
		   uint64_t cgroup_id, char *err, size_t errlen);
/* True if both link pins of the task exist. */
int bpf_net_attached(struct bpf_net *b, const char *task_id);
int bpf_net_read(struct bpf_net *b, uint64_t cgroup_id, struct task_net_counters *out);
/* Unpins the task's links (detaching them) and deletes its counters. */
int bpf_net_detach(struct bpf_net *b, const char *task_id, uint64_t cgroup_id);

#endif
