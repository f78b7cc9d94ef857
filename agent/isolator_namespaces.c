/* isolator_namespaces.c - new PID, mount, UTS and IPC namespaces with a fresh /proc, a
 * private /tmp and the task's hostname. The executor creates them (clone flags) from what
 * this isolator writes into the launch spec; the host network is shared for now. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "agent/isolator.h"

/* A UTS hostname is at most 64 bytes. */
#define HOSTNAME_MAX 64

static int ns_prepare(void *state, const struct isolator_task *t, const struct container_spec *spec,
		      json_t *launch, char *err, size_t errlen)
{
	char hostname[HOSTNAME_MAX + 1];
	json_t *ns = json_pack("[ssss]", "pid", "mount", "uts", "ipc");

	(void)state;
	(void)err;
	(void)errlen;
	if (!ns)
		return -ENOMEM;
	snprintf(hostname, sizeof(hostname), "%s", spec->hostname ? spec->hostname : t->task_id);
	json_object_set_new(launch, "namespaces", ns);
	json_object_set_new(launch, "hostname", json_string(hostname));
	json_object_set_new(launch, "mount_proc", json_true());
	json_object_set_new(launch, "private_tmp", json_true());
	return 0;
}

const struct isolator_ops isolator_namespaces = {
	.name = "namespaces",
	.prepare = ns_prepare,
};
