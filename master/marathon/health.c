/* health.c - the Marathon side of health checks: the agent runs an app's healthChecks and
 * reports each change as a TASK_RUNNING status update with "healthy" (status.c keeps it in
 * the task record, stored). Here that health becomes Marathon's healthCheckResults, the
 * tasksHealthy/tasksUnhealthy counts, what "healthy" means for deployments and rolling
 * upgrades (health_task_ready), health_status_changed_event, and the kill of an unhealthy
 * task (unhealthy_task_kill_event; the reconcile then launches its replacement). */
#include <string.h>

#include "lib/log.h"
#include "lib/util.h"
#include "master/marathon/health_checks.h"
#include "master/marathon/marathon_internal.h"

static bool launched_with_checks(const struct task_record *t)
{
	return t->health_checked;
}

int health_of(const struct task_record *t)
{
	json_t *h = json_object_get(t->health, "healthy");

	if (!launched_with_checks(t) || !json_is_boolean(h))
		return -1;
	return json_is_true(h);
}

bool health_task_ready(const struct task_record *t)
{
	if (t->state != TASK_RUNNING)
		return false;
	return !launched_with_checks(t) || health_of(t) == 1;
}

static json_t *time_or_null(json_t *obj, const char *key)
{
	double wall = json_number_value(json_object_get(obj, key));
	char ts[32];

	if (wall <= 0)
		return json_null();
	format_iso8601(wall, ts);
	return json_string(ts);
}

json_t *health_results_json(const struct task_record *t)
{
	json_t *out = json_array(), *c;
	size_t i;

	if (!out || !launched_with_checks(t))
		return out;
	json_array_foreach(json_object_get(t->health, "checks"), i, c) {
		const char *cause = json_string_value(json_object_get(c, "last_failure_cause"));
		json_t *r = json_pack("{s:b, s:I, s:o, s:o, s:o, s:s, s:s}",
				      "alive", json_is_true(json_object_get(c, "alive")),
				      "consecutiveFailures",
				      json_integer_value(json_object_get(c, "consecutive_failures")),
				      "firstSuccess", time_or_null(c, "first_success"),
				      "lastSuccess", time_or_null(c, "last_success"),
				      "lastFailure", time_or_null(c, "last_failure"),
				      "taskId", t->task_id, "instanceId", t->task_id);

		if (!r)
			continue;
		json_object_set_new(r, "lastFailureCause",
				    cause && cause[0] ? json_string(cause) : json_null());
		json_array_append_new(out, r);
	}
	return out;
}

void health_on_status(struct marathon *mt, const struct task_status *st,
		      const struct task_record *t)
{
	if (st->healthy < 0 || !st->health_changed || !t)
		return;
	log_info("event=marathon_health_changed task=%s app=%s alive=%s", t->task_id, t->app_id,
		 st->healthy ? "true" : "false");
	events_publish(mt->events, "health_status_changed_event",
		       json_pack("{s:s, s:s, s:s, s:s, s:b}", "appId", t->app_id,
				 "taskId", t->task_id, "instanceId", t->task_id,
				 "version", t->version, "alive", st->healthy));
}

static const char *failure_cause(const struct task_record *t)
{
	size_t i;
	json_t *c;

	json_array_foreach(json_object_get(t->health, "checks"), i, c)
		if (json_is_false(json_object_get(c, "alive")))
			return json_string_value(json_object_get(c, "last_failure_cause")) ?: "";
	return "";
}

void health_kill_unhealthy(struct marathon *mt, const struct mt_app *ma,
			   const struct task_record **v, int n)
{
	char reason[300];

	if (!health_checks_kill_unhealthy(ma->app.health_checks))
		return;
	for (int i = 0; i < n; i++) {
		const struct task_record *t = v[i];

		if (t->state != TASK_RUNNING || health_of(t) != 0 || t->kill_asked)
			continue;
		snprintf(reason, sizeof(reason), "health check failed: %s", failure_cause(t));
		utf8_sanitize(reason);
		log_warn("event=marathon_unhealthy_task_kill task=%s app=%s reason=\"%s\"",
			 t->task_id, ma->app.id, reason);
		events_publish(mt->events, "unhealthy_task_kill_event",
			       json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:s}", "appId", ma->app.id,
					 "taskId", t->task_id, "instanceId", t->task_id,
					 "version", t->version, "reason", reason,
					 "host", t->hostname, "slaveId", t->agent_id));
		scheduler_kill(mt, t->task_id, app_kill_grace(&ma->app));
	}
}
