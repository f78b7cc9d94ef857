/* container_exec.h - starts a process inside a running task's container (its init's
 * mount, pid, uts and ipc namespaces and its cgroups): how COMMAND health checks run.
 * Used by containerizer_exec (containerizer.c), which knows the task's init and cgroup. */
#ifndef PACER_AGENT_CONTAINER_EXEC_H
#define PACER_AGENT_CONTAINER_EXEC_H

#include <sys/types.h>
#include "agent/cgroup_fs.h"
#include "agent/containerizer.h"

/* Forks a leader that joins cgroup_rel in every hierarchy and init_pid's namespaces, then
 * runs /bin/sh -c x->command as its child (PID n of the task's pid namespace) and exits with
 * its status (128 + signal if it was killed). The leader heads its own process group. */
int container_exec_spawn(const struct cgroup_layout *cg, const char *cgroup_rel, pid_t init_pid,
			 const struct container_exec *x, pid_t *pid, char *err, size_t errlen);

#endif
