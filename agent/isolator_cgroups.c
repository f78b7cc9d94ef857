/* isolator_cgroups.c - the task's cgroups: created in every hierarchy of the layout with the
 * cpu and memory limits before the executor starts; the executor moves the container init
 * into them (listed in the launch spec) before the command runs, and reads the OOM counter
 * named there to tell an OOM kill from another SIGKILL. */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent/isolator.h"
#include "lib/log.h"
#include "lib/util.h"

#define CGROUP_REMOVE_TIMEOUT 5.0

static int cg_create(const struct isolator_env *env, void **state, char *err, size_t errlen)
{
	(void)err;
	(void)errlen;
	*state = (void *)env;
	return 0;
}

static int cg_prepare(void *state, const struct isolator_task *t, const struct container_spec *spec,
		      json_t *launch, char *err, size_t errlen)
{
	const struct isolator_env *env = state;
	const struct cgroup_layout *l = env->cgroups;
	json_t *dirs = json_array();
	char path[PATH_MAX];
	int rc;

	if (!dirs)
		return -ENOMEM;
	json_object_set_new(launch, "cgroups", dirs);
	rc = cgroup_create(l, t->cgroup_rel);
	if (rc) {
		snprintf(err, errlen, "cannot create cgroup %s: %s", t->cgroup_rel, strerror(-rc));
		return rc;
	}
	rc = cgroup_set_limits(l, t->cgroup_rel, spec->cpus, spec->mem_bytes);
	if (rc) {
		snprintf(err, errlen, "cannot set the limits of cgroup %s (cpus %.3f, mem %llu): %s",
			 t->cgroup_rel, spec->cpus, (unsigned long long)spec->mem_bytes, strerror(-rc));
		return rc;
	}
	for (int i = 0; i < l->nroots; i++) {
		if ((rc = path_join(path, sizeof(path), "%s/%s", l->roots[i], t->cgroup_rel)))
			return rc;
		json_array_append_new(dirs, json_string(path));
	}
	if ((rc = cgroup_oom_file(l, t->cgroup_rel, path, sizeof(path))))
		return rc;
	json_object_set_new(launch, "oom_file", json_string(path));
	json_object_set_new(launch, "oom_key", json_string(CGROUP_OOM_KEY));
	return 0;
}

static int cg_recover(void *state, const struct isolator_task *t)
{
	const struct isolator_env *env = state;

	return cgroup_exists(env->cgroups, t->cgroup_rel) ? 0 : -ENOENT;
}

static int cg_usage(void *state, const struct isolator_task *t, struct container_usage *u)
{
	const struct isolator_env *env = state;
	int rc = cgroup_cpu_ns(env->cgroups, t->cgroup_rel, &u->cpu_ns);

	if (!rc)
		rc = cgroup_mem_bytes(env->cgroups, t->cgroup_rel, &u->mem_bytes);
	if (rc)
		return rc;
	/* memory.peak is newer than the rest (Linux 5.19); without it the peak stays 0. */
	if (cgroup_mem_peak(env->cgroups, t->cgroup_rel, &u->mem_peak_bytes) < 0)
		u->mem_peak_bytes = 0;
	if (cgroup_oom_kills(env->cgroups, t->cgroup_rel, &u->oom_kills) < 0)
		u->oom_kills = 0;
	return 0;
}

static int cg_cleanup(void *state, const struct isolator_task *t)
{
	const struct isolator_env *env = state;
	int rc = cgroup_remove(env->cgroups, t->cgroup_rel, CGROUP_REMOVE_TIMEOUT);

	if (rc)
		log_warn("event=cgroup_remove_failed cgroup=%s error=\"%s\"", t->cgroup_rel, strerror(-rc));
	return rc;
}

/* Removes pacer/<agent-id> (and whatever task cgroups are left) in every hierarchy, then
 * pacer/ itself when no other agent uses it. */
static int cg_purge(void *state)
{
	const struct isolator_env *env = state;
	const struct cgroup_layout *l = env->cgroups;
	char path[PATH_MAX], **names;
	size_t n;
	int first = 0;

	if (cgroup_children(l, env->agent_cgroup, &names, &n) == 0) {
		for (size_t i = 0; i < n; i++) {
			char rel[PATH_MAX];

			if (path_join(rel, sizeof(rel), "%s/%s", env->agent_cgroup, names[i]))
				continue;
			int rc = cgroup_remove(l, rel, CGROUP_REMOVE_TIMEOUT);

			if (rc && !first)
				first = rc;
		}
		cgroup_free_names(names, n);
	}
	for (int i = 0; i < l->nroots; i++) {
		if (path_join(path, sizeof(path), "%s/%s", l->roots[i], env->agent_cgroup))
			continue;
		if (rmdir(path) < 0 && errno != ENOENT && !first)
			first = -errno;
		if (path_join(path, sizeof(path), "%s/pacer", l->roots[i]) == 0)
			rmdir(path);
	}
	return first;
}

const struct isolator_ops isolator_cgroups = {
	.name = "cgroups",
	.create = cg_create,
	.prepare = cg_prepare,
	.recover = cg_recover,
	.usage = cg_usage,
	.cleanup = cg_cleanup,
	.purge = cg_purge,
};
