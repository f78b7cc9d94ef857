/* checkpoint.c - the files that let a restarted agent carry on where it stopped:
 *   <work-dir>/agent_id                       the agent's persistent id
 *   <work-dir>/meta/tasks/<task-id>/task.json the task record (TASKINFO, state, executor pid)
 *   <work-dir>/meta/tasks/<task-id>/run/      the executor's files (pid, exit.json)
 *   <work-dir>/sandboxes/<task-id>/           the task's sandbox (stdout, stderr)
 * Status updates live in <work-dir>/meta/updates (outbox.c). Every file is replaced
 * atomically, so a crash leaves either the old or the new version. */
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/agent.h"
#include "lib/log.h"
#include "lib/util.h"

static bool agent_id_valid(const char *s)
{
	if (strlen(s) != AGENT_ID_LEN || strncmp(s, "agent-", 6) != 0)
		return false;
	for (const char *p = s + 6; *p; p++)
		if (!isxdigit((unsigned char)*p) || isupper((unsigned char)*p))
			return false;
	return true;
}

int checkpoint_agent_id(const char *work_dir, char out[AGENT_ID_LEN + 1], char *err, size_t errlen)
{
	char path[4096], id[AGENT_ID_LEN + 2];
	char *text;
	size_t len;
	int rc;

	rc = path_join(path, sizeof(path), "%s/agent_id", work_dir);
	if (rc) {
		snprintf(err, errlen, "work dir path too long");
		return rc;
	}
	text = read_file(path, &len);
	if (text) {
		while (len && (text[len - 1] == '\n' || text[len - 1] == ' '))
			text[--len] = '\0';
		if (!agent_id_valid(text)) {
			/* A new id would orphan every running task: refuse instead. */
			snprintf(err, errlen, "%s does not hold an agent id (agent-<12 hex>)", path);
			free(text);
			return -EINVAL;
		}
		memcpy(out, text, AGENT_ID_LEN + 1);
		free(text);
		return 0;
	}
	if (errno != ENOENT) {
		rc = -errno;
		snprintf(err, errlen, "cannot read %s: %s", path, strerror(errno));
		return rc;
	}
	memcpy(id, "agent-", 6);
	random_hex(id + 6, 12);
	rc = write_file_atomic(path, id, AGENT_ID_LEN);
	if (rc) {
		snprintf(err, errlen, "cannot write %s: %s", path, strerror(-rc));
		return rc;
	}
	memcpy(out, id, AGENT_ID_LEN + 1);
	return 0;
}

int checkpoint_task_dir(const char *work_dir, const char *task_id, char *out, size_t outlen)
{
	return path_join(out, outlen, "%s/meta/tasks/%s", work_dir, task_id);
}

int checkpoint_run_dir(const char *work_dir, const char *task_id, char *out, size_t outlen)
{
	return path_join(out, outlen, "%s/meta/tasks/%s/run", work_dir, task_id);
}

int checkpoint_sandbox_dir(const char *work_dir, const char *task_id, char *out, size_t outlen)
{
	return path_join(out, outlen, "%s/sandboxes/%s", work_dir, task_id);
}

int checkpoint_task_save(const char *work_dir, const char *task_id, json_t *record)
{
	char dir[4096], path[4096];
	int rc;

	rc = checkpoint_task_dir(work_dir, task_id, dir, sizeof(dir));
	if (!rc)
		rc = mkdir_p(dir, 0700);
	if (!rc)
		rc = path_join(path, sizeof(path), "%s/task.json", dir);
	if (!rc)
		rc = json_write_file_atomic(path, record);
	return rc < 0 ? rc : (rc ? -EIO : 0);
}

int checkpoint_task_remove(const char *work_dir, const char *task_id)
{
	char dir[4096];
	int rc = checkpoint_task_dir(work_dir, task_id, dir, sizeof(dir));

	if (rc)
		return rc;
	rc = remove_tree(dir);
	return rc == -ENOENT ? 0 : rc;
}

int checkpoint_tasks_load(const char *work_dir, json_t **records, json_t **bad)
{
	char dir[4096], path[4096];
	struct dirent *d;
	DIR *dh;
	int rc;

	*records = json_object();
	*bad = json_array();
	if (!*records || !*bad) {
		rc = -ENOMEM;
		goto err;
	}
	rc = path_join(dir, sizeof(dir), "%s/meta/tasks", work_dir);
	if (rc)
		goto err;
	dh = opendir(dir);
	if (!dh) {
		if (errno == ENOENT)
			return 0;
		rc = -errno;
		goto err;
	}
	while ((d = readdir(dh))) {
		json_error_t jerr;
		json_t *rec;

		if (d->d_name[0] == '.')
			continue;
		if (!task_id_valid(d->d_name) ||
		    path_join(path, sizeof(path), "%s/%s/task.json", dir, d->d_name)) {
			json_array_append_new(*bad, json_string(d->d_name));
			continue;
		}
		rec = json_load_file(path, 0, &jerr);
		if (!rec || !json_is_object(json_object_get(rec, "task"))) {
			log_warn("event=checkpoint_unreadable task_id=%s error=\"%s\"", d->d_name,
				 rec ? "no task object" : jerr.text);
			json_decref(rec);
			json_array_append_new(*bad, json_string(d->d_name));
			continue;
		}
		json_object_set_new(*records, d->d_name, rec);
	}
	closedir(dh);
	return 0;
err:
	json_decref(*records);
	json_decref(*bad);
	*records = *bad = NULL;
	return rc;
}
