/* fuzz_app.c - libFuzzer target for the Marathon app definition: any bytes as a
 * POST /v2/apps body go through the same steps as the handler (JSON with duplicate keys
 * rejected, app_validate, app_from_json), and a valid app must survive the round trips
 * the master makes with it: served form -> PUT back (validates, equal config), and the
 * store's text form (json_dumps/json_loads) -> app_from_json (equal). */
/* fuzz-links: master/marathon/app.c master/marathon/app_id.c master/marathon/app_validate.c master/marathon/constraint*.c master/marathon/health_checks.c */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "master/marathon/app.h"
#include "master/marathon/app_validate.h"
#include "tests/fuzz/fuzz_common.h"

/* Every detail is {"path": string, "errors": [string, ...]} with at least one error. */
static void check_details(json_t *details)
{
	size_t i, j;
	json_t *d, *e;

	CHECK(json_is_array(details) && json_array_size(details) > 0);
	json_array_foreach(details, i, d) {
		CHECK(json_is_string(json_object_get(d, "path")));
		CHECK(json_array_size(json_object_get(d, "errors")) > 0);
		json_array_foreach(json_object_get(d, "errors"), j, e)
			CHECK(json_is_string(e) && json_string_length(e) > 0);
	}
}

static void check_string_map(json_t *v)
{
	const char *k;
	json_t *val;

	if (!v)
		return;
	CHECK(json_is_object(v));
	json_object_foreach(v, k, val)
		CHECK(json_is_string(val));
}

/* What validation promises app_from_json (which trusts it): the types are right. */
static void check_clean_types(json_t *clean)
{
	json_t *v, *p;
	size_t i;

	check_string_map(json_object_get(clean, "env"));
	check_string_map(json_object_get(clean, "labels"));
	v = json_object_get(clean, "cmd");
	CHECK(!v || json_is_string(v));
	json_array_foreach(json_object_get(clean, "args"), i, p)
		CHECK(json_is_string(p));
	json_array_foreach(json_object_get(clean, "portDefinitions"), i, p) {
		CHECK(json_is_integer(json_object_get(p, "port")));
		check_string_map(json_object_get(p, "labels"));
	}
	json_array_foreach(json_object_get(clean, "ports"), i, p)
		CHECK(json_is_integer(p));
}

static void check_equal(const struct app *a, const struct app *b)
{
	json_t *ja = app_to_json(a), *jb = app_to_json(b);

	CHECK(ja && jb);
	CHECK(!app_config_differs(a, b));
	CHECK(json_equal(ja, jb));
	json_decref(ja);
	json_decref(jb);
}

/* The served form, sent back as a PUT body, is valid and means the same app. */
static void check_put_back(const struct app *a)
{
	json_t *served = app_to_json(a), *clean = NULL, *details = NULL;
	struct app b;

	CHECK(served);
	CHECK(app_validate(served, NULL, &clean, &details) == 0);
	CHECK(app_from_json(clean, &b) == 0);
	check_equal(a, &b);
	app_free(&b);
	json_decref(clean);
	json_decref(served);
}

/* What the store writes and reads back after a restart. */
static void check_store_round_trip(const struct app *a)
{
	json_t *served = app_to_json(a), *loaded;
	char *text;
	struct app b;

	CHECK(served);
	text = json_dumps(served, JSON_COMPACT);
	CHECK(text);
	loaded = json_loads(text, 0, NULL);
	CHECK(loaded);
	CHECK(app_from_json(loaded, &b) == 0);
	check_equal(a, &b);
	app_free(&b);
	json_decref(loaded);
	free(text);
	json_decref(served);
}

static void one(json_t *def, const char *base)
{
	json_t *clean = NULL, *details = NULL, *cmd;
	struct app a;
	int rc = app_validate(def, base, &clean, &details);

	if (rc) {
		CHECK(rc == -EINVAL && !clean);
		check_details(details);
		json_decref(validation_body(details));
		return;
	}
	CHECK(!details && json_is_object(clean));
	check_clean_types(clean);
	CHECK(app_from_json(clean, &a) == 0);
	json_decref(clean);
	CHECK(a.id[0] == '/' && strlen(a.id) <= APP_ID_MAX);
	CHECK(a.cmd || json_array_size(a.args) > 0);
	CHECK(a.cpus >= 0 && a.mem >= 0 && a.disk >= 0 && a.instances >= 0);
	CHECK(a.port_count <= APP_MAX_PORTS);
	cmd = app_task_command(&a);
	CHECK(json_is_string(json_object_get(cmd, "value")));
	json_decref(cmd);
	check_put_back(&a);
	check_store_round_trip(&a);
	app_free(&a);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	json_t *def = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, NULL);

	if (!def)
		return 0;
	one(def, NULL);
	one(def, "/fuzz/group");
	json_decref(def);
	return 0;
}
