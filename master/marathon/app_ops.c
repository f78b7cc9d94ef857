/* app_ops.c - every change to an app as Marathon makes it: a new version, the new
 * definition stored, a deployment started (which locks the app until the scheduler has
 * brought the tasks in line). The API handlers parse, build their answer from the
 * deployment, and only then call scheduler_reconcile (which may end the deployment at
 * once, e.g. a scale to the current count). */
#include <errno.h>
#include <string.h>
#include <microhttpd.h>
#include <arpa/inet.h>

#include "lib/log.h"
#include "master/marathon/marathon_internal.h"

json_t *app_op_result(const struct deployment *d)
{
	return json_pack("{s:s, s:s}", "deploymentId", d->id, "version", d->version);
}

/* Lock check: with force, the running deployment is cancelled. */
static int take_lock(struct marathon *mt, const char *app_id, bool force, json_t **locked)
{
	struct deployment *d = deployment_for_app(mt, app_id);

	if (!d)
		return 0;
	if (!force) {
		*locked = deployment_locked_body(d);
		return -EBUSY;
	}
	deployment_finish(mt, d, false);
	return 0;
}

int app_apply_create(struct marathon *mt, struct app *a, const char *version)
{
	int rc;

	if (apps_find(mt, a->id))
		return -EEXIST;
	snprintf(a->version, sizeof(a->version), "%s", version);
	memcpy(a->last_scaling_at, a->version, sizeof(a->version));
	memcpy(a->last_config_change_at, a->version, sizeof(a->version));
	rc = apps_persist(mt, a);
	if (rc)
		return rc;
	if (!apps_insert(mt, a))
		return -ENOMEM;
	return 0;
}

int app_op_create(struct marathon *mt, struct app *a, struct deployment **out)
{
	struct mt_app *ma;
	char version[APP_VERSION_LEN], id[APP_ID_MAX + 1];
	int rc;

	marathon_new_version(mt, version);
	memcpy(id, a->id, sizeof(id));
	rc = app_apply_create(mt, a, version);
	if (rc)
		return rc;
	ma = apps_find(mt, id);
	*out = deployment_start(mt, ma->app.id, ACT_START, NULL, version);
	if (!*out)
		return -ENOMEM;
	log_info("event=app_created app=%s version=%s instances=%d", ma->app.id, version,
		 ma->app.instances);
	return 0;
}

int app_apply_update(struct marathon *mt, struct mt_app *ma, struct app *a, const char *version,
		     enum deploy_action *act, json_t **original)
{
	int rc;

	*original = app_to_json(&ma->app);
	if (!*original)
		return -ENOMEM;
	snprintf(a->version, sizeof(a->version), "%s", version);
	memcpy(a->last_scaling_at, a->version, sizeof(a->version));
	/* Marathon restarts tasks only when the configuration (not the count) changed. */
	if (app_config_differs(&ma->app, a)) {
		*act = ACT_RESTART;
		/* A restored version keeps its lastConfigChangeAt: its tasks are current again. */
		if (!a->last_config_change_at[0])
			memcpy(a->last_config_change_at, a->version, sizeof(a->version));
	} else {
		*act = ACT_SCALE;
		memcpy(a->last_config_change_at, ma->app.last_config_change_at,
		       sizeof(a->last_config_change_at));
	}
	rc = apps_persist(mt, a);
	if (rc) {
		json_decref(*original);
		*original = NULL;
		return rc;
	}
	app_free(&ma->app);
	ma->app = *a;
	memset(a, 0, sizeof(*a));
	ma->deleting = false;
	if (*act == ACT_RESTART)
		scheduler_reset_backoff(ma);
	return 0;
}

int app_op_update(struct marathon *mt, struct mt_app *ma, struct app *a, bool force,
		  struct deployment **out, json_t **locked)
{
	json_t *original = NULL;
	char version[APP_VERSION_LEN];
	enum deploy_action act;
	int rc;

	rc = take_lock(mt, ma->app.id, force, locked);
	if (rc)
		return rc;
	marathon_new_version(mt, version);
	rc = app_apply_update(mt, ma, a, version, &act, &original);
	if (rc)
		return rc;
	*out = deployment_start(mt, ma->app.id, act, original, version);
	rc = *out ? 0 : -ENOMEM;
	if (!rc)
		log_info("event=app_updated app=%s version=%s action=%s instances=%d", ma->app.id,
			 version, deploy_action_name(act), ma->app.instances);
	json_decref(original);
	return rc;
}

