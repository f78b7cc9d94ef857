/* master_internal.h - the master core's private model (agents, frameworks, offers, tasks,
 * refuse filters, the agent_link queue) and the calls between its files. Only the master
 * core (the .c files directly in master/, not master/marathon/) and its unit tests include this.
 *
 * Everything here is guarded by master->lock unless a comment says otherwise. */
#ifndef PACER_MASTER_INTERNAL_H
#define PACER_MASTER_INTERNAL_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <jansson.h>
#include "lib/hashmap.h"
#include "lib/http_server.h"
#include "lib/intern.h"
#include "lib/resources.h"
#include "lib/task_state.h"
#include "master/framework.h"
#include "master/master.h"
#include "master/status_wire.h"
#include "master/store.h"
#include "master/task_log.h"

/* Tasks the master thinks were launched longer ago than this, but that the agent does not
 * list, are TASK_LOST on reconciliation (docs/architecture.md). */
#define RECONCILE_LOST_AFTER 30.0
/* Applied status update uuids remembered per task (ring), persisted with the task. */
#define TASK_UUID_MEMORY 16
/* Smallest free resources worth offering (Mesos's MIN_CPUS / MIN_MEM). */
#define OFFER_MIN_CPUS 0.01
#define OFFER_MIN_MEM 32.0

/* Intrusive circular doubly linked list (a struct dlink in a record; a head is a dlink
 * pointing at itself when empty). O(1) unlink, so task and offer moves never scan. */
struct dlink {
	struct dlink *prev, *next;
};

static inline void dl_init(struct dlink *h) { h->prev = h->next = h; }
static inline bool dl_empty(const struct dlink *h) { return h->next == h; }
static inline void dl_add_tail(struct dlink *h, struct dlink *n)
{
	n->prev = h->prev;
	n->next = h;
	h->prev->next = n;
	h->prev = n;
}
static inline void dl_del(struct dlink *n)
{
	n->prev->next = n->next;
	n->next->prev = n->prev;
	n->prev = n->next = n;
}
#define dl_entry(link, type, member) ((type *)((char *)(link) - offsetof(type, member)))

/* The tasks sharing one key (an agent id, a framework id, or "<framework id>\x1f<app id>"),
 * in the order they were added. Groups live until the master is destroyed, so an empty
 * group stays valid while a loop over it runs. */
struct task_group {
	struct hm_node node;            /* in one of master's group maps, keyed by key */
	struct dlink tasks;
	size_t count;                   /* tasks linked */
	size_t live;                    /* of them not terminal */
	size_t running;                 /* of them TASK_RUNNING */
	struct task_group *all_next;    /* every group, for freeing */
	char key[];
};

enum agent_state {
	AGENT_ACTIVE,           /* registered and heartbeating */
	AGENT_RECOVERING,       /* loaded from the store after a master restart, not yet back */
	AGENT_UNREACHABLE,      /* silent past --agent-timeout */
};

struct agent {
	char id[64];
	char hostname[256];
	char address[128];              /* "ip:port" */
	enum agent_state state;
	struct resources total;
	struct resources used;          /* non-terminal tasks on it */
	struct resources offered;       /* outstanding offers on it */
	json_t *attributes;             /* owned, {"rack":"a"} */
	double registered_at;           /* wall */
	double last_seen;               /* mono */
	struct hm_node by_id;           /* master->agent_index */
	struct dlink offers;            /* its outstanding offer_entry.on_agent */
	struct agent *next;
};

/* One allocation per task: the struct, then its port ranges, ports and id (rec points at
 * them). The TASKINFO sent to the agent is kept neither here nor in the store. */
struct task {
	struct task_record rec;
	const char *extra_text;         /* rec.extra as interned JSON text (m->strings), or NULL */
	bool kill_requested;            /* master_kill_task was called; resent until terminal */
	uint64_t store_seq;             /* its store key (tasks.c: creation order) */
	unsigned listed_mark;           /* reconcile epoch of the last heartbeat listing it (agents.c) */
	double kill_grace;
	char (*uuids)[37];              /* ring of applied update uuids, grown on demand up to
					 * TASK_UUID_MEMORY slots (most tasks see 2-3 updates) */
	unsigned uuid_cap;              /* slots allocated */
	unsigned uuid_next;             /* next ring slot */
	struct hm_node by_id;           /* master->task_index */
	struct dlink all;               /* master->tasks, creation (or load) order */
	struct dlink on_agent, on_fw, on_app;
	struct task_group *g_agent, *g_fw, *g_app;   /* rec's agent, framework and app ids are
						      * their keys */
};

