/* dependency_order.h - Marathon's dependency graph, pure (no master state): which apps an
 * app depends on once group dependencies and group targets are expanded, how deep each
 * app sits in the graph (cycles found), and the steps of a deployment in that order.
 * Ids are normalised absolute paths; the graph is given and returned as JSON objects
 * (app id -> ...), so callers build it from the registry or from a request alike. */
#ifndef PACER_MARATHON_DEPENDENCY_ORDER_H
#define PACER_MARATHON_DEPENDENCY_ORDER_H

#include <stddef.h>
#include <jansson.h>

/* The effective graph: app id -> array of app ids it depends on (new reference).
 * app_deps: app id -> array of dependency ids (apps or groups, absolute);
 * group_deps: group id -> array of dependency ids (may be NULL).
 * An app inherits the dependencies of every group above it; a dependency naming a group
 * means every app under that group; one naming nothing known is ignored; an app never
 * depends on itself. NULL on ENOMEM. */
json_t *dep_graph_build(json_t *app_deps, json_t *group_deps);

/* Depth of every app of graph (dep_graph_build's form): 0 when it depends on no app,
 * else one more than its deepest dependency. *depth is a new object app id -> integer.
 * Returns 0, -ELOOP when the graph has a cycle (cycle_app names an app on one; *depth
 * NULL), or -ENOMEM. */
int dep_depths(json_t *graph, json_t **depth, char *cycle_app, size_t len);

/* The steps of a deployment (new reference): an array of steps, each an array of
 * {"action", "app"}. changes: array of {"action", "app"}. "StopApplication" actions come
 * first, deepest (in stop_depth) first, so an app stops only after the apps that depend
 * on it; the others follow by ascending start_depth, so an app starts after its
 * dependencies. Apps of equal depth share a step; empty depths make no step. An app
 * missing from its depth object counts as depth 0. NULL on ENOMEM. */
json_t *dep_plan_steps(json_t *changes, json_t *start_depth, json_t *stop_depth);

#endif
