/* calls.c - one element of the master's launch and kill calls, carried out: the same
 * function answers an element of POST /v1/launch and /v1/kill (api.c, single and batch
 * form) and of an 'L' / 'K' frame on the agent stream (stream_link.c), so both ways give
 * the master identical answers. Each returns 0 (accepted) or the HTTP status the single
 * form answers with, and the message in err (call_parse.c's call_*_answer). */
#include <errno.h>
#include <stdio.h>

#include "agent/agent.h"

int agent_call_launch(struct agent *a, json_t *elem, char *err, size_t errlen)
{
	json_t *info = json_object_get(elem, "task");
	struct task_info ti;
	int rc;

	if (call_launch_check(elem, &ti, err, errlen))
		return 400;
	task_info_free(&ti);
	rc = agent_task_accept(a, json_string_value(json_object_get(elem, "framework_id")), info);
	return call_launch_answer(rc, json_string_value(json_object_get(info, "task_id")), err,
				  errlen);
}

int agent_call_kill(struct agent *a, json_t *elem, char *err, size_t errlen)
{
	const char *id;
	double grace;

	if (call_kill_check(elem, &id, &grace, err, errlen))
		return 400;
	return call_kill_answer(agent_task_kill(a, id, grace), id, err, errlen);
}

int agent_call_text(struct agent *a, bool launch, const char *text, size_t len, char *err,
		    size_t errlen)
{
	json_error_t error;
	json_t *elem = json_loadb(text, len, JSON_REJECT_DUPLICATES, &error);
	int status;

	if (!elem) {
		snprintf(err, errlen, "Invalid JSON: %s at line %d column %d", error.text, error.line,
			 error.column);
		return 400;
	}
	status = launch ? agent_call_launch(a, elem, err, errlen) : agent_call_kill(a, elem, err, errlen);
	json_decref(elem);
	return status;
}
