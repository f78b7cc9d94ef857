/* task_info.c - reads a TASKINFO (docs/architecture.md) sent by the master: checks every
 * field the agent depends on, and turns it into the container's argv and environment
 * (the TASKINFO env plus PORT0..n, PORT, PORTS, HOST, MESOS_TASK_ID, MARATHON_APP_ID,
 * MESOS_SANDBOX, as Marathon on Mesos provides them). */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/agent.h"

#define MAX_PORTS 1000
#define DEFAULT_PATH "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

/* Task ids name directories and cgroups: keep them to a safe alphabet. */
bool task_id_valid(const char *id)
{
	size_t n = id ? strlen(id) : 0;

	if (n == 0 || n > TASK_ID_MAX || id[0] == '.' || id[0] == '-')
		return false;
	for (const char *p = id; *p; p++) {
		char c = *p;

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
		      c == '.' || c == '_' || c == '-'))
			return false;
	}
	return true;
}

/* Optional string field: absent or null -> NULL; anything else but a string is an error. */
static int opt_string(json_t *obj, const char *key, const char **out, const char *path,
		      char *err, size_t errlen)
{
	json_t *v = json_object_get(obj, key);

	*out = NULL;
	if (!v || json_is_null(v))
		return 0;
	if (!json_is_string(v)) {
		snprintf(err, errlen, "%s/%s must be a string", path, key);
		return -EINVAL;
	}
	*out = json_string_value(v);
	return 0;
}

static int opt_number(json_t *obj, const char *key, double def, double *out, const char *path,
		      char *err, size_t errlen)
{
	json_t *v = json_object_get(obj, key);

	*out = def;
	if (!v || json_is_null(v))
		return 0;
	if (!json_is_number(v) || !isfinite(json_number_value(v)) || json_number_value(v) < 0) {
		snprintf(err, errlen, "%s/%s must be a non-negative number", path, key);
		return -EINVAL;
	}
	*out = json_number_value(v);
	return 0;
}

static int parse_command(json_t *info, struct task_info *ti, char *err, size_t errlen)
{
	json_t *cmd = json_object_get(info, "command"), *args, *shell, *a;
	size_t i, n;

	if (!json_is_object(cmd)) {
		snprintf(err, errlen, "/task/command must be an object");
		return -EINVAL;
	}
	shell = json_object_get(cmd, "shell");
	if (shell && !json_is_boolean(shell)) {
		snprintf(err, errlen, "/task/command/shell must be a boolean");
		return -EINVAL;
	}
	ti->shell = !shell || json_is_true(shell);
	if (opt_string(cmd, "value", &ti->command, "/task/command", err, errlen))
		return -EINVAL;
	args = json_object_get(cmd, "arguments");
	if (args && !json_is_null(args) && !json_is_array(args)) {
		snprintf(err, errlen, "/task/command/arguments must be an array of strings");
		return -EINVAL;
	}
	if (ti->shell) {
		if (!ti->command || !ti->command[0]) {
			snprintf(err, errlen, "/task/command/value must be a non-empty string");
			return -EINVAL;
		}
		return 0;
	}
	/* Mesos: arguments is the whole argv (Marathon's args); value the program. */
	n = json_array_size(args);
	if (!ti->command && n == 0) {
		snprintf(err, errlen, "/task/command needs a value or arguments");
		return -EINVAL;
	}
	ti->argv = calloc(n + 2, sizeof(*ti->argv));
	if (!ti->argv)
		return -ENOMEM;
	json_array_foreach(args, i, a) {
		if (!json_is_string(a)) {
			snprintf(err, errlen, "/task/command/arguments/%zu must be a string", i);
			return -EINVAL;
		}
		ti->argv[i] = json_string_value(a);
	}
	if (n == 0)
		ti->argv[0] = ti->command;
	if (!ti->command)
		ti->command = ti->argv[0];
	return 0;
}

