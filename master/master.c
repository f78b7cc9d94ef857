/* master.c - the master object: its lock, configuration, clocks, loading state from the
 * store at start and freeing everything at shutdown. The model's parts live in agents.c,
 * frameworks.c, allocator.c and tasks.c. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "lib/log.h"
#include "lib/util.h"
#include "master/master_internal.h"

void master_lock(struct master *m)
{
	if (pthread_mutex_trylock(&m->lock) == 0)
		return;
	/* Counted, so that the tick thread lets us in between its allocation cycles. */
	atomic_fetch_add(&m->lock_waiters, 1);
	pthread_mutex_lock(&m->lock);
	atomic_fetch_sub(&m->lock_waiters, 1);
}

void master_unlock(struct master *m)
{
	pthread_mutex_unlock(&m->lock);
}

const struct master_config *master_get_config(struct master *m)
{
	return &m->cfg;
}

struct store *master_store(struct master *m)
{
	return m->store;
}

double master_started_at(struct master *m)
{
	return m->started_at;
}

static char *dup_or_null(const char *s)
{
	return s ? strdup(s) : NULL;
}

int master_create(const struct master_config *cfg, struct store *st, struct master **out)
{
	struct master *m = calloc(1, sizeof(*m));
	char hex[9];

	*out = NULL;
	if (!m)
		return -ENOMEM;
	m->cfg = *cfg;
	m->work_dir = dup_or_null(cfg->work_dir);
	m->bind = dup_or_null(cfg->bind);
	m->hostname = dup_or_null(cfg->hostname);
	m->cfg.work_dir = m->work_dir;
	m->cfg.bind = m->bind;
	m->cfg.hostname = m->hostname;
	m->store = st;
	m->clock_mono = now_mono;
	m->clock_wall = now_wall;
	m->started_at = now_wall();
	random_hex(hex, 8);
	snprintf(m->offer_prefix, sizeof(m->offer_prefix), "%s", hex);
	pthread_mutex_init(&m->lock, NULL);
	pthread_condattr_t ca;
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);   /* tick.c waits on now_mono() */
	pthread_cond_init(&m->tick_cond, &ca);
	pthread_condattr_destroy(&ca);
	pthread_mutex_init(&m->link_mutex, NULL);
	pthread_cond_init(&m->link_cond, NULL);
	pthread_mutex_init(&m->sw_mutex, NULL);
	pthread_cond_init(&m->sw_cond, NULL);
	pthread_cond_init(&m->sw_done, NULL);
	dl_init(&m->offers);
	if (tasks_init(m) < 0 || hashmap_init(&m->agent_index) < 0 ||
	    hashmap_init(&m->offer_index) < 0 || hashmap_init(&m->filter_index) < 0 ||
	    agent_link_init(m) < 0) {
		master_destroy(m);
		return -ENOMEM;
	}
	*out = m;
	return 0;
}

int master_load(struct master *m, char *err, size_t errlen)
{
	int rc;

	if (m->cfg.work_dir && !m->task_log) {
		rc = task_log_open(m->cfg.work_dir, &m->task_log, err, errlen);
		if (rc < 0)
			return rc;
		task_log_stats(m->task_log, &m->sw_log_stats);  /* (no writer thread yet) */
	}
	master_lock(m);
	rc = agents_load(m);
	if (rc < 0) {
		snprintf(err, errlen, "cannot load agents from the store: %s", strerror(-rc));
		goto out;
	}
	rc = tasks_load(m);
	if (rc < 0)
		snprintf(err, errlen, "cannot load tasks from the store: %s", strerror(-rc));
out:
	master_unlock(m);
	return rc;
}

void master_wake_allocator(struct master *m)
{
	m->allocate_now = true;
	pthread_cond_signal(&m->tick_cond);
}

void master_destroy(struct master *m)
{
	if (!m)
		return;
	tick_stop(m);
	agent_link_stop(m);
	store_writer_stop(m);           /* after the last writer of records */
	task_log_close(m->task_log);
	master_lock(m);
	allocator_free(m);
	tasks_free(m);
	agents_free(m);
	frameworks_free(m);
	master_unlock(m);
	agent_link_free_queue(m);
	pthread_cond_destroy(&m->sw_done);
	pthread_cond_destroy(&m->sw_cond);
	pthread_mutex_destroy(&m->sw_mutex);
	pthread_cond_destroy(&m->link_cond);
	pthread_mutex_destroy(&m->link_mutex);
	pthread_cond_destroy(&m->tick_cond);
	pthread_mutex_destroy(&m->lock);
	free(m->work_dir);
	free(m->bind);
	free(m->hostname);
	free(m);
}
