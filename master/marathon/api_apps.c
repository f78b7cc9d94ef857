/* api_apps.c - /v2/apps: list and create; /v2/apps/{id}: show, update (PUT, creates when
 * absent), delete; /v2/apps/{id}/restart; /v2/apps/{id}/tasks[/{taskId}];
 * /v2/apps/{id}/versions[/{version}]. Parses, calls app_ops, answers in Marathon's
 * shapes and status codes. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "lib/util.h"
#include "master/marathon/marathon_internal.h"

json_t *marathon_app_json(struct marathon *mt, const struct mt_app *ma, bool with_tasks)
{
	json_t *j = app_to_json(&ma->app);
	struct app_counts c;

	if (!j)
		return NULL;
	scheduler_counts(mt, ma->app.id, &c);
	json_object_set_new(j, "tasksStaged", json_integer(c.staged));
	json_object_set_new(j, "tasksRunning", json_integer(c.running));
	json_object_set_new(j, "tasksHealthy", json_integer(c.healthy));
	json_object_set_new(j, "tasksUnhealthy", json_integer(c.unhealthy));
	json_object_set_new(j, "deployments", deployments_of_app_json(mt, ma->app.id));
	if (with_tasks)
		json_object_set_new(j, "tasks", marathon_app_tasks_json(mt, ma->app.id));
	return j;
}

static void respond_not_found(struct http_response *resp, const char *id)
{
	http_respond_error(resp, 404, "App '%s' does not exist", id);
}

static void respond_invalid(struct http_response *resp, const char *path, const char *msg)
{
	json_t *d = json_array();

	validation_add(d, path, "%s", msg);
	http_respond_json(resp, 422, validation_body(d));
}

/* Answers a failed app_op_*: 409 locked, or 500 naming the errno. */
static void respond_op_error(struct http_response *resp, int rc, json_t *locked)
{
	if (rc == -EBUSY && locked) {
		http_respond_json(resp, 409, locked);
		return;
	}
	json_decref(locked);
	http_respond_error(resp, 500, "could not apply the change: %s", strerror(-rc));
}

static void respond_deployment(struct http_response *resp, int status,
			       const struct deployment *d, const char *location)
{
	http_respond_header(resp, "Marathon-Deployment-Id", d->id);
	if (location)
		http_respond_header(resp, "Location", location);
	http_respond_json(resp, status, app_op_result(d));
}

/* label=key==value, key!=value or key: Marathon's label selector (one term). */
static bool label_matches(const struct app *a, const char *sel)
{
	char key[256];
	const char *op = strstr(sel, "==");
	bool neg = false;
	const char *val;

	if (!op) {
		op = strstr(sel, "!=");
		neg = op != NULL;
	}
	if (!op)
		return json_object_get(a->labels, sel) != NULL;
	snprintf(key, sizeof(key), "%.*s", (int)(op - sel), sel);
	val = json_string_value(json_object_get(a->labels, key));
	if (neg)
		return !val || strcmp(val, op + 2) != 0;
	return val && strcmp(val, op + 2) == 0;
}

static void list_apps(struct http_request *req, struct http_response *resp,
		      struct marathon *mt)
{
	bool tasks = http_query_has(req, "embed", "apps.tasks") ||
		     http_query_has(req, "embed", "app.tasks");
	const char *id = http_query(req, "id"), *cmd = http_query(req, "cmd");
	const char *label = http_query(req, "label");
	json_t *arr = json_array();

	master_lock(mt->m);
	for (struct mt_app *ma = mt->apps; arr && ma; ma = ma->next) {
		if (id && !strstr(ma->app.id, id))
			continue;
		if (cmd && (!ma->app.cmd || !strstr(ma->app.cmd, cmd)))
			continue;
		if (label && !label_matches(&ma->app, label))
			continue;
		json_array_append_new(arr, marathon_app_json(mt, ma, tasks));
	}
	master_unlock(mt->m);
	http_respond_json(resp, 200, json_pack("{s:o}", "apps", arr));
}

