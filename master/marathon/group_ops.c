/* group_ops.c - changes to groups as Marathon makes them: one new version, the apps of the
 * group created, updated, scaled or stopped in the registry and the store, and ONE
 * deployment whose steps follow the dependency graph (starts after their dependencies,
 * stops before them; dependency_order.h). Every app the change touches must be free of
 * other deployments (409), unless force cancels them. PUT semantics are Marathon's: a
 * group that lists "apps" replaces its direct apps (the others stop), one that lists
 * "groups" replaces its subgroups; a field left out keeps what is there. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "lib/log.h"
#include "master/marathon/dependency_order.h"
#include "master/marathon/group_validate.h"
#include "master/marathon/marathon_internal.h"

#define CYCLE_MESSAGE "Dependency graph has cyclic dependencies."

struct plan {
	json_t *changes;                /* [{"action", "app"}] */
	json_t *originals;              /* app id -> the app before (absent: created) */
};

static int plan_init(struct plan *p)
{
	p->changes = json_array();
	p->originals = json_object();
	return p->changes && p->originals ? 0 : -ENOMEM;
}

static void plan_free(struct plan *p)
{
	json_decref(p->changes);
	json_decref(p->originals);
}

/* original is borrowed (NULL: the change creates the app). */
static int plan_add(struct plan *p, const char *app, enum deploy_action act, json_t *original)
{
	if (json_array_append_new(p->changes, json_pack("{s:s, s:s}", "action",
							deploy_action_name(act), "app", app)))
		return -ENOMEM;
	if (original && json_object_set(p->originals, app, original))
		return -ENOMEM;
	return 0;
}

/* Starts the plan's deployment. stop_depth: the graph before the change (stops go
 * dependents first); starts follow the graph after it. */
static struct deployment *plan_start(struct marathon *mt, struct plan *p, json_t *stop_depth,
				     const char *version)
{
	json_t *start_depth = NULL, *steps, *step, *act;
	struct deploy_item *items;
	char cycle[APP_ID_MAX + 1];
	size_t s, i;
	int n = 0;

	/* Cycles were refused before the change; were one there, every app counts depth 0. */
	groups_depths(mt, NULL, NULL, false, &start_depth, cycle, sizeof(cycle));
	steps = dep_plan_steps(p->changes, start_depth, stop_depth);
	json_decref(start_depth);
	if (!steps)
		return NULL;
	items = calloc(json_array_size(p->changes) + 1, sizeof(*items));
	if (!items) {
		json_decref(steps);
		return NULL;
	}
	json_array_foreach(steps, s, step) {
		json_array_foreach(step, i, act) {
			const char *app = json_string_value(json_object_get(act, "app"));
			json_t *orig = json_object_get(p->originals, app);

			snprintf(items[n].app_id, sizeof(items[n].app_id), "%s", app);
			items[n].action = (enum deploy_action)deploy_action_parse(
				json_string_value(json_object_get(act, "action")));
			items[n].step = (int)s;
			items[n].original = orig ? json_incref(orig) : NULL;
			n++;
		}
	}
	s = json_array_size(steps);
	json_decref(steps);
	return deployment_start_plan(mt, items, n, (int)s, version);
}

static void fail(struct group_result *r, int status, json_t *body)
{
	r->status = status;
	r->body = body;
}

static void fail_invalid(struct group_result *r, const char *path, const char *fmt,
			 const char *arg1, const char *arg2)
{
	json_t *d = json_array();

	validation_add(d, path, fmt, arg1, arg2);
	fail(r, 422, validation_body(d));
}

/* Every app in ids must be free of deployments; force cancels the ones holding them. */
static int take_locks(struct marathon *mt, json_t *ids, bool force, struct group_result *r)
{
	struct deployment *d;
	size_t i;
	json_t *id;

	json_array_foreach(ids, i, id) {
		d = deployment_for_app(mt, json_string_value(id));
		if (d && !force) {
			fail(r, 409, deployment_locked_body(d));
			return -EBUSY;
		}
	}
	json_array_foreach(ids, i, id) {
		while ((d = deployment_for_app(mt, json_string_value(id))))
			deployment_finish(mt, d, false);
	}
	return 0;
}

/* Depths of the graph as it is (with the apps being stopped), NULL after a cycle. */
static json_t *depths_now(struct marathon *mt)
{
	json_t *depth = NULL;
	char cycle[APP_ID_MAX + 1];

	groups_depths(mt, NULL, NULL, true, &depth, cycle, sizeof(cycle));
	return depth;
}

