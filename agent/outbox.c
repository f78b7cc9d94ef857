/* outbox.c - the agent's status update outbox. Every update is written to
 * <work-dir>/meta/updates/<seq>.json before anyone may send it, and deleted only when the
 * master acknowledges its uuid, so updates survive agent and master restarts. The file
 * name is a zero-padded sequence number: sorting names gives the order updates were made,
 * which keeps each task's updates in order after a restart. Not thread-safe: callers hold
 * the agent lock. */
#include <dirent.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent/agent.h"
#include "lib/log.h"
#include "lib/util.h"

#define SEQ_DIGITS 20

static int entry_path(const struct outbox *o, uint64_t seq, char *out, size_t outlen)
{
	return path_join(out, outlen, "%s/%0*" PRIu64 ".json", o->dir, SEQ_DIGITS, seq);
}

static void entry_free(struct outbox_entry *e)
{
	if (!e)
		return;
	json_decref(e->update);
	free(e->task_id);
	free(e);
}

/* Builds an entry from an update; the update is borrowed (a reference is taken). */
static struct outbox_entry *entry_new(uint64_t seq, json_t *update)
{
	const char *uuid = json_string_value(json_object_get(update, "uuid"));
	const char *task_id = json_string_value(json_object_get(update, "task_id"));
	const char *state = json_string_value(json_object_get(update, "state"));
	struct outbox_entry *e;

	if (!uuid || strlen(uuid) != 36 || !task_id || !state)
		return NULL;
	e = calloc(1, sizeof(*e));
	if (!e)
		return NULL;
	e->task_id = strdup(task_id);
	if (!e->task_id) {
		free(e);
		return NULL;
	}
	e->seq = seq;
	memcpy(e->uuid, uuid, sizeof(e->uuid));
	e->state = task_state_parse(state) < 0 ? TASK_UNKNOWN : (enum task_state)task_state_parse(state);
	e->update = json_incref(update);
	return e;
}

static void append(struct outbox *o, struct outbox_entry *e)
{
	if (o->tail)
		o->tail->next = e;
	else
		o->head = e;
	o->tail = e;
	o->count++;
}

/* Only "<20 digits>.json": skips temp files left by an interrupted atomic write. */
static int is_update_file(const struct dirent *d)
{
	size_t n = strlen(d->d_name);

	if (n != SEQ_DIGITS + 5 || strcmp(d->d_name + SEQ_DIGITS, ".json") != 0)
		return 0;
	for (size_t i = 0; i < SEQ_DIGITS; i++)
		if (d->d_name[i] < '0' || d->d_name[i] > '9')
			return 0;
	return 1;
}

static int load_one(struct outbox *o, const char *name)
{
	char path[4096];
	struct outbox_entry *e;
	json_error_t jerr;
	json_t *update;
	uint64_t seq = strtoull(name, NULL, 10);
	int rc = path_join(path, sizeof(path), "%s/%s", o->dir, name);

	if (rc)
		return rc;
	update = json_load_file(path, 0, &jerr);
	e = update ? entry_new(seq, update) : NULL;
	json_decref(update);
	if (!e) {
		/* Atomic writes make this unlikely; a bad file must not block the outbox. */
		log_warn("event=outbox_bad_update file=%s error=\"%s\"", path,
			 update ? "missing uuid/task_id/state" : jerr.text);
		unlink(path);
		return 0;
	}
	append(o, e);
	if (seq >= o->next_seq)
		o->next_seq = seq + 1;
	return 0;
}

int outbox_open(struct outbox *o, const char *work_dir)
{
	struct dirent **names = NULL;
	char dir[4096];
	int n, rc;

	memset(o, 0, sizeof(*o));
	o->next_seq = 1;
	rc = path_join(dir, sizeof(dir), "%s/meta/updates", work_dir);
	if (rc)
		return rc;
	rc = mkdir_p(dir, 0700);
	if (rc)
		return rc;
	o->dir = strdup(dir);
	if (!o->dir)
		return -ENOMEM;
	n = scandir(dir, &names, is_update_file, alphasort);
	if (n < 0) {
		rc = -errno;
		goto out;
	}
	for (int i = 0; i < n; i++) {
		if (!rc)
			rc = load_one(o, names[i]->d_name);
		free(names[i]);
	}
	free(names);
out:
	if (rc)
		outbox_close(o);
	return rc;
}

void outbox_close(struct outbox *o)
{
	struct outbox_entry *e = o->head;

	while (e) {
		struct outbox_entry *next = e->next;

		entry_free(e);
		e = next;
	}
	free(o->dir);
	memset(o, 0, sizeof(*o));
}

int outbox_add(struct outbox *o, json_t *update)
{
	char path[4096];
	struct outbox_entry *e;
	int rc;

	e = entry_new(o->next_seq, update);
	if (!e)
		return -EINVAL;
	rc = entry_path(o, e->seq, path, sizeof(path));
	if (!rc)
		rc = json_write_file_atomic(path, update);
	if (rc) {
		entry_free(e);
		return rc < 0 ? rc : -EIO;
	}
	o->next_seq++;
	append(o, e);
	return 0;
}

struct outbox_entry *outbox_find(struct outbox *o, const char *uuid)
{
	for (struct outbox_entry *e = o->head; e; e = e->next)
		if (strcmp(e->uuid, uuid) == 0)
			return e;
	return NULL;
}

int outbox_ack(struct outbox *o, const char *uuid)
{
	struct outbox_entry *prev = NULL, *e;
	char path[4096];

	for (e = o->head; e; prev = e, e = e->next)
		if (strcmp(e->uuid, uuid) == 0)
			break;
	if (!e)
		return -ENOENT;
	if (entry_path(o, e->seq, path, sizeof(path)) == 0 && unlink(path) < 0 && errno != ENOENT)
		log_warn("event=outbox_unlink_failed file=%s errno=%d", path, errno);
	if (prev)
		prev->next = e->next;
	else
		o->head = e->next;
	if (o->tail == e)
		o->tail = prev;
	o->count--;
	entry_free(e);
	return 0;
}

size_t outbox_count_task(const struct outbox *o, const char *task_id)
{
	size_t n = 0;

	for (const struct outbox_entry *e = o->head; e; e = e->next)
		n += strcmp(e->task_id, task_id) == 0;
	return n;
}

const struct outbox_entry *outbox_last_for_task(const struct outbox *o, const char *task_id)
{
	const struct outbox_entry *last = NULL;

	for (const struct outbox_entry *e = o->head; e; e = e->next)
		if (strcmp(e->task_id, task_id) == 0)
			last = e;
	return last;
}
