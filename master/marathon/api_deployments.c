/* api_deployments.c - GET /v2/deployments and DELETE /v2/deployments/{id}
 * (force=true: forget the deployment, 202; otherwise roll it back with a new one, 200). */
#include <string.h>

#include "master/marathon/marathon_internal.h"

static void list_deployments(struct http_request *req, struct http_response *resp, void *ctx)
{
	struct marathon *mt = ctx;
	json_t *arr = json_array();

	(void)req;
	master_lock(mt->m);
	for (struct deployment *d = mt->deployments; arr && d; d = d->next)
		json_array_append_new(arr, deployment_to_json(d));
	master_unlock(mt->m);
	http_respond_json(resp, 200, arr);
}

static void deployments_route(struct http_request *req, struct http_response *resp, void *ctx)
{
	struct marathon *mt = ctx;
	const char *id = req->subpath[0] == '/' ? req->subpath + 1 : req->subpath;
	struct deployment *d, *rb = NULL;
	int rc;

	if (!id[0] && strcmp(req->method, "GET") == 0) {
		list_deployments(req, resp, ctx);
		return;
	}
	if (!id[0] || strcmp(req->method, "DELETE") != 0) {
		http_respond_error(resp, 405, "Method %s is not allowed on %s", req->method, req->path);
		return;
	}
	master_lock(mt->m);
	d = deployment_find(mt, id);
	if (!d) {
		http_respond_error(resp, 404, "DeploymentPlan %s does not exist", id);
		goto unlock;
	}
	if (http_query_bool(req, "force")) {
		deployment_finish(mt, d, false);
		http_respond_json(resp, 202, json_object());
		goto unlock;
	}
	rc = d->n_items == 1 ? app_op_rollback(mt, d, &rb) : group_op_rollback(mt, d, &rb);
	if (rc || !rb) {
		http_respond_error(resp, 500, "could not roll back deployment %s (error %d)", id, rc);
		goto unlock;
	}
	http_respond_header(resp, "Marathon-Deployment-Id", rb->id);
	http_respond_json(resp, 200, app_op_result(rb));
	scheduler_reconcile(mt, true);
unlock:
	master_unlock(mt->m);
}

int api_deployments_register(struct marathon *mt, struct http_server *srv)
{
	return http_server_route(srv, "*", "/v2/deployments*", deployments_route, mt);
}
