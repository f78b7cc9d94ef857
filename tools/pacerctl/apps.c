/* apps.c - `pacerctl apps ...`: Marathon v2 apps (list, show, add, update, scale, remove,
 * restart). Writes go to the server as given; the server validates and names errors. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/util.h"
#include "tools/pacerctl/pacerctl.h"

#define USAGE_APPS "apps list|show ID|add FILE|update ID FILE|scale ID N|remove ID|restart ID"

/* Reads FILE, or standard input for "-". */
static char *read_definition(const char *path, size_t *len)
{
	char *buf = NULL;
	size_t cap = 0, used = 0;

	if (strcmp(path, "-"))
		return read_file(path, len);
	for (;;) {
		size_t n;

		if (cap - used < 4096) {
			char *grown = realloc(buf, cap ? cap * 2 : 8192);

			if (!grown) {
				free(buf);
				errno = ENOMEM;
				return NULL;
			}
			buf = grown;
			cap = cap ? cap * 2 : 8192;
		}
		n = fread(buf + used, 1, cap - used - 1, stdin);
		used += n;
		if (n == 0)
			break;
	}
	if (ferror(stdin)) {
		free(buf);
		errno = EIO;
		return NULL;
	}
	buf[used] = '\0';
	*len = used;
	return buf;
}

static int app_path_or_usage(const char *id, char *out, size_t len)
{
	if (ctl_app_path(id, out, len) < 0)
		return ctl_usage_error(USAGE_APPS, "bad app id '%s'", id);
	return 0;
}

static void deployments_cell(json_t *deps, char *out, size_t len)
{
	json_t *d;
	size_t i;

	out[0] = '\0';
	json_array_foreach(deps, i, d) {
		const char *id = json_string_value(json_object_get(d, "id"));
		size_t used = strlen(out);

		snprintf(out + used, len - used, "%s%s", i ? "," : "", id ? id : "?");
	}
	if (!out[0])
		snprintf(out, len, "-");
}

static int add_app_row(struct table *t, json_t *app)
{
	char inst[32], running[32], cpus[32], mem[32], deps[512];
	const char *cells[7];

	ctl_fmt_value(json_object_get(app, "instances"), inst, sizeof(inst));
	ctl_fmt_value(json_object_get(app, "tasksRunning"), running, sizeof(running));
	ctl_fmt_value(json_object_get(app, "cpus"), cpus, sizeof(cpus));
	ctl_fmt_value(json_object_get(app, "mem"), mem, sizeof(mem));
	deployments_cell(json_object_get(app, "deployments"), deps, sizeof(deps));
	cells[0] = json_string_value(json_object_get(app, "id"));
	cells[1] = inst;
	cells[2] = running;
	cells[3] = cpus;
	cells[4] = mem;
	cells[5] = json_string_value(json_object_get(app, "version"));
	cells[6] = deps;
	return table_add_row(t, cells);
}

static int print_apps_table(json_t *apps)
{
	static const char *const headers[] = {
		"ID", "INSTANCES", "RUNNING", "CPUS", "MEM", "VERSION", "DEPLOYMENTS"
	};

	return ctl_print_table(headers, 7, apps, add_app_row);
}

static int apps_list(struct ctl *c)
{
	json_t *j;
	int ret;

	if (c->nargs != 0)
		return ctl_usage_error("apps list", "unexpected argument '%s'", c->args[0]);
	ret = ctl_request(c, "GET", "/v2/apps", NULL, 0, &j);
	if (ret)
		return ret;
	if (c->json)
		ctl_print_json(j);
	else if (!json_is_array(json_object_get(j, "apps")))
		ret = ctl_fail("unexpected answer from GET /v2/apps (no \"apps\" list)");
	else
		ret = print_apps_table(json_object_get(j, "apps"));
	json_decref(j);
	return ret;
}

/* Prints "key: value" lines for the scalar fields people look at first. */
static void print_app_fields(json_t *app)
{
	static const char *const keys[] = {
		"id", "cmd", "args", "instances", "cpus", "mem", "disk", "version",
		"tasksStaged", "tasksRunning", "tasksHealthy", "tasksUnhealthy", "env", "labels",
	};
	char buf[4096];
	size_t i;

	for (i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
		json_t *v = json_object_get(app, keys[i]);

		if (!v)
			continue;
		ctl_fmt_value(v, buf, sizeof(buf));
		printf("%-15s %s\n", keys[i], buf);
	}
	deployments_cell(json_object_get(app, "deployments"), buf, sizeof(buf));
	printf("%-15s %s\n", "deployments", buf);
}

static int apps_show(struct ctl *c)
{
	char id[1024], path[1200];
	json_t *j, *app;
	int ret;

	if (c->nargs != 1)
		return ctl_usage_error("apps show ID", "expected one app id");
	if ((ret = app_path_or_usage(c->args[0], id, sizeof(id))))
		return ret;
	snprintf(path, sizeof(path), "/v2/apps/%s?embed=apps.tasks", id);
	ret = ctl_request(c, "GET", path, NULL, 0, &j);
	if (ret)
		return ret;
	app = json_object_get(j, "app");
	if (c->json) {
		ctl_print_json(j);
	} else if (!json_is_object(app)) {
		ret = ctl_fail("unexpected answer from GET %s (no \"app\" object)", path);
	} else {
		print_app_fields(app);
		printf("\n");
		ret = ctl_print_tasks_table(json_object_get(app, "tasks"));
	}
	json_decref(j);
	return ret;
}