/* Validates def into a (id resolved against base_id). Answers 422 on failure. */
static int parse_app(json_t *def, const char *base_id, struct app *a, struct http_response *resp)
{
	json_t *clean = NULL, *details = NULL;
	int rc = app_validate(def, base_id, &clean, &details);

	if (rc == -EINVAL) {
		http_respond_json(resp, 422, validation_body(details));
		return rc;
	}
	if (rc) {
		http_respond_error(resp, 500, "out of memory");
		return rc;
	}
	rc = app_from_json(clean, a);
	json_decref(clean);
	if (rc)
		http_respond_error(resp, 500, "out of memory");
	return rc;
}

/* The app's dependencies would close a cycle: answers 422. */
static bool reject_cycle(struct marathon *mt, const struct app *a, struct http_response *resp)
{
	char cycle[APP_ID_MAX + 1] = "", msg[APP_ID_MAX + 128];

	if (groups_check_app_cycle(mt, a, cycle, sizeof(cycle)) != -ELOOP)
		return false;
	snprintf(msg, sizeof(msg), "Dependency graph has cyclic dependencies. '%s' depends on "
		 "itself through its dependencies", cycle);
	respond_invalid(resp, "/dependencies", msg);
	return true;
}

/* Creates the app and answers; the master lock is held. created_body: POST's answer (the
 * app) rather than PUT's ({"deploymentId","version"}). */
static void create_locked(struct marathon *mt, struct http_request *req,
			  struct http_response *resp, struct app *a, bool created_body)
{
	const char *conflict = apps_group_conflict(mt, a->id);
	struct deployment *d = NULL;
	char location[APP_ID_MAX + 16];
	int rc;

	if (apps_find(mt, a->id)) {
		http_respond_error(resp, 409, "An app with id [%s] already exists.", a->id);
		return;
	}
	if (conflict) {
		char msg[400];

		snprintf(msg, sizeof(msg), "'%s' conflicts with the existing app '%s': an app "
			 "cannot also be a group", a->id, conflict);
		respond_invalid(resp, "/id", msg);
		return;
	}
	if (reject_cycle(mt, a, resp))
		return;
	snprintf(location, sizeof(location), "/v2/apps%s", a->id);
	rc = app_op_create(mt, a, &d);
	if (rc) {
		respond_op_error(resp, rc, NULL);
		return;
	}
	app_op_announce(mt, req, &apps_find(mt, location + strlen("/v2/apps"))->app);
	if (created_body) {
		struct mt_app *ma = apps_find(mt, location + strlen("/v2/apps"));

		http_respond_header(resp, "Location", location);
		http_respond_header(resp, "Marathon-Deployment-Id", d->id);
		http_respond_json(resp, 201, marathon_app_json(mt, ma, true));
	} else {
		respond_deployment(resp, 201, d, location);
	}
	/* Only the new app changed: the rest are not walked (a thousand apps are posted in a row). */
	struct mt_app *created = apps_find(mt, location + strlen("/v2/apps"));

	if (created)
		scheduler_reconcile_app(mt, created);
}

static void create_app(struct http_request *req, struct http_response *resp,
		       struct marathon *mt)
{
	json_t *body = http_body_json(req, resp);
	struct app a;

	if (!body)
		return;
	if (parse_app(body, NULL, &a, resp) == 0) {
		master_lock(mt->m);
		create_locked(mt, req, resp, &a, true);
		master_unlock(mt->m);
		app_free(&a);
	}
	json_decref(body);
}

static void get_app(struct http_response *resp, struct marathon *mt, const char *id)
{
	struct mt_app *ma;

	master_lock(mt->m);
	ma = apps_find(mt, id);
	if (ma)
		http_respond_json(resp, 200, json_pack("{s:o}", "app", marathon_app_json(mt, ma, true)));
	else
		respond_not_found(resp, id);
	master_unlock(mt->m);
}

/* Marathon's PUT is a partial update: fields not given keep their value. Setting cmd
 * drops args (and the other way round), ports drops portDefinitions. */
