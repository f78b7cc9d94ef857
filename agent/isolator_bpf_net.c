/* isolator_bpf_net.c - exact per-task accounting (bpf/task_acct.bpf.c): tracks the task's
 * cgroup2 id and attaches the skb programs to its directory before any task process exists
 * (so the first packet, byte and nanosecond count) and reads the task's entry for usage. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/bpf_common.h"
#include "agent/bpf_net.h"
#include "agent/isolator.h"
#include "lib/log.h"

struct bpf_net_iso {
	const struct isolator_env *env;
	struct bpf_net *net;
};

/* Task cgroups are <agent_cgroup>/<task-id>; with the unified hierarchy mounted at its
 * root (no cgroup namespace) their level is the agent cgroup's depth + 1. A wrong guess
 * only makes threads in sub-cgroups of a task uncounted by the tracing programs. */
static uint32_t task_level(const char *agent_cgroup)
{
	uint32_t level = 1;

	for (const char *p = agent_cgroup; p && *p; p++)
		if (*p == '/' && p[1] && p[1] != '/')
			level++;
	return agent_cgroup && *agent_cgroup ? level + 1 : 0;
}

static int bn_create(const struct isolator_env *env, void **state, char *err, size_t errlen)
{
	struct bpf_net_opts opts = { .task_level = task_level(env->agent_cgroup) };
	struct bpf_net_iso *s = calloc(1, sizeof(*s));
	int rc;

	if (!s)
		return -ENOMEM;
	s->env = env;
	rc = bpf_net_open(env->bpf_dir, &opts, &s->net, err, errlen);
	if (rc) {
		free(s);
		return rc;
	}
	*state = s;
	return 0;
}

static void bn_destroy(void *state)
{
	struct bpf_net_iso *s = state;

	bpf_net_close(s->net);
	free(s);
}

static int attach(struct bpf_net_iso *s, const struct isolator_task *t, char *err, size_t errlen)
{
	char dir[PATH_MAX];
	uint64_t id;
	int rc = cgroup_unified_dir(s->env->cgroups, t->cgroup_rel, dir, sizeof(dir));

	if (!rc)
		rc = cgroup_id(s->env->cgroups, t->cgroup_rel, &id);
	if (rc) {
		snprintf(err, errlen, "cannot find the cgroup2 id of %s: %s", t->cgroup_rel, strerror(-rc));
		return rc;
	}
	return bpf_net_attach(s->net, t->task_id, dir, id, err, errlen);
}

static int bn_prepare(void *state, const struct isolator_task *t, const struct container_spec *spec,
		      json_t *launch, char *err, size_t errlen)
{
	(void)spec;
	(void)launch;
	return attach(state, t, err, errlen);
}

/* Link pins normally survive the restart; re-attach if someone removed them (removing
 * them detached the programs and freed the task's task_net storage: its network counters
 * start again from zero). */
static int bn_recover(void *state, const struct isolator_task *t)
{
	struct bpf_net_iso *s = state;
	char err[256];
	int rc;

	if (bpf_net_attached(s->net, t->task_id) || !cgroup_exists(s->env->cgroups, t->cgroup_rel))
		return 0;
	rc = attach(s, t, err, sizeof(err));
	if (rc)
		log_warn("event=bpf_reattach_failed task=%s error=\"%s\"", t->task_id, err);
	else
		log_info("event=bpf_reattached task=%s", t->task_id);
	return rc;
}

static int bn_usage(void *state, const struct isolator_task *t, struct container_usage *u)
{
	struct bpf_net_iso *s = state;
	struct task_acct c;
	uint64_t id;
	int rc = cgroup_id(s->env->cgroups, t->cgroup_rel, &id);

	if (!rc)
		rc = bpf_net_read(s->net, id, &c);
	if (rc)
		return rc;
	u->rx_bytes = c.rx_bytes;
	u->rx_packets = c.rx_packets;
	u->tx_bytes = c.tx_bytes;
	u->tx_packets = c.tx_packets;
	u->tcp_connects = c.tcp_connects;
	u->tcp_accepts = c.tcp_accepts;
	u->udp_rx_datagrams = c.udp_rx_datagrams;
	u->udp_tx_datagrams = c.udp_tx_datagrams;
	u->policy_denials = c.policy_denials;
	u->acct_cpu_ns = c.cpu_ns;
	u->vfs_read_bytes = c.vfs_read_bytes;
	u->vfs_write_bytes = c.vfs_write_bytes;
	return 0;
}

static int bn_cleanup(void *state, const struct isolator_task *t)
{
	struct bpf_net_iso *s = state;
	uint64_t id = 0;

	/* Without the cgroup there is no id: the links are still unpinned. */
	cgroup_id(s->env->cgroups, t->cgroup_rel, &id);
	return bpf_net_detach(s->net, t->task_id, id);
}

static int bn_purge(void *state)
{
	struct bpf_net_iso *s = state;

	return bpf_remove_pins(s->env->bpf_dir);
}

const struct isolator_ops isolator_bpf_net = {
	.name = "bpf_net",
	.create = bn_create,
	.destroy = bn_destroy,
	.prepare = bn_prepare,
	.recover = bn_recover,
	.usage = bn_usage,
	.cleanup = bn_cleanup,
	.purge = bn_purge,
};