/* Marks the app for stopping and adds the stop to the plan. */
static int plan_stop(struct plan *p, struct mt_app *ma)
{
	json_t *orig = app_to_json(&ma->app);
	int rc = orig ? plan_add(p, ma->app.id, ACT_STOP, orig) : -ENOMEM;

	json_decref(orig);
	if (!rc) {
		ma->deleting = true;
		log_info("event=app_deleting app=%s", ma->app.id);
	}
	return rc;
}

/* Replaces ma's definition with a (consumed) and adds the change to the plan. */
static int plan_update(struct marathon *mt, struct plan *p, struct mt_app *ma, struct app *a,
		       const char *version)
{
	enum deploy_action act;
	json_t *orig = NULL;
	int rc = app_apply_update(mt, ma, a, version, &act, &orig);

	if (!rc)
		rc = plan_add(p, ma->app.id, act, orig);
	json_decref(orig);
	return rc;
}

static int plan_create(struct marathon *mt, struct plan *p, struct app *a, const char *version)
{
	char id[APP_ID_MAX + 1];
	int rc;

	memcpy(id, a->id, sizeof(id));
	rc = app_apply_create(mt, a, version);
	if (!rc)
		rc = plan_add(p, id, ACT_START, NULL);
	return rc;
}

/* ---- PUT {"scaleBy": f} ---- */

static int scale_group(struct marathon *mt, const char *top, double factor, bool force,
		       struct group_result *r)
{
	json_t *ids = json_array(), *stop_depth = NULL, *id;
	char version[APP_VERSION_LEN];
	struct plan p = { 0 };
	size_t i;
	int rc = -ENOMEM;

	if (!ids || plan_init(&p))
		goto out;
	for (struct mt_app *ma = mt->apps; ma; ma = ma->next) {
		double n = ceil(ma->app.instances * factor - 1e-9);
		char got[32];

		if (ma->deleting || !group_contains(top, ma->app.id) || n == ma->app.instances)
			continue;
		/* Scaling again and again must not take an app past what a definition may
		 * ask for (nor past an int). */
		if (n > APP_MAX_INSTANCES) {
			snprintf(got, sizeof(got), "%.0f", n);
			fail_invalid(r, "/scaleBy", "would give %s %s instances, more than 10000",
				     ma->app.id, got);
			rc = -EINVAL;
			goto out;
		}
		json_array_append_new(ids, json_string(ma->app.id));
	}
	rc = take_locks(mt, ids, force, r);
	if (rc)
		goto out;
	marathon_new_version(mt, version);
	json_array_foreach(ids, i, id) {
		struct mt_app *ma = apps_find(mt, json_string_value(id));
		struct app a;

		rc = app_copy(&a, &ma->app);
		if (rc)
			goto out;
		a.instances = (int)ceil(ma->app.instances * factor - 1e-9);
		rc = plan_update(mt, &p, ma, &a, version);
		app_free(&a);
		if (rc)
			goto out;
	}
	r->d = plan_start(mt, &p, stop_depth, version);
	rc = r->d ? 0 : -ENOMEM;
	log_info("event=group_scaled group=%s factor=%g apps=%zu", top, factor,
		 json_array_size(ids));
out:
	json_decref(ids);
	plan_free(&p);
	return rc;
}

/* ---- POST / PUT with a definition ---- */

struct change {
	json_t *val;                    /* group_validate's output */
	const char *top;
	json_t *given;                  /* body group id -> its entry */
	json_t *body_apps;              /* app id -> clean definition */
	json_t *stop;                   /* app ids to stop */
	json_t *drop_groups;            /* stored group ids to forget */
	json_t *app_edits, *group_edits;/* for the cycle check (groups_depths) */
	json_t *touched;                /* app ids whose deployments matter */
	struct app *parsed;             /* one per body app, in val's order */
	bool *changed;
	size_t n_apps;
};

/* The deepest group of the body above id (the top group at least). */
static json_t *deepest_given(struct change *c, const char *id)
{
	char g[APP_ID_MAX + 2];

	group_parent(id, g, sizeof(g));
	for (;;) {
		json_t *e = json_object_get(c->given, g);

		if (e || strcmp(g, "/") == 0)
			return e;
		group_parent(g, g, sizeof(g));
	}
}

