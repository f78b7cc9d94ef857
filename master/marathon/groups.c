/* groups.c - Marathon's groups: the registry of groups made through /v2/groups (sorted
 * list under the master lock, stored as kind "groups": {"id", "dependencies", "version"}),
 * the tree served by GET /v2/groups (those groups plus the ones implied by app ids: app
 * /a/b/c lives in /a and /a/b), and the dependency graph of all apps with group
 * dependencies applied (dependency_order.h). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "lib/log.h"
#include "master/marathon/dependency_order.h"
#include "master/marathon/group_validate.h"
#include "master/marathon/marathon_internal.h"

bool group_contains(const char *group, const char *id)
{
	size_t n = strlen(group);

	if (strcmp(group, "/") == 0)
		return id[0] == '/' && id[1] != '\0';
	return strncmp(id, group, n) == 0 && id[n] == '/';
}

struct mt_group *groups_find(struct marathon *mt, const char *id)
{
	for (struct mt_group *g = mt->groups; g; g = g->next)
		if (strcmp(g->id, id) == 0)
			return g;
	return NULL;
}

static int persist(struct marathon *mt, const struct mt_group *g)
{
	json_t *j = json_pack("{s:s, s:O, s:s}", "id", g->id, "dependencies", g->dependencies,
			      "version", g->version);
	int rc = j ? store_put(mt->store, KIND_GROUPS, g->id, j) : -ENOMEM;

	json_decref(j);
	if (rc)
		log_error("event=group_persist_failed group=%s error=%d", g->id, rc);
	return rc;
}

static struct mt_group *insert(struct marathon *mt, const char *id)
{
	struct mt_group *g = calloc(1, sizeof(*g)), **pp = &mt->groups;

	if (!g)
		return NULL;
	snprintf(g->id, sizeof(g->id), "%s", id);
	g->dependencies = json_array();
	if (!g->dependencies) {
		free(g);
		return NULL;
	}
	while (*pp && strcmp((*pp)->id, id) < 0)
		pp = &(*pp)->next;
	g->next = *pp;
	*pp = g;
	return g;
}

int groups_put(struct marathon *mt, const char *id, json_t *deps, const char *version)
{
	struct mt_group *g = groups_find(mt, id);

	if (!g)
		g = insert(mt, id);
	if (!g)
		return -ENOMEM;
	if (json_is_array(deps)) {
		json_t *copy = json_deep_copy(deps);

		if (!copy)
			return -ENOMEM;
		json_decref(g->dependencies);
		g->dependencies = copy;
	}
	snprintf(g->version, sizeof(g->version), "%s", version);
	return persist(mt, g);
}

void groups_remove_tree(struct marathon *mt, const char *id)
{
	for (struct mt_group **pp = &mt->groups; *pp;) {
		struct mt_group *g = *pp;

		if (strcmp(g->id, id) != 0 && !group_contains(id, g->id)) {
			pp = &g->next;
			continue;
		}
		*pp = g->next;
		store_del(mt->store, KIND_GROUPS, g->id);
		log_info("event=group_removed group=%s", g->id);
		json_decref(g->dependencies);
		free(g);
	}
}

/* A stored group is checked like a request's before it is trusted. */
static int load_one(const char *key, json_t *value, void *arg)
{
	struct marathon *mt = arg;
	json_t *clean = NULL, *details = NULL, *deps, *def;
	const char *version = json_string_value(json_object_get(value, "version"));
	struct mt_group *g;
	int rc;

	def = json_pack("{s:O, s:O}", "id", json_object_get(value, "id") ?: json_null(),
			"dependencies", json_object_get(value, "dependencies") ?: json_null());
	if (!def)
		return -ENOMEM;
	rc = group_validate(def, NULL, NULL, false, &clean, &details);
	json_decref(def);
	json_decref(details);
	if (rc == -ENOMEM)
		return rc;
	if (rc || strcmp(json_string_value(json_object_get(clean, "id")), key) != 0 ||
	    strcmp(key, "/") == 0) {
		log_error("event=group_load_failed group=%s", key);
		json_decref(clean);
		return 0;
	}
	deps = json_object_get(json_array_get(json_object_get(clean, "groups"), 0), "dependencies");
	g = insert(mt, key);
	if (g && json_is_array(deps)) {
		json_decref(g->dependencies);
		g->dependencies = json_incref(deps);
	}
	if (g)
		snprintf(g->version, sizeof(g->version), "%s", version ? version : "");
	json_decref(clean);
	return g ? 0 : -ENOMEM;
}

int groups_load(struct marathon *mt)
{
	int rc = store_scan(mt->store, KIND_GROUPS, load_one, mt);

	return rc < 0 ? rc : 0;
}

void groups_free_all(struct marathon *mt)
{
	while (mt->groups) {
		struct mt_group *g = mt->groups;

		mt->groups = g->next;
		json_decref(g->dependencies);
		free(g);
	}
}

bool group_exists(struct marathon *mt, const char *id)
{
	if (strcmp(id, "/") == 0 || groups_find(mt, id))
		return true;
	for (struct mt_app *ma = mt->apps; ma; ma = ma->next)
		if (group_contains(id, ma->app.id))
			return true;
	for (struct mt_group *g = mt->groups; g; g = g->next)
		if (group_contains(id, g->id))
			return true;
	return false;
}

/* ---- the served tree ---- */

