/* fuzz_status_wire.c - differential libFuzzer target for the streaming status body reader
 * (master/status_wire.c) against jansson, the parser the route used before:
 *  - it never crashes, leaks or reads out of bounds, whatever the body;
 *  - a body jansson finds not to be JSON at all (even allowing repeated keys) is refused as
 *    "Invalid JSON" (syntax);
 *  - a body jansson accepts (JSON_REJECT_DUPLICATES) is judged the way h_status judged the
 *    jansson tree: the same 400 message (not an object; agent_id/update/updates; too many
 *    updates), or single/batch with, per update, the same fields the old status.c read
 *    with json_*_value (uuid, task_id, state, reason, message, timestamp bit for bit,
 *    exit_code, signal, healthy, and the first 16 health_checks with alive, the four
 *    numbers bit for bit and last_failure_cause);
 *  - except that a body nested deeper than STATUS_WIRE_MAX_DEPTH is refused as syntax, and
 *    so is any body with a NUL byte (never valid JSON; jansson's lexer takes one right after
 *    a number for the end of its input and may accept the document). */
/* fuzz-links: master/status_wire.c */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "master/status_wire.h"
#include "tests/fuzz/fuzz_common.h"
#include "tests/fuzz/fuzz_json.h"

/* h_status's verdict on the tree: NULL (good; *single says which form) or its message. */
static const char *body_error(json_t *j, bool *single, char *buf, size_t buflen)
{
	const char *agent = json_string_value(json_object_get(j, "agent_id"));
	json_t *update = json_object_get(j, "update"), *updates = json_object_get(j, "updates");

	if (!json_is_object(j))
		return "request body must be a JSON object";
	if (agent && json_is_array(updates) && !update) {
		if (json_array_size(updates) > STATUS_BATCH_MAX) {
			snprintf(buf, buflen, "invalid status: 'updates' holds %zu updates, at most %d",
				 json_array_size(updates), STATUS_BATCH_MAX);
			return buf;
		}
		*single = false;
		return NULL;
	}
	if (!agent || !json_is_object(update) || updates)
		return "invalid status: needs 'agent_id' (string) and either 'update' (object) or "
		       "'updates' (array)";
	*single = true;
	return NULL;
}

static void same_str(const char *got, json_t *want)
{
	const char *w = json_string_value(want);

	CHECK((!w && !got) || (w && got && strcmp(w, got) == 0));
}

static void same_num(double got, json_t *want)
{
	double w = json_number_value(want);

	CHECK(memcmp(&got, &w, sizeof(w)) == 0);
}

static void compare_check(json_t *c, const struct status_check *sc)
{
	json_t *alive = json_object_get(c, "alive");

	CHECK(sc->alive == (json_is_boolean(alive) ? json_is_true(alive) : -1));
	same_num(sc->consecutive_failures, json_object_get(c, "consecutive_failures"));
	same_num(sc->first_success, json_object_get(c, "first_success"));
	same_num(sc->last_success, json_object_get(c, "last_success"));
	same_num(sc->last_failure, json_object_get(c, "last_failure"));
	same_str(sc->last_failure_cause, json_object_get(c, "last_failure_cause"));
}

static void compare_update(json_t *u, const struct status_update *su)
{
	json_t *exit_code = json_object_get(u, "exit_code"), *sig = json_object_get(u, "signal");
	json_t *healthy = json_object_get(u, "healthy"), *checks = json_object_get(u, "health_checks");
	size_t n = json_array_size(checks);

	same_str(su->uuid, json_object_get(u, "uuid"));
	same_str(su->task_id, json_object_get(u, "task_id"));
	same_str(su->state, json_object_get(u, "state"));
	same_str(su->reason, json_object_get(u, "reason"));
	same_str(su->message, json_object_get(u, "message"));
	same_num(su->timestamp, json_object_get(u, "timestamp"));
	CHECK(su->has_exit_code == json_is_integer(exit_code));
	CHECK(!su->has_exit_code || su->exit_code == json_integer_value(exit_code));
	CHECK(su->has_signal == json_is_integer(sig));
	CHECK(!su->has_signal || su->signal == json_integer_value(sig));
	CHECK(su->has_healthy == json_is_boolean(healthy));
	CHECK(!su->has_healthy || su->healthy == json_is_true(healthy));
	CHECK(su->nchecks == (n < STATUS_WIRE_MAX_CHECKS ? n : STATUS_WIRE_MAX_CHECKS));
	for (unsigned i = 0; i < su->nchecks; i++)
		compare_check(json_array_get(checks, i), &su->checks[i]);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	json_t *j = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, NULL);
	struct status_batch b;
	char err[256] = "", buf[128];
	bool syntax = false, single = false;
	int rc = status_wire_parse((const char *)data, size, &b, &syntax, err, sizeof(err));
	const char *want;
	json_t *updates;

	if (!same_screen(data, size, j, rc, syntax, err, STATUS_WIRE_MAX_DEPTH))
		goto out;
	want = body_error(j, &single, buf, sizeof(buf));
	if (want) {
		CHECK(rc == -EINVAL && !syntax && strcmp(err, want) == 0);
		goto out;
	}
	CHECK(rc == 0);
	CHECK(b.single == single);
	CHECK(strcmp(b.agent_id, json_string_value(json_object_get(j, "agent_id"))) == 0);
	if (single) {
		CHECK(b.nupdates == 1);
		compare_update(json_object_get(j, "update"), &b.updates[0]);
		goto out;
	}
	updates = json_object_get(j, "updates");
	CHECK(b.nupdates == json_array_size(updates));
	for (size_t i = 0; i < b.nupdates; i++)
		compare_update(json_array_get(updates, i), &b.updates[i]);
out:
	if (rc == 0)
		status_wire_free(&b);
	json_decref(j);
	return 0;
}
