/* client.c - pacerctl's one way to talk to the master: a blocking request over
 * lib/http_client, with the server's error message (Marathon's {"message","details"}
 * shape) turned into one line on stderr. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/http_client.h"
#include "tools/pacerctl/pacerctl.h"

#define CTL_TIMEOUT_MS 30000

int ctl_fail(const char *fmt, ...)
{
	va_list ap;

	fputs("pacerctl: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return CTL_FAILED;
}

int ctl_usage_error(const char *usage, const char *fmt, ...)
{
	va_list ap;

	fputs("pacerctl: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nusage: pacerctl [--master URL] [--json] %s\n", usage);
	return CTL_USAGE;
}

void ctl_print_json(json_t *v)
{
	char *text = json_dumps(v, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_ENCODE_ANY);

	if (text)
		printf("%s\n", text);
	free(text);
}

/* Appends "; /path: e1, e2" for every entry of Marathon's "details" list. */
static void append_details(json_t *details, char *buf, size_t len)
{
	size_t i, j;
	json_t *d, *e;

	json_array_foreach(details, i, d) {
		const char *path = json_string_value(json_object_get(d, "path"));
		json_t *errors = json_object_get(d, "errors");
		size_t used = strlen(buf);

		snprintf(buf + used, len - used, "; %s:", path ? path : "/");
		json_array_foreach(errors, j, e) {
			used = strlen(buf);
			snprintf(buf + used, len - used, "%s %s", j ? "," : "",
				 json_string_value(e) ? json_string_value(e) : "?");
		}
	}
}

/* Appends the ids of the deployments that lock an app (409 answers). */
static void append_deployments(json_t *deps, char *buf, size_t len)
{
	size_t i;
	json_t *d;

	json_array_foreach(deps, i, d) {
		const char *id = json_string_value(json_object_get(d, "id"));
		size_t used = strlen(buf);

		if (id)
			snprintf(buf + used, len - used, "%s%s", i ? ", " : "; deployments: ", id);
	}
}

static void report_http_error(const struct http_result *r)
{
	char msg[2048] = "";
	json_t *j = http_result_json(r);
	const char *m = j ? json_string_value(json_object_get(j, "message")) : NULL;

	if (m) {
		snprintf(msg, sizeof(msg), "%s", m);
		append_details(json_object_get(j, "details"), msg, sizeof(msg));
		append_deployments(json_object_get(j, "deployments"), msg, sizeof(msg));
	} else if (r->body && r->body_len) {
		snprintf(msg, sizeof(msg), "%.*s", (int)strcspn(r->body, "\r\n"), r->body);
	} else {
		snprintf(msg, sizeof(msg), "request failed");
	}
	ctl_fail("%s (HTTP %ld)", msg, r->status);
	json_decref(j);
}

int ctl_request(const struct ctl *c, const char *method, const char *path,
		const char *body, size_t body_len, json_t **out)
{
	static const char *const json_headers[] = {
		"Content-Type: application/json", "Accept: application/json", NULL
	};
	static const char *const plain_headers[] = { "Accept: application/json", NULL };
	struct http_result r;
	char url[4096];
	int ret = CTL_FAILED;

	if (out)
		*out = NULL;
	if (snprintf(url, sizeof(url), "%s%s", c->master, path) >= (int)sizeof(url))
		return ctl_fail("request path too long: %s", path);
	memset(&r, 0, sizeof(r));
	if (http_call(method, url, body, body_len, body ? json_headers : plain_headers,
		      CTL_TIMEOUT_MS, &r) < 0) {
		ctl_fail("cannot reach the master at %s: %s", c->master,
			 r.error[0] ? r.error : "transport error");
		goto out;
	}
	if (r.status < 200 || r.status >= 300) {
		report_http_error(&r);
		goto out;
	}
	if (out)
		*out = http_result_json(&r);
	ret = CTL_OK;
out:
	http_result_free(&r);
	return ret;
}

/* Drops leading/trailing slashes; keeps the rest as the user wrote it (the server
 * validates and normalises ids). */
int ctl_app_path(const char *id, char *out, size_t outlen)
{
	size_t len;

	while (*id == '/')
		id++;
	len = strlen(id);
	while (len && id[len - 1] == '/')
		len--;
	if (!len)
		return -EINVAL;
	if (len >= outlen)
		return -ENAMETOOLONG;
	memcpy(out, id, len);
	out[len] = '\0';
	return 0;
}

int ctl_task_app_path(const char *task_id, char *out, size_t outlen)
{
	const char *dot = strrchr(task_id, '.');
	size_t len, i;

	if (!dot || dot == task_id)
		return -EINVAL;
	len = (size_t)(dot - task_id);
	if (len >= outlen)
		return -ENAMETOOLONG;
	for (i = 0; i < len; i++)
		out[i] = task_id[i] == '_' ? '/' : task_id[i];
	out[len] = '\0';
	return 0;
}

void ctl_fmt_value(json_t *v, char *out, size_t outlen)
{
	if (json_is_integer(v)) {
		snprintf(out, outlen, "%lld", (long long)json_integer_value(v));
	} else if (json_is_real(v)) {
		snprintf(out, outlen, "%g", json_real_value(v));
	} else if (json_is_string(v)) {
		snprintf(out, outlen, "%s", json_string_value(v));
	} else if (json_is_true(v)) {
		snprintf(out, outlen, "true");
	} else if (json_is_false(v)) {
		snprintf(out, outlen, "false");
	} else if (v && !json_is_null(v)) {
		char *s = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);

		snprintf(out, outlen, "%s", s ? s : "?");
		free(s);
	} else {
		snprintf(out, outlen, "-");
	}
}