static int parse_resources(json_t *info, struct task_info *ti, char *err, size_t errlen)
{
	json_t *res = json_object_get(info, "resources");

	if (!json_is_object(res)) {
		snprintf(err, errlen, "/task/resources must be an object");
		return -EINVAL;
	}
	if (opt_number(res, "cpus", 0, &ti->cpus, "/task/resources", err, errlen) ||
	    opt_number(res, "mem", 0, &ti->mem, "/task/resources", err, errlen) ||
	    opt_number(res, "disk", 0, &ti->disk, "/task/resources", err, errlen))
		return -EINVAL;
	if (ti->cpus <= 0) {
		snprintf(err, errlen, "/task/resources/cpus must be greater than 0");
		return -EINVAL;
	}
	if (ti->mem <= 0) {
		snprintf(err, errlen, "/task/resources/mem must be greater than 0");
		return -EINVAL;
	}
	return 0;
}

/* The task's ports: "ports" if given, else every port of resources.ports in order. */
static int parse_ports(json_t *info, struct task_info *ti, char *err, size_t errlen)
{
	json_t *ports = json_object_get(info, "ports"), *ranges, *p;
	size_t i;

	ti->ports = calloc(MAX_PORTS, sizeof(*ti->ports));
	if (!ti->ports)
		return -ENOMEM;
	if (ports && !json_is_null(ports)) {
		if (!json_is_array(ports) || json_array_size(ports) > MAX_PORTS) {
			snprintf(err, errlen, "/task/ports must be an array of at most %d ports", MAX_PORTS);
			return -EINVAL;
		}
		json_array_foreach(ports, i, p) {
			json_int_t v = json_integer_value(p);

			if (!json_is_integer(p) || v < 1 || v > 65535) {
				snprintf(err, errlen, "/task/ports/%zu must be a port number (1-65535)", i);
				return -EINVAL;
			}
			ti->ports[ti->nports++] = (uint32_t)v;
		}
		return 0;
	}
	ranges = json_object_get(json_object_get(info, "resources"), "ports");
	if (!ranges || json_is_null(ranges))
		return 0;
	if (!json_is_array(ranges)) {
		snprintf(err, errlen, "/task/resources/ports must be an array of [begin,end] ranges");
		return -EINVAL;
	}
	json_array_foreach(ranges, i, p) {
		json_int_t b = json_integer_value(json_array_get(p, 0));
		json_int_t e = json_integer_value(json_array_get(p, 1));

		if (!json_is_array(p) || json_array_size(p) != 2 || b < 1 || e > 65535 || b > e) {
			snprintf(err, errlen, "/task/resources/ports/%zu must be [begin,end] with 1 <= begin <= end <= 65535", i);
			return -EINVAL;
		}
		for (json_int_t port = b; port <= e; port++) {
			if (ti->nports == MAX_PORTS) {
				snprintf(err, errlen, "/task/resources/ports holds more than %d ports", MAX_PORTS);
				return -EINVAL;
			}
			ti->ports[ti->nports++] = (uint32_t)port;
		}
	}
	return 0;
}

static int parse_env(json_t *info, struct task_info *ti, char *err, size_t errlen)
{
	json_t *env = json_object_get(info, "env"), *v;
	const char *k;

	if (!env || json_is_null(env))
		return 0;
	if (!json_is_object(env)) {
		snprintf(err, errlen, "/task/env must be an object of strings");
		return -EINVAL;
	}
	json_object_foreach(env, k, v) {
		if (!json_is_string(v) || !k[0] || strchr(k, '=')) {
			snprintf(err, errlen, "/task/env/%s must be a string under a name without '='", k);
			return -EINVAL;
		}
	}
	ti->env = env;
	return 0;
}

