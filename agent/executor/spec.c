/* spec.c - reads the launch spec the containerizer wrote into <run_dir>/spec.json. */
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/executor/executor.h"

#define DEFAULT_PATH "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

static const char *opt_string(json_t *root, const char *key)
{
	return json_string_value(json_object_get(root, key));
}

/* A JSON array of strings as a NULL-terminated vector (pointers into the JSON), with room
 * for `extra` more entries. */
static const char **string_vector(json_t *arr, size_t extra, int *rc)
{
	size_t n = json_is_array(arr) ? json_array_size(arr) : 0;
	const char **v = calloc(n + extra + 1, sizeof(*v));

	*rc = 0;
	if (!v) {
		*rc = -ENOMEM;
		return NULL;
	}
	for (size_t i = 0; i < n; i++) {
		v[i] = json_string_value(json_array_get(arr, i));
		if (!v[i]) {
			*rc = -EINVAL;
			free(v);
			return NULL;
		}
	}
	return v;
}

static int ns_flag(const char *name)
{
	static const struct { const char *name; int flag; } map[] = {
		{ "pid", CLONE_NEWPID }, { "mount", CLONE_NEWNS }, { "uts", CLONE_NEWUTS },
		{ "ipc", CLONE_NEWIPC }, { "net", CLONE_NEWNET },
	};

	for (size_t i = 0; i < sizeof(map) / sizeof(map[0]); i++)
		if (name && !strcmp(name, map[i].name))
			return map[i].flag;
	return -1;
}

int exec_spec_load(const char *path, struct exec_spec *s, char *err, size_t errlen)
{
	json_error_t jerr;
	json_t *ns, *v;
	size_t i;
	int rc;

	memset(s, 0, sizeof(*s));
	s->root = json_load_file(path, 0, &jerr);
	if (!s->root) {
		snprintf(err, errlen, "cannot read spec %s: %s (line %d)", path, jerr.text, jerr.line);
		return -EINVAL;
	}
	s->task_id = opt_string(s->root, "task_id");
	s->sandbox = opt_string(s->root, "sandbox");
	s->run_dir = opt_string(s->root, "run_dir");
	s->command = opt_string(s->root, "command");
	s->shell = json_is_true(json_object_get(s->root, "shell"));
	s->user = opt_string(s->root, "user");
	s->oom_file = opt_string(s->root, "oom_file");
	s->oom_key = opt_string(s->root, "oom_key");
	s->hostname = opt_string(s->root, "hostname");
	s->mount_proc = json_is_true(json_object_get(s->root, "mount_proc"));
	s->private_tmp = json_is_true(json_object_get(s->root, "private_tmp"));
	if (!s->task_id || !s->sandbox || !s->run_dir || !s->command) {
		snprintf(err, errlen, "spec %s lacks task_id, sandbox, run_dir or command", path);
		goto err_inval;
	}
	if (s->shell) {
		json_t *sh = json_pack("[sss]", "/bin/sh", "-c", s->command);

		json_object_set_new(s->root, "argv", sh);
	}
	s->argv = string_vector(json_object_get(s->root, "argv"), 0, &rc);
	if (!s->argv || !s->argv[0]) {
		snprintf(err, errlen, "spec %s: argv must be a non-empty array of strings", path);
		goto err_inval;
	}
	s->env = string_vector(json_object_get(s->root, "env"), 1, &rc);
	if (!s->env) {
		snprintf(err, errlen, "spec %s: env must be an array of strings", path);
		goto err_inval;
	}
	for (i = 0; s->env[i] && strncmp(s->env[i], "PATH=", 5); i++)
		;
	if (!s->env[i])
		s->env[i] = DEFAULT_PATH;
	s->cgroups = string_vector(json_object_get(s->root, "cgroups"), 0, &rc);
	if (!s->cgroups) {
		snprintf(err, errlen, "spec %s: cgroups must be an array of strings", path);
		goto err_inval;
	}
	ns = json_object_get(s->root, "namespaces");
	json_array_foreach(ns, i, v) {
		int f = ns_flag(json_string_value(v));

		if (f < 0) {
			snprintf(err, errlen, "spec %s: unknown namespace %s", path,
				 json_string_value(v) ? json_string_value(v) : "(not a string)");
			goto err_inval;
		}
		s->clone_flags |= f;
	}
	return 0;
err_inval:
	exec_spec_free(s);
	return -EINVAL;
}

void exec_spec_free(struct exec_spec *s)
{
	free(s->argv);
	free(s->env);
	free(s->cgroups);
	json_decref(s->root);
	memset(s, 0, sizeof(*s));
}
