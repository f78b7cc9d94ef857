/* call_parse.c - the shapes of the master's calls to the agent (docs/architecture.md),
 * checked before anything is done: a launch element {"framework_id","task":TASKINFO}, a
 * kill element {"task_id","grace_period_seconds"}, and the batch form that carries many of
 * either ({"launches":[...]}, {"kills":[...]}), and the answer an element gets once it was
 * tried. Pure functions (the shapes are fuzzed by tests/fuzz/fuzz_task_info.c). */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "agent/agent.h"

int call_batch_list(json_t *body, const char *key, json_t **list, char *err, size_t errlen)
{
	json_t *l;

	*list = NULL;
	if (!json_is_object(body)) {
		snprintf(err, errlen, "the body must be a JSON object");
		return -EINVAL;
	}
	l = json_object_get(body, key);
	if (!l)
		return 0;
	if (!json_is_array(l)) {
		snprintf(err, errlen, "/%s must be an array", key);
		return -EINVAL;
	}
	if (json_array_size(l) > AGENT_BATCH_MAX) {
		snprintf(err, errlen, "/%s holds %zu elements, at most %d", key, json_array_size(l),
			 AGENT_BATCH_MAX);
		return -EINVAL;
	}
	*list = l;
	return 0;
}

int call_launch_check(json_t *elem, struct task_info *ti, char *err, size_t errlen)
{
	json_t *fw = json_object_get(elem, "framework_id");

	memset(ti, 0, sizeof(*ti));
	if (!json_is_object(elem)) {
		snprintf(err, errlen, "a launch must be a JSON object");
		return -EINVAL;
	}
	if (fw && !json_is_null(fw) && !json_is_string(fw)) {
		snprintf(err, errlen, "/framework_id must be a string");
		return -EINVAL;
	}
	return task_info_parse(json_object_get(elem, "task"), ti, err, errlen);
}

int call_kill_check(json_t *elem, const char **task_id, double *grace, char *err, size_t errlen)
{
	const char *id = json_string_value(json_object_get(elem, "task_id"));
	json_t *g = json_object_get(elem, "grace_period_seconds");

	*task_id = NULL;
	*grace = -1;
	if (!json_is_object(elem) || !id || !id[0]) {
		snprintf(err, errlen, "/task_id must be a non-empty string");
		return -EINVAL;
	}
	if (g && !json_is_null(g)) {
		if (!json_is_number(g) || !isfinite(json_number_value(g)) || json_number_value(g) < 0) {
			snprintf(err, errlen, "/grace_period_seconds must be a non-negative number");
			return -EINVAL;
		}
		*grace = json_number_value(g);
	}
	*task_id = id;
	return 0;
}

json_t *call_task_id(json_t *elem, bool launch)
{
	json_t *id = json_object_get(launch ? json_object_get(elem, "task") : elem, "task_id");

	return json_is_string(id) ? id : NULL;
}

int call_launch_answer(int rc, const char *task_id, char *err, size_t errlen)
{
	task_id = task_id ? task_id : "";
	switch (rc) {
	case 0:
		return 0;
	case -EEXIST:
		snprintf(err, errlen, "Task '%s' already exists on this agent", task_id);
		return 409;
	case -ESHUTDOWN:
		snprintf(err, errlen, "The agent is shutting down");
		return 503;
	default:
		snprintf(err, errlen, "Cannot checkpoint task '%s': %s", task_id, strerror(-rc));
		return 500;
	}
}

int call_kill_answer(int rc, const char *task_id, char *err, size_t errlen)
{
	task_id = task_id ? task_id : "";
	switch (rc) {
	case 0:
		return 0;
	case -ENOENT:
		snprintf(err, errlen, "Task '%s' is not known on this agent", task_id);
		return 404;
	default:
		snprintf(err, errlen, "Cannot kill task '%s': %s", task_id, strerror(-rc));
		return 500;
	}
}
