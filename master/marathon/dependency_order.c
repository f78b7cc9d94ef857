/* dependency_order.c - the dependency graph: expansion of group dependencies, depths by
 * Kahn's algorithm (no recursion, so a deep chain from the network cannot exhaust the
 * stack; what is left unvisited lies on or behind a cycle), and deployment steps. */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "master/marathon/dependency_order.h"

/* id lies strictly under group ("/" holds every id). */
static bool under(const char *id, const char *group)
{
	size_t n = strlen(group);

	if (strcmp(group, "/") == 0)
		return id[0] == '/' && id[1] != '\0';
	return strncmp(id, group, n) == 0 && id[n] == '/';
}

/* Adds to set the apps dep names (an app, or the apps of a group), self excepted. */
static int add_targets(json_t *app_deps, const char *self, const char *dep, json_t *set)
{
	const char *k;
	json_t *v;

	if (json_object_get(app_deps, dep)) {
		if (strcmp(dep, self) != 0 && json_object_set_new(set, dep, json_true()))
			return -ENOMEM;
		return 0;
	}
	json_object_foreach(app_deps, k, v) {
		if (strcmp(k, self) != 0 && under(k, dep) &&
		    json_object_set_new(set, k, json_true()))
			return -ENOMEM;
	}
	return 0;
}

static int add_all(json_t *app_deps, const char *self, json_t *deps, json_t *set)
{
	size_t i;
	json_t *d;

	json_array_foreach(deps, i, d) {
		if (json_is_string(d) && add_targets(app_deps, self, json_string_value(d), set))
			return -ENOMEM;
	}
	return 0;
}

json_t *dep_graph_build(json_t *app_deps, json_t *group_deps)
{
	json_t *graph = json_object(), *deps, *gdeps;
	const char *id, *gid;

	if (!graph)
		return NULL;
	json_object_foreach(app_deps, id, deps) {
		json_t *set = json_object(), *arr = json_array();
		const char *k;
		json_t *v;
		int rc = set && arr ? 0 : -ENOMEM;

		if (!rc)
			rc = add_all(app_deps, id, deps, set);
		json_object_foreach(group_deps, gid, gdeps) {
			if (!rc && under(id, gid))
				rc = add_all(app_deps, id, gdeps, set);
		}
		json_object_foreach(set, k, v) {
			if (!rc && json_array_append_new(arr, json_string(k)))
				rc = -ENOMEM;
		}
		json_decref(set);
		if (rc || json_object_set_new(graph, id, arr)) {
			if (rc)
				json_decref(arr);
			json_decref(graph);
			return NULL;
		}
	}
	return graph;
}

int dep_depths(json_t *graph, json_t **depth, char *cycle_app, size_t len)
{
	json_t *left = json_object(), *dependents = json_object(), *queue = json_array();
	json_t *out = json_object(), *deps, *d;
	const char *id;
	size_t i, done = 0;
	int rc = -ENOMEM;

	*depth = NULL;
	if (!left || !dependents || !queue || !out)
		goto out;
	/* left: dependencies not placed yet; dependents: the reverse edges. */
	json_object_foreach(graph, id, deps) {
		json_int_t n = 0;

		json_array_foreach(deps, i, d) {
			const char *to = json_string_value(d);
			json_t *rev;

			if (!to || !json_object_get(graph, to))
				continue;
			n++;
			rev = json_object_get(dependents, to);
			if (!rev) {
				rev = json_array();
				if (json_object_set_new(dependents, to, rev))
					goto out;
			}
			if (json_array_append_new(rev, json_string(id)))
				goto out;
		}
		if (json_object_set_new(left, id, json_integer(n)))
			goto out;
		if (n == 0 && (json_array_append_new(queue, json_string(id)) ||
			       json_object_set_new(out, id, json_integer(0))))
			goto out;
	}
	for (i = 0; i < json_array_size(queue); i++) {
		const char *cur = json_string_value(json_array_get(queue, i));
		json_int_t next = json_integer_value(json_object_get(out, cur)) + 1;
		size_t j;

		done++;
		json_array_foreach(json_object_get(dependents, cur), j, d) {
			const char *dep = json_string_value(d);
			json_int_t n = json_integer_value(json_object_get(left, dep)) - 1;
			json_t *have = json_object_get(out, dep);

			if ((!have || json_integer_value(have) < next) &&
			    json_object_set_new(out, dep, json_integer(next)))
				goto out;
			if (json_object_set_new(left, dep, json_integer(n)))
				goto out;
			if (n == 0 && json_array_append_new(queue, json_string(dep)))
				goto out;
		}
	}
	if (done < json_object_size(graph)) {
		json_object_foreach(left, id, d) {
			if (json_integer_value(d) > 0) {
				snprintf(cycle_app, len, "%s", id);
				break;
			}
		}
		rc = -ELOOP;
		goto out;
	}
	*depth = out;
	out = NULL;
	rc = 0;
out:
	json_decref(left);
	json_decref(dependents);
	json_decref(queue);
	json_decref(out);
	return rc;
}

static json_int_t depth_of(json_t *depth, const char *app)
{
	json_int_t d = json_integer_value(json_object_get(depth, app));

	return d > 0 ? d : 0;
}

/* Appends the step of changes at depth d (stops or not) if it has any action. */
static int add_step(json_t *steps, json_t *changes, json_t *depth, bool stops, json_int_t d)
{
	json_t *step = json_array(), *c;
	size_t i;

	if (!step)
		return -ENOMEM;
	json_array_foreach(changes, i, c) {
		const char *act = json_string_value(json_object_get(c, "action"));
		const char *app = json_string_value(json_object_get(c, "app"));
		bool stop = act && strcmp(act, "StopApplication") == 0;

		if (!act || !app || stop != stops || depth_of(depth, app) != d)
			continue;
		if (json_array_append_new(step, json_pack("{s:s, s:s}", "action", act, "app", app))) {
			json_decref(step);
			return -ENOMEM;
		}
	}
	if (json_array_size(step) == 0) {
		json_decref(step);
		return 0;
	}
	return json_array_append_new(steps, step) ? -ENOMEM : 0;
}

json_t *dep_plan_steps(json_t *changes, json_t *start_depth, json_t *stop_depth)
{
	json_t *steps = json_array(), *c;
	json_int_t max_start = 0, max_stop = 0;
	size_t i;

	if (!steps)
		return NULL;
	json_array_foreach(changes, i, c) {
		const char *act = json_string_value(json_object_get(c, "action"));
		const char *app = json_string_value(json_object_get(c, "app"));

		if (!act || !app)
			continue;
		if (strcmp(act, "StopApplication") == 0) {
			if (depth_of(stop_depth, app) > max_stop)
				max_stop = depth_of(stop_depth, app);
		} else if (depth_of(start_depth, app) > max_start) {
			max_start = depth_of(start_depth, app);
		}
	}
	for (json_int_t d = max_stop; d >= 0; d--)
		if (add_step(steps, changes, stop_depth, true, d))
			goto nomem;
	for (json_int_t d = 0; d <= max_start; d++)
		if (add_step(steps, changes, start_depth, false, d))
			goto nomem;
	return steps;
nomem:
	json_decref(steps);
	return NULL;
}
