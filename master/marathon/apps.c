/* apps.c - the registry of apps (sorted list, guarded by the master lock) and their
 * persistence: kind "apps" holds the current definition under the app id, kind
 * "app_versions" every definition under "<id>@<version>" (ISO versions sort in time). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lib/log.h"
#include "lib/util.h"
#include "lib/hashmap.h"
#include "master/marathon/marathon_internal.h"

/* Apps are found through a hash index by id (the list stays sorted for the API). */
struct mt_app *apps_find(struct marathon *mt, const char *id)
{
	struct hm_node *n = hashmap_get(&mt->apps_by_id, id);

	return n ? hm_entry(n, struct mt_app, by_id) : NULL;
}

struct mt_app *apps_insert(struct marathon *mt, struct app *a)
{
	struct mt_app *ma = calloc(1, sizeof(*ma));
	struct mt_app **pp = &mt->apps;

	if (!ma || (!mt->apps_by_id.slots && hashmap_init(&mt->apps_by_id))) {
		free(ma);
		return NULL;
	}
	ma->app = *a;
	memset(a, 0, sizeof(*a));
	while (*pp && strcmp((*pp)->app.id, ma->app.id) < 0)
		pp = &(*pp)->next;
	ma->next = *pp;
	*pp = ma;
	/* The key is ma->app.id: an update replaces the app in place with the same id. */
	hashmap_put(&mt->apps_by_id, &ma->by_id, ma->app.id);
	return ma;
}

void apps_remove(struct marathon *mt, struct mt_app *ma)
{
	for (struct mt_app **pp = &mt->apps; *pp; pp = &(*pp)->next) {
		if (*pp == ma) {
			*pp = ma->next;
			hashmap_remove_node(&mt->apps_by_id, &ma->by_id);
			constraint_counts_free(&ma->cc);
			json_decref(ma->launch_command);
			json_decref(ma->launch_extra);
			free(ma->launch_shared_info);
			free(ma->launch_extra_text);
			app_free(&ma->app);
			free(ma);
			return;
		}
	}
}

void apps_free_all(struct marathon *mt)
{
	while (mt->apps)
		apps_remove(mt, mt->apps);
	hashmap_destroy(&mt->apps_by_id);
	memset(&mt->apps_by_id, 0, sizeof(mt->apps_by_id));
}

static void version_key(char *out, size_t n, const char *id, const char *version)
{
	snprintf(out, n, "%s@%s", id, version);
}

int apps_persist(struct marathon *mt, const struct app *a)
{
	json_t *j = app_to_json(a);
	char key[APP_ID_MAX + APP_VERSION_LEN + 2];
	int rc;

	if (!j)
		return -ENOMEM;
	version_key(key, sizeof(key), a->id, a->version);
	rc = store_begin(mt->store);
	if (rc)
		goto out;
	rc = store_put(mt->store, KIND_APPS, a->id, j);
	if (!rc)
		rc = store_put(mt->store, KIND_APP_VERSIONS, key, j);
	if (rc) {
		/* The transaction is abandoned by the commit below: nothing half-written. */
		store_commit(mt->store);
		goto out;
	}
	rc = store_commit(mt->store);
out:
	if (rc)
		log_error("event=app_persist_failed app=%s error=%d", a->id, rc);
	json_decref(j);
	return rc;
}

struct collect {
	const char *prefix;             /* "<id>@" */
	json_t *keys;
};

static int collect_versions(const char *key, json_t *value, void *arg)
{
	struct collect *c = arg;

	(void)value;
	if (strncmp(key, c->prefix, strlen(c->prefix)) == 0)
		json_array_append_new(c->keys, json_string(key));
	return 0;
}

/* Keys of the stored versions of an app, oldest first (new reference). */
static json_t *version_keys(struct marathon *mt, const char *id)
{
	char prefix[APP_ID_MAX + 2];
	struct collect c = { prefix, json_array() };

	snprintf(prefix, sizeof(prefix), "%s@", id);
	if (c.keys)
		store_scan(mt->store, KIND_APP_VERSIONS, collect_versions, &c);
	return c.keys;
}

int apps_unpersist(struct marathon *mt, const char *id)
{
	json_t *keys = version_keys(mt, id);
	size_t i;
	json_t *k;
	int rc;

	if (!keys)
		return -ENOMEM;
	rc = store_begin(mt->store);
	if (rc)
		goto out;
	json_array_foreach(keys, i, k)
		store_del(mt->store, KIND_APP_VERSIONS, json_string_value(k));
	rc = store_del(mt->store, KIND_APPS, id);
	if (rc == -ENOENT)
		rc = 0;
	store_commit(mt->store);
out:
	json_decref(keys);
	return rc;
}