int task_info_parse(json_t *info, struct task_info *ti, char *err, size_t errlen)
{
	int rc;

	memset(ti, 0, sizeof(*ti));
	if (!json_is_object(info)) {
		snprintf(err, errlen, "/task must be an object");
		return -EINVAL;
	}
	rc = opt_string(info, "task_id", &ti->task_id, "/task", err, errlen);
	if (!rc && !task_id_valid(ti->task_id)) {
		snprintf(err, errlen, "/task/task_id must be 1-%d characters of [A-Za-z0-9._-], not starting with '.' or '-'",
			 TASK_ID_MAX);
		rc = -EINVAL;
	}
	if (!rc)
		rc = opt_string(info, "name", &ti->name, "/task", err, errlen);
	if (!rc)
		rc = opt_string(info, "app_id", &ti->app_id, "/task", err, errlen);
	if (!rc)
		rc = opt_string(info, "user", &ti->user, "/task", err, errlen);
	if (!rc)
		rc = opt_number(info, "kill_grace_period_seconds", DEFAULT_KILL_GRACE, &ti->kill_grace,
				"/task", err, errlen);
	if (!rc)
		rc = parse_command(info, ti, err, errlen);
	if (!rc)
		rc = parse_resources(info, ti, err, errlen);
	if (!rc)
		rc = parse_ports(info, ti, err, errlen);
	if (!rc)
		rc = parse_env(info, ti, err, errlen);
	if (!rc)
		rc = health_defs_parse(json_object_get(info, "health_checks"), ti->checks,
				       &ti->nchecks, err, errlen);
	if (rc == -ENOMEM)
		snprintf(err, errlen, "out of memory");
	if (rc)
		task_info_free(ti);
	return rc;
}

void task_info_free(struct task_info *ti)
{
	free(ti->argv);
	free(ti->ports);
	ti->argv = NULL;
	ti->ports = NULL;
	ti->nports = 0;
}

void strv_free(char **v)
{
	if (!v)
		return;
	for (char **p = v; *p; p++)
		free(*p);
	free(v);
}

static int env_set_port(json_t *env, size_t i, uint32_t port)
{
	char name[32];

	snprintf(name, sizeof(name), "PORT%zu", i);
	return json_object_set_new(env, name, json_sprintf("%u", port));
}

/* Our variables first, then the task's own env, so an app can override any of them. */
static json_t *env_object(const struct task_info *ti, const char *host, const char *sandbox)
{
	json_t *env = json_object();
	char *ports = calloc(ti->nports ? ti->nports * 6 : 1, 1);
	size_t off = 0;

	if (!env || !ports)
		goto err;
	json_object_set_new(env, "PATH", json_string(DEFAULT_PATH));
	for (size_t i = 0; i < ti->nports; i++) {
		if (env_set_port(env, i, ti->ports[i]))
			goto err;
		off += sprintf(ports + off, "%s%u", i ? "," : "", ti->ports[i]);
	}
	if (ti->nports) {
		json_object_set_new(env, "PORT", json_sprintf("%u", ti->ports[0]));
		json_object_set_new(env, "PORTS", json_string(ports));
	}
	json_object_set_new(env, "HOST", json_string(host));
	json_object_set_new(env, "MESOS_TASK_ID", json_string(ti->task_id));
	if (ti->app_id)
		json_object_set_new(env, "MARATHON_APP_ID", json_string(ti->app_id));
	json_object_set_new(env, "MESOS_SANDBOX", json_string(sandbox));
	if (ti->env && json_object_update(env, ti->env))
		goto err;
	free(ports);
	return env;
err:
	free(ports);
	json_decref(env);
	return NULL;
}

char **task_env_build(const struct task_info *ti, const char *host, const char *sandbox)
{
	json_t *env = env_object(ti, host, sandbox), *v;
	const char *k;
	char **out = NULL;
	size_t n = 0;

	if (!env)
		return NULL;
	out = calloc(json_object_size(env) + 1, sizeof(*out));
	if (!out)
		goto out;
	json_object_foreach(env, k, v) {
		if (asprintf(&out[n], "%s=%s", k, json_string_value(v)) < 0) {
			out[n] = NULL;
			strv_free(out);
			out = NULL;
			goto out;
		}
		n++;
	}
out:
	json_decref(env);
	return out;
}
