/* fuzz_group_validate.c - libFuzzer target for the group definition (POST/PUT /v2/groups
 * bodies): any bytes go through group_validate as POST at the root and as PUT to a group
 * (with scaleBy). A valid group must come out flat and resolved: every id absolute and
 * normalised, every app and group a direct child of a listed group, every app definition
 * valid again as POST /v2/apps would see it. Its dependency graph then either has a cycle
 * or orders a deployment so that each app's step comes after its dependencies' steps. */
/* fuzz-links: master/marathon/group_validate.c master/marathon/dependency_order.c master/marathon/app.c master/marathon/app_id.c master/marathon/app_validate.c master/marathon/health_checks.c master/marathon/constraint*.c */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "master/marathon/app_id.h"
#include "master/marathon/app_validate.h"
#include "master/marathon/dependency_order.h"
#include "master/marathon/group_validate.h"
#include "tests/fuzz/fuzz_common.h"

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

static void check_normal(const char *id)
{
	char out[APP_ID_MAX + 1], err[256];

	CHECK(id && id[0] == '/');
	if (strcmp(id, "/") == 0)
		return;
	CHECK(app_id_normalize(id, NULL, out, sizeof(out), err, sizeof(err)) == 0);
	CHECK(strcmp(out, id) == 0);
}

static void check_deps(json_t *deps)
{
	size_t i;
	json_t *d;

	CHECK(!deps || json_is_array(deps));
	json_array_foreach(deps, i, d)
		check_normal(json_string_value(d));
}

/* The parent of id is one of the listed groups. */
static void check_parent_listed(json_t *groups_by_id, const char *id)
{
	char parent[APP_ID_MAX + 2];

	group_parent(id, parent, sizeof(parent));
	CHECK(json_object_get(groups_by_id, parent));
}

static json_int_t step_of(json_t *steps, const char *app)
{
	size_t s, i;
	json_t *step, *a;
	json_int_t found = -1;

	json_array_foreach(steps, s, step) {
		json_array_foreach(step, i, a) {
			if (strcmp(json_string_value(json_object_get(a, "app")), app) == 0) {
				CHECK(found < 0);       /* each app once */
				found = (json_int_t)s;
			}
		}
	}
	return found;
}

static void check_order(json_t *out)
{
	json_t *app_deps = json_object(), *group_deps = json_object(), *changes = json_array();
	json_t *graph, *depth = NULL, *steps, *g, *a, *deps;
	const char *id;
	char cycle[APP_ID_MAX + 1];
	size_t i;
	int rc;

	CHECK(app_deps && group_deps && changes);
	json_array_foreach(json_object_get(out, "groups"), i, g)
		if (json_object_get(g, "dependencies"))
			json_object_set(group_deps, json_string_value(json_object_get(g, "id")),
					json_object_get(g, "dependencies"));
	json_array_foreach(json_object_get(out, "apps"), i, a) {
		id = json_string_value(json_object_get(a, "id"));
		deps = json_object_get(a, "dependencies");
		json_object_set_new(app_deps, id, deps ? json_incref(deps) : json_array());
		json_array_append_new(changes, json_pack("{s:s, s:s}", "action", "StartApplication",
							 "app", id));
	}
	graph = dep_graph_build(app_deps, group_deps);
	CHECK(graph);
	rc = dep_depths(graph, &depth, cycle, sizeof(cycle));
	CHECK(rc == 0 || rc == -ELOOP);
	if (rc == -ELOOP) {
		CHECK(!depth && json_object_get(graph, cycle));
		goto out;
	}
	steps = dep_plan_steps(changes, depth, NULL);
	CHECK(steps);
	json_object_foreach(graph, id, deps) {
		json_int_t mine = step_of(steps, id);
		json_t *d;
		size_t j;

		CHECK(mine >= 0);
		json_array_foreach(deps, j, d)
			CHECK(step_of(steps, json_string_value(d)) < mine);
	}
	json_decref(steps);
	json_decref(depth);
out:
	json_decref(graph);
	json_decref(app_deps);
	json_decref(group_deps);
	json_decref(changes);
}

static void check_valid(json_t *out)
{
	json_t *by_id = json_object(), *g, *a;
	size_t i;

	CHECK(by_id);
	check_normal(json_string_value(json_object_get(out, "id")));
	json_array_foreach(json_object_get(out, "groups"), i, g) {
		const char *id = json_string_value(json_object_get(g, "id"));

		check_normal(id);
		CHECK(!json_object_get(by_id, id));
		if (i > 0)
			check_parent_listed(by_id, id);
		else
			CHECK(strcmp(id, json_string_value(json_object_get(out, "id"))) == 0);
		check_deps(json_object_get(g, "dependencies"));
		json_object_set_new(by_id, id, json_true());
	}
	CHECK(json_array_size(json_object_get(out, "groups")) > 0);
	json_array_foreach(json_object_get(out, "apps"), i, a) {
		const char *id = json_string_value(json_object_get(a, "id"));
		json_t *clean = NULL, *details = NULL;

		check_normal(id);
		CHECK(!json_object_get(by_id, id));
		check_parent_listed(by_id, id);
		check_deps(json_object_get(a, "dependencies"));
		CHECK(app_validate(a, NULL, &clean, &details) == 0);
		/* Resolved once, the dependencies stay as they are. */
		CHECK(!json_object_get(a, "dependencies") ||
		      json_equal(json_object_get(clean, "dependencies"),
				 json_object_get(a, "dependencies")));
		json_decref(clean);
	}
	json_decref(by_id);
	check_order(out);
}

static void one(json_t *def, const char *group_id, bool allow_scale)
{
	json_t *out = NULL, *details = NULL;
	int rc = group_validate(def, group_id, NULL, allow_scale, &out, &details);

	if (rc) {
		CHECK(rc == -EINVAL && !out);
		check_details(details);
		json_decref(validation_body(details));
		return;
	}
	CHECK(!details && json_is_object(out));
	if (!allow_scale)
		CHECK(!json_object_get(out, "scaleBy"));
	check_valid(out);
	json_decref(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	json_t *def = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES, NULL);

	if (!def)
		return 0;
	one(def, NULL, false);
	one(def, "/fuzz/group", true);
	json_decref(def);
	return 0;
}
