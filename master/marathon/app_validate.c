/* app_validate.c - Marathon's app validation rules for the fields Pacer supports, and a
 * table of every other app field Marathon knows: read-only (ignored on input) or not
 * supported yet (accepted only with Marathon's default value, so a definition never
 * silently loses behaviour). */
#include <errno.h>
#include <math.h>
#include <regex.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "lib/util.h"
#include "master/marathon/app.h"
#include "master/marathon/app_validate.h"
#include "master/marathon/constraints.h"
#include "master/marathon/health_checks.h"


void validation_add(json_t *details, const char *path_in, const char *fmt, ...)
{
	char msg[512], path[512];
	va_list ap;
	size_t i;
	json_t *d;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	/* Paths and messages quote the user's keys and ids, cut to size: without this a cut
	 * character would make jansson drop the error and a bad definition would pass. */
	snprintf(path, sizeof(path), "%s", path_in);
	utf8_sanitize(msg);
	utf8_sanitize(path);
	json_array_foreach(details, i, d) {
		if (strcmp(json_string_value(json_object_get(d, "path")), path) == 0) {
			json_array_append_new(json_object_get(d, "errors"), json_string(msg));
			return;
		}
	}
	json_array_append_new(details, json_pack("{s:s, s:[s]}", "path", path, "errors", msg));
}

json_t *validation_body(json_t *details)
{
	return json_pack("{s:s, s:o}", "message", "Object is not valid", "details", details);
}

/* ---- supported fields ---- */

static void check_nonneg(json_t *v, const char *path, json_t *details)
{
	double d;

	if (!json_is_number(v)) {
		validation_add(details, path, "error.expected.jsnumber");
		return;
	}
	d = json_number_value(v);
	if (!isfinite(d) || d < 0)
		validation_add(details, path, "got %.1f, expected 0.0 or more", d);
}

/* cpus and mem become the task's cgroup limits: zero would mean no limit at all, so
 * (unlike Marathon) Pacer asks for a positive value. */
static void check_positive(json_t *v, const char *path, json_t *details)
{
	double d;

	if (!json_is_number(v)) {
		validation_add(details, path, "error.expected.jsnumber");
		return;
	}
	d = json_number_value(v);
	if (!isfinite(d) || d <= 0)
		validation_add(details, path,
			       "got %.1f, expected more than 0.0 (it is the task's cgroup limit)", d);
}

static void check_string_map(json_t *v, const char *path, json_t *details)
{
	const char *k;
	json_t *val;
	char p[300];

	if (!json_is_object(v)) {
		validation_add(details, path, "error.expected.jsobject");
		return;
	}
	json_object_foreach(v, k, val) {
		snprintf(p, sizeof(p), "%s/%s", path, k);
		if (json_is_object(val) && json_object_get(val, "secret"))
			validation_add(details, p, "secrets are not supported yet");
		else if (!json_is_string(val))
			validation_add(details, p, "error.expected.jsstring");
	}
}

static bool port_name_valid(const char *s)
{
	regex_t re;
	bool ok;

	if (regcomp(&re, "^[a-z0-9-]+$", REG_EXTENDED | REG_NOSUB))
		return false;
	ok = regexec(&re, s, 0, NULL, 0) == 0;
	regfree(&re);
	return ok;
}

static bool check_port_number(json_t *v, const char *path, json_t *details)
{
	json_int_t p;

	if (!json_is_integer(v)) {
		validation_add(details, path, "error.expected.jsnumber");
		return false;
	}
	p = json_integer_value(v);
	if (p < 0 || p > 65535) {
		validation_add(details, path, "got %lld, expected between 0 and 65535", (long long)p);
		return false;
	}
	return true;
}

