/* test_marathon_groups.c - the pure parts of groups: ids in a group definition (relative,
 * absolute, "..", not a child), app and group dependencies resolved, the dependency graph
 * (group dependencies inherited, group targets expanded, depths, cycles) and the steps of
 * a group deployment (starts after dependencies, stops before them, one step per depth). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <string.h>

#include "master/marathon/app_validate.h"
#include "master/marathon/dependency_order.h"
#include "master/marathon/group_validate.h"

static json_t *parse(const char *text)
{
	json_error_t jerr;
	json_t *j = json_loads(text, 0, &jerr);

	if (!j)
		fail_msg("test JSON does not parse: %s (%s)", jerr.text, text);
	return j;
}

/* Validates text as POST /v2/groups (or PUT to group_id); returns the output or NULL. */
static json_t *validate(const char *text, const char *group_id, json_t **details)
{
	json_t *def = parse(text), *out = NULL;

	*details = NULL;
	group_validate(def, group_id, NULL, group_id != NULL, &out, details);
	json_decref(def);
	return out;
}

static bool has_error(json_t *details, const char *path, const char *part)
{
	size_t i, j;
	json_t *d, *e;

	json_array_foreach(details, i, d) {
		if (strcmp(json_string_value(json_object_get(d, "path")), path) != 0)
			continue;
		json_array_foreach(json_object_get(d, "errors"), j, e)
			if (strstr(json_string_value(e), part))
				return true;
	}
	return false;
}

static void expect_error(const char *text, const char *group_id, const char *path,
			 const char *part)
{
	json_t *details, *out = validate(text, group_id, &details);

	if (out)
		fail_msg("accepted: %s", text);
	if (!has_error(details, path, part)) {
		char *s = json_dumps(details, 0);

		fail_msg("no '%s' at %s for %s; details: %s", part, path, text, s);
	}
	json_decref(details);
}

static const char *app_id_at(json_t *out, size_t i)
{
	return json_string_value(json_object_get(json_array_get(json_object_get(out, "apps"), i),
						 "id"));
}

static void test_ids_resolved_in_their_group(void **state)
{
	json_t *details, *out = validate(
		"{\"id\":\"prod\",\"apps\":[{\"id\":\"web\",\"cmd\":\"x\"},"
		"{\"id\":\"/prod/api\",\"cmd\":\"x\",\"dependencies\":[\"db/pg\",\"../other\"]}],"
		"\"groups\":[{\"id\":\"db\",\"dependencies\":[\"../cache\"],"
		"\"apps\":[{\"id\":\"pg\",\"cmd\":\"x\"}]}]}", NULL, &details);
	json_t *groups, *deps;

	(void)state;
	assert_non_null(out);
	assert_string_equal(json_string_value(json_object_get(out, "id")), "/prod");
	assert_string_equal(app_id_at(out, 0), "/prod/web");
	assert_string_equal(app_id_at(out, 1), "/prod/api");
	assert_string_equal(app_id_at(out, 2), "/prod/db/pg");
	/* An app's relative dependency is resolved against the app's group. */
	deps = json_object_get(json_array_get(json_object_get(out, "apps"), 1), "dependencies");
	assert_string_equal(json_string_value(json_array_get(deps, 0)), "/prod/db/pg");
	assert_string_equal(json_string_value(json_array_get(deps, 1)), "/other");
	/* A group's against the group itself; top group first, then nested ones. */
	groups = json_object_get(out, "groups");
	assert_int_equal(json_array_size(groups), 2);
	assert_string_equal(json_string_value(json_object_get(json_array_get(groups, 1), "id")),
			    "/prod/db");
	deps = json_object_get(json_array_get(groups, 1), "dependencies");
	assert_string_equal(json_string_value(json_array_get(deps, 0)), "/prod/cache");
	assert_true(json_is_true(json_object_get(json_array_get(groups, 0), "apps_given")));
	assert_true(json_is_true(json_object_get(json_array_get(groups, 0), "groups_given")));
	assert_true(json_is_false(json_object_get(json_array_get(groups, 1), "groups_given")));
	assert_null(json_object_get(json_array_get(groups, 0), "dependencies"));
	json_decref(out);
}

