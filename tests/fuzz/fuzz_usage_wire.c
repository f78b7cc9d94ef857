/* fuzz_usage_wire.c - differential libFuzzer target for the streaming usage batch reader
 * (master/usage_wire.c) against jansson, the parser the master used before:
 *  - it never crashes, leaks or reads out of bounds, whatever the body;
 *  - a body jansson finds not to be JSON at all (even allowing repeated keys) is refused as
 *    "Invalid JSON" (syntax);
 *  - a body jansson accepts (JSON_REJECT_DUPLICATES) is judged the way the master judged the
 *    jansson tree: the same top-level error message, or the same agent_id, seq and reports,
 *    each report skipped for the same first reason or read with the same task_id, app_id,
 *    final, at (bit for bit) and counters;
 *  - except that a body nested deeper than USAGE_WIRE_MAX_DEPTH is refused as syntax, and
 *    so is any body with a NUL byte (never valid JSON; jansson's lexer takes one right after
 *    a number for the end of its input and may accept the document). */
/* fuzz-links: master/usage_wire.c */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "master/usage_wire.h"
#include "tests/fuzz/fuzz_common.h"
#include "tests/fuzz/fuzz_json.h"

/* The old master's verdict on the batch: NULL (good) or its error message. */
static const char *batch_error(json_t *j)
{
	const char *agent = json_string_value(json_object_get(j, "agent_id"));
	json_t *seq = json_object_get(j, "seq");

	if (!agent || !*agent)
		return "agent_id is missing";
	if (!json_is_integer(seq) || json_integer_value(seq) <= 0)
		return "seq must be an integer > 0";
	if (!json_is_array(json_object_get(j, "reports")))
		return "reports must be an array";
	return NULL;
}

/* The old master's verdict on one report: NULL (good) or the bad field. */
static const char *report_error(json_t *rep)
{
	const char *task = json_string_value(json_object_get(rep, "task_id"));
	json_t *fin = json_object_get(rep, "final"), *at = json_object_get(rep, "at");

	if (!task || !*task || strlen(task) > USAGE_TASK_ID_MAX)
		return "task_id";
	if (fin && !json_is_boolean(fin))
		return "final";
	if (at && !json_is_number(at))
		return "at";
	for (int i = 0; i < USAGE_NFIELDS; i++) {
		json_t *v = json_object_get(rep, usage_frame_fields[i]);

		if (v && (!json_is_integer(v) || json_integer_value(v) < 0))
			return usage_frame_fields[i];
	}
	return NULL;
}

static void compare_report(json_t *rep, const struct usage_reading *r)
{
	const char *why = report_error(rep), *app;
	json_t *at;

	if (why) {
		CHECK(r->bad_name && strcmp(r->bad_name, why) == 0);
		return;
	}
	CHECK(!r->bad_name);
	CHECK(strcmp(r->task_id, json_string_value(json_object_get(rep, "task_id"))) == 0);
	app = json_string_value(json_object_get(rep, "app_id"));
	CHECK((!app && !r->app_id) || (app && r->app_id && strcmp(app, r->app_id) == 0));
	CHECK(r->final == json_is_true(json_object_get(rep, "final")));
	at = json_object_get(rep, "at");
	CHECK(r->has_at == (at != NULL));
	if (at)
		CHECK(memcmp(&r->at, &(double){ json_number_value(at) }, sizeof(double)) == 0);
	for (int i = 0; i < USAGE_NFIELDS; i++)
		CHECK(r->counters[i] == json_integer_value(json_object_get(rep, usage_frame_fields[i])));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	json_t *j = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, NULL);
	struct usage_batch b;
	char err[256] = "";
	bool syntax = false;
	int rc = usage_wire_parse((const char *)data, size, &b, &syntax, err, sizeof(err));
	const char *want;

	if (!same_screen(data, size, j, rc, syntax, err, USAGE_WIRE_MAX_DEPTH))
		goto out;
	want = batch_error(j);
	if (want) {
		CHECK(rc == -EINVAL && !syntax && strcmp(err, want) == 0);
		goto out;
	}
	CHECK(rc == 0);
	CHECK(strcmp(b.agent_id, json_string_value(json_object_get(j, "agent_id"))) == 0);
	CHECK(b.seq == (uint64_t)json_integer_value(json_object_get(j, "seq")));
	CHECK(b.nreports == json_array_size(json_object_get(j, "reports")));
	for (size_t i = 0; i < b.nreports; i++)
		compare_report(json_array_get(json_object_get(j, "reports"), i), &b.reports[i]);
out:
	if (rc == 0)
		usage_wire_free(&b);
	json_decref(j);
	return 0;
}
