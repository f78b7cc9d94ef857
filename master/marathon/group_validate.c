/* group_validate.c - Marathon's group definition rules: known fields only, ids resolved
 * against the enclosing group and required to be its direct children, no id used twice
 * (by apps or groups), dependencies resolved, apps validated as POST /v2/apps would with
 * their errors re-rooted under the group's path. Recursion is bounded by
 * GROUP_MAX_DEPTH. */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "master/marathon/app.h"
#include "master/marathon/app_id.h"
#include "master/marathon/app_validate.h"
#include "master/marathon/group_validate.h"

#define PATH_LEN 512

/* A detail path (cut to PATH_LEN; validation_add keeps cut text valid UTF-8). */
static void __attribute__((format(printf, 2, 3)))
subpath(char out[PATH_LEN], const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(out, PATH_LEN, fmt, ap);
	va_end(ap);
}

struct gv {
	json_t *groups, *apps, *details;
	json_t *seen;                   /* id -> "app" | "group" */
	bool oom;
};

void group_parent(const char *id, char *out, size_t outlen)
{
	const char *slash = strrchr(id, '/');
	size_t n = slash && slash != id ? (size_t)(slash - id) : 0;

	/* out may be id itself (walking up in place): move, do not print. */
	if (outlen < 2)
		return;
	if (!n) {               /* "/x", or an id without a slash (a hand-edited store): "/" */
		memcpy(out, "/", 2);
		return;
	}
	if (n >= outlen)
		n = outlen - 1;
	memmove(out, id, n);
	out[n] = '\0';
}

static const char *base_of(const char *group_id)
{
	return strcmp(group_id, "/") == 0 ? NULL : group_id;
}

/* Records id as used; a second use is an error at path. */
static bool claim(struct gv *v, const char *id, const char *kind, const char *path)
{
	if (json_object_get(v->seen, id)) {
		validation_add(v->details, path, "Groups and Applications may not have the same "
			       "identifier: '%s' is used twice", id);
		return false;
	}
	if (json_object_set_new(v->seen, id, json_string(kind)))
		v->oom = true;
	return true;
}

/* id must be a direct child of group (Marathon: "is not child of"). */
static bool child_of(struct gv *v, const char *id, const char *group, const char *path)
{
	char parent[APP_ID_MAX + 2];

	group_parent(id, parent, sizeof(parent));
	if (strcmp(parent, group) == 0)
		return true;
	validation_add(v->details, path, "identifier %s is not child of %s. Hint: use relative "
		       "paths.", id, group);
	return false;
}

/* Validates one app of group; appends the clean form. */
static void check_app(struct gv *v, json_t *def, const char *group, const char *path)
{
	json_t *clean = NULL, *details = NULL, *d;
	char p[PATH_LEN], idpath[PATH_LEN];
	size_t i;
	int rc = app_validate(def, base_of(group), &clean, &details);

	if (rc == -ENOMEM) {
		v->oom = true;
		return;
	}
	if (rc) {
		json_array_foreach(details, i, d) {
			const char *sub = json_string_value(json_object_get(d, "path"));
			json_t *e;
			size_t j;

			subpath(p, "%s%s", path, sub && strcmp(sub, "/") != 0 ? sub : "");
			json_array_foreach(json_object_get(d, "errors"), j, e)
				validation_add(v->details, p, "%s", json_string_value(e));
		}
		json_decref(details);
		return;
	}
	subpath(idpath, "%s/id", path);
	if (child_of(v, json_string_value(json_object_get(clean, "id")), group, idpath) &&
	    claim(v, json_string_value(json_object_get(clean, "id")), "app", idpath) &&
	    json_array_append(v->apps, clean))
		v->oom = true;
	json_decref(clean);
}

