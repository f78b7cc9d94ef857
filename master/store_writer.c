/* store_writer.c - group commit for the master's own records (kinds "tasks", "task_infos"
 * and "agents"; task records go to the task log, master/task_log.h, when the master has
 * one, the others to the store). Writers queue (kind, key, value) with master->lock held, the value as a
 * jansson tree, as JSON text, or as an object the writer prints (task records: a copy of
 * the record's fields taken under the lock, printed here without it), and get a sequence
 * number; one thread writes everything queued in one transaction (one fsync for the whole
 * batch: one fdatasync of the task log, one SQLite commit if the batch has other kinds)
 * and publishes the highest durable sequence number. Whoever must not answer before
 * its write is durable (a status ack, a launch sent to an agent, a registration reply)
 * waits for its number with master->lock released, so the lock is never held across an
 * fsync and a batch grows with the load: at a million tasks, thousands of writes share
 * one commit instead of paying one fsync each.
 *
 * Without the thread (unit tests that drive the model directly) writes are synchronous.
 * The SQLite backend holds its mutex from begin to commit, so another writer (the
 * Marathon layer's own store calls) never lands inside a batch. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "lib/log.h"
#include "lib/util.h"
#include "master/master_internal.h"

/* Whether records of kind go to the task log. */
static bool to_log(const struct master *m, const char *kind)
{
	return m->task_log && strcmp(kind, "tasks") == 0;
}

/* A put (an update, if update), or a delete (neither value nor text), buffered in the task
 * log; durable at the next task_log_sync. */
static int log_one(struct master *m, const char *key, json_t *value, const char *text,
		   bool update)
{
	uint64_t k = tasks_key_seq(key);
	char *printed = NULL;
	int rc;

	if (!k)
		return -EINVAL;
	if (!text && !value)
		return task_log_del(m->task_log, k);
	if (!text && !(text = printed = json_dumps(value, JSON_COMPACT)))
		return -ENOMEM;
	rc = update ? task_log_update(m->task_log, k, text, strlen(text)) :
		      task_log_put(m->task_log, k, text, strlen(text));
	free(printed);
	return rc;
}

/* A put of value, or of text (JSON text of an object) when value is NULL; a delete when
 * both are NULL. update: a task log update instead of a put (the caller checked to_log). */
static void write_one(struct master *m, const char *kind, const char *key, json_t *value,
		      const char *text, bool update)
{
	json_error_t jerr;
	json_t *parsed;
	int rc;

	if (to_log(m, kind)) {
		rc = log_one(m, key, value, text, update);
	} else if (text && store_is_sqlite(m->store)) {
		rc = store_sqlite_put_text(m->store, kind, key, text);
	} else if (text) {
		parsed = json_loads(text, 0, &jerr);
		rc = parsed ? store_put(m->store, kind, key, parsed) : -EINVAL;
		json_decref(parsed);
	} else {
		rc = value ? store_put(m->store, kind, key, value) :
			     store_del(m->store, kind, key);
	}
	if (rc < 0)
		log_error("event=store_write_failed kind=%s key=%s op=%s error=\"%s\"", kind, key,
			  update ? "update" : value || text ? "put" : "del", strerror(-rc));
}

static void job_free(struct store_job *j)
{
	json_decref(j->value);
	free(j->full_key);
	free(j->text);
	free(j->obj);
	free(j);
}

/* A deferred value printed now (the writer's thread, or a caller without one): an update
 * record if asked for and the kind goes to the task log, else a put. */
static void write_obj(struct master *m, const char *kind, const char *key, void *obj,
		      char *(*render)(const void *obj, bool update), bool update)
{
	bool as_update = update && to_log(m, kind);
	char *text = render(obj, as_update);

	if (text)
		write_one(m, kind, key, NULL, text, as_update);
	else
		log_error("event=store_write_failed kind=%s key=%s op=put error=\"out of memory\"",
			  kind, key);
	free(text);
}

/* Batches start at most once per GATHER_SECONDS unless GATHER_ENOUGH writes are waiting:
 * with the task log a batch takes ~1 ms, and back-to-back batches of a few hundred writes
 * paid a write + fdatasync (and a wake-up of every waiter) each; a 2 ms window halves
 * them at a million tasks for ~5% less master CPU. A write waits at most that much more. */