/* What a PUT takes away: apps and stored groups under the top group that the body no
 * longer lists where it lists a group's apps or subgroups. */
static void find_removed(struct marathon *mt, struct change *c)
{
	for (struct mt_app *ma = mt->apps; ma; ma = ma->next) {
		char parent[APP_ID_MAX + 2];
		json_t *b;
		bool gone;

		if (!group_contains(c->top, ma->app.id) || json_object_get(c->body_apps, ma->app.id))
			continue;
		b = deepest_given(c, ma->app.id);
		group_parent(ma->app.id, parent, sizeof(parent));
		gone = strcmp(parent, json_string_value(json_object_get(b, "id"))) == 0
			       ? json_is_true(json_object_get(b, "apps_given"))
			       : json_is_true(json_object_get(b, "groups_given"));
		if (gone) {
			json_array_append_new(c->stop, json_string(ma->app.id));
			json_object_set_new(c->app_edits, ma->app.id, json_null());
		}
	}
	for (struct mt_group *g = mt->groups; g; g = g->next) {
		if (!group_contains(c->top, g->id) || json_object_get(c->given, g->id))
			continue;
		if (json_is_true(json_object_get(deepest_given(c, g->id), "groups_given"))) {
			json_array_append_new(c->drop_groups, json_string(g->id));
			json_object_set_new(c->group_edits, g->id, json_null());
		}
	}
}

static bool in_list(json_t *arr, const char *s)
{
	size_t i;
	json_t *v;

	json_array_foreach(arr, i, v)
		if (strcmp(json_string_value(v), s) == 0)
			return true;
	return false;
}

/* An id the body gives a group (or an app) must not be an app (or group) that stays. */
static int check_conflicts(struct marathon *mt, struct change *c, struct group_result *r)
{
	char p[APP_ID_MAX + 2];
	const char *id;
	json_t *v;

	snprintf(p, sizeof(p), "%s", c->top);
	for (; strcmp(p, "/") != 0; group_parent(p, p, sizeof(p))) {
		if (apps_find(mt, p)) {
			fail_invalid(r, "/id", "'%s' conflicts with the existing app '%s': an app "
				     "cannot also be a group", c->top, p);
			return -EINVAL;
		}
	}
	json_object_foreach(c->given, id, v) {
		if (apps_find(mt, id) && !in_list(c->stop, id)) {
			fail_invalid(r, "/groups", "'%s' conflicts with the existing app '%s': an "
				     "app cannot also be a group", id, id);
			return -EINVAL;
		}
	}
	json_object_foreach(c->body_apps, id, v) {
		if (groups_find(mt, id) && !in_list(c->drop_groups, id)) {
			fail_invalid(r, "/apps", "'%s' conflicts with the existing group '%s': an "
				     "app cannot also be a group", id, id);
			return -EINVAL;
		}
		for (struct mt_app *ma = mt->apps; ma; ma = ma->next) {
			if (group_contains(id, ma->app.id) && !in_list(c->stop, ma->app.id)) {
				fail_invalid(r, "/apps", "'%s' conflicts with the existing app '%s': "
					     "an app cannot also be a group", id, ma->app.id);
				return -EINVAL;
			}
		}
	}
	return 0;
}

/* Parses the body's apps; marks the ones that differ from the registry's. */
static int parse_apps(struct marathon *mt, struct change *c)
{
	json_t *apps = json_object_get(c->val, "apps"), *def;
	size_t i;
	int rc;

	c->n_apps = json_array_size(apps);
	c->parsed = calloc(c->n_apps + 1, sizeof(*c->parsed));
	c->changed = calloc(c->n_apps + 1, sizeof(*c->changed));
	if (!c->parsed || !c->changed)
		return -ENOMEM;
	json_array_foreach(apps, i, def) {
		struct app *a = &c->parsed[i];
		struct mt_app *ma;

		rc = app_from_json(def, a);
		if (rc)
			return rc;
		ma = apps_find(mt, a->id);
		c->changed[i] = !ma || ma->deleting || a->instances != ma->app.instances ||
				app_config_differs(&ma->app, a) ||
				!json_equal(a->dependencies, ma->app.dependencies);
		json_object_set(c->app_edits, a->id, a->dependencies);
		if (ma && c->changed[i])
			json_array_append_new(c->touched, json_string(a->id));
	}
	return 0;
}