static json_t *merge_update(const struct app *cur, json_t *body)
{
	static const char *const exclusive[][2] = {
		{ "cmd", "args" }, { "args", "cmd" },
		{ "ports", "portDefinitions" }, { "portDefinitions", "ports" },
	};
	json_t *m = app_to_json(cur);

	if (!m)
		return NULL;
	json_object_del(m, "version");
	json_object_del(m, "versionInfo");
	for (size_t i = 0; i < ARRAY_SIZE(exclusive); i++)
		if (json_object_get(body, exclusive[i][0]) && !json_object_get(body, exclusive[i][1]))
			json_object_del(m, exclusive[i][1]);
	json_object_update(m, body);
	return m;
}

/* PUT {"version": "..."}: roll back to a stored version. */
static void rollback_to_version(struct http_request *req, struct http_response *resp,
				struct marathon *mt, struct mt_app *ma, const char *version,
				bool force)
{
	json_t *stored = apps_version_get(mt, ma->app.id, version), *locked = NULL;
	struct deployment *d = NULL;
	struct app a;
	int rc;

	(void)req;
	if (!stored) {
		http_respond_error(resp, 404, "Version '%s' of app '%s' does not exist", version,
				   ma->app.id);
		return;
	}
	rc = parse_app(stored, NULL, &a, resp);
	if (!rc)
		app_restore_config_version(&a, stored);
	json_decref(stored);
	if (rc)
		return;
	rc = app_op_update(mt, ma, &a, force, &d, &locked);
	app_free(&a);
	if (rc) {
		respond_op_error(resp, rc, locked);
		return;
	}
	respond_deployment(resp, 200, d, NULL);
	scheduler_reconcile(mt, true);
}

static void put_app(struct http_request *req, struct http_response *resp,
		    struct marathon *mt, const char *id)
{
	json_t *body = http_body_json(req, resp), *def = NULL, *locked = NULL;
	bool force = http_query_bool(req, "force");
	bool partial = !http_query(req, "partialUpdate") || http_query_bool(req, "partialUpdate");
	struct deployment *d = NULL;
	struct mt_app *ma;
	struct app a;
	int rc;

	if (!body)
		return;
	if (!json_is_object(body)) {
		respond_invalid(resp, "/", "error.expected.jsobject");
		goto out;
	}
	if (json_is_string(json_object_get(body, "id"))) {
		char bid[APP_ID_MAX + 1], err[512];

		if (app_id_normalize(json_string_value(json_object_get(body, "id")), NULL, bid,
				     sizeof(bid), err, sizeof(err))) {
			respond_invalid(resp, "/id", err);
			goto out;
		}
		if (strcmp(bid, id) != 0) {
			snprintf(err, sizeof(err), "id '%s' in the body does not match the path '%s'",
				 bid, id);
			respond_invalid(resp, "/id", err);
			goto out;
		}
	}
	master_lock(mt->m);
	ma = apps_find(mt, id);
	if (ma && json_is_string(json_object_get(body, "version")) &&
	    json_object_size(body) <= 1 + (json_object_get(body, "id") != NULL)) {
		rollback_to_version(req, resp, mt, ma,
				    json_string_value(json_object_get(body, "version")), force);
		goto unlock;
	}
	def = ma && partial ? merge_update(&ma->app, body) : json_deep_copy(body);
	if (!def) {
		http_respond_error(resp, 500, "out of memory");
		goto unlock;
	}
	json_object_set_new(def, "id", json_string(id));
	if (parse_app(def, NULL, &a, resp))
		goto unlock;
	if (!ma) {
		create_locked(mt, req, resp, &a, false);
		app_free(&a);
		goto unlock;
	}
	if (reject_cycle(mt, &a, resp)) {
		app_free(&a);
		goto unlock;
	}
	rc = app_op_update(mt, ma, &a, force, &d, &locked);
	app_free(&a);
	if (rc) {
		respond_op_error(resp, rc, locked);
		goto unlock;
	}
	app_op_announce(mt, req, &ma->app);
	respond_deployment(resp, 200, d, NULL);
	scheduler_reconcile(mt, true);
unlock:
	master_unlock(mt->m);
out:
	json_decref(def);
	json_decref(body);
}