static void check_port_definitions(json_t *v, json_t *details)
{
	static const char *const protocols[] = { "tcp", "udp", "udp,tcp", "tcp,udp" };
	bool seen_port[65536] = { false };
	json_t *names = json_object();
	size_t i;
	json_t *pd;
	char p[96];

	if (!json_is_array(v)) {
		validation_add(details, "/portDefinitions", "error.expected.jsarray");
		goto out;
	}
	if (json_array_size(v) > APP_MAX_PORTS)
		validation_add(details, "/portDefinitions", "at most %d ports are supported",
			       APP_MAX_PORTS);
	json_array_foreach(v, i, pd) {
		const char *k;
		json_t *f;

		if (!json_is_object(pd)) {
			snprintf(p, sizeof(p), "/portDefinitions(%zu)", i);
			validation_add(details, p, "error.expected.jsobject");
			continue;
		}
		json_object_foreach(pd, k, f) {
			snprintf(p, sizeof(p), "/portDefinitions(%zu)/%s", i, k);
			if (strcmp(k, "port") == 0) {
				json_int_t n;

				if (!check_port_number(f, p, details))
					continue;
				n = json_integer_value(f);
				if (n != 0 && seen_port[n])
					validation_add(details, "/portDefinitions", "Ports must be unique.");
				seen_port[n] = true;
			} else if (strcmp(k, "protocol") == 0) {
				bool ok = false;

				for (size_t j = 0; json_is_string(f) && j < 4; j++)
					ok = ok || strcmp(json_string_value(f), protocols[j]) == 0;
				if (!ok)
					validation_add(details, p,
						       "is not one of (tcp, udp, udp,tcp)");
			} else if (strcmp(k, "name") == 0) {
				if (!json_is_string(f) || !port_name_valid(json_string_value(f)) ||
				    strlen(json_string_value(f)) > 63) {
					validation_add(details, p,
						       "must fully match regular expression '^[a-z0-9-]+$'");
				} else if (json_object_get(names, json_string_value(f))) {
					validation_add(details, "/portDefinitions",
						       "Port names must be unique.");
				} else {
					json_object_set_new(names, json_string_value(f), json_true());
				}
			} else if (strcmp(k, "labels") == 0) {
				check_string_map(f, p, details);
			} else {
				validation_add(details, p, "not supported yet");
			}
		}
		if (!json_object_get(pd, "port")) {
			snprintf(p, sizeof(p), "/portDefinitions(%zu)/port", i);
			validation_add(details, p, "error.path.missing");
		}
	}
out:
	json_decref(names);
}

static void check_legacy_ports(json_t *v, json_t *details)
{
	bool seen_port[65536] = { false };
	size_t i;
	json_t *p;
	char path[64];

	if (!json_is_array(v)) {
		validation_add(details, "/ports", "error.expected.jsarray");
		return;
	}
	if (json_array_size(v) > APP_MAX_PORTS)
		validation_add(details, "/ports", "at most %d ports are supported", APP_MAX_PORTS);
	json_array_foreach(v, i, p) {
		snprintf(path, sizeof(path), "/ports(%zu)", i);
		if (!check_port_number(p, path, details))
			continue;
		if (json_integer_value(p) != 0 && seen_port[json_integer_value(p)])
			validation_add(details, "/ports", "Ports must be unique.");
		seen_port[json_integer_value(p)] = true;
	}
}

static void check_args(json_t *v, json_t *details)
{
	size_t i;
	json_t *a;

	if (!json_is_array(v)) {
		validation_add(details, "/args", "error.expected.jsarray");
		return;
	}
	if (json_array_size(v) == 0)
		validation_add(details, "/args", "must not be empty");
	json_array_foreach(v, i, a) {
		char p[48];

		snprintf(p, sizeof(p), "/args(%zu)", i);
		if (!json_is_string(a))
			validation_add(details, p, "error.expected.jsstring");
	}
}

static void check_instances(json_t *v, json_t *details)
{
	double n;

	/* 3.0 is accepted as 3; 2.5 is not a count. */
	if (!json_is_number(v) || (json_is_real(v) && floor(json_real_value(v)) != json_real_value(v))) {
		validation_add(details, "/instances", "error.expected.jsnumber");
		return;
	}
	n = json_number_value(v);
	if (n < 0)
		validation_add(details, "/instances", "got %.0f, expected 0 or more", n);
	else if (n > APP_MAX_INSTANCES)
		validation_add(details, "/instances", "got %.0f, expected %d or less", n,
			       APP_MAX_INSTANCES);
}

/* ---- unsupported fields: accepted only with Marathon's default ---- */

static bool is_empty_container(json_t *v)
{
	return json_is_null(v) || (json_is_array(v) && json_array_size(v) == 0) ||
	       (json_is_object(v) && json_object_size(v) == 0);
}

static bool num_is(json_t *v, double want)
{
	return json_is_number(v) && fabs(json_number_value(v) - want) < 1e-9;
}

