/* fuzz_heartbeat_wire.c - differential libFuzzer target for the streaming heartbeat body
 * reader (master/heartbeat_wire.c) against jansson, the parser the route used before:
 *  - it never crashes, leaks or reads out of bounds, whatever the body;
 *  - a body jansson finds not to be JSON at all (even allowing repeated keys) is refused as
 *    "Invalid JSON" (syntax);
 *  - a body jansson accepts (JSON_REJECT_DUPLICATES) is refused as not an object when it is
 *    not one, else read with what the old reconciliation took from the tree: agent_id,
 *    whether "tasks" is there and an array, and per element task_id, state (strings or
 *    NULL), whether stats is an object and its four counters as tasks.c's counter() made
 *    them;
 *  - except that a body nested deeper than HEARTBEAT_WIRE_MAX_DEPTH is refused as syntax,
 *    and so is any body with a NUL byte (never valid JSON). */
/* fuzz-links: master/heartbeat_wire.c */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "master/heartbeat_wire.h"
#include "tests/fuzz/fuzz_common.h"
#include "tests/fuzz/fuzz_json.h"

/* The old master/tasks.c counter(). */
static uint64_t counter(json_t *obj, const char *key)
{
	json_t *v = json_object_get(obj, key);
	double d;

	if (json_is_integer(v))
		return json_integer_value(v) > 0 ? (uint64_t)json_integer_value(v) : 0;
	d = json_number_value(v);
	return d > 0 && d < 1.8e19 ? (uint64_t)d : 0;
}

static void same_str(const char *got, json_t *want)
{
	const char *w = json_string_value(want);

	CHECK((!w && !got) || (w && got && strcmp(w, got) == 0));
}

static void compare_ref(json_t *ref, const struct task_ref *r)
{
	json_t *stats = json_object_get(ref, "stats");

	same_str(r->task_id, json_object_get(ref, "task_id"));
	same_str(r->state, json_object_get(ref, "state"));
	CHECK(r->has_stats == json_is_object(stats));
	if (!r->has_stats)
		return;
	CHECK(r->rx_bytes == counter(stats, "rx_bytes"));
	CHECK(r->tx_bytes == counter(stats, "tx_bytes"));
	CHECK(r->rx_packets == counter(stats, "rx_packets"));
	CHECK(r->tx_packets == counter(stats, "tx_packets"));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	json_t *j = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, NULL);
	struct heartbeat hb;
	char err[256] = "";
	bool syntax = false;
	int rc = heartbeat_wire_parse((const char *)data, size, &hb, &syntax, err, sizeof(err));
	json_t *tasks;

	if (!same_screen(data, size, j, rc, syntax, err, HEARTBEAT_WIRE_MAX_DEPTH))
		goto out;
	if (!json_is_object(j)) {
		CHECK(rc == -EINVAL && !syntax &&
		      strcmp(err, "request body must be a JSON object") == 0);
		goto out;
	}
	CHECK(rc == 0);
	same_str(hb.agent_id, json_object_get(j, "agent_id"));
	tasks = json_object_get(j, "tasks");
	CHECK(hb.has_tasks == (tasks != NULL));
	CHECK(hb.tasks_array == json_is_array(tasks));
	CHECK(hb.ntasks == json_array_size(tasks));
	for (size_t i = 0; i < hb.ntasks; i++)
		compare_ref(json_array_get(tasks, i), &hb.tasks[i]);
out:
	if (rc == 0)
		heartbeat_wire_free(&hb);
	json_decref(j);
	return 0;
}
