/* usage_spool.c - the agent's usage readings awaiting the master's acknowledgement, on
 * disk in <work-dir>/meta/usage.json. Counters are cumulative, so the newest reading of a
 * task replaces the older ones: one entry per task is the whole state, which bounds the
 * spool by the number of tasks (and USAGE_SPOOL_MAX_ENTRIES above that). See agent.h. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent/agent.h"
#include "lib/log.h"
#include "lib/util.h"

static void drop_oldest(struct usage_spool *s);

/* An entry as usage_spool_record writes it. Anything else is dropped on load: the master
 * refuses a batch whole for one bad report, and the spool would resend that batch forever.
 * Counters are non-negative integers not named like the report's own fields (they are
 * merged into it), and useq is a batch number (> 0, the master refuses 0) at most the
 * file's (or no acknowledgement would ever drop the entry). */
static bool entry_ok(const char *task_id, json_t *v, uint64_t seq)
{
	static const char *const own[] = { "task_id", "app_id", "final", "at" };
	json_t *app = json_object_get(v, "app_id"), *useq = json_object_get(v, "useq"), *x;
	const char *k;

	if (!task_id_valid(task_id) || !json_is_object(json_object_get(v, "counters")) ||
	    (app && !json_is_string(app) && !json_is_null(app)) ||
	    !json_is_boolean(json_object_get(v, "final")) || !json_is_number(json_object_get(v, "at")) ||
	    !json_is_integer(useq) || json_integer_value(useq) < 1 ||
	    (uint64_t)json_integer_value(useq) > seq)
		return false;
	json_object_foreach(json_object_get(v, "counters"), k, x) {
		if (!json_is_integer(x) || json_integer_value(x) < 0)
			return false;
		for (size_t i = 0; i < ARRAY_SIZE(own); i++)
			if (strcmp(k, own[i]) == 0)
				return false;
	}
	return true;
}

static int load(struct usage_spool *s)
{
	json_error_t jerr;
	json_t *j, *pending, *jseq;
	const char *key;
	json_t *v;

	j = json_load_file(s->path, 0, &jerr);
	if (!j) {
		if (access(s->path, F_OK) == 0)
			log_warn("event=usage_spool_unreadable path=%s error=\"%s\"", s->path, jerr.text);
		return 0;
	}
	jseq = json_object_get(j, "seq");
	if (!json_is_integer(jseq) || json_integer_value(jseq) < 0) {
		log_warn("event=usage_spool_unreadable path=%s error=\"no batch number\"", s->path);
		json_decref(j);
		return 0;
	}
	s->seq = (uint64_t)json_integer_value(jseq);
	pending = json_object_get(j, "pending");
	json_object_foreach(pending, key, v) {
		if (entry_ok(key, v, s->seq))
			json_object_set(s->pending, key, v);
		else
			log_warn("event=usage_spool_entry_dropped path=%s task_id=%s", s->path, key);
	}
	while (json_object_size(s->pending) > s->max_entries)
		drop_oldest(s);
	json_decref(j);
	return 0;
}

int usage_spool_open(struct usage_spool *s, const char *work_dir, size_t max_entries)
{
	char path[4096];
	int rc;

	memset(s, 0, sizeof(*s));
	pthread_mutex_init(&s->mu, NULL);
	pthread_cond_init(&s->cond, NULL);
	s->max_entries = max_entries ? max_entries : USAGE_SPOOL_MAX_ENTRIES;
	s->pending = json_object();
	if ((rc = path_join(path, sizeof(path), "%s/meta", work_dir)) || (rc = mkdir_p(path, 0700)))
		return rc;
	if ((rc = path_join(path, sizeof(path), "%s/meta/usage.json", work_dir)))
		return rc;
	s->path = strdup(path);
	if (!s->path || !s->pending)
		return -ENOMEM;
	return load(s);
}

void usage_spool_close(struct usage_spool *s)
{
	free(s->path);
	s->path = NULL;
	json_decref(s->pending);
	s->pending = NULL;
	pthread_cond_destroy(&s->cond);
	pthread_mutex_destroy(&s->mu);
}

/* Over the bound: drop the oldest non-final entry (finals are the ones worth keeping), or
 * the oldest of all. Called with mu held. */
static void drop_oldest(struct usage_spool *s)
{
	const char *key, *victim = NULL;
	uint64_t best = UINT64_MAX;
	bool best_final = true;
	json_t *v;

	json_object_foreach(s->pending, key, v) {
		bool fin = json_is_true(json_object_get(v, "final"));
		uint64_t useq = (uint64_t)json_integer_value(json_object_get(v, "useq"));

		if ((best_final && !fin) || (fin == best_final && useq < best)) {
			victim = key;
			best = useq;
			best_final = fin;
		}
	}
	if (!victim)
		return;
	log_warn("event=usage_spool_full dropped_task=%s final=%d", victim, best_final);
	json_object_del(s->pending, victim);
	s->dropped++;
}

