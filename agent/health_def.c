/* health_def.c - reads TASKINFO "health_checks" (docs/architecture.md): what the master
 * resolved from an app's healthChecks. Every field the checker depends on is checked here,
 * so a bad launch is refused with a 400 naming the field rather than probing nonsense. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "agent/health.h"

#define MAX_SECONDS 86400.0

const char *hc_protocol_name(enum hc_protocol p)
{
	return p == HC_HTTP ? "HTTP" : p == HC_TCP ? "TCP" : "COMMAND";
}

static int seconds(json_t *hc, const char *key, double dflt, double min, double *out,
		   size_t i, char *err, size_t errlen)
{
	json_t *v = json_object_get(hc, key);

	*out = dflt;
	if (!v || json_is_null(v))
		return 0;
	if (!json_is_number(v) || !isfinite(json_number_value(v)) ||
	    json_number_value(v) < min || json_number_value(v) > MAX_SECONDS) {
		snprintf(err, errlen, "/task/health_checks/%zu/%s must be a number of seconds "
			 "between %g and %g", i, key, min, MAX_SECONDS);
		return -EINVAL;
	}
	*out = json_number_value(v);
	return 0;
}

static int parse_one(json_t *hc, size_t i, struct hc_def *d, char *err, size_t errlen)
{
	const char *proto = json_string_value(json_object_get(hc, "protocol"));
	json_t *v;

	memset(d, 0, sizeof(*d));
	if (!json_is_object(hc)) {
		snprintf(err, errlen, "/task/health_checks/%zu must be an object", i);
		return -EINVAL;
	}
	if (proto && strcmp(proto, "HTTP") == 0) {
		d->protocol = HC_HTTP;
	} else if (proto && strcmp(proto, "TCP") == 0) {
		d->protocol = HC_TCP;
	} else if (proto && strcmp(proto, "COMMAND") == 0) {
		d->protocol = HC_COMMAND;
	} else {
		snprintf(err, errlen, "/task/health_checks/%zu/protocol must be HTTP, TCP or COMMAND", i);
		return -EINVAL;
	}
	if (d->protocol == HC_COMMAND) {
		d->command = json_string_value(json_object_get(hc, "command"));
		if (!d->command || !d->command[0]) {
			snprintf(err, errlen, "/task/health_checks/%zu/command must be a non-empty string", i);
			return -EINVAL;
		}
	} else {
		v = json_object_get(hc, "port");
		if (!json_is_integer(v) || json_integer_value(v) < 1 || json_integer_value(v) > 65535) {
			snprintf(err, errlen, "/task/health_checks/%zu/port must be a port number (1-65535)", i);
			return -EINVAL;
		}
		d->port = (uint32_t)json_integer_value(v);
	}
	if (d->protocol == HC_HTTP) {
		v = json_object_get(hc, "path");
		d->path = v ? json_string_value(v) : "/";
		/* It goes into a request line: no spaces or control characters. */
		if (!d->path || d->path[0] != '/' || strlen(d->path) > HC_PATH_MAX ||
		    strpbrk(d->path, " \t\r\n")) {
			snprintf(err, errlen, "/task/health_checks/%zu/path must start with '/' and hold "
				 "no white space (at most %d characters)", i, HC_PATH_MAX);
			return -EINVAL;
		}
		for (const char *p = d->path; *p; p++) {
			if ((unsigned char)*p < 0x20 || *p == 0x7f) {
				snprintf(err, errlen, "/task/health_checks/%zu/path holds a control character", i);
				return -EINVAL;
			}
		}
	}
	if (seconds(hc, "grace_period_seconds", 300, 0, &d->grace, i, err, errlen) ||
	    seconds(hc, "interval_seconds", 60, 0.1, &d->interval, i, err, errlen) ||
	    seconds(hc, "timeout_seconds", 20, 0.1, &d->timeout, i, err, errlen) ||
	    seconds(hc, "delay_seconds", 15, 0, &d->delay, i, err, errlen))
		return -EINVAL;
	v = json_object_get(hc, "max_consecutive_failures");
	d->max_failures = 3;
	if (v && !json_is_null(v)) {
		if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > 1000000) {
			snprintf(err, errlen, "/task/health_checks/%zu/max_consecutive_failures must be "
				 "an integer between 0 and 1000000", i);
			return -EINVAL;
		}
		d->max_failures = (int)json_integer_value(v);
	}
	v = json_object_get(hc, "ignore_http1xx");
	if (v && !json_is_null(v) && !json_is_boolean(v)) {
		snprintf(err, errlen, "/task/health_checks/%zu/ignore_http1xx must be a boolean", i);
		return -EINVAL;
	}
	d->ignore_1xx = json_is_true(v);
	return 0;
}

int health_defs_parse(json_t *arr, struct hc_def *out, size_t *n, char *err, size_t errlen)
{
	size_t i;
	json_t *hc;

	*n = 0;
	if (!arr || json_is_null(arr))
		return 0;
	if (!json_is_array(arr) || json_array_size(arr) > HC_MAX_CHECKS) {
		snprintf(err, errlen, "/task/health_checks must be an array of at most %d checks",
			 HC_MAX_CHECKS);
		return -EINVAL;
	}
	json_array_foreach(arr, i, hc) {
		if (parse_one(hc, i, &out[i], err, errlen)) {
			*n = 0;
			return -EINVAL;
		}
	}
	*n = json_array_size(arr);
	return 0;
}