int app_op_scale(struct marathon *mt, struct mt_app *ma, int instances, bool force,
		 struct deployment **out, json_t **locked)
{
	struct app a;
	int rc = app_copy(&a, &ma->app);

	if (rc)
		return rc;
	a.instances = instances < 0 ? 0 : instances;
	rc = app_op_update(mt, ma, &a, force, out, locked);
	app_free(&a);
	return rc;
}

int app_op_restart(struct marathon *mt, struct mt_app *ma, bool force,
		   struct deployment **out, json_t **locked)
{
	json_t *original;
	char version[APP_VERSION_LEN];
	struct app a;
	int rc;

	rc = take_lock(mt, ma->app.id, force, locked);
	if (rc)
		return rc;
	rc = app_copy(&a, &ma->app);
	if (rc)
		return rc;
	original = app_to_json(&ma->app);
	marathon_new_version(mt, version);
	memcpy(a.version, version, sizeof(version));
	memcpy(a.last_scaling_at, version, sizeof(version));
	memcpy(a.last_config_change_at, version, sizeof(version));
	rc = apps_persist(mt, &a);
	if (rc) {
		app_free(&a);
		goto out;
	}
	app_free(&ma->app);
	ma->app = a;
	scheduler_reset_backoff(ma);
	*out = deployment_start(mt, ma->app.id, ACT_RESTART, original, version);
	rc = *out ? 0 : -ENOMEM;
	log_info("event=app_restarted app=%s version=%s", ma->app.id, version);
out:
	json_decref(original);
	return rc;
}

int app_op_delete(struct marathon *mt, struct mt_app *ma, bool force,
		  struct deployment **out, json_t **locked)
{
	char version[APP_VERSION_LEN], id[APP_ID_MAX + 1];
	json_t *original;
	int rc;

	rc = take_lock(mt, ma->app.id, force, locked);
	if (rc)
		return rc;
	original = app_to_json(&ma->app);
	if (!original)
		return -ENOMEM;
	marathon_new_version(mt, version);
	ma->deleting = true;
	memcpy(id, ma->app.id, sizeof(id));
	*out = deployment_start(mt, id, ACT_STOP, original, version);
	json_decref(original);
	if (!*out)
		return -ENOMEM;
	log_info("event=app_deleting app=%s", id);
	return 0;
}

void app_restore_config_version(struct app *a, json_t *stored)
{
	const char *v = json_string_value(json_object_get(json_object_get(stored, "versionInfo"),
							  "lastConfigChangeAt"));

	snprintf(a->last_config_change_at, sizeof(a->last_config_change_at), "%s", v ? v : "");
}

int app_op_rollback(struct marathon *mt, struct deployment *d, struct deployment **out)
{
	const struct deploy_item *it = d->n_items == 1 ? &d->items[0] : NULL;
	struct mt_app *ma = it ? apps_find(mt, it->app_id) : NULL;
	json_t *locked = NULL, *clean = NULL, *details = NULL;
	struct app a;
	int rc;

	if (!ma)
		return -ENOENT;
	if (!it->original)   /* rolling back a start = deleting the app */
		return app_op_delete(mt, ma, true, out, &locked);
	rc = app_validate(it->original, NULL, &clean, &details);
	json_decref(details);
	if (rc)
		return rc;
	rc = app_from_json(clean, &a);
	json_decref(clean);
	if (rc)
		return rc;
	app_restore_config_version(&a, it->original);
	rc = app_op_update(mt, ma, &a, true, out, &locked);
	app_free(&a);
	json_decref(locked);
	return rc;
}

void app_op_announce(struct marathon *mt, struct http_request *req, const struct app *a)
{
	const union MHD_ConnectionInfo *ci = NULL;
	char ip[INET6_ADDRSTRLEN] = "";

	if (req && req->conn)
		ci = MHD_get_connection_info(req->conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	if (ci && ci->client_addr) {
		const struct sockaddr *sa = ci->client_addr;

		if (sa->sa_family == AF_INET)
			inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, ip, sizeof(ip));
		else if (sa->sa_family == AF_INET6)
			inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, ip,
				  sizeof(ip));
	}
	events_publish(mt->events, "api_post_event",
		       json_pack("{s:s, s:s, s:o}", "clientIp", ip, "uri",
				 req && req->path ? req->path : "", "appDefinition", app_to_json(a)));
}