#define GATHER_SECONDS 0.002
#define GATHER_ENOUGH 1000

/* Queues a job owning text or obj (either may be NULL); value is borrowed. */
static void queue(struct master *m, const char *kind, const char *key, json_t *value,
		  char *text, void *obj, char *(*render)(const void *obj, bool update),
		  bool update)
{
	struct store_job *j;

	pthread_mutex_lock(&m->sw_mutex);
	if (!m->sw_running) {
		pthread_mutex_unlock(&m->sw_mutex);
		goto now;
	}
	j = calloc(1, sizeof(*j));
	if (!j || asprintf(&j->full_key, "%s\x1f%s", kind, key) < 0) {
		pthread_mutex_unlock(&m->sw_mutex);
		free(j);
		goto now;               /* out of memory: at least write it */
	}
	strcpy_cut(j->kind, sizeof(j->kind), kind);
	j->key = j->full_key + strlen(kind) + 1;
	j->value = value ? json_incref(value) : NULL;
	j->text = text;
	j->obj = obj;
	j->render = render;
	j->update = update;
	j->seq = ++m->sw_seq;
	if (m->sw_tail)
		m->sw_tail->next = j;
	else
		m->sw_head = j;
	m->sw_tail = j;
	if (!m->sw_gathering || m->sw_seq - m->sw_durable >= GATHER_ENOUGH)
		pthread_cond_signal(&m->sw_cond);
	pthread_mutex_unlock(&m->sw_mutex);
	return;
now:
	if (obj)
		write_obj(m, kind, key, obj, render, update);
	else
		write_one(m, kind, key, value, text, false);
	if (to_log(m, kind) && !m->task_log_batch)
		task_log_sync(m->task_log);     /* (logs its own failure) */
	free(text);
	free(obj);
}

void master_store_put(struct master *m, const char *kind, const char *key, json_t *value)
{
	queue(m, kind, key, value, NULL, NULL, NULL, false);
}

void master_store_put_text(struct master *m, const char *kind, const char *key, char *text)
{
	if (text)
		queue(m, kind, key, NULL, text, NULL, NULL, false);
}

void master_store_put_deferred(struct master *m, const char *kind, const char *key, void *obj,
			       char *(*render)(const void *obj, bool update))
{
	if (obj)
		queue(m, kind, key, NULL, NULL, obj, render, false);
}

void master_store_update_deferred(struct master *m, const char *kind, const char *key,
				  void *obj, char *(*render)(const void *obj, bool update))
{
	if (obj)
		queue(m, kind, key, NULL, NULL, obj, render, true);
}

unsigned long master_store_pending(struct master *m)
{
	unsigned long n;

	pthread_mutex_lock(&m->sw_mutex);
	n = m->sw_seq - m->sw_durable;
	pthread_mutex_unlock(&m->sw_mutex);
	return n;
}

unsigned long master_store_seq(struct master *m)
{
	unsigned long seq;

	pthread_mutex_lock(&m->sw_mutex);
	seq = m->sw_seq;
	pthread_mutex_unlock(&m->sw_mutex);
	return seq;
}

void master_store_wait(struct master *m, unsigned long seq)
{
	pthread_mutex_lock(&m->sw_mutex);
	while (m->sw_running && m->sw_durable < seq)
		pthread_cond_wait(&m->sw_done, &m->sw_mutex);
	pthread_mutex_unlock(&m->sw_mutex);
}

/* Only the last write of a key in a batch matters (a task queued STAGING then RUNNING is
 * written once): earlier ones are marked superseded. An update that supersedes a put (or
 * an update that did) becomes a put itself: the log would have no put to lay it on.
 * Returns how many were superseded. */
static size_t coalesce(struct master *m, struct store_job *batch)
{
	struct hashmap *seen = &m->sw_seen;
	size_t n = 0;

	for (struct store_job *j = batch; j; j = j->next) {
		struct hm_node *old = hashmap_remove(seen, j->full_key);

		if (old) {
			struct store_job *prev = hm_entry(old, struct store_job, by_key);

			prev->superseded = true;
			if (!prev->update)
				j->update = false;
			n++;
		}
		hashmap_put(seen, &j->by_key, j->full_key);
	}
	hashmap_clear(seen);            /* the slots stay, for the next batch */
	return n;
}