int usage_spool_record(struct usage_spool *s, const char *task_id, const char *app_id,
		       json_t *counters, bool final, double wall)
{
	json_t *e, *old;
	int rc = 0;

	pthread_mutex_lock(&s->mu);
	old = json_object_get(s->pending, task_id);
	if (old && json_is_true(json_object_get(old, "final")) && !final)
		goto out;       /* a stale reading must not replace the final one */
	if (!old && json_object_size(s->pending) >= s->max_entries)
		drop_oldest(s);
	e = json_pack("{s:s?,s:O,s:b,s:f,s:I}", "app_id", app_id, "counters", counters,
		      "final", final, "at", wall, "useq", (json_int_t)(s->seq + 1));
	if (!e || json_object_set_new(s->pending, task_id, e) < 0) {
		rc = -ENOMEM;
		goto out;
	}
	s->dirty = true;
	if (final) {
		s->urgent = true;
		pthread_cond_broadcast(&s->cond);
	}
out:
	pthread_mutex_unlock(&s->mu);
	return rc;
}

static int commit_locked(struct usage_spool *s)
{
	json_t *doc;
	int rc;

	if (!s->dirty)
		return 0;
	if (s->seq >= INT64_MAX)
		return -EOVERFLOW;      /* a damaged file's number: batches cannot go higher */
	doc = json_pack("{s:I,s:O}", "seq", (json_int_t)(s->seq + 1), "pending", s->pending);
	if (!doc)
		return -ENOMEM;
	rc = json_write_file_atomic(s->path, doc);
	json_decref(doc);
	if (rc < 0) {
		log_warn("event=usage_spool_write_failed path=%s error=\"%s\"", s->path, strerror(-rc));
		return rc;
	}
	s->seq++;
	s->dirty = false;
	return 0;
}

int usage_spool_commit(struct usage_spool *s)
{
	int rc;

	pthread_mutex_lock(&s->mu);
	rc = commit_locked(s);
	pthread_mutex_unlock(&s->mu);
	return rc;
}

static json_t *report_json(const char *task_id, json_t *e)
{
	json_t *r = json_pack("{s:s,s:O?,s:O,s:O}", "task_id", task_id,
			      "app_id", json_object_get(e, "app_id"),
			      "final", json_object_get(e, "final"), "at", json_object_get(e, "at"));

	if (r)
		json_object_update(r, json_object_get(e, "counters"));
	return r;
}

json_t *usage_spool_batch(struct usage_spool *s, const char *agent_id)
{
	json_t *reports = NULL, *batch = NULL, *e;
	const char *key;

	pthread_mutex_lock(&s->mu);
	/* Only committed readings go out: what the master acknowledges is on disk. */
	if (commit_locked(s) < 0 || json_object_size(s->pending) == 0)
		goto out;
	reports = json_array();
	json_object_foreach(s->pending, key, e)
		json_array_append_new(reports, report_json(key, e));
	batch = json_pack("{s:s,s:I,s:o}", "agent_id", agent_id, "seq", (json_int_t)s->seq,
			  "reports", reports);
	s->urgent = false;
out:
	pthread_mutex_unlock(&s->mu);
	return batch;
}

int usage_spool_ack(struct usage_spool *s, uint64_t seq)
{
	const char *key;
	json_t *e, *tmp;
	bool changed = false;
	int rc = 0;

	pthread_mutex_lock(&s->mu);
	json_object_foreach_safe(s->pending, tmp, key, e) {
		if ((uint64_t)json_integer_value(json_object_get(e, "useq")) <= seq) {
			json_object_del(s->pending, key);
			changed = true;
		}
	}
	if (changed) {
		/* Rewrite without fsync-ordering worries: losing this write only resends
		 * readings the master ignores by their sequence number. */
		json_t *doc = json_pack("{s:I,s:O}", "seq", (json_int_t)s->seq, "pending", s->pending);

		rc = doc ? json_write_file_atomic(s->path, doc) : -ENOMEM;
		json_decref(doc);
	}
	pthread_mutex_unlock(&s->mu);
	return rc;
}

int usage_spool_renumber(struct usage_spool *s, uint64_t above)
{
	const char *key;
	json_t *e;
	int rc = 0;

	pthread_mutex_lock(&s->mu);
	if (s->seq <= above) {
		s->seq = above + 1;
		/* every pending reading goes out under the new number */
		json_object_foreach(s->pending, key, e)
			json_object_set_new(e, "useq", json_integer((json_int_t)s->seq));
		json_t *doc = json_pack("{s:I,s:O}", "seq", (json_int_t)s->seq, "pending", s->pending);

		rc = doc ? json_write_file_atomic(s->path, doc) : -ENOMEM;
		json_decref(doc);
	}
	pthread_mutex_unlock(&s->mu);
	return rc;
}

size_t usage_spool_count(struct usage_spool *s)
{
	size_t n;

	pthread_mutex_lock(&s->mu);
	n = json_object_size(s->pending);
	pthread_mutex_unlock(&s->mu);
	return n;
}

bool usage_spool_has_final(struct usage_spool *s, const char *task_id)
{
	bool fin;

	pthread_mutex_lock(&s->mu);
	fin = json_is_true(json_object_get(json_object_get(s->pending, task_id), "final"));
	pthread_mutex_unlock(&s->mu);
	return fin;
}
