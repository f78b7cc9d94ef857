/* health_checks.c - an app's healthChecks: Marathon's validation (422 details naming the
 * field), the stored form (every default filled in, so versions compare and serve the same),
 * and the TASKINFO form the agent runs (docs/architecture.md: portIndex resolved to the
 * task's host port, MESOS_HTTP/MESOS_TCP mapped to HTTP/TCP). */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "master/marathon/app_validate.h"
#include "master/marathon/health_checks.h"

#define MAX_SECONDS 86400.0

static const char *const known_keys[] = {
	"protocol", "path", "portIndex", "port", "command", "gracePeriodSeconds",
	"intervalSeconds", "timeoutSeconds", "maxConsecutiveFailures", "delaySeconds",
	"ignoreHttp1xx",
};

struct seconds_field {
	const char *key;
	double dflt, min;
};

static const struct seconds_field seconds_fields[] = {
	{ "gracePeriodSeconds", 300, 0 },
	{ "intervalSeconds", 60, 1 },
	{ "timeoutSeconds", 20, 1 },
	{ "delaySeconds", 15, 0 },
};

static bool is_known(const char *k)
{
	for (size_t i = 0; i < sizeof(known_keys) / sizeof(known_keys[0]); i++)
		if (strcmp(known_keys[i], k) == 0)
			return true;
	return false;
}

/* "HTTP", "TCP" or "COMMAND" (what the agent runs), NULL if not supported. */
static const char *agent_protocol(const char *p)
{
	if (strcmp(p, "HTTP") == 0 || strcmp(p, "MESOS_HTTP") == 0)
		return "HTTP";
	if (strcmp(p, "TCP") == 0 || strcmp(p, "MESOS_TCP") == 0)
		return "TCP";
	if (strcmp(p, "COMMAND") == 0)
		return "COMMAND";
	return NULL;
}

static bool path_ok(const char *s)
{
	if (s[0] != '/' || strlen(s) > 1024)
		return false;
	for (const unsigned char *p = (const unsigned char *)s; *p; p++)
		if (*p <= 0x20 || *p == 0x7f)
			return false;
	return true;
}

/* Checks one definition and returns its stored form (new reference), or NULL. */
static json_t *check_one(json_t *hc, size_t idx, size_t nports, json_t *details)
{
	json_t *out = NULL, *v;
	const char *proto = "HTTP", *k;
	char p[160];
	size_t errors = json_array_size(details);
	bool command;

	snprintf(p, sizeof(p), "/healthChecks(%zu)", idx);
	if (!json_is_object(hc)) {
		validation_add(details, p, "error.expected.jsobject");
		return NULL;
	}
	json_object_foreach(hc, k, v) {
		if (!is_known(k)) {
			snprintf(p, sizeof(p), "/healthChecks(%zu)/%s", idx, k);
			validation_add(details, p, "unknown field");
		}
	}
	snprintf(p, sizeof(p), "/healthChecks(%zu)/protocol", idx);
	v = json_object_get(hc, "protocol");
	if (v && !json_is_null(v)) {
		if (!json_is_string(v)) {
			validation_add(details, p, "error.expected.jsstring");
			return NULL;
		}
		proto = json_string_value(v);
		if (!agent_protocol(proto)) {
			if (strcmp(proto, "HTTPS") == 0 || strcmp(proto, "MESOS_HTTPS") == 0)
				validation_add(details, p, "%s is not supported yet", proto);
			else
				validation_add(details, p, "is not one of (HTTP, TCP, COMMAND, "
					       "MESOS_HTTP, MESOS_TCP)");
			return NULL;
		}
	}
	command = strcmp(proto, "COMMAND") == 0;
	out = json_pack("{s:s}", "protocol", proto);
	if (!out)
		return NULL;

	v = json_object_get(hc, "command");
	snprintf(p, sizeof(p), "/healthChecks(%zu)/command", idx);
	if (command) {
		json_t *val = json_object_get(v, "value");

		if (!json_is_object(v) || !json_is_string(val) || !json_string_value(val)[0])
			validation_add(details, p, "COMMAND health checks need command.value, "
				       "a non-empty string");
		else
			json_object_set_new(out, "command", json_pack("{s:O}", "value", val));
	} else if (v && !json_is_null(v)) {
		validation_add(details, p, "only COMMAND health checks take a command");
	}

	if (!command) {
		json_t *port = json_object_get(hc, "port"), *pi = json_object_get(hc, "portIndex");

		if (json_is_null(port))
			port = NULL;
		if (json_is_null(pi))
			pi = NULL;
		snprintf(p, sizeof(p), "/healthChecks(%zu)", idx);
		if (port && pi) {
			validation_add(details, p, "Health check must not specify both port and portIndex");
		} else if (port) {
			snprintf(p, sizeof(p), "/healthChecks(%zu)/port", idx);
			if (!json_is_integer(port) || json_integer_value(port) < 1 ||
			    json_integer_value(port) > 65535)
				validation_add(details, p, "must be a port number between 1 and 65535");
			else
				json_object_set(out, "port", port);
		} else {
			json_int_t i = pi ? json_integer_value(pi) : 0;

			snprintf(p, sizeof(p), "/healthChecks(%zu)/portIndex", idx);
			if (pi && !json_is_integer(pi))
				validation_add(details, p, "error.expected.jsnumber");
			else if (i < 0 || (size_t)i >= nports)
				validation_add(details, p, "Health check port indices must address an "
					       "element of the ports array or container port mappings.");
			else
				json_object_set_new(out, "portIndex", json_integer(i));
		}
	}
	if (strcmp(agent_protocol(proto), "HTTP") == 0) {
		v = json_object_get(hc, "path");
		snprintf(p, sizeof(p), "/healthChecks(%zu)/path", idx);
		if (v && !json_is_null(v) && (!json_is_string(v) || !path_ok(json_string_value(v))))
			validation_add(details, p, "must start with '/' and hold no white space or "
				       "control characters (at most 1024)");
		else
			json_object_set_new(out, "path", json_string(v && !json_is_null(v)
								  ? json_string_value(v) : "/"));
		v = json_object_get(hc, "ignoreHttp1xx");
		snprintf(p, sizeof(p), "/healthChecks(%zu)/ignoreHttp1xx", idx);
		if (v && !json_is_null(v) && !json_is_boolean(v))
			validation_add(details, p, "error.expected.jsboolean");
		else
			json_object_set_new(out, "ignoreHttp1xx", json_boolean(json_is_true(v)));
	}
	for (size_t i = 0; i < sizeof(seconds_fields) / sizeof(seconds_fields[0]); i++) {
		const struct seconds_field *f = &seconds_fields[i];

		v = json_object_get(hc, f->key);
		snprintf(p, sizeof(p), "/healthChecks(%zu)/%s", idx, f->key);
		if (!v || json_is_null(v)) {
			json_object_set_new(out, f->key, json_integer((json_int_t)f->dflt));
		} else if (!json_is_number(v)) {
			validation_add(details, p, "error.expected.jsnumber");
		} else if (!isfinite(json_number_value(v)) || json_number_value(v) < f->min ||
			   json_number_value(v) > MAX_SECONDS) {
			validation_add(details, p, "got %g, expected between %g and %g",
				       json_number_value(v), f->min, MAX_SECONDS);
		} else {
			json_object_set(out, f->key, v);
		}
	}
	v = json_object_get(hc, "maxConsecutiveFailures");
	snprintf(p, sizeof(p), "/healthChecks(%zu)/maxConsecutiveFailures", idx);
	if (!v || json_is_null(v))
		json_object_set_new(out, "maxConsecutiveFailures", json_integer(3));
	else if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > 1000000)
		validation_add(details, p, "must be an integer between 0 and 1000000");
	else
		json_object_set(out, "maxConsecutiveFailures", v);

	if (json_array_size(details) != errors) {
		json_decref(out);
		return NULL;
	}
	return out;
}