static bool default_roles(json_t *v)
{
	json_t *r = json_array_get(v, 0);

	return is_empty_container(v) ||
	       (json_is_array(v) && json_array_size(v) == 1 && json_is_string(r) &&
		strcmp(json_string_value(r), "*") == 0);
}

static bool default_networks(json_t *v)
{
	json_t *n = json_array_get(v, 0);

	return is_empty_container(v) ||
	       (json_is_array(v) && json_array_size(v) == 1 && json_is_object(n) &&
		json_object_size(n) == 1 &&
		json_is_string(json_object_get(n, "mode")) &&
		strcmp(json_string_value(json_object_get(n, "mode")), "host") == 0);
}

static bool default_str(json_t *v, const char *want)
{
	return json_is_null(v) || (json_is_string(v) && strcmp(json_string_value(v), want) == 0);
}

enum field_kind { F_READONLY, F_UNSUPPORTED };

struct field_rule {
	const char *name;
	enum field_kind kind;
	/* F_UNSUPPORTED: the value is Marathon's default (or empty), so it changes nothing. */
	bool (*is_default)(json_t *v);
};

static bool d_empty(json_t *v) { return is_empty_container(v); }
static bool d_zero(json_t *v) { return json_is_null(v) || num_is(v, 0); }
static bool d_executor(json_t *v) { return default_str(v, ""); }

static const struct field_rule field_rules[] = {
	{ "version", F_READONLY, NULL },
	{ "versionInfo", F_READONLY, NULL },
	{ "tasksStaged", F_READONLY, NULL },
	{ "tasksRunning", F_READONLY, NULL },
	{ "tasksHealthy", F_READONLY, NULL },
	{ "tasksUnhealthy", F_READONLY, NULL },
	{ "deployments", F_READONLY, NULL },
	{ "tasks", F_READONLY, NULL },
	{ "lastTaskFailure", F_READONLY, NULL },
	{ "taskStats", F_READONLY, NULL },
	{ "readinessCheckResults", F_READONLY, NULL },
	{ "readinessChecks", F_UNSUPPORTED, d_empty },
	{ "uris", F_UNSUPPORTED, d_empty },
	{ "fetch", F_UNSUPPORTED, d_empty },
	{ "storeUrls", F_UNSUPPORTED, d_empty },
	{ "secrets", F_UNSUPPORTED, d_empty },
	{ "container", F_UNSUPPORTED, d_empty },
	{ "ipAddress", F_UNSUPPORTED, d_empty },
	{ "residency", F_UNSUPPORTED, d_empty },
	{ "acceptedResourceRoles", F_UNSUPPORTED, default_roles },
	{ "networks", F_UNSUPPORTED, default_networks },
	{ "gpus", F_UNSUPPORTED, d_zero },
	{ "executor", F_UNSUPPORTED, d_executor },
	{ "role", F_UNSUPPORTED, NULL },
	{ "executorResources", F_UNSUPPORTED, NULL },
	{ "portMappings", F_UNSUPPORTED, NULL },
	{ "volumes", F_UNSUPPORTED, NULL },
	{ "user_network", F_UNSUPPORTED, NULL },
};

static const char *const supported_fields[] = {
	"id", "cmd", "args", "cpus", "mem", "disk", "instances", "env", "labels",
	"portDefinitions", "ports", "requirePorts", "user", "taskKillGracePeriodSeconds",
	"constraints", "backoffSeconds", "backoffFactor", "maxLaunchDelaySeconds",
	"upgradeStrategy", "killSelection", "unreachableStrategy", "healthChecks",
	"dependencies",
};

static const struct field_rule *find_rule(const char *name)
{
	for (size_t i = 0; i < sizeof(field_rules) / sizeof(field_rules[0]); i++)
		if (strcmp(field_rules[i].name, name) == 0)
			return &field_rules[i];
	return NULL;
}

static bool is_supported(const char *name)
{
	for (size_t i = 0; i < sizeof(supported_fields) / sizeof(supported_fields[0]); i++)
		if (strcmp(supported_fields[i], name) == 0)
			return true;
	return false;
}