/* Resolved dependencies (relative to the group's own id), or NULL after an error. */
static json_t *check_deps(struct gv *v, json_t *deps, const char *group, const char *path)
{
	char p[PATH_LEN], dep[APP_ID_MAX + 1], err[512];
	json_t *out, *d;
	size_t i;
	bool ok = true;

	subpath(p, "%s/dependencies", path);
	if (!json_is_array(deps)) {
		validation_add(v->details, p, "error.expected.jsarray");
		return NULL;
	}
	if (json_array_size(deps) > APP_MAX_DEPENDENCIES) {
		validation_add(v->details, p, "at most %d dependencies are supported",
			       APP_MAX_DEPENDENCIES);
		return NULL;
	}
	out = json_array();
	if (!out) {
		v->oom = true;
		return NULL;
	}
	json_array_foreach(deps, i, d) {
		subpath(p, "%s/dependencies(%zu)", path, i);
		if (!json_is_string(d)) {
			validation_add(v->details, p, "error.expected.jsstring");
			ok = false;
		} else if (app_id_normalize(json_string_value(d), base_of(group), dep, sizeof(dep),
					    err, sizeof(err))) {
			validation_add(v->details, p, "%s", err);
			ok = false;
		} else if (json_array_append_new(out, json_string(dep))) {
			v->oom = true;
		}
	}
	if (!ok) {
		json_decref(out);
		return NULL;
	}
	return out;
}

static void check_group(struct gv *v, json_t *g, const char *id, const char *path, int depth,
			bool top, bool allow_scale);

static void check_children(struct gv *v, json_t *groups, const char *id, const char *path,
			   int depth, bool allow_scale)
{
	char p[PATH_LEN], idp[PATH_LEN], child[APP_ID_MAX + 1], err[512];
	json_t *g;
	size_t i;

	json_array_foreach(groups, i, g) {
		json_t *gid = json_object_get(g, "id");

		subpath(p, "%s/groups(%zu)", path, i);
		subpath(idp, "%s/id", p);
		if (!json_is_object(g)) {
			validation_add(v->details, p, "error.expected.jsobject");
			continue;
		}
		if (!gid) {
			validation_add(v->details, idp, "error.path.missing");
			continue;
		}
		if (!json_is_string(gid)) {
			validation_add(v->details, idp, "error.expected.jsstring");
			continue;
		}
		if (app_id_normalize(json_string_value(gid), base_of(id), child, sizeof(child), err,
				     sizeof(err))) {
			validation_add(v->details, idp, "%s", err);
			continue;
		}
		if (!child_of(v, child, id, idp) || !claim(v, child, "group", idp))
			continue;
		check_group(v, g, child, p, depth + 1, false, allow_scale);
	}
}

static void check_group(struct gv *v, json_t *g, const char *id, const char *path, int depth,
			bool top, bool allow_scale)
{
	static const char *const known[] = { "id", "apps", "groups", "pods", "dependencies",
					     "version", "enforceRole", "scaleBy" };
	json_t *apps = json_object_get(g, "apps"), *groups = json_object_get(g, "groups");
	json_t *deps = json_object_get(g, "dependencies"), *pods = json_object_get(g, "pods");
	json_t *er = json_object_get(g, "enforceRole"), *sb = json_object_get(g, "scaleBy");
	json_t *entry, *val, *a;
	char p[PATH_LEN];
	const char *k;
	size_t i;

	if (depth > GROUP_MAX_DEPTH) {
		validation_add(v->details, path[0] ? path : "/",
			       "groups nest at most %d levels deep", GROUP_MAX_DEPTH);
		return;
	}
	json_object_foreach(g, k, val) {
		bool ok = false;

		for (size_t j = 0; j < sizeof(known) / sizeof(known[0]); j++)
			ok = ok || strcmp(known[j], k) == 0;
		if (!ok || (strcmp(k, "scaleBy") == 0 && !(top && allow_scale))) {
			subpath(p, "%s/%.64s", path, k);
			validation_add(v->details, p, "unknown field");
		}
	}
	if (pods && !json_is_null(pods) && !(json_is_array(pods) && json_array_size(pods) == 0)) {
		subpath(p, "%s/pods", path);
		validation_add(v->details, p, "pods are not supported yet");
	}
	if (er && !json_is_null(er) && !json_is_false(er)) {
		subpath(p, "%s/enforceRole", path);
		validation_add(v->details, p, json_is_true(er) ? "enforceRole is not supported yet"
							       : "error.expected.jsboolean");
	}
	if (sb && top && allow_scale) {
		subpath(p, "%s/scaleBy", path);
		if (!json_is_number(sb) || !isfinite(json_number_value(sb)) ||
		    json_number_value(sb) <= 0 || json_number_value(sb) > 1000)
			validation_add(v->details, p, "must be a number greater than 0 and at most 1000");
		else if ((apps && !json_is_null(apps)) || (groups && !json_is_null(groups)))
			validation_add(v->details, p, "scaleBy cannot be combined with apps or groups");
	}
	entry = json_pack("{s:s, s:b, s:b}", "id", id, "apps_given", apps && !json_is_null(apps),
			  "groups_given", groups && !json_is_null(groups));
	if (!entry || json_array_append_new(v->groups, entry)) {
		v->oom = true;
		return;
	}
	if (deps && !json_is_null(deps)) {
		json_t *resolved = check_deps(v, deps, id, path);

		if (resolved)
			json_object_set_new(entry, "dependencies", resolved);
	}
	if (apps && !json_is_null(apps)) {
		subpath(p, "%s/apps", path);
		if (!json_is_array(apps))
			validation_add(v->details, p, "error.expected.jsarray");
		json_array_foreach(apps, i, a) {
			subpath(p, "%s/apps(%zu)", path, i);
			check_app(v, a, id, p);
		}
	}
	if (groups && !json_is_null(groups)) {
		subpath(p, "%s/groups", path);
		if (!json_is_array(groups))
			validation_add(v->details, p, "error.expected.jsarray");
		else
			check_children(v, groups, id, path, depth, allow_scale);
	}
}