json_t *health_checks_validate(json_t *v, size_t nports, json_t *details)
{
	json_t *out, *hc;
	size_t i;

	if (!json_is_array(v)) {
		validation_add(details, "/healthChecks", "error.expected.jsarray");
		return NULL;
	}
	if (json_array_size(v) > HEALTH_CHECKS_MAX) {
		validation_add(details, "/healthChecks", "at most %d health checks are supported",
			       HEALTH_CHECKS_MAX);
		return NULL;
	}
	out = json_array();
	json_array_foreach(v, i, hc) {
		json_t *one = check_one(hc, i, nports, details);

		if (one && out)
			json_array_append_new(out, one);
		else
			json_decref(one);
	}
	if (!out || json_array_size(out) != json_array_size(v)) {
		json_decref(out);
		return NULL;
	}
	return out;
}

static json_t *launch_one(json_t *hc, const uint32_t *ports, size_t nports)
{
	const char *proto = agent_protocol(json_string_value(json_object_get(hc, "protocol")) ?: "");
	json_t *out, *v;

	if (!proto)
		return NULL;
	out = json_pack("{s:s, s:O?, s:O?, s:O?, s:O?, s:O?}", "protocol", proto,
			"grace_period_seconds", json_object_get(hc, "gracePeriodSeconds"),
			"interval_seconds", json_object_get(hc, "intervalSeconds"),
			"timeout_seconds", json_object_get(hc, "timeoutSeconds"),
			"delay_seconds", json_object_get(hc, "delaySeconds"),
			"max_consecutive_failures", json_object_get(hc, "maxConsecutiveFailures"));
	if (!out)
		return NULL;
	if (strcmp(proto, "COMMAND") == 0) {
		json_object_set(out, "command", json_object_get(json_object_get(hc, "command"), "value"));
		return out;
	}
	if ((v = json_object_get(hc, "port"))) {
		json_object_set(out, "port", v);
	} else {
		json_int_t i = json_integer_value(json_object_get(hc, "portIndex"));

		if (i < 0 || (size_t)i >= nports) {
			json_decref(out);
			return NULL;
		}
		json_object_set_new(out, "port", json_integer(ports[i]));
	}
	if (strcmp(proto, "HTTP") == 0) {
		json_object_set(out, "path", json_object_get(hc, "path"));
		json_object_set(out, "ignore_http1xx", json_object_get(hc, "ignoreHttp1xx"));
	}
	return out;
}

json_t *health_checks_for_launch(json_t *checks, const uint32_t *ports, size_t nports)
{
	json_t *out, *hc;
	size_t i;

	if (json_array_size(checks) == 0)
		return NULL;
	out = json_array();
	json_array_foreach(checks, i, hc) {
		json_t *one = launch_one(hc, ports, nports);

		if (one && out)
			json_array_append_new(out, one);
		else
			json_decref(one);
	}
	return out;
}

bool health_checks_kill_unhealthy(json_t *checks)
{
	size_t i;
	json_t *hc;

	json_array_foreach(checks, i, hc)
		if (json_integer_value(json_object_get(hc, "maxConsecutiveFailures")) > 0)
			return true;
	return false;
}
