/* app.c - the app model: JSON (Marathon field names) to struct app and back. Input has
 * been through app_validate, so parsing here trusts types and ranges. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "master/marathon/app.h"

static void copy_str(char *dst, size_t n, const char *src)
{
	snprintf(dst, n, "%s", src ? src : "");
}

static double num_or(json_t *obj, const char *key, double dflt)
{
	json_t *v = json_object_get(obj, key);

	return json_is_number(v) ? json_number_value(v) : dflt;
}

static json_t *object_or_empty(json_t *v)
{
	return json_is_object(v) ? json_deep_copy(v) : json_object();
}

static int parse_ports(json_t *def, struct app *a)
{
	json_t *defs = json_object_get(def, "portDefinitions");
	json_t *legacy = json_object_get(def, "ports");
	size_t i;
	json_t *pd;

	if (json_is_array(defs)) {
		json_array_foreach(defs, i, pd) {
			struct port_def *p = &a->ports[a->port_count];

			if (a->port_count >= APP_MAX_PORTS)
				return -EINVAL;
			p->port = (uint32_t)json_integer_value(json_object_get(pd, "port"));
			copy_str(p->protocol, sizeof(p->protocol),
				 json_string_value(json_object_get(pd, "protocol")));
			if (!p->protocol[0])
				copy_str(p->protocol, sizeof(p->protocol), "tcp");
			copy_str(p->name, sizeof(p->name), json_string_value(json_object_get(pd, "name")));
			p->labels = object_or_empty(json_object_get(pd, "labels"));
			if (!p->labels)
				return -ENOMEM;
			a->port_count++;
		}
		return 0;
	}
	if (json_is_array(legacy)) {    /* the old "ports": [0, 8080] form */
		json_array_foreach(legacy, i, pd) {
			struct port_def *p = &a->ports[a->port_count];

			if (a->port_count >= APP_MAX_PORTS)
				return -EINVAL;
			p->port = (uint32_t)json_integer_value(pd);
			copy_str(p->protocol, sizeof(p->protocol), "tcp");
			p->labels = json_object();
			if (!p->labels)
				return -ENOMEM;
			a->port_count++;
		}
		return 0;
	}
	/* Marathon's default for an app without any port field: one port, any number. */
	if (!defs && !legacy) {
		a->ports[0].port = 0;
		copy_str(a->ports[0].protocol, sizeof(a->ports[0].protocol), "tcp");
		a->ports[0].labels = json_object();
		if (!a->ports[0].labels)
			return -ENOMEM;
		a->port_count = 1;
	}
	return 0;
}

/* constraints, backoff, upgradeStrategy, killSelection, unreachableStrategy, healthChecks. */
static int parse_behaviour(json_t *def, struct app *a)
{
	json_t *us = json_object_get(def, "upgradeStrategy");
	json_t *ur = json_object_get(def, "unreachableStrategy");
	const char *ks = json_string_value(json_object_get(def, "killSelection"));
	json_t *c = json_object_get(def, "constraints");

	json_t *deps = json_object_get(def, "dependencies");

	a->constraints = json_is_array(c) ? json_deep_copy(c) : json_array();
	a->dependencies = json_is_array(deps) ? json_deep_copy(deps) : json_array();
	if (!a->constraints || !a->dependencies)
		return -ENOMEM;
	if (constraints_compile(a->constraints, &a->cs))
		return -EINVAL;
	a->backoff_seconds = num_or(def, "backoffSeconds", APP_DEFAULT_BACKOFF);
	a->backoff_factor = num_or(def, "backoffFactor", APP_DEFAULT_BACKOFF_FACTOR);
	a->max_launch_delay = num_or(def, "maxLaunchDelaySeconds", APP_DEFAULT_MAX_LAUNCH_DELAY);
	a->min_health = num_or(us, "minimumHealthCapacity", APP_DEFAULT_MIN_HEALTH);
	a->max_over = num_or(us, "maximumOverCapacity", APP_DEFAULT_MAX_OVER);
	a->kill_selection = ks && strcmp(ks, "OLDEST_FIRST") == 0 ? KILL_OLDEST_FIRST
								   : KILL_YOUNGEST_FIRST;
	a->unreachable_disabled = json_is_string(ur) &&
				  strcmp(json_string_value(ur), "disabled") == 0;
	a->inactive_after = num_or(ur, "inactiveAfterSeconds", APP_DEFAULT_INACTIVE_AFTER);
	a->expunge_after = num_or(ur, "expungeAfterSeconds", APP_DEFAULT_EXPUNGE_AFTER);
	c = json_object_get(def, "healthChecks");
	a->health_checks = json_is_array(c) ? json_deep_copy(c) : json_array();
	if (!a->health_checks)
		return -ENOMEM;
	return 0;
}