struct offer_entry {
	struct offer offer;             /* resources owned here */
	struct framework *fw;
	struct hm_node by_id;           /* master->offer_index */
	struct dlink all;               /* master->offers, newest first */
	struct dlink on_agent;          /* agent->offers */
};

struct refuse_filter {
	char key[132];                  /* "<framework id>\x1f<agent id>" */
	char framework_id[64];
	double until;                   /* mono */
	struct hm_node by_key;          /* master->filter_index */
	struct refuse_filter *next;
};

/* Histogram of allocation cycle durations (GET /v1/metrics): bucket i holds cycles up to
 * ALLOC_HIST_MIN_MS * 10^(i / ALLOC_HIST_PER_DECADE) ms; the last one everything longer. */
#define ALLOC_HIST_PER_DECADE 20
#define ALLOC_HIST_MIN_MS 0.01
#define ALLOC_HIST_BUCKETS (ALLOC_HIST_PER_DECADE * 7 + 1)      /* 10 us .. 100 s */
struct alloc_stats {
	unsigned long cycles, offers, counts[ALLOC_HIST_BUCKETS];
	/* cycles that made no offers because of back pressure, by what held them back */
	unsigned long held_link, held_status, held_store;
	double sum_ms, max_ms, last_ms;
};

/* One queued store write (store_writer.c). */
struct store_job {
	char kind[16];
	char *key;                      /* points into full_key */
	json_t *value;                  /* owned; NULL (and no text): delete */
	char *text;                     /* owned: the value as JSON text, instead of value */
	void *obj;                      /* owned (free()): the value, printed by render in the
					 * writer thread (without master->lock) */
	char *(*render)(const void *obj, bool update);
	bool update;                    /* render only what changed (a task log update) */
	unsigned long seq;
	bool superseded;                /* a later job of the same batch writes this key */
	struct hm_node by_key;          /* batch-local index on full_key */
	char *full_key;                 /* owned: "<kind>\x1f<key>" */
	struct store_job *next;
};

/* Writes queued for the store beyond which the allocator makes no offers (back pressure,
 * like LINK_BACKLOG_MAX); the writer wakes it again at half. */
#define STORE_BACKLOG_MAX 50000
/* Status updates being handled (POST /internal/v1/status in flight) beyond which the
 * allocator makes no offers: agents' reports of what was launched come before launching
 * more (without this, at 10k agents allocation cycles starve the status path). */
#define STATUS_BACKLOG_MAX 32

struct framework_entry {
	struct framework *fw;
	struct framework_entry *next;
};

enum link_job_kind { LINK_LAUNCH, LINK_KILL };

/* One launch or kill for one task. Jobs of one agent wait in its link_queue, in order. */
struct link_job {
	enum link_job_kind kind;
	char task_id[160];
	char *body;                     /* owned JSON text of one batch element (a tree would
					 * cost ~5x the memory while launches queue up behind
					 * slow agents) */
	size_t body_len;
	unsigned long store_seq;        /* sent only once the store has this write durable */
	struct link_job *next;
};

/* An agent's pending calls (agent_link.c). While it has jobs and no worker is calling the
 * agent, it is on master->link_ready; a worker takes the whole run of same-kind jobs at
 * its head (bounded) and sends them as one batch call. */
struct link_queue {
	struct hm_node node;            /* master->link_queues by agent_id */
	struct dlink all, ready;
	char agent_id[64];
	char address[192];              /* host:port as of the newest job */
	struct link_job *head, *tail;
	struct link_job *inflight;      /* the batch a worker is sending (read under link_mutex) */
	bool busy, on_ready;
};

#define LINK_WORKERS 4
/* One batch call carries at most this many tasks and about this much body (the agent's
 * HTTP server takes 1 MiB). */
#define LINK_BATCH_MAX 1000
#define LINK_BATCH_BYTES (768 * 1024)
/* Jobs queued for agents beyond which the allocator makes no offers (back pressure: a
 * cluster placing faster than it can tell agents only grows the queue and memory, about
 * 1 KiB a job). The link wakes the allocator again once the queue is down to half. Large
 * enough that at 10,000 agents a batch call still carries several tasks. */
#define LINK_BACKLOG_MAX 100000

