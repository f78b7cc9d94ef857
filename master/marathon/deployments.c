/* deployments.c - every change is a deployment (Marathon's DeploymentPlan): steps of
 * actions on apps. A change to one app is one step of one action; a group change lists
 * its apps in dependency order, one step per depth (dependency_order.h), and an app's
 * action waits (deployment_held) until the steps before it are done. A deployment is
 * stored (kind "deployments") so that a master restart resumes it at its current step,
 * announced with deployment_info / deployment_step_success, and ended when its last step
 * is done (deployment_success) or by a cancel (deployment_failed). While it runs, each of
 * its apps is locked against other changes. */
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

int deploy_action_parse(const char *s)
{
	for (size_t i = 0; s && i < ARRAY_SIZE(action_names); i++)
		if (strcmp(action_names[i], s) == 0)
			return (int)i;
	return -1;
}

const struct deploy_item *deployment_item(const struct deployment *d, const char *app_id)
{
	for (int i = 0; i < d->n_items; i++)
		if (strcmp(d->items[i].app_id, app_id) == 0)
			return &d->items[i];
	return NULL;
}

struct deployment *deployment_for_app(struct marathon *mt, const char *app_id)
{
	for (struct deployment *d = mt->deployments; d; d = d->next)
		if (deployment_item(d, app_id))
			return d;
	return NULL;
}

bool deployment_held(struct marathon *mt, const char *app_id)
{
	struct deployment *d;

	/* Only a later step of a plan holds an app: with no plan of several steps (the common
	 * case: one app changed at a time) no deployment is searched, for every app of every
	 * reconcile. */
	if (!mt->multi_step_deployments)
		return false;
	d = deployment_for_app(mt, app_id);
	const struct deploy_item *it = d ? deployment_item(d, app_id) : NULL;

	return it && it->step > d->current_step;
}

struct deployment *deployment_find(struct marathon *mt, const char *id)
{
	for (struct deployment *d = mt->deployments; d; d = d->next)
		if (strcmp(d->id, id) == 0)
			return d;
	return NULL;
}

/* The actions of one step (new reference); current: with readinessCheckResults. */
static json_t *step_actions(const struct deployment *d, int step, bool current)
{
	json_t *arr = json_array();

	for (int i = 0; arr && i < d->n_items; i++) {
		const struct deploy_item *it = &d->items[i];
		json_t *a;

		if (it->step != step)
			continue;
		a = json_pack("{s:s, s:s}", "action", deploy_action_name(it->action), "app",
			      it->app_id);
		if (a && current)
			json_object_set_new(a, "readinessCheckResults", json_array());
		json_array_append_new(arr, a);
	}
	return arr;
}

static json_t *affected_apps(const struct deployment *d)
{
	json_t *arr = json_array();

	for (int i = 0; arr && i < d->n_items; i++)
		json_array_append_new(arr, json_string(d->items[i].app_id));
	return arr;
}

static json_t *steps_json(const struct deployment *d)
{
	json_t *steps = json_array();

	for (int s = 0; steps && s < d->total_steps; s++)
		json_array_append_new(steps, json_pack("{s:o}", "actions", step_actions(d, s, false)));
	return steps;
}

json_t *deployment_to_json(const struct deployment *d)
{
	bool running = d->current_step < d->total_steps;

	return json_pack("{s:s, s:s, s:o, s:[], s:o, s:o, s:i, s:i}",
			 "id", d->id, "version", d->version, "affectedApps", affected_apps(d),
			 "affectedPods", "steps", steps_json(d),
			 "currentActions", running ? step_actions(d, d->current_step, true)
						   : json_array(),
			 "currentStep", running ? d->current_step + 1 : d->total_steps,
			 "totalSteps", d->total_steps);
}

/* The stored form: the served one plus what a restart needs to resume or roll back. */
static json_t *stored_json(const struct deployment *d)
{
	json_t *j = deployment_to_json(d), *items = json_array();

	for (int i = 0; j && items && i < d->n_items; i++) {
		const struct deploy_item *it = &d->items[i];

		json_array_append_new(items, json_pack("{s:s, s:s, s:i, s:O}", "app", it->app_id,
						       "action", deploy_action_name(it->action),
						       "step", it->step, "original",
						       it->original ? it->original : json_null()));
	}
	if (j && items) {
		json_object_set_new(j, "items", items);
		json_object_set_new(j, "currentStepIndex", json_integer(d->current_step));
		/* The single-app form earlier versions stored and read. */
		if (d->n_items == 1)
			json_object_set(j, "original",
					d->items[0].original ? d->items[0].original : json_null());
		return j;
	}
	json_decref(items);
	json_decref(j);
	return NULL;
}

