/* usage_model.h - the usage module's in-memory state, shared by usage.c (apply, journal,
 * checkpoint) and usage_serve.c (JSON, Prometheus text, events). Not for other modules.
 *
 * A task is one fixed record (ids, final, at, seq, counters, rates) in a hash table by id
 * and in its app's list. Apps and tenants (struct usage_group) keep their sums
 * incrementally: each new reading takes the task's old contribution out and puts the new
 * one in, so serving totals never walks the tasks. A group's counter sums include the
 * retired tasks (finished, folded in and forgotten after --usage-retention). */
#ifndef PACER_MASTER_USAGE_MODEL_H
#define PACER_MASTER_USAGE_MODEL_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include "lib/hashmap.h"
#include "master/usage.h"
#include "master/usage_journal.h"
#include "master/usage_wire.h"

struct usage_task;

struct usage_group {
	struct hm_node node;
	struct usage_group *tenant;         /* an app's tenant; NULL for a tenant */
	struct usage_group *next;           /* every app / every tenant, in creation order */
	struct usage_group *first_app, *last_app, *next_app;   /* a tenant's apps */
	struct usage_task *first, *last;    /* an app's tasks */
	__int128 sum[USAGE_NFIELDS];        /* counters of all tasks, gauges of running ones */
	double rates[USAGE_NFIELDS];        /* running tasks that have rates */
	long tasks, running, rated;         /* tasks includes the retired ones */
	int64_t retired[USAGE_NFIELDS];     /* an app's retired tasks' counters (saturating) */
	long retired_tasks;
	bool retired_dirty;
	char key[];
};

struct usage_agent {
	struct hm_node node;
	struct usage_agent *dirty_next;
	bool dirty;
	uint64_t seq;                       /* the last batch applied */
	/* The tasks of its last batch, in the batch's order: an agent reports the same tasks
	 * in the same order each second, so reading i is usually recent[i] and needs no hash
	 * lookup (a lookup is two or three cache misses at 100,000 tasks). Good while
	 * recent_epoch == usage.retire_epoch (retiring frees tasks). */
	struct usage_task **recent;
	uint32_t nrecent, caprecent;
	uint64_t recent_epoch;
	char id[];
};

struct usage_task {
	struct hm_node node;
	struct usage_task *prev, *next;     /* in its app */
	struct usage_task *dirty_next;      /* changed since the last checkpoint */
	bool dirty, final, has_rates;
	struct usage_group *app;
	struct usage_agent *agent;
	double at;
	uint64_t seq;
	int64_t c[USAGE_NFIELDS];
	double r[USAGE_NFIELDS];
	char id[];
};

struct usage_ckpt;

struct usage {
	pthread_mutex_t mu;
	struct store *st;
	const struct usage_bus *bus;
	char dir[4096];
	double retention;                   /* seconds; 0 = forever */
	struct hashmap tasks, agents, apps, tenants;
	struct usage_group *apps_head, *apps_tail, *tenants_head, *tenants_tail;
	struct usage_task *dirty_tasks;
	struct usage_agent *dirty_agents;
	uint64_t retire_epoch;              /* bumped when tasks are freed (agents' recent[]) */
	uint64_t batches, duplicates, skipped, commits, checkpoints, retired;
	/* The agents' usage streams (usage_stream.c): open now, batches read. Atomics. */
	uint64_t stream_conns, stream_batches;

	/* Durability: handlers encode applied batches into pending and leave a waiter; the
	 * writer appends them to the journal (one write + fdatasync for all) and completes the
	 * waiters of the generations it wrote. Without the writer (unit tests) the applying
	 * thread writes. */
	struct usage_journal *journal;
	struct ujbuf pending, inflight;
	uint64_t gen, durable;
	uint64_t inflight_gen;              /* the generation inflight's bytes make durable */
	uint64_t flushes;                   /* journal writes started */
	bool flushing;
	struct usage_waiter *waiters, **waiters_tail;   /* by generation */
	pthread_cond_t wake;
	pthread_t writer;
	bool writer_running, writer_idle, stop;
	double last_ckpt, ckpt_gap;         /* when the last one began; seconds to the next */
	double ckpt_interval;               /* the least gap */

	/* Checkpoints: the writer snapshots the dirty state and rotates the journal; this
	 * thread writes the snapshot into the store, then drops the old journal. */
	pthread_t ckpt_thread;
	pthread_cond_t ckpt_wake;
	struct usage_ckpt *ckpt_job;        /* handed to the thread, NULL when idle */
	bool ckpt_running;
};

/* usage_serve.c: the event of a task's new reading (mu held). */
json_t *usage_task_event(const struct usage_task *t);

#endif