struct master {
	pthread_mutex_t lock;
	unsigned reconcile_epoch;           /* agents.c: marks the tasks a heartbeat listed */
	atomic_int lock_waiters;           /* threads blocked in master_lock (tick.c yields to them) */
	struct master_config cfg;
	char *work_dir, *bind, *hostname;   /* owned copies behind cfg */
	struct store *store;                /* borrowed; closed by the caller */
	/* task_log.c: the task records (kind "tasks"), opened by master_load from the work
	 * dir; NULL (no work dir): they go to the store like the other kinds. Written by
	 * the store writer only (or by the loader, before it starts). */
	struct task_log *task_log;
	bool task_log_batch;            /* loading: a write without the writer thread is not
					 * synced at once (the loader syncs once at the end) */
	double started_at;                  /* wall */
	/* Clocks, replaceable by unit tests. */
	double (*clock_mono)(void);
	double (*clock_wall)(void);

	struct agent *agents;           /* registration order */
	struct agent *agents_tail;
	size_t agent_count;
	struct hashmap agent_index;     /* id -> agent */
	struct dlink tasks;             /* every task record */
	struct hashmap task_index;      /* task id -> task */
	struct hashmap tasks_by_agent, tasks_by_fw, tasks_by_app;   /* key -> task_group */
	double next_timeout_check;      /* agents.c: when agents_check_timeouts walks again */
	struct task_group *groups;      /* every group (freed at destroy) */
	struct intern strings;          /* tasks' shared hostnames and framework data */
	/* tasks.c: the groups and shared strings of the last task made. A placement wave
	 * makes the tasks of one app on one agent back to back, and each of them then skips
	 * a hash and a lookup for its agent, framework and app groups, its hostname and its
	 * framework data. Groups live as long as the master; the strings are held by a
	 * reference of the cache's own. */
	struct {
		struct task_group *agent, *fw, *app;
		const char *hostname;
		/* Framework data by the caller's pointer to it (a framework keeps one text per
		 * app version, and a wave interleaves apps): checked with strcmp. */
		struct shared_by_ptr { const char *from, *shared; } extra[16];
	} last_made;
	size_t task_count;
	/* Bumped whenever an agent's state or total resources change (agents.c); the
	 * allocator's cluster totals are counted again only then. */
	unsigned agents_gen, totals_gen;
	double totals_cpus, totals_mem;
	uint64_t task_store_seq;        /* the last store key given to a task */
	struct framework_entry *frameworks;
	struct dlink offers;
	struct hashmap offer_index;     /* offer id -> offer_entry */
	size_t offer_count;
	struct refuse_filter *filters;
	struct hashmap filter_index;    /* "<fw>\x1f<agent>" -> refuse_filter */
	struct alloc_stats alloc;
	int status_inflight;            /* atomic: status handlers running (api_internal.c) */
	bool status_throttled;          /* the allocator skipped a cycle for them */
	struct agent *alloc_cursor;     /* agent where the next cycle starts (rotation), or NULL */
	unsigned long offer_seq;
	char offer_prefix[16];

	/* Tick thread (tick.c). */
	pthread_t tick_thread;
	bool tick_running, tick_stop, allocate_now;
	pthread_cond_t tick_cond;

	/* agent_link.c: queue guarded by link_mutex (never hold master->lock while waiting). */
	pthread_mutex_t link_mutex;
	pthread_cond_t link_cond;
	struct hashmap link_queues;         /* agent id -> link_queue */
	struct dlink link_all, link_ready;  /* every link_queue; those a worker may take */
	size_t link_len;                    /* jobs queued, all agents */
	struct link_worker {
		struct master *m;
		int index;
		pthread_t thread;
	} link_workers[LINK_WORKERS];
	bool link_running, link_stop;
	bool link_throttled;                /* the allocator skipped a cycle for the backlog */
	struct agent_stream *astream;       /* agent_stream.c: the agents' streams, or NULL */

	/* store_writer.c: task and agent records are written by one thread in batches (one
	 * transaction, one fsync each); callers wait for durability without master->lock.
	 * Guarded by sw_mutex. Without the thread (unit tests) writes are synchronous. */
	pthread_mutex_t sw_mutex;
	pthread_cond_t sw_cond, sw_done;
	struct store_job *sw_head, *sw_tail;
	unsigned long sw_seq, sw_durable, sw_batches, sw_writes, sw_coalesced;
	unsigned long sw_log_writes;    /* of sw_writes, appended to the task log */
	struct task_log_stats sw_log_stats;     /* the task log's, after the last batch */
	bool sw_throttled;              /* the allocator skipped a cycle for the backlog */
	bool sw_gathering;              /* the writer waits for a bigger batch */
	struct hashmap sw_seen;         /* the writer's: the batch's keys (coalesce), kept */
	pthread_t sw_thread;
	bool sw_running, sw_stop;
};