static int check_cycles(struct marathon *mt, struct change *c, struct group_result *r)
{
	json_t *depth = NULL, *d;
	char cycle[APP_ID_MAX + 1] = "";
	int rc = groups_depths(mt, c->app_edits, c->group_edits, false, &depth, cycle,
			       sizeof(cycle));

	json_decref(depth);
	if (rc != -ELOOP)
		return rc;
	d = json_array();
	validation_add(d, "/", CYCLE_MESSAGE " '%s' depends on itself through its dependencies",
		       cycle);
	fail(r, 422, validation_body(d));
	return -EINVAL;
}

static int apply_change(struct marathon *mt, struct change *c, bool force,
			struct group_result *r)
{
	json_t *stop_depth, *g, *id;
	char version[APP_VERSION_LEN];
	struct plan p = { 0 };
	size_t i;
	int rc;

	json_array_extend(c->touched, c->stop);
	rc = take_locks(mt, c->touched, force, r);
	if (rc)
		return rc;
	if (plan_init(&p)) {
		plan_free(&p);
		return -ENOMEM;
	}
	stop_depth = depths_now(mt);
	marathon_new_version(mt, version);
	json_array_foreach(json_object_get(c->val, "groups"), i, g) {
		const char *gid = json_string_value(json_object_get(g, "id"));

		if (strcmp(gid, "/") != 0 &&
		    (rc = groups_put(mt, gid, json_object_get(g, "dependencies"), version)))
			goto out;
	}
	json_array_foreach(c->drop_groups, i, id)
		groups_remove_tree(mt, json_string_value(id));
	json_array_foreach(c->stop, i, id) {
		rc = plan_stop(&p, apps_find(mt, json_string_value(id)));
		if (rc)
			goto out;
	}
	for (i = 0; i < c->n_apps; i++) {
		struct mt_app *ma = apps_find(mt, c->parsed[i].id);

		if (!c->changed[i])
			continue;
		rc = ma ? plan_update(mt, &p, ma, &c->parsed[i], version)
			: plan_create(mt, &p, &c->parsed[i], version);
		if (rc)
			goto out;
	}
	r->d = plan_start(mt, &p, stop_depth, version);
	rc = r->d ? 0 : -ENOMEM;
	if (!rc)
		log_info("event=group_changed group=%s version=%s actions=%zu", c->top, version,
			 json_array_size(p.changes));
out:
	json_decref(stop_depth);
	plan_free(&p);
	return rc;
}

int group_op_apply(struct marathon *mt, json_t *val, bool create, bool force,
		   struct group_result *r)
{
	struct change c = { .val = val, .top = json_string_value(json_object_get(val, "id")) };
	json_t *sb = json_object_get(val, "scaleBy"), *g, *def;
	size_t i;
	int rc = -ENOMEM;

	memset(r, 0, sizeof(*r));
	if (create && group_exists(mt, c.top)) {
		char msg[APP_ID_MAX + 80];

		snprintf(msg, sizeof(msg), "Group %s is already created. Use PUT to change this "
			 "group.", c.top);
		fail(r, 409, json_pack("{s:s}", "message", msg));
		return -EEXIST;
	}
	if (json_is_number(sb)) {
		if (!group_exists(mt, c.top)) {
			char msg[APP_ID_MAX + 40];

			snprintf(msg, sizeof(msg), "Group '%s' does not exist", c.top);
			fail(r, 404, json_pack("{s:s}", "message", msg));
			return -ENOENT;
		}
		return scale_group(mt, c.top, json_number_value(sb), force, r);
	}
	c.given = json_object();
	c.body_apps = json_object();
	c.stop = json_array();
	c.drop_groups = json_array();
	c.app_edits = json_object();
	c.group_edits = json_object();
	c.touched = json_array();
	if (!c.given || !c.body_apps || !c.stop || !c.drop_groups || !c.app_edits ||
	    !c.group_edits || !c.touched)
		goto out;
	json_array_foreach(json_object_get(val, "groups"), i, g) {
		json_t *deps = json_object_get(g, "dependencies");
		const char *gid = json_string_value(json_object_get(g, "id"));

		json_object_set(c.given, gid, g);
		if (deps)
			json_object_set(c.group_edits, gid, deps);
	}
	json_array_foreach(json_object_get(val, "apps"), i, def)
		json_object_set(c.body_apps, json_string_value(json_object_get(def, "id")), def);
	find_removed(mt, &c);
	rc = check_conflicts(mt, &c, r);
	if (!rc)
		rc = parse_apps(mt, &c);
	if (!rc)
		rc = check_cycles(mt, &c, r);
	if (!rc)
		rc = apply_change(mt, &c, force, r);
out:
	for (i = 0; c.parsed && i < c.n_apps; i++)
		app_free(&c.parsed[i]);
	free(c.parsed);
	free(c.changed);
	json_decref(c.given);
	json_decref(c.body_apps);
	json_decref(c.stop);
	json_decref(c.drop_groups);
	json_decref(c.app_edits);
	json_decref(c.group_edits);
	json_decref(c.touched);
	return rc;
}