/* DELETE /v2/apps/{id} and POST /v2/apps/{id}/restart. */
static void change_app(struct http_request *req, struct http_response *resp,
		       struct marathon *mt, const char *id, bool restart)
{
	bool force = http_query_bool(req, "force");
	struct deployment *d = NULL;
	json_t *locked = NULL;
	struct mt_app *ma;
	int rc;

	master_lock(mt->m);
	ma = apps_find(mt, id);
	if (!ma) {
		respond_not_found(resp, id);
		goto unlock;
	}
	rc = restart ? app_op_restart(mt, ma, force, &d, &locked)
		     : app_op_delete(mt, ma, force, &d, &locked);
	if (rc) {
		respond_op_error(resp, rc, locked);
		goto unlock;
	}
	respond_deployment(resp, 200, d, NULL);
	scheduler_reconcile(mt, true);
unlock:
	master_unlock(mt->m);
}

static void app_tasks(struct http_response *resp, struct marathon *mt, const char *id)
{
	master_lock(mt->m);
	if (apps_find(mt, id))
		http_respond_json(resp, 200, json_pack("{s:o}", "tasks", marathon_app_tasks_json(mt, id)));
	else
		respond_not_found(resp, id);
	master_unlock(mt->m);
}

/* DELETE /v2/apps/{id}/tasks[/{taskId}] with scale, host, force. task_id NULL: all. */
static void kill_app_tasks(struct http_request *req, struct http_response *resp,
			   struct marathon *mt, const char *id, const char *task_id)
{
	bool scale = http_query_bool(req, "scale"), force = http_query_bool(req, "force");
	const char *host = http_query(req, "host");
	const struct task_record **v = NULL;
	struct deployment *d = NULL, *running;
	json_t *killed = json_array(), *locked = NULL;
	struct mt_app *ma;
	int n, count = 0, rc;

	master_lock(mt->m);
	ma = apps_find(mt, id);
	if (!ma) {
		respond_not_found(resp, id);
		goto unlock;
	}
	running = deployment_for_app(mt, id);
	if (scale && running && !force) {
		http_respond_json(resp, 409, deployment_locked_body(running));
		goto unlock;
	}
	n = scheduler_tasks(mt, id, &v);
	for (int i = 0; i < n; i++) {
		json_t *tj;

		if (task_id && strcmp(v[i]->task_id, task_id) != 0)
			continue;
		if (host && strcmp(v[i]->hostname, host) != 0)
			continue;
		tj = marathon_task_json(mt, v[i]);
		if (scheduler_kill(mt, v[i]->task_id, app_kill_grace(&ma->app)) == 0) {
			json_array_append(killed, tj);
			count++;
		}
		json_decref(tj);
	}
	if (task_id && count == 0) {
		http_respond_error(resp, 404, "Task '%s' does not exist", task_id);
		goto unlock;
	}
	if (scale) {
		rc = app_op_scale(mt, ma, ma->app.instances - count, true, &d, &locked);
		if (rc) {
			respond_op_error(resp, rc, locked);
			goto unlock;
		}
		respond_deployment(resp, 200, d, NULL);
	} else if (task_id) {
		http_respond_json(resp, 200, json_pack("{s:O}", "task", json_array_get(killed, 0)));
	} else {
		http_respond_json(resp, 200, json_pack("{s:O}", "tasks", killed));
	}
	scheduler_reconcile(mt, true);
unlock:
	master_unlock(mt->m);
	free(v);
	json_decref(killed);
}

static void versions(struct http_response *resp, struct marathon *mt, const char *id,
		     const char *version)
{
	json_t *j;

	master_lock(mt->m);
	if (!apps_find(mt, id)) {
		respond_not_found(resp, id);
	} else if (!version) {
		http_respond_json(resp, 200, json_pack("{s:o}", "versions", apps_versions(mt, id)));
	} else if ((j = apps_version_get(mt, id, version))) {
		http_respond_json(resp, 200, j);
	} else {
		http_respond_error(resp, 404, "Version '%s' of app '%s' does not exist", version, id);
	}
	master_unlock(mt->m);
}