static void test_put_takes_the_path_id(void **state)
{
	json_t *details, *out = validate("{\"apps\":[{\"id\":\"a\",\"cmd\":\"x\"}]}", "/p/q",
					 &details);

	(void)state;
	assert_non_null(out);
	assert_string_equal(app_id_at(out, 0), "/p/q/a");
	assert_false(json_is_true(json_object_get(json_array_get(json_object_get(out, "groups"), 0),
						  "groups_given")));
	json_decref(out);
	out = validate("{\"scaleBy\":1.5}", "/p", &details);
	assert_non_null(out);
	assert_true(json_number_value(json_object_get(out, "scaleBy")) == 1.5);
	json_decref(out);
}

static void test_group_parent_walks_up_in_place(void **state)
{
	char id[32] = "/a/bb/c";

	(void)state;
	group_parent(id, id, sizeof(id));
	assert_string_equal(id, "/a/bb");
	group_parent(id, id, sizeof(id));
	assert_string_equal(id, "/a");
	group_parent(id, id, sizeof(id));
	assert_string_equal(id, "/");
	group_parent(id, id, sizeof(id));
	assert_string_equal(id, "/");
	/* An id without a leading slash (only a hand-edited store has one) still ends at the
	 * root: a walk up must terminate (the fuzzer found one that never did). */
	snprintf(id, sizeof(id), "fz/app0");
	group_parent(id, id, sizeof(id));
	assert_string_equal(id, "fz");
	group_parent(id, id, sizeof(id));
	assert_string_equal(id, "/");
}

static void test_bad_groups_name_their_path(void **state)
{
	(void)state;
	expect_error("{\"apps\":[]}", NULL, "/id", "error.path.missing");
	expect_error("{\"id\":\"/prod\",\"apps\":[{\"id\":\"/other/web\",\"cmd\":\"x\"}]}", NULL,
		     "/apps(0)/id", "is not child of /prod");
	expect_error("{\"id\":\"/prod\",\"apps\":[{\"id\":\"a/b\",\"cmd\":\"x\"}]}", NULL,
		     "/apps(0)/id", "is not child of /prod");
	expect_error("{\"id\":\"/prod\",\"groups\":[{\"id\":\"/elsewhere\"}]}", NULL,
		     "/groups(0)/id", "is not child");
	expect_error("{\"id\":\"/prod\",\"apps\":[{\"id\":\"web\",\"cpus\":-1,\"cmd\":\"x\"}]}",
		     NULL, "/apps(0)/cpus", "expected");
	expect_error("{\"id\":\"/prod\",\"groups\":[{\"id\":\"g\",\"apps\":[{\"id\":\"w\"}]}]}",
		     NULL, "/groups(0)/apps(0)", "'cmd' or 'args'");
	expect_error("{\"id\":\"/prod\",\"apps\":[{\"id\":\"w\",\"cmd\":\"x\"}],"
		     "\"groups\":[{\"id\":\"w\"}]}", NULL, "/groups(0)/id", "same identifier");
	expect_error("{\"id\":\"/prod\",\"apps\":[{\"id\":\"w\",\"cmd\":\"x\"},"
		     "{\"id\":\"w\",\"cmd\":\"y\"}]}", NULL, "/apps(1)/id", "same identifier");
	expect_error("{\"id\":\"/p\",\"dependencies\":[\"Bad_Id\"]}", NULL, "/dependencies(0)",
		     "must fully match");
	expect_error("{\"id\":\"/p\",\"dependencies\":\"x\"}", NULL, "/dependencies",
		     "error.expected.jsarray");
	expect_error("{\"id\":\"/p\",\"apps\":{}}", NULL, "/apps", "error.expected.jsarray");
	expect_error("{\"id\":\"/p\",\"pods\":[{}]}", NULL, "/pods", "not supported");
	expect_error("{\"id\":\"/p\",\"color\":1}", NULL, "/color", "unknown field");
	expect_error("{\"id\":\"/p\",\"scaleBy\":2}", NULL, "/scaleBy", "unknown field");
	expect_error("{\"scaleBy\":0}", "/p", "/scaleBy", "greater than 0");
	expect_error("{\"scaleBy\":2,\"apps\":[]}", "/p", "/scaleBy", "cannot be combined");
	expect_error("{\"id\":\"/q\"}", "/p", "/id", "does not match");
	expect_error("[]", NULL, "/", "error.expected.jsobject");
}