/* Drops read-only and default-valued unsupported fields from clean; reports the rest. */
static void check_field_names(json_t *clean, json_t *details)
{
	const char *k;
	json_t *v;
	void *tmp;
	char p[300];

	json_object_foreach_safe(clean, tmp, k, v) {
		const struct field_rule *r;

		if (is_supported(k))
			continue;
		snprintf(p, sizeof(p), "/%s", k);
		r = find_rule(k);
		if (!r) {
			validation_add(details, p, "unknown field");
			continue;
		}
		if (r->kind == F_READONLY || (r->is_default && r->is_default(v))) {
			json_object_del(clean, k);
			continue;
		}
		validation_add(details, p, "not supported yet");
	}
}

/* Treats "key": null as absent for optional fields. */
static void drop_nulls(json_t *clean)
{
	static const char *const nullable[] = { "cmd", "args", "user", "taskKillGracePeriodSeconds",
						"env", "labels", "portDefinitions", "ports",
						"requirePorts", "constraints", "backoffSeconds",
						"backoffFactor", "maxLaunchDelaySeconds",
						"upgradeStrategy", "killSelection",
						"unreachableStrategy", "healthChecks",
						"dependencies" };

	for (size_t i = 0; i < sizeof(nullable) / sizeof(nullable[0]); i++)
		if (json_is_null(json_object_get(clean, nullable[i])))
			json_object_del(clean, nullable[i]);
}

static void check_id(json_t *clean, const char *base_id, json_t *details)
{
	json_t *v = json_object_get(clean, "id");
	char id[APP_ID_MAX + 1], err[512];

	if (!v) {
		validation_add(details, "/id", "error.path.missing");
		return;
	}
	if (!json_is_string(v)) {
		validation_add(details, "/id", "error.expected.jsstring");
		return;
	}
	if (app_id_normalize(json_string_value(v), base_id, id, sizeof(id), err, sizeof(err))) {
		validation_add(details, "/id", "%s", err);
		return;
	}
	json_object_set_new(clean, "id", json_string(id));
}

/* Dependencies are app or group ids; relative ones are resolved against the app's group
 * (Marathon: "../db" from /prod/web/api is /prod/db). Stored absolute. */
static void check_dependencies(json_t *clean, json_t *details)
{
	json_t *v = json_object_get(clean, "dependencies"), *out;
	const char *id = json_string_value(json_object_get(clean, "id"));
	char base[APP_ID_MAX + 1], dep[APP_ID_MAX + 1], err[512], p[64];
	const char *slash;
	size_t i;
	json_t *d;

	if (!v)
		return;
	if (!json_is_array(v)) {
		validation_add(details, "/dependencies", "error.expected.jsarray");
		return;
	}
	if (json_array_size(v) > APP_MAX_DEPENDENCIES) {
		validation_add(details, "/dependencies", "at most %d dependencies are supported",
			       APP_MAX_DEPENDENCIES);
		return;
	}
	/* The id was checked (and normalised) first; without a valid one only types count. */
	slash = id && id[0] == '/' ? strrchr(id, '/') : NULL;
	snprintf(base, sizeof(base), "%.*s", slash ? (int)(slash - id) : 0, id ? id : "");
	out = json_array();
	if (!out)
		return;
	json_array_foreach(v, i, d) {
		snprintf(p, sizeof(p), "/dependencies(%zu)", i);
		if (!json_is_string(d)) {
			validation_add(details, p, "error.expected.jsstring");
			continue;
		}
		if (app_id_normalize(json_string_value(d), base[0] ? base : NULL, dep, sizeof(dep),
				     err, sizeof(err))) {
			validation_add(details, p, "%s", err);
			continue;
		}
		json_array_append_new(out, json_string(dep));
	}
	json_object_set_new(clean, "dependencies", out);
}