/* Versions of an app, newest first, as Marathon lists them (new reference). */
json_t *apps_versions(struct marathon *mt, const char *id)
{
	json_t *keys = version_keys(mt, id), *out = json_array();
	size_t n = json_array_size(keys);

	for (size_t i = n; out && i > 0; i--) {
		const char *k = json_string_value(json_array_get(keys, i - 1));

		json_array_append_new(out, json_string(k + strlen(id) + 1));
	}
	json_decref(keys);
	return out;
}

/* One stored version of an app (new reference), or NULL. */
json_t *apps_version_get(struct marathon *mt, const char *id, const char *version)
{
	char key[APP_ID_MAX + APP_VERSION_LEN + 2];
	json_t *j = NULL;

	version_key(key, sizeof(key), id, version);
	if (store_get(mt->store, KIND_APP_VERSIONS, key, &j))
		return NULL;
	return j;
}

/* A stored app is checked like a new one before app_from_json trusts it: a damaged or
 * hand-edited store must not load impossible values (instances 1e300, 70 ports...). The
 * stored form is the served one, which always validates. Skipped apps stay in the store. */
static int load_one(const char *key, json_t *value, void *arg)
{
	struct marathon *mt = arg;
	json_t *clean = NULL, *details = NULL;
	struct app a;
	int rc = app_validate(value, NULL, &clean, &details);

	if (rc == -ENOMEM)
		return rc;
	if (rc == 0 && strcmp(json_string_value(json_object_get(clean, "id")), key) != 0)
		rc = -EINVAL;
	json_decref(clean);
	if (rc) {
		json_t *d = json_array_get(details, 0);

		log_error("event=app_load_failed app=%s path=%s error=\"%s\"", key,
			  d ? json_string_value(json_object_get(d, "path")) : "/id",
			  d ? json_string_value(json_array_get(json_object_get(d, "errors"), 0))
			    : "the stored id differs from its key");
		json_decref(details);
		return 0;
	}

	if (app_from_json(value, &a)) {
		log_error("event=app_load_failed app=%s", key);
		return 0;
	}
	if (!apps_insert(mt, &a)) {
		app_free(&a);
		return -ENOMEM;
	}
	return 0;
}

int apps_load(struct marathon *mt)
{
	int rc = store_scan(mt->store, KIND_APPS, load_one, mt);

	/* Versions handed out after a restart must still be newer than the stored ones. */
	for (struct mt_app *ma = mt->apps; ma; ma = ma->next) {
		struct tm tm = { 0 };
		int ms = 0;

		if (sscanf(ma->app.version, "%d-%d-%dT%d:%d:%d.%dZ", &tm.tm_year, &tm.tm_mon,
			   &tm.tm_mday, &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &ms) == 7) {
			long long t;

			tm.tm_year -= 1900;
			tm.tm_mon -= 1;
			t = (long long)timegm(&tm) * 1000 + ms;
			if (t > mt->last_version_ms)
				mt->last_version_ms = t;
		}
	}
	return rc < 0 ? rc : 0;
}

void marathon_new_version(struct marathon *mt, char out[APP_VERSION_LEN])
{
	/* Whole milliseconds, kept as an integer: versions must differ and sort in time. */
	long long ms = (long long)(now_wall() * 1000.0);
	time_t sec;
	struct tm tm;

	if (ms <= mt->last_version_ms)
		ms = mt->last_version_ms + 1;
	mt->last_version_ms = ms;
	sec = (time_t)(ms / 1000);
	gmtime_r(&sec, &tm);
	char buf[96];

	snprintf(buf, sizeof(buf), "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900,
		 tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, (int)(ms % 1000));
	snprintf(out, APP_VERSION_LEN, "%.*s", APP_VERSION_LEN - 1, buf);
}

const char *apps_group_conflict(struct marathon *mt, const char *id)
{
	size_t n = strlen(id);

	for (struct mt_app *ma = mt->apps; ma; ma = ma->next) {
		size_t m = strlen(ma->app.id);

		if (m < n && strncmp(id, ma->app.id, m) == 0 && id[m] == '/')
			return ma->app.id;      /* an app would become a group */
		if (n < m && strncmp(ma->app.id, id, n) == 0 && ma->app.id[n] == '/')
			return ma->app.id;      /* a group would become an app */
	}
	return NULL;
}