/* --- lifecycle (master.c) --- */
/* Copies cfg; the store stays the caller's (close it after master_destroy). */
int master_create(const struct master_config *cfg, struct store *st, struct master **out);
/* Opens the task log (in the work dir), loads frameworks, agents (as recovering) and tasks
 * (from the log, moving any the store still holds into it). Lock not needed. */
int master_load(struct master *m, char *err, size_t errlen);
/* Stops the threads (if started) and frees everything. */
void master_destroy(struct master *m);
/* Asks the tick thread for an allocation cycle soon (lock held). */

/* --- frameworks (frameworks.c) --- */
struct framework *frameworks_find(struct master *m, const char *id);
/* A framework id that is persisted but not registered in this run is "known". */
void frameworks_free(struct master *m);

/* --- SQLite fast path (store_sqlite.c; store.h stays backend-neutral) --- */
bool store_is_sqlite(const struct store *s);
int store_sqlite_put_text(struct store *s, const char *kind, const char *key, const char *text);

/* --- store writer (store_writer.c) --- */
/* Queue a put (value borrowed) or delete (value NULL) of a record. Lock held or not. */
/* A put of an object given as JSON text (taken over and freed; NULL: nothing queued). */
void master_store_put_text(struct master *m, const char *kind, const char *key, char *text);
/* Queues obj (one allocation, taken; freed with free()), which the writer prints with
 * render (JSON text of an object, malloc'd; NULL without memory) when it writes it:
 * printing happens outside master->lock, and not at all for a write a later one of the
 * same key supersedes in its batch. Without the writer thread: printed and written now. */
void master_store_put_deferred(struct master *m, const char *kind, const char *key, void *obj,
			       char *(*render)(const void *obj, bool update));
/* The same for a record already written in full: with a task log (kind "tasks"), only
 * what may change (render's update = true) is appended as an update; a put of the same
 * key earlier in the writer's batch makes it a full put. Elsewhere a full put. */
void master_store_update_deferred(struct master *m, const char *kind, const char *key,
				  void *obj, char *(*render)(const void *obj, bool update));
/* Writes queued and not yet durable. */
unsigned long master_store_pending(struct master *m);
/* The sequence number of the newest queued write (0: none yet). */
unsigned long master_store_seq(struct master *m);
/* Waits (never with master->lock held) until every write up to seq is durable. */
void master_store_wait(struct master *m, unsigned long seq);
int store_writer_start(struct master *m);
/* Writes what is queued, then stops the thread. */
void store_writer_stop(struct master *m);

/* --- task groups (tasks.c) --- */
/* A task record's store key (its creation sequence number in 16 lower-case hex digits) as
 * that number; 0 for any other key (the task id keys of an older format). */
uint64_t tasks_key_seq(const char *key);
struct task_group *task_group_get(struct master *m, struct hashmap *map, const char *key);
/* The group of this agent's tasks (NULL when the agent never had one). */
struct task_group *tasks_on_agent(struct master *m, const char *agent_id);

/* --- agents (agents.c) --- */
struct agent *agents_find(struct master *m, const char *id);
/* The agent was heard from (a status batch): an ACTIVE agent's last_seen is now. */
void agents_seen(struct master *m, const char *id);
/* Register / re-register from the protocol body. On success *reply is the 200 body. */
int agents_register(struct master *m, json_t *body, json_t **reply, char *err, size_t errlen);
/* -ENOENT: unknown (or not active) agent, caller answers 404. */
struct heartbeat;
/* hb: a body read by heartbeat_wire_parse. 0 (*reply: {"kill_tasks":[...]}), -EINVAL (err),
 * -ENOENT (the agent must register again). */
int agents_heartbeat(struct master *m, const struct heartbeat *hb, json_t **reply, char *err,
		     size_t errlen);
/* Agents silent past --agent-timeout become unreachable. */
void agents_check_timeouts(struct master *m, double now);
int agents_load(struct master *m);
void agents_free(struct master *m);
double agents_heartbeat_interval(const struct master *m);

/* --- allocator (allocator.c) --- */
/* One allocation cycle at monotonic time now: offers free resources in DRF order. */
void allocator_run(struct master *m, double now);
/* Rescinds offers whose expires_at <= now. */
void allocator_expire_offers(struct master *m, double now);
/* Rescinds every outstanding offer on the agent (it went away). */
void allocator_rescind_agent(struct master *m, struct agent *a);
/* Dominant share of fw over the active agents' totals, divided by its weight. */
double allocator_dominant_share(struct master *m, const struct framework *fw);
bool allocator_filtered(struct master *m, const char *framework_id, const char *agent_id,
			double now);
