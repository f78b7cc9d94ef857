/* api_tasks.c - Marathon's task JSON and GET /v2/tasks (status= filter),
 * POST /v2/tasks/delete (kill by ids, optional scale=true). */
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "lib/util.h"
#include "master/marathon/marathon_internal.h"

static json_t *time_or_null(double wall)
{
	char ts[32];

	if (wall <= 0)
		return json_null();
	format_iso8601(wall, ts);
	return json_string(ts);
}

json_t *marathon_task_json(struct marathon *mt, const struct task_record *t)
{
	json_t *ports = json_array();
	json_t *o;
	const char *ip = json_string_value(json_object_get(mt->agent_ips, t->agent_id));

	for (size_t i = 0; ports && i < t->port_count; i++)
		json_array_append_new(ports, json_integer(t->ports[i]));
	if (!ip)
		ip = t->hostname;
	o = json_pack("{s:s, s:s, s:s, s:o, s:s, s:s, s:s, s:o, s:o, s:s, s:[], s:[]}",
		      "id", t->task_id, "appId", t->app_id, "host", t->hostname, "ports", ports,
		      "slaveId", t->agent_id, "agentId", t->agent_id,
		      "state", task_state_name(t->state), "stagedAt", time_or_null(t->staged_at),
		      "startedAt", time_or_null(t->started_at), "version", t->version,
		      "servicePorts", "localVolumes");
	if (!o)
		return NULL;
	json_object_set_new(o, "ipAddresses",
			    ip && ip[0] ? json_pack("[{s:s, s:s}]", "ipAddress", ip, "protocol",
						     strchr(ip, ':') ? "IPv6" : "IPv4")
				       : json_array());
	json_object_set_new(o, "stats", t->has_stats ?
			    json_pack("{s:I, s:I, s:I, s:I}",
				      "rx_bytes", (json_int_t)t->stats.rx_bytes,
				      "tx_bytes", (json_int_t)t->stats.tx_bytes,
				      "rx_packets", (json_int_t)t->stats.rx_packets,
				      "tx_packets", (json_int_t)t->stats.tx_packets) :
			    json_object());
	if (t->health_checked)
		json_object_set_new(o, "healthCheckResults", health_results_json(t));
	return o;
}

json_t *marathon_app_tasks_json(struct marathon *mt, const char *app_id)
{
	const struct task_record **v;
	int n = scheduler_tasks(mt, app_id, &v);
	json_t *arr = json_array();

	for (int i = 0; arr && i < n; i++)
		json_array_append_new(arr, marathon_task_json(mt, v[i]));
	free(v);
	return arr;
}

/* status=running&status=staging: which states to list (all when none is given). */
static bool state_wanted(struct http_request *req, enum task_state s, bool any_filter)
{
	char lower[32];
	const char *name = task_state_name(s) + strlen("TASK_");
	size_t i;

	if (!any_filter)
		return true;
	for (i = 0; name[i] && i + 1 < sizeof(lower); i++)
		lower[i] = (char)tolower((unsigned char)name[i]);
	lower[i] = '\0';
	return http_query_has(req, "status", lower) ||
	       http_query_has(req, "status", task_state_name(s));
}

static void get_tasks(struct http_request *req, struct http_response *resp, void *ctx)
{
	struct marathon *mt = ctx;
	const struct task_record **v;
	bool any = http_query(req, "status") != NULL;
	json_t *arr = json_array();
	int n;

	master_lock(mt->m);
	n = scheduler_tasks(mt, NULL, &v);
	for (int i = 0; i < n; i++)
		if (state_wanted(req, v[i]->state, any))
			json_array_append_new(arr, marathon_task_json(mt, v[i]));
	master_unlock(mt->m);
	free(v);
	if (n < 0) {
		json_decref(arr);
		http_respond_error(resp, 500, "out of memory");
		return;
	}
	http_respond_json(resp, 200, json_pack("{s:o}", "tasks", arr));
}

/* Kills the listed tasks; with scale=true their apps are scaled down by the number killed. */
static void delete_tasks(struct http_request *req, struct http_response *resp, void *ctx)
{
	struct marathon *mt = ctx;
	json_t *body = http_body_json(req, resp), *ids, *killed = json_array(), *result = NULL;
	bool scale = http_query_bool(req, "scale"), force = http_query_bool(req, "force");
	size_t i;
	json_t *id;

	if (!body)
		goto out;
	ids = json_object_get(body, "ids");
	if (!json_is_array(ids)) {
		http_respond_json(resp, 422, validation_body(json_pack("[{s:s, s:[s]}]", "path",
				  "/ids", "errors", "error.expected.jsarray")));
		goto out;
	}
	master_lock(mt->m);
	/* Locks first, so that nothing is killed when one app cannot be scaled. */
	json_array_foreach(ids, i, id) {
		const struct task_record *t = master_find_task(mt->m, json_string_value(id) ?: "");
		struct deployment *d = t ? deployment_for_app(mt, t->app_id) : NULL;

		if (scale && d && !force) {
			master_unlock(mt->m);
			http_respond_json(resp, 409, deployment_locked_body(d));
			goto out;
		}
	}
	json_array_foreach(ids, i, id) {
		const struct task_record *t = master_find_task(mt->m, json_string_value(id) ?: "");
		struct mt_app *ma = t ? apps_find(mt, t->app_id) : NULL;
		json_t *tj;

		if (!t || !ma || task_state_is_terminal(t->state) ||
		    strcmp(t->framework_id, mt->fw.id) != 0)
			continue;
		tj = marathon_task_json(mt, t);
		if (scheduler_kill(mt, t->task_id, app_kill_grace(&ma->app)) == 0)
			json_array_append_new(killed, tj);
		else
			json_decref(tj);
		if (scale) {
			struct deployment *d = NULL;
			json_t *locked = NULL;

			if (app_op_scale(mt, ma, ma->app.instances - 1, true, &d, &locked) == 0 && d) {
				json_decref(result);
				result = app_op_result(d);
			}
			json_decref(locked);
		}
	}
	scheduler_reconcile(mt, true);
	master_unlock(mt->m);
	if (result)
		http_respond_json(resp, 200, json_incref(result));
	else
		http_respond_json(resp, 200, json_pack("{s:O}", "tasks", killed));
out:
	json_decref(result);
	json_decref(killed);
	json_decref(body);
}

int api_tasks_register(struct marathon *mt, struct http_server *srv)
{
	int rc = http_server_route(srv, "GET", "/v2/tasks", get_tasks, mt);

	if (!rc)
		rc = http_server_route(srv, "POST", "/v2/tasks/delete", delete_tasks, mt);
	return rc;
}