static void check_supported(json_t *clean, json_t *details)
{
	json_t *cmd = json_object_get(clean, "cmd"), *args = json_object_get(clean, "args");
	json_t *v;

	if (cmd && !json_is_string(cmd))
		validation_add(details, "/cmd", "error.expected.jsstring");
	else if (cmd && json_string_value(cmd)[0] == '\0')
		validation_add(details, "/cmd", "must not be empty");
	if (args)
		check_args(args, details);
	if (!cmd && !args)
		validation_add(details, "/",
			       "AppDefinition must either contain one of 'cmd' or 'args', and/or a 'container'.");
	if (cmd && args)
		validation_add(details, "/", "AppDefinition must contain either 'cmd' or 'args', not both.");

	if ((v = json_object_get(clean, "cpus")))
		check_positive(v, "/cpus", details);
	if ((v = json_object_get(clean, "mem")))
		check_positive(v, "/mem", details);
	if ((v = json_object_get(clean, "disk")))
		check_nonneg(v, "/disk", details);
	if ((v = json_object_get(clean, "instances")))
		check_instances(v, details);
	if ((v = json_object_get(clean, "env")))
		check_string_map(v, "/env", details);
	if ((v = json_object_get(clean, "labels")))
		check_string_map(v, "/labels", details);
	if (json_object_get(clean, "portDefinitions") && json_object_get(clean, "ports"))
		validation_add(details, "/", "You cannot specify both ports and port definitions");
	else if ((v = json_object_get(clean, "portDefinitions")))
		check_port_definitions(v, details);
	else if ((v = json_object_get(clean, "ports")))
		check_legacy_ports(v, details);
	if ((v = json_object_get(clean, "user"))) {
		if (!json_is_string(v))
			validation_add(details, "/user", "error.expected.jsstring");
		else if (json_string_value(v)[0] == '\0')
			validation_add(details, "/user", "must not be empty");
	}
	if ((v = json_object_get(clean, "taskKillGracePeriodSeconds"))) {
		if (!json_is_number(v))
			validation_add(details, "/taskKillGracePeriodSeconds", "error.expected.jsnumber");
		else if (!(json_number_value(v) > 0) || json_number_value(v) > 86400)
			validation_add(details, "/taskKillGracePeriodSeconds",
				       "got %.1f, expected greater than 0 and at most 86400",
				       json_number_value(v));
	}
	if ((v = json_object_get(clean, "requirePorts"))) {
		if (!json_is_boolean(v))
			validation_add(details, "/requirePorts", "error.expected.jsboolean");
	}
}

/* A number in [lo, hi] (hi < 0: no upper bound); false (and a detail) otherwise. */
static bool check_range(json_t *v, const char *path, double lo, double hi, json_t *details)
{
	double d;

	if (!json_is_number(v)) {
		validation_add(details, path, "error.expected.jsnumber");
		return false;
	}
	d = json_number_value(v);
	if (!isfinite(d) || d < lo || (hi >= 0 && d > hi)) {
		if (hi >= 0)
			validation_add(details, path, "got %g, expected between %g and %g", d, lo, hi);
		else
			validation_add(details, path, "got %g, expected %g or more", d, lo);
		return false;
	}
	return true;
}

/* Rejects keys of an object that are not in known[]. */
static void check_keys(json_t *obj, const char *base, const char *const *known, size_t n,
		       json_t *details)
{
	const char *k;
	json_t *v;
	char p[128];

	json_object_foreach(obj, k, v) {
		bool ok = false;

		for (size_t i = 0; i < n; i++)
			ok = ok || strcmp(known[i], k) == 0;
		if (!ok) {
			snprintf(p, sizeof(p), "%s/%s", base, k);
			validation_add(details, p, "unknown field");
		}
	}
}