void allocator_free(struct master *m);
size_t allocator_offer_count(struct master *m);

/* --- tasks (tasks.c) --- */
struct task *tasks_find(struct master *m, const char *task_id);
/* Creates a STAGING task from a launch on agent a (persisted). */
int tasks_create(struct master *m, struct framework *fw, struct agent *a,
		 const struct task_launch *l, const struct resources *res, struct task **out);
/* Applies one STATUS update from the agent (read by status_wire.c); *dup is set when the
 * uuid was applied already. Returns 0 (also for a duplicate or an unknown task: the agent
 * gets its ack), or -EINVAL (err says why). */
int tasks_apply_status(struct master *m, const char *agent_id, const struct status_update *u,
		       bool *dup, char *err, size_t errlen);
/* Applies a batch of STATUS updates from one agent, in order (each with tasks_apply_status),
 * and returns the answer's text (the caller frees it; NULL without memory):
 * {"results":[...]}, one result per update: {"uuid":..,"acknowledged":true} or
 * {"uuid":..(or null),"error":".."}. An update that follows a rejected update of the same
 * task in the batch is rejected too (the agent resends them in order). */
char *tasks_apply_status_batch(struct master *m, const char *agent_id,
			       const struct status_update *updates, size_t n);
/* The same, handing each result to result (err NULL: acknowledged) instead of JSON. */
void tasks_apply_status_each(struct master *m, const char *agent_id,
			     const struct status_update *updates, size_t n,
			     void (*result)(void *arg, const struct status_update *u,
					    const char *err),
			     void *arg);
/* The allocator's back pressure from status updates being applied (lock held on the way
 * out): enter when a batch arrives, leave once it is applied. */
void master_status_enter(struct master *m);
void master_status_leave(struct master *m);
/* A master-generated transition (unreachable, lost, launch failed...). */
void tasks_transition(struct master *m, struct task *t, enum task_state state,
		      const char *reason, const char *message);
int tasks_persist(struct master *m, struct task *t);
/* Keeps a heartbeat TASKREF's "stats" {"rx_bytes","tx_bytes","rx_packets","tx_packets"}
 * (a missing or negative counter is 0). Not persisted. */
void tasks_set_stats(struct task *t, const struct task_net_stats *stats);
/* Moves a task's resources in or out of its agent's used and its framework's allocation
 * for a state change from -> to (terminal: out of both; unreachable: out of the share). */
void tasks_account(struct master *m, struct task *t, enum task_state from, enum task_state to);
int tasks_load(struct master *m);
/* Empty indexes (master_create). */
int tasks_init(struct master *m);
void tasks_free(struct master *m);
/* Recomputes fw->allocated's task part when a framework (re)registers. */
void tasks_attach_framework(struct master *m, struct framework *fw);

/* --- agent_link (agent_link.c) --- */
int agent_link_start(struct master *m);
void agent_link_stop(struct master *m);
/* Queue a launch/kill (lock held or not; takes link_mutex only). body is stolen. */
/* Queues the launch of t; body is its POST /v1/launch element as JSON text (taken). */
void agent_link_launch(struct master *m, struct agent *a, const struct task *t, char *body);
void agent_link_kill(struct master *m, const struct task *t, double grace);
/* Is the task's launch still queued for its agent or being sent (the link running)? Its
 * agent cannot list it yet: reconciliation must not take it for lost. */
bool agent_link_launch_pending(struct master *m, const char *agent_id, const char *task_id);
/* Empty queues (master_create); 0 or -ENOMEM. */
int agent_link_init(struct master *m);
void agent_link_free_queue(struct master *m);

/* --- tick (tick.c) --- */
/* One master tick with the lock held: timeouts, offer expiry, allocation, framework ticks. */
void master_tick(struct master *m, double now);
int tick_start(struct master *m);
void tick_stop(struct master *m);

/* --- api_internal (api_internal.c) --- */
int api_internal_register(struct master *m, struct http_server *srv);
/* --- api_agents (api_agents.c): GET /v1/agents[/{id}] --- */
int api_agents_register(struct master *m, struct http_server *srv);
/* --- api_metrics (api_metrics.c): GET /v1/metrics --- */
int api_metrics_register(struct master *m, struct http_server *srv);
/* Adds one cycle's duration to m->alloc (allocator.c). */
void alloc_stats_record(struct alloc_stats *s, double ms, size_t offers);

#endif