/* Prints what a write answered: the JSON, or one line naming the deployment. */
static void print_write_result(struct ctl *c, json_t *j, const char *what, const char *id)
{
	const char *dep = json_string_value(json_object_get(j, "deploymentId"));
	const char *ver = json_string_value(json_object_get(j, "version"));

	if (c->json) {
		if (j)
			ctl_print_json(j);
		else
			printf("{}\n");
		return;
	}
	printf("%s %s", what, id);
	if (ver)
		printf(" (version %s)", ver);
	if (dep)
		printf(", deployment %s", dep);
	printf("\n");
}

static int apps_add(struct ctl *c)
{
	size_t len = 0;
	char *body;
	json_t *j, *deps;
	int ret;

	if (c->nargs != 1)
		return ctl_usage_error("apps add FILE|-", "expected one file (or - for stdin)");
	body = read_definition(c->args[0], &len);
	if (!body)
		return ctl_fail("cannot read %s: %s", c->args[0], strerror(errno));
	ret = ctl_request(c, "POST", "/v2/apps", body, len, &j);
	free(body);
	if (ret)
		return ret;
	if (c->json) {
		ctl_print_json(j);
	} else {
		const char *id = json_string_value(json_object_get(j, "id"));
		const char *ver = json_string_value(json_object_get(j, "version"));

		deps = json_object_get(j, "deployments");
		printf("created app %s", id ? id : "?");
		if (ver)
			printf(" (version %s)", ver);
		if (json_array_size(deps))
			printf(", deployment %s",
			       json_string_value(json_object_get(json_array_get(deps, 0), "id")));
		printf("\n");
	}
	json_decref(j);
	return CTL_OK;
}

static int write_app(struct ctl *c, const char *method, const char *id, const char *suffix,
		     const char *body, size_t len, const char *what)
{
	char path_id[1024], path[1300];
	json_t *j;
	int ret;

	if ((ret = app_path_or_usage(id, path_id, sizeof(path_id))))
		return ret;
	snprintf(path, sizeof(path), "/v2/apps/%s%s%s", path_id, suffix,
		 c->force ? "?force=true" : "");
	ret = ctl_request(c, method, path, body, len, &j);
	if (ret)
		return ret;
	print_write_result(c, j, what, id);
	json_decref(j);
	return CTL_OK;
}

static int apps_update(struct ctl *c)
{
	size_t len = 0;
	char *body;
	int ret;

	if (c->nargs != 2)
		return ctl_usage_error("apps update ID FILE|-", "expected an app id and a file");
	body = read_definition(c->args[1], &len);
	if (!body)
		return ctl_fail("cannot read %s: %s", c->args[1], strerror(errno));
	ret = write_app(c, "PUT", c->args[0], "", body, len, "updated app");
	free(body);
	return ret;
}

static int apps_scale(struct ctl *c)
{
	char body[64], *end;
	long n;

	if (c->nargs != 2)
		return ctl_usage_error("apps scale ID N", "expected an app id and a count");
	n = strtol(c->args[1], &end, 10);
	if (!*c->args[1] || *end || n < 0 || n > 1000000)
		return ctl_usage_error("apps scale ID N", "bad instance count '%s'", c->args[1]);
	snprintf(body, sizeof(body), "{\"instances\":%ld}", n);
	return write_app(c, "PUT", c->args[0], "", body, strlen(body), "scaling app");
}

static int apps_remove(struct ctl *c)
{
	if (c->nargs != 1)
		return ctl_usage_error("apps remove ID", "expected one app id");
	return write_app(c, "DELETE", c->args[0], "", NULL, 0, "removing app");
}

static int apps_restart(struct ctl *c)
{
	if (c->nargs != 1)
		return ctl_usage_error("apps restart ID", "expected one app id");
	return write_app(c, "POST", c->args[0], "/restart", "{}", 2, "restarting app");
}

int cmd_apps(struct ctl *c)
{
	static const struct { const char *verb; int (*fn)(struct ctl *); } verbs[] = {
		{ "list", apps_list }, { "ls", apps_list }, { "show", apps_show },
		{ "add", apps_add }, { "create", apps_add }, { "update", apps_update },
		{ "scale", apps_scale }, { "remove", apps_remove }, { "rm", apps_remove },
		{ "restart", apps_restart },
	};
	size_t i;

	if (!c->verb)
		return ctl_usage_error(USAGE_APPS, "missing verb");
	for (i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++)
		if (!strcmp(c->verb, verbs[i].verb))
			return verbs[i].fn(c);
	return ctl_usage_error(USAGE_APPS, "unknown verb '%s'", c->verb);
}