static void test_nesting_is_bounded(void **state)
{
	char buf[4096] = "{\"id\":\"/a\"";
	size_t n = strlen(buf);

	(void)state;
	for (int i = 0; i <= GROUP_MAX_DEPTH + 1; i++)
		n += (size_t)snprintf(buf + n, sizeof(buf) - n, ",\"groups\":[{\"id\":\"g\"");
	for (int i = 0; i <= GROUP_MAX_DEPTH + 1; i++)
		n += (size_t)snprintf(buf + n, sizeof(buf) - n, "}]");
	snprintf(buf + n, sizeof(buf) - n, "}");
	{
		json_t *details, *out = validate(buf, NULL, &details);
		char *s = json_dumps(details, 0);

		assert_null(out);
		assert_non_null(strstr(s, "nest at most"));
		free(s);
		json_decref(details);
	}
}

static void test_app_dependencies_validated(void **state)
{
	json_t *def = parse("{\"id\":\"/prod/web\",\"cmd\":\"x\",\"dependencies\":[\"db\",\"/a/b\",1]}");
	json_t *out = NULL, *details = NULL;

	(void)state;
	assert_int_equal(app_validate(def, NULL, &out, &details), -EINVAL);
	assert_true(has_error(details, "/dependencies(2)", "error.expected.jsstring"));
	json_decref(details);
	json_array_remove(json_object_get(def, "dependencies"), 2);
	assert_int_equal(app_validate(def, NULL, &out, &details), 0);
	assert_string_equal(json_string_value(json_array_get(json_object_get(out, "dependencies"), 0)),
			    "/prod/db");
	json_decref(out);
	json_decref(def);
}

/* ---- the graph ---- */

static json_int_t depth_of(json_t *depth, const char *id)
{
	json_t *v = json_object_get(depth, id);

	if (!v)
		fail_msg("no depth for %s", id);
	return json_integer_value(v);
}

static void test_group_dependencies_are_inherited_and_expanded(void **state)
{
	/* The apps of /svc depend (through their group) on every app of /db; /db/pg on /cache. */
	json_t *apps = parse("{\"/db/pg\":[\"/cache\"],\"/db/mongo\":[],\"/cache\":[],"
			     "\"/svc/web\":[],\"/svc/api\":[\"/svc/web\",\"/nothing\"]}");
	json_t *groups = parse("{\"/svc\":[\"/db\"]}");
	json_t *graph = dep_graph_build(apps, groups), *depth = NULL;
	char cycle[64] = "";

	(void)state;
	assert_non_null(graph);
	assert_int_equal(json_array_size(json_object_get(graph, "/svc/web")), 2);
	assert_int_equal(json_array_size(json_object_get(graph, "/svc/api")), 3);
	assert_int_equal(dep_depths(graph, &depth, cycle, sizeof(cycle)), 0);
	assert_int_equal(depth_of(depth, "/cache"), 0);
	assert_int_equal(depth_of(depth, "/db/mongo"), 0);
	assert_int_equal(depth_of(depth, "/db/pg"), 1);
	assert_int_equal(depth_of(depth, "/svc/web"), 2);
	assert_int_equal(depth_of(depth, "/svc/api"), 3);
	json_decref(depth);
	json_decref(graph);
	json_decref(apps);
	json_decref(groups);
}

