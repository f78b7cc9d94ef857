/* api_groups.c - /v2/groups: GET the root group or /v2/groups/{id} (embed=group.apps,
 * group.groups, group.pods, group.apps.tasks; all but tasks when none is given), POST a
 * new group (at the root, or under {id}), PUT a group (create or update; {"scaleBy": f}),
 * DELETE a group and all its apps. Parses and validates (group_validate.h), calls
 * group_ops, answers in Marathon's shapes: {"version", "deploymentId"}, 404/409/422. */
#include <errno.h>
#include <string.h>

#include "master/marathon/group_validate.h"
#include "master/marathon/marathon_internal.h"

static void respond_not_found(struct http_response *resp, const char *id)
{
	http_respond_error(resp, 404, "Group '%s' does not exist", id);
}

static unsigned parse_embed(struct http_request *req)
{
	static const struct { const char *name; unsigned bit; } names[] = {
		{ "group.apps", EMBED_APPS }, { "group.groups", EMBED_GROUPS },
		{ "group.pods", EMBED_PODS },
		{ "group.apps.tasks", EMBED_APPS | EMBED_TASKS },
	};
	unsigned embed = 0;

	if (!http_query(req, "embed"))
		return EMBED_APPS | EMBED_GROUPS | EMBED_PODS;
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (http_query_has(req, "embed", names[i].name))
			embed |= names[i].bit;
	return embed;
}

static void get_group(struct http_request *req, struct http_response *resp,
		      struct marathon *mt, const char *id)
{
	json_t *j;

	master_lock(mt->m);
	j = group_json(mt, id, parse_embed(req));
	master_unlock(mt->m);
	if (j)
		http_respond_json(resp, 200, j);
	else
		respond_not_found(resp, id);
}

/* POST (create) and PUT (update or create). path_id: the group in the path ("/" for the
 * collection). */
static void change_group(struct http_request *req, struct http_response *resp,
			 struct marathon *mt, const char *path_id, bool create)
{
	json_t *body = http_body_json(req, resp), *val = NULL, *details = NULL;
	bool force = http_query_bool(req, "force");
	struct group_result r = { 0 };
	char location[APP_ID_MAX + 16];
	int rc;

	if (!body)
		return;
	if (!create && json_is_object(body) && json_object_get(body, "version") &&
	    !json_object_get(body, "apps") && !json_object_get(body, "groups") &&
	    !json_object_get(body, "scaleBy")) {
		json_t *d = json_array();

		validation_add(d, "/version", "rolling a group back to a version is not supported "
			       "yet");
		http_respond_json(resp, 422, validation_body(d));
		goto out;
	}
	rc = create ? group_validate(body, NULL, strcmp(path_id, "/") ? path_id : NULL, false,
				     &val, &details)
		    : group_validate(body, path_id, NULL, true, &val, &details);
	if (rc == -EINVAL) {
		http_respond_json(resp, 422, validation_body(details));
		goto out;
	}
	if (rc) {
		http_respond_error(resp, 500, "out of memory");
		goto out;
	}
	if (create && strcmp(json_string_value(json_object_get(val, "id")), "/") == 0) {
		http_respond_error(resp, 409, "Group / is already created. Use PUT to change this "
				   "group.");
		goto out;
	}
	master_lock(mt->m);
	rc = group_op_apply(mt, val, create, force, &r);
	if (rc && r.body) {
		http_respond_json(resp, r.status, r.body);
	} else if (rc) {
		http_respond_error(resp, 500, "could not apply the change: %s", strerror(-rc));
	} else {
		snprintf(location, sizeof(location), "/v2/groups%s",
			 json_string_value(json_object_get(val, "id")));
		http_respond_header(resp, "Marathon-Deployment-Id", r.d->id);
		if (create)
			http_respond_header(resp, "Location", location);
		http_respond_json(resp, create ? 201 : 200, app_op_result(r.d));
		scheduler_reconcile(mt, true);
	}
	master_unlock(mt->m);
out:
	json_decref(val);
	json_decref(body);
}

static void delete_group(struct http_request *req, struct http_response *resp,
			 struct marathon *mt, const char *id)
{
	struct group_result r = { 0 };
	int rc;

	master_lock(mt->m);
	rc = group_op_delete(mt, id, http_query_bool(req, "force"), &r);
	if (rc && r.body) {
		http_respond_json(resp, r.status, r.body);
	} else if (rc) {
		http_respond_error(resp, 500, "could not delete the group: %s", strerror(-rc));
	} else {
		http_respond_header(resp, "Marathon-Deployment-Id", r.d->id);
		http_respond_json(resp, 200, app_op_result(r.d));
		scheduler_reconcile(mt, true);
	}
	master_unlock(mt->m);
}

static void groups_route(struct http_request *req, struct http_response *resp, void *ctx)
{
	struct marathon *mt = ctx;
	const char *sub = req->subpath, *method = req->method;
	char id[APP_ID_MAX + 1], err[512];

	if (strspn(sub, "/") == strlen(sub)) {
		snprintf(id, sizeof(id), "/");
	} else if (app_id_normalize(sub, NULL, id, sizeof(id), err, sizeof(err))) {
		if (strcmp(method, "PUT") == 0 || strcmp(method, "POST") == 0) {
			json_t *d = json_array();

			validation_add(d, "/id", "%s", err);
			http_respond_json(resp, 422, validation_body(d));
		} else {
			respond_not_found(resp, sub);
		}
		return;
	}
	if (strcmp(method, "GET") == 0)
		get_group(req, resp, mt, id);
	else if (strcmp(method, "POST") == 0)
		change_group(req, resp, mt, id, true);
	else if (strcmp(method, "PUT") == 0)
		change_group(req, resp, mt, id, false);
	else if (strcmp(method, "DELETE") == 0)
		delete_group(req, resp, mt, id);
	else
		http_respond_error(resp, 405, "Method %s is not allowed on %s", method, req->path);
}

int api_groups_register(struct marathon *mt, struct http_server *srv)
{
	return http_server_route(srv, "*", "/v2/groups*", groups_route, mt);
}