/* constraints, backoff*, upgradeStrategy, killSelection, unreachableStrategy. */
static void check_behaviour(json_t *clean, json_t *details)
{
	static const char *const us_keys[] = { "minimumHealthCapacity", "maximumOverCapacity" };
	static const char *const ur_keys[] = { "inactiveAfterSeconds", "expungeAfterSeconds" };
	json_t *v, *f;

	if ((v = json_object_get(clean, "constraints")))
		constraints_validate(v, details);
	if ((v = json_object_get(clean, "backoffSeconds")))
		check_range(v, "/backoffSeconds", 0, 86400, details);
	if ((v = json_object_get(clean, "backoffFactor")))
		check_range(v, "/backoffFactor", 1, 100, details);
	if ((v = json_object_get(clean, "maxLaunchDelaySeconds")))
		check_range(v, "/maxLaunchDelaySeconds", 0, 86400, details);
	if ((v = json_object_get(clean, "upgradeStrategy"))) {
		if (!json_is_object(v)) {
			validation_add(details, "/upgradeStrategy", "error.expected.jsobject");
		} else {
			check_keys(v, "/upgradeStrategy", us_keys, 2, details);
			if ((f = json_object_get(v, "minimumHealthCapacity")))
				check_range(f, "/upgradeStrategy/minimumHealthCapacity", 0, 1, details);
			if ((f = json_object_get(v, "maximumOverCapacity")))
				check_range(f, "/upgradeStrategy/maximumOverCapacity", 0, 1, details);
		}
	}
	if ((v = json_object_get(clean, "killSelection"))) {
		if (!json_is_string(v) || (strcmp(json_string_value(v), "YOUNGEST_FIRST") != 0 &&
					   strcmp(json_string_value(v), "OLDEST_FIRST") != 0))
			validation_add(details, "/killSelection",
				       "is not one of (YOUNGEST_FIRST, OLDEST_FIRST)");
	}
	if ((v = json_object_get(clean, "unreachableStrategy"))) {
		json_t *ia, *ea;
		bool ok = true;

		if (json_is_string(v)) {
			if (strcmp(json_string_value(v), "disabled") != 0)
				validation_add(details, "/unreachableStrategy",
					       "must be \"disabled\" or an object");
			return;
		}
		if (!json_is_object(v)) {
			validation_add(details, "/unreachableStrategy", "error.expected.jsobject");
			return;
		}
		check_keys(v, "/unreachableStrategy", ur_keys, 2, details);
		ia = json_object_get(v, "inactiveAfterSeconds");
		ea = json_object_get(v, "expungeAfterSeconds");
		if (ia)
			ok = check_range(ia, "/unreachableStrategy/inactiveAfterSeconds", 0, -1, details);
		if (ea)
			ok = check_range(ea, "/unreachableStrategy/expungeAfterSeconds", 0, -1, details) && ok;
		if (ok && json_number_value(ia) > (ea ? json_number_value(ea) : APP_DEFAULT_EXPUNGE_AFTER))
			validation_add(details, "/unreachableStrategy/expungeAfterSeconds",
				       "must be greater than or equal to inactiveAfterSeconds");
	}
}

/* requirePorts=false with fixed ports means "service ports" in Marathon (host ports picked
 * at random): Pacer always uses the fixed ports as host ports, so say so. */
static void check_require_ports(json_t *clean, json_t *details)
{
	json_t *rp = json_object_get(clean, "requirePorts");
	json_t *defs = json_object_get(clean, "portDefinitions");
	json_t *legacy = json_object_get(clean, "ports");
	size_t i;
	json_t *p;
	bool fixed = false;

	if (!json_is_false(rp))
		goto drop;
	json_array_foreach(defs, i, p)
		fixed = fixed || json_integer_value(json_object_get(p, "port")) != 0;
	json_array_foreach(legacy, i, p)
		fixed = fixed || json_integer_value(p) != 0;
	if (fixed) {
		validation_add(details, "/requirePorts",
			       "requirePorts=false with fixed ports (service ports) is not supported yet");
		return;
	}
drop:
	if (json_is_boolean(rp))
		json_object_del(clean, "requirePorts");
}

/* healthChecks: validated against the app's ports, stored with every default filled in. */
static void check_health(json_t *clean, json_t *details)
{
	json_t *v = json_object_get(clean, "healthChecks");
	json_t *defs = json_object_get(clean, "portDefinitions");
	json_t *legacy = json_object_get(clean, "ports");
	size_t nports = defs ? json_array_size(defs) : legacy ? json_array_size(legacy) : 1;
	json_t *norm;

	if (!v)
		return;
	norm = health_checks_validate(v, nports, details);
	if (norm)
		json_object_set_new(clean, "healthChecks", norm);
}

int app_validate(json_t *def, const char *base_id, json_t **out, json_t **details)
{
	json_t *d = json_array();
	json_t *clean = NULL;

	*out = NULL;
	*details = NULL;
	if (!d)
		return -ENOMEM;
	if (!json_is_object(def)) {
		validation_add(d, "/", "error.expected.jsobject");
		goto invalid;
	}
	clean = json_deep_copy(def);
	if (!clean) {
		json_decref(d);
		return -ENOMEM;
	}
	drop_nulls(clean);
	check_field_names(clean, d);
	check_id(clean, base_id, d);
	check_dependencies(clean, d);
	check_supported(clean, d);
	check_require_ports(clean, d);
	check_behaviour(clean, d);
	check_health(clean, d);
	if (json_array_size(d) > 0)
		goto invalid;
	json_decref(d);
	*out = clean;
	return 0;

invalid:
	json_decref(clean);
	*details = d;
	return -EINVAL;
}