int app_from_json(json_t *def, struct app *a)
{
	json_t *vi = json_object_get(def, "versionInfo");
	json_t *v;
	int rc;

	memset(a, 0, sizeof(*a));
	copy_str(a->id, sizeof(a->id), json_string_value(json_object_get(def, "id")));
	v = json_object_get(def, "cmd");
	if (json_is_string(v)) {
		a->cmd = strdup(json_string_value(v));
		if (!a->cmd)
			goto nomem;
	}
	v = json_object_get(def, "args");
	if (json_is_array(v)) {
		a->args = json_deep_copy(v);
		if (!a->args)
			goto nomem;
	}
	a->cpus = num_or(def, "cpus", APP_DEFAULT_CPUS);
	a->mem = num_or(def, "mem", APP_DEFAULT_MEM);
	a->disk = num_or(def, "disk", APP_DEFAULT_DISK);
	a->instances = (int)num_or(def, "instances", APP_DEFAULT_INSTANCES);
	a->env = object_or_empty(json_object_get(def, "env"));
	a->labels = object_or_empty(json_object_get(def, "labels"));
	if (!a->env || !a->labels)
		goto nomem;
	rc = parse_ports(def, a);
	if (rc)
		goto fail;
	v = json_object_get(def, "user");
	if (json_is_string(v)) {
		a->user = strdup(json_string_value(v));
		if (!a->user)
			goto nomem;
	}
	a->kill_grace = num_or(def, "taskKillGracePeriodSeconds", -1);
	rc = parse_behaviour(def, a);
	if (rc)
		goto fail;
	copy_str(a->version, sizeof(a->version), json_string_value(json_object_get(def, "version")));
	copy_str(a->last_scaling_at, sizeof(a->last_scaling_at),
		 json_string_value(json_object_get(vi, "lastScalingAt")));
	copy_str(a->last_config_change_at, sizeof(a->last_config_change_at),
		 json_string_value(json_object_get(vi, "lastConfigChangeAt")));
	return 0;

nomem:
	rc = -ENOMEM;
fail:
	app_free(a);
	return rc;
}

void app_free(struct app *a)
{
	free(a->cmd);
	json_decref(a->args);
	json_decref(a->env);
	json_decref(a->labels);
	for (size_t i = 0; i < a->port_count; i++)
		json_decref(a->ports[i].labels);
	free(a->user);
	json_decref(a->constraints);
	json_decref(a->dependencies);
	constraints_free(&a->cs);
	json_decref(a->health_checks);
	memset(a, 0, sizeof(*a));
}

int app_copy(struct app *dst, const struct app *src)
{
	json_t *j = app_to_json(src);
	int rc;

	if (!j)
		return -ENOMEM;
	rc = app_from_json(j, dst);
	json_decref(j);
	return rc;
}

static json_t *ports_to_json(const struct app *a)
{
	json_t *arr = json_array();

	for (size_t i = 0; arr && i < a->port_count; i++) {
		const struct port_def *p = &a->ports[i];
		json_t *o = json_pack("{s:I, s:s, s:O}", "port", (json_int_t)p->port, "protocol",
				      p->protocol, "labels", p->labels);

		if (o && p->name[0])
			json_object_set_new(o, "name", json_string(p->name));
		if (!o || json_array_append_new(arr, o)) {
			json_decref(arr);
			return NULL;
		}
	}
	return arr;
}

