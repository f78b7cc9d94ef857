/* isolator.h - one concern of a container (cgroups, namespaces, BPF counters, later volumes,
 * ports, seccomp) behind the same small set of calls, Mesos style. The containerizer keeps
 * an ordered list of isolators (containerizer.c: isolators[]) and calls them in order on
 * prepare, in reverse order on cleanup; adding a concern = one isolator_*.c file + one line.
 *
 * Every hook is optional (NULL = nothing to do) and returns 0 or -errno. */
#ifndef PACER_AGENT_ISOLATOR_H
#define PACER_AGENT_ISOLATOR_H

#include <jansson.h>
#include <stddef.h>
#include <sys/types.h>

#include "agent/cgroup_fs.h"
#include "agent/containerizer.h"

/* What the containerizer shares with every isolator; lives as long as the containerizer. */
struct isolator_env {
	const char *agent_id;
	const struct cgroup_layout *cgroups;
	const char *bpf_dir;            /* <bpffs>/pacer/<agent-id>, bpffs mounted */
	const char *agent_cgroup;       /* "pacer/<agent-id>" */
};

/* Names one task; derived from its id the same way before and after an agent restart. */
struct isolator_task {
	const char *task_id;
	const char *cgroup_rel;         /* "pacer/<agent-id>/<task-id>" */
};

struct isolator_ops {
	const char *name;
	int (*create)(const struct isolator_env *env, void **state, char *err, size_t errlen);
	void (*destroy)(void *state);
	/* Before pacer-executor starts: make host objects and add to the executor's launch
	 * spec (a JSON object written to <run_dir>/spec.json) what it must do itself. */
	int (*prepare)(void *state, const struct isolator_task *t, const struct container_spec *spec,
		       json_t *launch, char *err, size_t errlen);
	/* The container's init runs (host pid), the command has been exec'd. */
	int (*isolate)(void *state, const struct isolator_task *t, pid_t init_pid);
	/* After an agent restart, for a task that is still known. */
	int (*recover)(void *state, const struct isolator_task *t);
	/* Adds this isolator's numbers to *u. */
	int (*usage)(void *state, const struct isolator_task *t, struct container_usage *u);
	/* The task is gone: remove what prepare made. Must tolerate a partial prepare. */
	int (*cleanup)(void *state, const struct isolator_task *t);
	/* Remove everything of this agent (after every task was cleaned up). */
	int (*purge)(void *state);
};

extern const struct isolator_ops isolator_cgroups;
extern const struct isolator_ops isolator_namespaces;
extern const struct isolator_ops isolator_bpf_net;

#endif