/* Splits "/a/b/<word>[/<rest>]" when <word> is the second-to-last or last segment. */
static bool split_suffix(const char *path, const char *word, bool with_rest, char *id,
			 size_t idlen, const char **rest)
{
	char pat[32];
	const char *p;
	size_t plen;

	snprintf(pat, sizeof(pat), "/%s", word);
	plen = strlen(pat);
	if (!with_rest) {
		size_t n = strlen(path);

		if (n <= plen || strcmp(path + n - plen, pat) != 0)
			return false;
		snprintf(id, idlen, "%.*s", (int)(n - plen), path);
		return true;
	}
	for (p = strstr(path, pat); p; p = strstr(p + 1, pat)) {
		if (p > path && p[plen] == '/' && p[plen + 1] && !strchr(p + plen + 1, '/')) {
			snprintf(id, idlen, "%.*s", (int)(p - path), path);
			*rest = p + plen + 1;
			return true;
		}
	}
	return false;
}

static void apps_route(struct http_request *req, struct http_response *resp, void *ctx)
{
	struct marathon *mt = ctx;
	const char *sub = req->subpath, *method = req->method, *rest = NULL;
	char raw[1024], id[APP_ID_MAX + 1], err[512];
	enum { R_APP, R_RESTART, R_TASKS, R_TASK, R_VERSIONS, R_VERSION } kind = R_APP;

	if (strspn(sub, "/") == strlen(sub)) {      /* "", "/", "//": the collection */
		if (strcmp(method, "GET") == 0)
			list_apps(req, resp, mt);
		else if (strcmp(method, "POST") == 0)
			create_app(req, resp, mt);
		else
			http_respond_error(resp, 405, "Method %s is not allowed on %s", method, req->path);
		return;
	}
	if (split_suffix(sub, "tasks", true, raw, sizeof(raw), &rest))
		kind = R_TASK;
	else if (split_suffix(sub, "versions", true, raw, sizeof(raw), &rest))
		kind = R_VERSION;
	else if (strcmp(method, "POST") == 0 && split_suffix(sub, "restart", false, raw, sizeof(raw), NULL))
		kind = R_RESTART;
	else if (split_suffix(sub, "tasks", false, raw, sizeof(raw), NULL))
		kind = R_TASKS;
	else if (split_suffix(sub, "versions", false, raw, sizeof(raw), NULL))
		kind = R_VERSIONS;
	else
		snprintf(raw, sizeof(raw), "%s", sub);

	if (app_id_normalize(raw, NULL, id, sizeof(id), err, sizeof(err))) {
		if (kind == R_APP && strcmp(method, "PUT") == 0)
			respond_invalid(resp, "/id", err);
		else
			respond_not_found(resp, raw);
		return;
	}
	if (kind == R_APP && strcmp(method, "GET") == 0)
		get_app(resp, mt, id);
	else if (kind == R_APP && strcmp(method, "PUT") == 0)
		put_app(req, resp, mt, id);
	else if (kind == R_APP && strcmp(method, "DELETE") == 0)
		change_app(req, resp, mt, id, false);
	else if (kind == R_RESTART)
		change_app(req, resp, mt, id, true);
	else if (kind == R_TASKS && strcmp(method, "GET") == 0)
		app_tasks(resp, mt, id);
	else if (kind == R_TASKS && strcmp(method, "DELETE") == 0)
		kill_app_tasks(req, resp, mt, id, NULL);
	else if (kind == R_TASK && strcmp(method, "DELETE") == 0)
		kill_app_tasks(req, resp, mt, id, rest);
	else if (kind == R_VERSIONS && strcmp(method, "GET") == 0)
		versions(resp, mt, id, NULL);
	else if (kind == R_VERSION && strcmp(method, "GET") == 0)
		versions(resp, mt, id, rest);
	else
		http_respond_error(resp, 405, "Method %s is not allowed on %s", method, req->path);
}

int api_apps_register(struct marathon *mt, struct http_server *srv)
{
	return http_server_route(srv, "*", "/v2/apps*", apps_route, mt);
}