/* The top group's id: group_id, or the body's "id" resolved against base_id. */
static int top_id(struct gv *v, json_t *def, const char *group_id, const char *base_id,
		  char *out, size_t outlen)
{
	json_t *bid = json_object_get(def, "id");
	char err[512], body_id[APP_ID_MAX + 1];

	if (bid && !json_is_string(bid)) {
		validation_add(v->details, "/id", "error.expected.jsstring");
		return -EINVAL;
	}
	if (bid && json_string_value(bid)[strspn(json_string_value(bid), "/")] == '\0') {
		snprintf(body_id, sizeof(body_id), "/");     /* the root group */
	} else if (bid && app_id_normalize(json_string_value(bid), group_id ? NULL : base_id,
					   body_id, sizeof(body_id), err, sizeof(err))) {
		validation_add(v->details, "/id", "%s", err);
		return -EINVAL;
	}
	if (group_id) {
		if (bid && strcmp(body_id, group_id) != 0) {
			validation_add(v->details, "/id", "id '%s' in the body does not match the "
				       "path '%s'", body_id, group_id);
			return -EINVAL;
		}
		snprintf(out, outlen, "%s", group_id);
		return 0;
	}
	if (!bid) {
		validation_add(v->details, "/id", "error.path.missing");
		return -EINVAL;
	}
	snprintf(out, outlen, "%s", body_id);
	return 0;
}

int group_validate(json_t *def, const char *group_id, const char *base_id, bool allow_scale,
		   json_t **out, json_t **details)
{
	struct gv v = { .groups = json_array(), .apps = json_array(), .details = json_array(),
			.seen = json_object() };
	char id[APP_ID_MAX + 1];
	json_t *sb;
	int rc = -ENOMEM;

	*out = NULL;
	*details = NULL;
	if (!v.groups || !v.apps || !v.details || !v.seen)
		goto out;
	if (!json_is_object(def)) {
		validation_add(v.details, "/", "error.expected.jsobject");
		goto invalid;
	}
	if (top_id(&v, def, group_id, base_id, id, sizeof(id)))
		goto invalid;
	claim(&v, id, "group", "/id");
	check_group(&v, def, id, "", 0, true, allow_scale);
	if (v.oom)
		goto out;
	if (json_array_size(v.details) > 0)
		goto invalid;
	*out = json_pack("{s:s, s:O, s:O}", "id", id, "groups", v.groups, "apps", v.apps);
	sb = json_object_get(def, "scaleBy");
	if (*out && allow_scale && json_is_number(sb))
		json_object_set_new(*out, "scaleBy", json_real(json_number_value(sb)));
	rc = *out ? 0 : -ENOMEM;
	goto out;
invalid:
	*details = v.details;
	v.details = NULL;
	rc = -EINVAL;
out:
	json_decref(v.groups);
	json_decref(v.apps);
	json_decref(v.details);
	json_decref(v.seen);
	return rc;
}