/* The definition without versions; both app_to_json and app_config_differs use it. */
static json_t *config_json(const struct app *a)
{
	json_t *o = json_pack("{s:s, s:f, s:f, s:f, s:i, s:O, s:O, s:o}", "id", a->id,
			      "cpus", a->cpus, "mem", a->mem, "disk", a->disk,
			      "instances", a->instances, "env", a->env, "labels", a->labels,
			      "portDefinitions", ports_to_json(a));

	if (!o)
		return NULL;
	json_object_set_new(o, "cmd", a->cmd ? json_string(a->cmd) : json_null());
	json_object_set_new(o, "args", a->args ? json_deep_copy(a->args) : json_null());
	json_object_set_new(o, "user", a->user ? json_string(a->user) : json_null());
	json_object_set_new(o, "taskKillGracePeriodSeconds",
			    a->kill_grace >= 0 ? json_real(a->kill_grace) : json_null());
	json_object_set_new(o, "constraints",
			    a->constraints ? json_deep_copy(a->constraints) : json_array());
	json_object_set_new(o, "dependencies",
			    a->dependencies ? json_deep_copy(a->dependencies) : json_array());
	json_object_set_new(o, "backoffSeconds", json_real(a->backoff_seconds));
	json_object_set_new(o, "backoffFactor", json_real(a->backoff_factor));
	json_object_set_new(o, "maxLaunchDelaySeconds", json_real(a->max_launch_delay));
	json_object_set_new(o, "upgradeStrategy",
			    json_pack("{s:f, s:f}", "minimumHealthCapacity", a->min_health,
				      "maximumOverCapacity", a->max_over));
	json_object_set_new(o, "killSelection",
			    json_string(a->kill_selection == KILL_OLDEST_FIRST ? "OLDEST_FIRST"
									: "YOUNGEST_FIRST"));
	json_object_set_new(o, "healthChecks",
			    a->health_checks ? json_deep_copy(a->health_checks) : json_array());
	json_object_set_new(o, "unreachableStrategy",
			    a->unreachable_disabled
				    ? json_string("disabled")
				    : json_pack("{s:f, s:f}", "inactiveAfterSeconds", a->inactive_after,
						"expungeAfterSeconds", a->expunge_after));
	return o;
}

json_t *app_to_json(const struct app *a)
{
	json_t *o = config_json(a);

	if (!o)
		return NULL;
	json_object_set_new(o, "version", json_string(a->version));
	json_object_set_new(o, "versionInfo",
			    json_pack("{s:s, s:s}", "lastScalingAt", a->last_scaling_at,
				      "lastConfigChangeAt", a->last_config_change_at));
	return o;
}

bool app_config_differs(const struct app *a, const struct app *b)
{
	json_t *ja = config_json(a), *jb = config_json(b);
	bool differs = true;

	if (ja && jb) {
		/* Dependencies order deployments; the tasks do not change with them. */
		json_object_del(ja, "instances");
		json_object_del(jb, "instances");
		json_object_del(ja, "dependencies");
		json_object_del(jb, "dependencies");
		differs = !json_equal(ja, jb);
	}
	json_decref(ja);
	json_decref(jb);
	return differs;
}

json_t *app_task_command(const struct app *a)
{
	if (a->cmd)
		return json_pack("{s:b, s:s}", "shell", 1, "value", a->cmd);
	return json_pack("{s:b, s:O, s:O}", "shell", 0, "value", json_array_get(a->args, 0),
			 "arguments", a->args);
}

double app_kill_grace(const struct app *a)
{
	return a->kill_grace >= 0 ? a->kill_grace : APP_DEFAULT_KILL_GRACE;
}
