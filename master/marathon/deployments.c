/* deployments.c - every change to an app is a deployment (Marathon's DeploymentPlan with
 * one step of one action). It is stored (kind "deployments") so that a master restart
 * resumes it, announced with deployment_info, and ended by the scheduler when the app's
 * tasks match the new definition (deployment_success) or by a cancel (deployment_failed).
 * While it runs, the app is locked against other changes. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "lib/log.h"
#include "lib/util.h"
#include "master/marathon/marathon_internal.h"

static const char *const action_names[] = {
	[ACT_START] = "StartApplication",
	[ACT_SCALE] = "ScaleApplication",
	[ACT_RESTART] = "RestartApplication",
	[ACT_STOP] = "StopApplication",
};

const char *deploy_action_name(enum deploy_action a)
{
	return action_names[a];
}

static int action_parse(const char *s)
{
	for (size_t i = 0; s && i < ARRAY_SIZE(action_names); i++)
		if (strcmp(action_names[i], s) == 0)
			return (int)i;
	return -1;
}

struct deployment *deployment_for_app(struct marathon *mt, const char *app_id)
{
	for (struct deployment *d = mt->deployments; d; d = d->next)
		if (strcmp(d->app_id, app_id) == 0)
			return d;
	return NULL;
}

struct deployment *deployment_find(struct marathon *mt, const char *id)
{
	for (struct deployment *d = mt->deployments; d; d = d->next)
		if (strcmp(d->id, id) == 0)
			return d;
	return NULL;
}

static json_t *action_json(const struct deployment *d, bool current)
{
	json_t *a = json_pack("{s:s, s:s}", "action", deploy_action_name(d->action), "app",
			      d->app_id);

	if (a && current)
		json_object_set_new(a, "readinessCheckResults", json_array());
	return a;
}

json_t *deployment_to_json(const struct deployment *d)
{
	return json_pack("{s:s, s:s, s:[s], s:[], s:[{s:[o]}], s:[o], s:i, s:i}",
			 "id", d->id, "version", d->version, "affectedApps", d->app_id,
			 "affectedPods", "steps", "actions", action_json(d, false),
			 "currentActions", action_json(d, true), "currentStep", 1, "totalSteps", 1);
}

/* The stored form: the served one plus what a restart needs to resume or roll back. */
static json_t *stored_json(const struct deployment *d)
{
	json_t *j = deployment_to_json(d);

	if (j)
		json_object_set(j, "original", d->original ? d->original : json_null());
	return j;
}

/* The plan as Marathon's deployment events carry it. */
static json_t *plan_json(const struct deployment *d)
{
	json_t *j = deployment_to_json(d);

	if (j) {
		json_object_del(j, "currentActions");
		json_object_del(j, "currentStep");
		json_object_del(j, "totalSteps");
	}
	return j;
}

json_t *deployments_of_app_json(struct marathon *mt, const char *app_id)
{
	json_t *arr = json_array();

	for (struct deployment *d = mt->deployments; arr && d; d = d->next)
		if (strcmp(d->app_id, app_id) == 0)
			json_array_append_new(arr, json_pack("{s:s}", "id", d->id));
	return arr;
}

json_t *deployment_locked_body(const struct deployment *d)
{
	char msg[256];

	snprintf(msg, sizeof(msg),
		 "App is locked by one or more deployments. Override with the option '?force=true'. "
		 "View details at '/v2/deployments/%s'.", d->id);
	return json_pack("{s:s, s:[{s:s}]}", "message", msg, "deployments", "id", d->id);
}

static void append(struct marathon *mt, struct deployment *d)
{
	struct deployment **pp = &mt->deployments;

	while (*pp)
		pp = &(*pp)->next;
	d->next = NULL;
	*pp = d;
}

struct deployment *deployment_start(struct marathon *mt, const char *app_id,
				    enum deploy_action action, json_t *original,
				    const char *version)
{
	struct deployment *d = calloc(1, sizeof(*d));
	json_t *j;
	int rc;

	if (!d)
		return NULL;
	uuid_v4(d->id);
	snprintf(d->version, sizeof(d->version), "%s", version);
	snprintf(d->app_id, sizeof(d->app_id), "%s", app_id);
	d->action = action;
	d->original = original ? json_deep_copy(original) : NULL;
	j = stored_json(d);
	rc = j ? store_put(mt->store, KIND_DEPLOYMENTS, d->id, j) : -ENOMEM;
	json_decref(j);
	if (rc)
		log_error("event=deployment_persist_failed id=%s error=%d", d->id, rc);
	append(mt, d);
	log_info("event=deployment_started id=%s app=%s action=%s", d->id, app_id,
		 deploy_action_name(action));
	events_publish(mt->events, "deployment_info",
		       json_pack("{s:o, s:{s:[o]}}", "plan", plan_json(d), "currentStep",
				 "actions", action_json(d, false)));
	return d;
}

void deployment_finish(struct marathon *mt, struct deployment *d, bool success)
{
	for (struct deployment **pp = &mt->deployments; *pp; pp = &(*pp)->next) {
		if (*pp == d) {
			*pp = d->next;
			break;
		}
	}
	store_del(mt->store, KIND_DEPLOYMENTS, d->id);
	log_info("event=deployment_%s id=%s app=%s", success ? "success" : "failed", d->id,
		 d->app_id);
	events_publish(mt->events, success ? "deployment_success" : "deployment_failed",
		       json_pack("{s:s, s:o}", "id", d->id, "plan", plan_json(d)));
	json_decref(d->original);
	free(d);
}

static int load_one(const char *key, json_t *v, void *arg)
{
	struct marathon *mt = arg;
	struct deployment *d;
	json_t *actions = json_object_get(json_array_get(json_object_get(v, "steps"), 0), "actions");
	json_t *act = json_array_get(actions, 0);
	int action = action_parse(json_string_value(json_object_get(act, "action")));
	const char *app = json_string_value(json_object_get(act, "app"));
	json_t *orig = json_object_get(v, "original");

	if (action < 0 || !app) {
		log_error("event=deployment_load_failed id=%s", key);
		return 0;
	}
	d = calloc(1, sizeof(*d));
	if (!d)
		return -ENOMEM;
	snprintf(d->id, sizeof(d->id), "%s", key);
	snprintf(d->version, sizeof(d->version), "%s",
		 json_string_value(json_object_get(v, "version")) ?: "");
	snprintf(d->app_id, sizeof(d->app_id), "%s", app);
	d->action = (enum deploy_action)action;
	d->original = json_is_object(orig) ? json_incref(orig) : NULL;
	append(mt, d);
	return 0;
}

int deployments_load(struct marathon *mt)
{
	int rc = store_scan(mt->store, KIND_DEPLOYMENTS, load_one, mt);
	struct deployment *d = mt->deployments, *next;

	/* Deployments are kept in start order; the store scans in key (uuid) order, which is
	 * fine: there is at most one per app. A deployment whose app vanished is dropped. */
	for (; d; d = next) {
		struct mt_app *ma = apps_find(mt, d->app_id);

		next = d->next;
		if (!ma) {
			deployment_finish(mt, d, false);
			continue;
		}
		if (d->action == ACT_STOP)
			ma->deleting = true;
	}
	return rc < 0 ? rc : 0;
}

void deployments_free_all(struct marathon *mt)
{
	while (mt->deployments) {
		struct deployment *d = mt->deployments;

		mt->deployments = d->next;
		json_decref(d->original);
		free(d);
	}
}