static void test_cycles_are_found(void **state)
{
	json_t *apps = parse("{\"/a\":[\"/b\"],\"/b\":[\"/c\"],\"/c\":[\"/a\"],\"/d\":[]}");
	json_t *graph = dep_graph_build(apps, NULL), *depth = (json_t *)1;
	char cycle[64] = "";

	(void)state;
	assert_int_equal(dep_depths(graph, &depth, cycle, sizeof(cycle)), -ELOOP);
	assert_null(depth);
	assert_true(cycle[0] == '/' && strchr("abc", cycle[1]));
	json_decref(graph);
	json_decref(apps);
	/* A group depending on its own subgroup makes that subgroup's apps a cycle... */
	apps = parse("{\"/g/s/x\":[],\"/g/s/y\":[]}");
	json_t *groups = parse("{\"/g\":[\"/g/s\"]}");

	graph = dep_graph_build(apps, groups);
	assert_int_equal(dep_depths(graph, &depth, cycle, sizeof(cycle)), -ELOOP);
	json_decref(graph);
	json_decref(apps);
	json_decref(groups);
	/* ...but an app never depends on itself alone. */
	apps = parse("{\"/g/x\":[\"/g\",\"/g/x\"]}");
	graph = dep_graph_build(apps, NULL);
	assert_int_equal(dep_depths(graph, &depth, cycle, sizeof(cycle)), 0);
	assert_int_equal(depth_of(depth, "/g/x"), 0);
	json_decref(depth);
	json_decref(graph);
	json_decref(apps);
}

static void test_long_chain_has_no_recursion_limit(void **state)
{
	json_t *apps = json_object(), *graph, *depth = NULL;
	char id[32], dep[32];

	(void)state;
	for (int i = 0; i < 5000; i++) {
		snprintf(id, sizeof(id), "/a%d", i);
		snprintf(dep, sizeof(dep), "/a%d", i - 1);
		json_object_set_new(apps, id, i ? json_pack("[s]", dep) : json_array());
	}
	graph = dep_graph_build(apps, NULL);
	assert_int_equal(dep_depths(graph, &depth, id, sizeof(id)), 0);
	assert_int_equal(depth_of(depth, "/a4999"), 4999);
	json_decref(depth);
	json_decref(graph);
	json_decref(apps);
}

/* ---- deployment steps ---- */

static const char *step_app(json_t *steps, size_t s, size_t i)
{
	return json_string_value(json_object_get(json_array_get(json_array_get(steps, s), i), "app"));
}

static void test_plan_steps_follow_dependencies(void **state)
{
	json_t *changes = parse("[{\"action\":\"StartApplication\",\"app\":\"/b\"},"
				"{\"action\":\"StartApplication\",\"app\":\"/a\"},"
				"{\"action\":\"ScaleApplication\",\"app\":\"/c\"},"
				"{\"action\":\"StopApplication\",\"app\":\"/x\"},"
				"{\"action\":\"StopApplication\",\"app\":\"/y\"}]");
	json_t *start = parse("{\"/a\":0,\"/b\":2,\"/c\":0}");
	json_t *stop = parse("{\"/x\":0,\"/y\":3}");
	json_t *steps = dep_plan_steps(changes, start, stop);

	(void)state;
	/* Stops first, dependents (deeper) first; then starts by depth; depth 1 is empty. */
	assert_int_equal(json_array_size(steps), 4);
	assert_string_equal(step_app(steps, 0, 0), "/y");
	assert_string_equal(step_app(steps, 1, 0), "/x");
	assert_int_equal(json_array_size(json_array_get(steps, 2)), 2);
	assert_string_equal(step_app(steps, 2, 0), "/a");
	assert_string_equal(step_app(steps, 2, 1), "/c");
	assert_string_equal(step_app(steps, 3, 0), "/b");
	assert_string_equal(json_string_value(json_object_get(
				    json_array_get(json_array_get(steps, 3), 0), "action")),
			    "StartApplication");
	json_decref(steps);
	/* No changes: no steps. */
	json_decref(changes);
	changes = json_array();
	steps = dep_plan_steps(changes, NULL, NULL);
	assert_int_equal(json_array_size(steps), 0);
	json_decref(steps);
	json_decref(changes);
	json_decref(start);
	json_decref(stop);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ids_resolved_in_their_group),
		cmocka_unit_test(test_put_takes_the_path_id),
		cmocka_unit_test(test_group_parent_walks_up_in_place),
		cmocka_unit_test(test_bad_groups_name_their_path),
		cmocka_unit_test(test_nesting_is_bounded),
		cmocka_unit_test(test_app_dependencies_validated),
		cmocka_unit_test(test_group_dependencies_are_inherited_and_expanded),
		cmocka_unit_test(test_cycles_are_found),
		cmocka_unit_test(test_long_chain_has_no_recursion_limit),
		cmocka_unit_test(test_plan_steps_follow_dependencies),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