static void write_batch(struct master *m, struct store_job *batch)
{
	size_t skipped = coalesce(m, batch), n = 0, logged = 0;
	bool tx = false;
	bool wake;

	for (struct store_job *j = batch; j; j = j->next) {
		if (j->superseded)
			continue;
		if (to_log(m, j->kind))
			logged++;
		else if (!tx)
			tx = store_begin(m->store) == 0;
		if (j->obj)
			write_obj(m, j->kind, j->key, j->obj, j->render, j->update);
		else
			write_one(m, j->kind, j->key, j->value, j->text, false);
		n++;
	}
	if (logged && task_log_sync(m->task_log) < 0)
		log_error("event=store_batch_failed target=task_log writes=%zu", logged);
	if (tx && store_commit(m->store) < 0)
		log_error("event=store_batch_failed writes=%zu", n - logged);
	pthread_mutex_lock(&m->sw_mutex);
	m->sw_batches++;
	m->sw_writes += n;
	m->sw_log_writes += logged;
	if (m->task_log)
		task_log_stats(m->task_log, &m->sw_log_stats);
	m->sw_coalesced += skipped;
	wake = m->sw_throttled;
	m->sw_throttled = false;
	pthread_mutex_unlock(&m->sw_mutex);
	if (wake) {
		/* The allocator held back for the backlog; this batch drained it. */
		master_lock(m);
		master_wake_allocator(m);
		master_unlock(m);
	}
}

static void *writer_main(void *arg)
{
	struct master *m = arg;
	double started = 0;             /* the last batch's start */

	pthread_setname_np(pthread_self(), "store-writer");
	pthread_mutex_lock(&m->sw_mutex);
	for (;;) {
		struct store_job *batch, *j;
		unsigned long last;

		if (now_mono() < started + GATHER_SECONDS) {
			struct timespec until = timespec_after(CLOCK_REALTIME, started +
							       GATHER_SECONDS - now_mono());

			m->sw_gathering = true;     /* queue() signals only once it is enough */
			while (!m->sw_stop && m->sw_seq - m->sw_durable < GATHER_ENOUGH &&
			       pthread_cond_timedwait(&m->sw_cond, &m->sw_mutex, &until) == 0)
				;
			m->sw_gathering = false;
		}
		while (!m->sw_stop && !m->sw_head)
			pthread_cond_wait(&m->sw_cond, &m->sw_mutex);
		started = now_mono();
		if (!m->sw_head)
			break;          /* stopping and everything is written */
		batch = m->sw_head;
		last = m->sw_tail->seq;
		m->sw_head = m->sw_tail = NULL;
		pthread_mutex_unlock(&m->sw_mutex);
		write_batch(m, batch);
		pthread_mutex_lock(&m->sw_mutex);
		m->sw_durable = last;
		pthread_cond_broadcast(&m->sw_done);
		pthread_mutex_unlock(&m->sw_mutex);
		while (batch) {                 /* (waiters are on their way meanwhile) */
			j = batch;
			batch = j->next;
			job_free(j);
		}
		pthread_mutex_lock(&m->sw_mutex);
	}
	pthread_mutex_unlock(&m->sw_mutex);
	hashmap_destroy(&m->sw_seen);
	return NULL;
}

int store_writer_start(struct master *m)
{
	int rc;

	pthread_mutex_lock(&m->sw_mutex);
	if (m->sw_running) {
		pthread_mutex_unlock(&m->sw_mutex);
		return 0;
	}
	m->sw_stop = false;
	m->sw_running = true;
	rc = pthread_create(&m->sw_thread, NULL, writer_main, m);
	if (rc)
		m->sw_running = false;
	pthread_mutex_unlock(&m->sw_mutex);
	return -rc;
}

void store_writer_stop(struct master *m)
{
	pthread_mutex_lock(&m->sw_mutex);
	if (!m->sw_running) {
		pthread_mutex_unlock(&m->sw_mutex);
		return;
	}
	m->sw_stop = true;
	pthread_cond_signal(&m->sw_cond);
	pthread_mutex_unlock(&m->sw_mutex);
	pthread_join(m->sw_thread, NULL);
	pthread_mutex_lock(&m->sw_mutex);
	m->sw_running = false;
	m->sw_durable = m->sw_seq;
	pthread_cond_broadcast(&m->sw_done);
	pthread_mutex_unlock(&m->sw_mutex);
}