static void persist(struct marathon *mt, const struct deployment *d)
{
	json_t *j = stored_json(d);
	int rc = j ? store_put(mt->store, KIND_DEPLOYMENTS, d->id, j) : -ENOMEM;

	json_decref(j);
	if (rc)
		log_error("event=deployment_persist_failed id=%s error=%d", d->id, rc);
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

static void announce_step(struct marathon *mt, const struct deployment *d, const char *type)
{
	events_publish(mt->events, type,
		       json_pack("{s:o, s:{s:o}}", "plan", plan_json(d), "currentStep", "actions",
				 step_actions(d, d->current_step, false)));
}

json_t *deployments_of_app_json(struct marathon *mt, const char *app_id)
{
	json_t *arr = json_array();

	for (struct deployment *d = mt->deployments; arr && d; d = d->next)
		if (deployment_item(d, app_id))
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
	if (d->total_steps > 1)
		mt->multi_step_deployments++;
}

static void free_items(struct deploy_item *items, int n)
{
	for (int i = 0; i < n; i++)
		json_decref(items[i].original);
	free(items);
}

struct deployment *deployment_start_plan(struct marathon *mt, struct deploy_item *items,
					 int n, int total_steps, const char *version)
{
	struct deployment *d = calloc(1, sizeof(*d));

	if (!d) {
		free_items(items, n);
		return NULL;
	}
	uuid_v4(d->id);
	snprintf(d->version, sizeof(d->version), "%s", version);
	d->items = items;
	d->n_items = n;
	d->total_steps = total_steps;
	persist(mt, d);
	append(mt, d);
	log_info("event=deployment_started id=%s apps=%d steps=%d first_app=%s action=%s", d->id,
		 n, total_steps, n ? items[0].app_id : "-",
		 n ? deploy_action_name(items[0].action) : "-");
	announce_step(mt, d, "deployment_info");
	return d;
}

struct deployment *deployment_start(struct marathon *mt, const char *app_id,
				    enum deploy_action action, json_t *original,
				    const char *version)
{
	struct deploy_item *it = calloc(1, sizeof(*it));

	if (!it)
		return NULL;
	snprintf(it->app_id, sizeof(it->app_id), "%s", app_id);
	it->action = action;
	it->original = original ? json_deep_copy(original) : NULL;
	return deployment_start_plan(mt, it, 1, 1, version);
}

void deployment_finish(struct marathon *mt, struct deployment *d, bool success)
{
	for (struct deployment **pp = &mt->deployments; *pp; pp = &(*pp)->next) {
		if (*pp == d) {
			*pp = d->next;
			if (d->total_steps > 1)
				mt->multi_step_deployments--;
			break;
		}
	}
	store_del(mt->store, KIND_DEPLOYMENTS, d->id);
	log_info("event=deployment_%s id=%s apps=%d first_app=%s", success ? "success" : "failed",
		 d->id, d->n_items, d->n_items ? d->items[0].app_id : "-");
	events_publish(mt->events, success ? "deployment_success" : "deployment_failed",
		       json_pack("{s:s, s:o}", "id", d->id, "plan", plan_json(d)));
	free_items(d->items, d->n_items);
	free(d);
}

static bool item_done(struct marathon *mt, const struct deploy_item *it)
{
	struct mt_app *ma = apps_find(mt, it->app_id);

	if (it->action == ACT_STOP || !ma)
		return !ma;     /* an app that vanished cannot get ready: do not wait for it */
	return ma->settled && marathon_app_ready(mt, ma);
}

static bool step_done(struct marathon *mt, const struct deployment *d)
{
	for (int i = 0; i < d->n_items; i++)
		if (d->items[i].step == d->current_step && !item_done(mt, &d->items[i]))
			return false;
	return true;
}

bool deployments_advance(struct marathon *mt)
{
	struct deployment *d = mt->deployments, *next;
	bool advanced = false;

	for (; d; d = next) {
		next = d->next;
		while (d->current_step < d->total_steps && step_done(mt, d)) {
			announce_step(mt, d, "deployment_step_success");
			d->current_step++;
			advanced = true;
			if (d->current_step < d->total_steps) {
				log_info("event=deployment_step id=%s step=%d of=%d", d->id,
					 d->current_step + 1, d->total_steps);
				persist(mt, d);
				announce_step(mt, d, "deployment_info");
			}
		}
		if (d->current_step >= d->total_steps)
			deployment_finish(mt, d, true);
	}
	return advanced;
}

/* Items of a stored plan; the single-app form of earlier versions has none. */
static int load_items(json_t *v, struct deployment *d)
{
	json_t *items = json_object_get(v, "items"), *it;
	size_t i;

	if (!json_is_array(items)) {
		json_t *act = json_array_get(json_object_get(json_array_get(
					json_object_get(v, "steps"), 0), "actions"), 0);

		items = json_pack("[{s:O, s:O, s:i, s:O}]", "app", json_object_get(act, "app"),
				  "action", json_object_get(act, "action"), "step", 0, "original",
				  json_object_get(v, "original") ?: json_null());
		if (!items)
			return -EINVAL;
	} else {
		json_incref(items);
	}
	d->items = calloc(json_array_size(items) ? json_array_size(items) : 1, sizeof(*d->items));
	if (!d->items) {
		json_decref(items);
		return -ENOMEM;
	}
	json_array_foreach(items, i, it) {
		struct deploy_item *di = &d->items[d->n_items];
		const char *app = json_string_value(json_object_get(it, "app"));
		int act = deploy_action_parse(json_string_value(json_object_get(it, "action")));
		json_t *orig = json_object_get(it, "original");
		json_int_t step = json_integer_value(json_object_get(it, "step"));

		if (!app || act < 0 || strlen(app) > APP_ID_MAX || step < 0 || step > 10000) {
			json_decref(items);
			return -EINVAL;
		}
		snprintf(di->app_id, sizeof(di->app_id), "%s", app);
		di->action = (enum deploy_action)act;
		di->step = (int)step;
		di->original = json_is_object(orig) ? json_incref(orig) : NULL;
		if (di->step >= d->total_steps)
			d->total_steps = di->step + 1;
		d->n_items++;
	}
	json_decref(items);
	return 0;
}

static int load_one(const char *key, json_t *v, void *arg)
{
	struct marathon *mt = arg;
	struct deployment *d = calloc(1, sizeof(*d));
	json_int_t cur = json_integer_value(json_object_get(v, "currentStepIndex"));
	int rc;

	if (!d)
		return -ENOMEM;
	rc = load_items(v, d);
	if (rc) {
		free_items(d->items, d->n_items);
		free(d);
		if (rc == -ENOMEM)
			return rc;
		log_error("event=deployment_load_failed id=%s", key);
		return 0;
	}
	snprintf(d->id, sizeof(d->id), "%s", key);
	snprintf(d->version, sizeof(d->version), "%s",
		 json_string_value(json_object_get(v, "version")) ?: "");
	d->current_step = cur > 0 && cur < d->total_steps ? (int)cur : 0;
	append(mt, d);
	return 0;
}

int deployments_load(struct marathon *mt)
{
	int rc = store_scan(mt->store, KIND_DEPLOYMENTS, load_one, mt);

	/* Deployments are kept in start order; the store scans in key (uuid) order, which is
	 * fine: an app is in at most one. Apps being stopped are marked again; a plan whose
	 * apps all vanished ends at the next reconcile. */
	for (struct deployment *d = mt->deployments, *next; d; d = next) {
		next = d->next;
		if (d->n_items == 1 && d->items[0].action != ACT_STOP &&
		    !apps_find(mt, d->items[0].app_id)) {
			deployment_finish(mt, d, false);
			continue;
		}
		for (int i = 0; i < d->n_items; i++) {
			struct mt_app *ma = apps_find(mt, d->items[i].app_id);

			if (ma && d->items[i].action == ACT_STOP)
				ma->deleting = true;
		}
	}
	return rc < 0 ? rc : 0;
}

void deployments_free_all(struct marathon *mt)
{
	while (mt->deployments) {
		struct deployment *d = mt->deployments;

		mt->deployments = d->next;
		free_items(d->items, d->n_items);
		free(d);
	}
	mt->multi_step_deployments = 0;
}