/* Adds to set every group above id (the root excluded), and id itself if self. */
static void add_ancestors(json_t *set, const char *id, bool self)
{
	char buf[APP_ID_MAX + 2];

	snprintf(buf, sizeof(buf), "%s", id);
	if (!self)
		group_parent(id, buf, sizeof(buf));
	while (strcmp(buf, "/") != 0) {
		json_object_set_new(set, buf, json_true());
		group_parent(buf, buf, sizeof(buf));
	}
}

/* The newest version of anything in the group (ISO versions compare as text). */
static void group_version(struct marathon *mt, const char *id, char out[APP_VERSION_LEN])
{
	struct mt_group *own = groups_find(mt, id);

	snprintf(out, APP_VERSION_LEN, "%s", own ? own->version : "");
	for (struct mt_app *ma = mt->apps; ma; ma = ma->next)
		if (group_contains(id, ma->app.id) && strcmp(ma->app.version, out) > 0)
			snprintf(out, APP_VERSION_LEN, "%s", ma->app.version);
	for (struct mt_group *g = mt->groups; g; g = g->next)
		if (group_contains(id, g->id) && strcmp(g->version, out) > 0)
			snprintf(out, APP_VERSION_LEN, "%s", g->version);
	if (!out[0])
		snprintf(out, APP_VERSION_LEN, "1970-01-01T00:00:00.000Z");
}

static json_t *tree(struct marathon *mt, json_t *all, const char *id, unsigned embed)
{
	struct mt_group *own = groups_find(mt, id);
	char version[APP_VERSION_LEN], parent[APP_ID_MAX + 2];
	json_t *j, *apps, *groups;
	const char *gid;
	json_t *v;

	group_version(mt, id, version);
	j = json_pack("{s:s, s:o, s:s, s:b}", "id", id, "dependencies",
		      own ? json_incref(own->dependencies) : json_array(), "version", version,
		      "enforceRole", 0);
	if (!j)
		return NULL;
	if (embed & EMBED_APPS) {
		apps = json_array();
		for (struct mt_app *ma = mt->apps; apps && ma; ma = ma->next) {
			group_parent(ma->app.id, parent, sizeof(parent));
			if (strcmp(parent, id) == 0)
				json_array_append_new(apps, marathon_app_json(mt, ma,
									      embed & EMBED_TASKS));
		}
		json_object_set_new(j, "apps", apps);
	}
	if (embed & EMBED_GROUPS) {
		groups = json_array();
		json_object_foreach(all, gid, v) {
			group_parent(gid, parent, sizeof(parent));
			if (groups && strcmp(parent, id) == 0)
				json_array_append_new(groups, tree(mt, all, gid, embed));
		}
		json_object_set_new(j, "groups", groups);
	}
	if (embed & EMBED_PODS)
		json_object_set_new(j, "pods", json_array());
	return j;
}

json_t *group_json(struct marathon *mt, const char *id, unsigned embed)
{
	json_t *all, *j;

	if (!group_exists(mt, id))
		return NULL;
	all = json_object();
	if (!all)
		return NULL;
	for (struct mt_app *ma = mt->apps; ma; ma = ma->next)
		add_ancestors(all, ma->app.id, false);
	for (struct mt_group *g = mt->groups; g; g = g->next)
		add_ancestors(all, g->id, true);
	json_object_del(all, id);
	/* Children in id order, as the apps are. */
	j = tree(mt, all, id, embed);
	json_decref(all);
	return j;
}

/* ---- the dependency graph ---- */

int groups_depths(struct marathon *mt, json_t *app_edits, json_t *group_edits,
		  bool with_deleting, json_t **depth, char *cycle, size_t cycle_len)
{
	json_t *app_deps = json_object(), *group_deps = json_object(), *graph = NULL, *v;
	const char *k;
	int rc = -ENOMEM;

	*depth = NULL;
	if (!app_deps || !group_deps)
		goto out;
	for (struct mt_app *ma = mt->apps; ma; ma = ma->next)
		if (with_deleting || !ma->deleting)
			json_object_set(app_deps, ma->app.id, ma->app.dependencies);
	for (struct mt_group *g = mt->groups; g; g = g->next)
		json_object_set(group_deps, g->id, g->dependencies);
	json_object_foreach(app_edits, k, v) {
		if (json_is_null(v))
			json_object_del(app_deps, k);
		else
			json_object_set(app_deps, k, v);
	}
	json_object_foreach(group_edits, k, v) {
		if (json_is_null(v))
			json_object_del(group_deps, k);
		else
			json_object_set(group_deps, k, v);
	}
	graph = dep_graph_build(app_deps, group_deps);
	if (graph)
		rc = dep_depths(graph, depth, cycle, cycle_len);
out:
	json_decref(app_deps);
	json_decref(group_deps);
	json_decref(graph);
	return rc;
}

int groups_check_app_cycle(struct marathon *mt, const struct app *a, char *cycle, size_t len)
{
	json_t *edits, *depth = NULL;
	bool inherits = false;
	int rc;

	/* An app that depends on nothing, itself or through its groups, closes no cycle: the
	 * common case skips building the graph of every app. */
	for (struct mt_group *g = mt->groups; g && !inherits; g = g->next)
		inherits = json_array_size(g->dependencies) > 0 && group_contains(g->id, a->id);
	if (json_array_size(a->dependencies) == 0 && !inherits)
		return 0;
	edits = json_object();
	if (!edits)
		return -ENOMEM;
	json_object_set(edits, a->id, a->dependencies ? a->dependencies : json_array());
	rc = groups_depths(mt, edits, NULL, false, &depth, cycle, len);
	json_decref(edits);
	json_decref(depth);
	return rc;
}