/* ---- DELETE ---- */

int group_op_delete(struct marathon *mt, const char *id, bool force, struct group_result *r)
{
	json_t *ids = json_array(), *stop_depth = NULL, *app;
	char version[APP_VERSION_LEN];
	struct plan p = { 0 };
	size_t i;
	int rc = -ENOMEM;

	memset(r, 0, sizeof(*r));
	if (!group_exists(mt, id)) {
		char msg[APP_ID_MAX + 40];

		snprintf(msg, sizeof(msg), "Group '%s' does not exist", id);
		fail(r, 404, json_pack("{s:s}", "message", msg));
		json_decref(ids);
		return -ENOENT;
	}
	if (!ids || plan_init(&p))
		goto out;
	for (struct mt_app *ma = mt->apps; ma; ma = ma->next)
		if (group_contains(id, ma->app.id))
			json_array_append_new(ids, json_string(ma->app.id));
	rc = take_locks(mt, ids, force, r);
	if (rc)
		goto out;
	stop_depth = depths_now(mt);
	marathon_new_version(mt, version);
	groups_remove_tree(mt, id);
	json_array_foreach(ids, i, app) {
		rc = plan_stop(&p, apps_find(mt, json_string_value(app)));
		if (rc)
			goto out;
	}
	r->d = plan_start(mt, &p, stop_depth, version);
	rc = r->d ? 0 : -ENOMEM;
	log_info("event=group_deleting group=%s apps=%zu", id, json_array_size(ids));
out:
	json_decref(stop_depth);
	json_decref(ids);
	plan_free(&p);
	return rc;
}

/* ---- rollback ---- */

/* Back to the original definition (a stopped app comes back). */
static int restore(struct marathon *mt, struct plan *p, const char *id, json_t *original,
		   const char *version)
{
	json_t *clean = NULL, *details = NULL;
	struct mt_app *ma = apps_find(mt, id);
	struct app a;
	int rc = app_validate(original, NULL, &clean, &details);

	json_decref(details);
	if (rc)
		return rc;
	rc = app_from_json(clean, &a);
	json_decref(clean);
	if (rc)
		return rc;
	app_restore_config_version(&a, original);
	rc = ma ? plan_update(mt, p, ma, &a, version) : plan_create(mt, p, &a, version);
	app_free(&a);
	return rc;
}

int group_op_rollback(struct marathon *mt, struct deployment *d, struct deployment **out)
{
	json_t *undo = json_array(), *stop_depth = NULL, *u;
	char version[APP_VERSION_LEN];
	struct plan p = { 0 };
	size_t i;
	int rc = -ENOMEM;

	*out = NULL;
	if (!undo || plan_init(&p))
		goto out;
	for (int k = 0; k < d->n_items; k++)
		json_array_append_new(undo, json_pack("{s:s, s:O}", "app", d->items[k].app_id,
						      "original", d->items[k].original ?:
						      json_null()));
	deployment_finish(mt, d, false);
	stop_depth = depths_now(mt);
	marathon_new_version(mt, version);
	json_array_foreach(undo, i, u) {
		const char *id = json_string_value(json_object_get(u, "app"));
		json_t *orig = json_object_get(u, "original");
		struct mt_app *ma = apps_find(mt, id);

		if (json_is_object(orig))
			rc = restore(mt, &p, id, orig, version);
		else
			rc = ma ? plan_stop(&p, ma) : 0;    /* created by it: goes away */
		if (rc)
			goto out;
	}
	*out = plan_start(mt, &p, stop_depth, version);
	rc = *out ? 0 : -ENOMEM;
out:
	json_decref(stop_depth);
	json_decref(undo);
	plan_free(&p);
	return rc;
}
