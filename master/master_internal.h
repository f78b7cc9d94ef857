/* master_internal.h - the master core's private model (agents, frameworks, offers, tasks,
 * refuse filters, the agent_link queue) and the calls between its files. Only the master
 * core (the .c files directly in master/, not master/marathon/) and its unit tests include this.
 *
 * Everything here is guarded by master->lock unless a comment says otherwise. */
#ifndef PACER_MASTER_INTERNAL_H
#define PACER_MASTER_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <jansson.h>
#include "lib/http_server.h"
#include "lib/resources.h"
#include "lib/task_state.h"
#include "master/framework.h"
#include "master/master.h"
#include "master/store.h"

/* Tasks the master thinks were launched longer ago than this, but that the agent does not
 * list, are TASK_LOST on reconciliation (docs/architecture.md). */
#define RECONCILE_LOST_AFTER 30.0
/* Applied status update uuids remembered per task (ring), persisted with the task. */
#define TASK_UUID_MEMORY 16
/* Smallest free resources worth offering (Mesos's MIN_CPUS / MIN_MEM). */
#define OFFER_MIN_CPUS 0.01
#define OFFER_MIN_MEM 32.0

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
	struct agent *next;
};

struct task {
	struct task_record rec;
	json_t *info;                   /* TASKINFO sent to the agent (owned) */
	bool kill_requested;            /* master_kill_task was called; resent until terminal */
	double kill_grace;
	char uuids[TASK_UUID_MEMORY][37];
	unsigned uuid_next;             /* next ring slot */
	struct task *next;
};

struct offer_entry {
	struct offer offer;             /* resources owned here */
	struct framework *fw;
	struct offer_entry *next;
};

struct refuse_filter {
	char framework_id[64];
	char agent_id[64];
	double until;                   /* mono */
	struct refuse_filter *next;
};

struct framework_entry {
	struct framework *fw;
	struct framework_entry *next;
};

enum link_job_kind { LINK_LAUNCH, LINK_KILL };

struct link_job {
	enum link_job_kind kind;
	char task_id[160];
	char agent_id[64];
	char url[256];
	json_t *body;                   /* owned */
	struct link_job *next;
};

struct master {
	pthread_mutex_t lock;
	struct master_config cfg;
	char *work_dir, *bind, *hostname;   /* owned copies behind cfg */
	struct store *store;                /* borrowed; closed by the caller */
	double started_at;                  /* wall */
	/* Clocks, replaceable by unit tests. */
	double (*clock_mono)(void);
	double (*clock_wall)(void);

	struct agent *agents;
	struct task *tasks;
	struct framework_entry *frameworks;
	struct offer_entry *offers;
	struct refuse_filter *filters;
	unsigned long offer_seq;
	char offer_prefix[16];

	/* Tick thread (tick.c). */
	pthread_t tick_thread;
	bool tick_running, tick_stop, allocate_now;
	pthread_cond_t tick_cond;

	/* agent_link.c: queue guarded by link_mutex (never hold master->lock while waiting). */
	pthread_mutex_t link_mutex;
	pthread_cond_t link_cond;
	struct link_job *link_head, *link_tail;
	size_t link_len;
	pthread_t link_thread;
	bool link_running, link_stop;
};

/* --- lifecycle (master.c) --- */
/* Copies cfg; the store stays the caller's (close it after master_destroy). */
int master_create(const struct master_config *cfg, struct store *st, struct master **out);
/* Loads frameworks, agents (as recovering) and tasks from the store. Lock not needed. */
int master_load(struct master *m, char *err, size_t errlen);
/* Stops the threads (if started) and frees everything. */
void master_destroy(struct master *m);
/* Asks the tick thread for an allocation cycle soon (lock held). */
void master_wake_allocator(struct master *m);

/* --- frameworks (frameworks.c) --- */
struct framework *frameworks_find(struct master *m, const char *id);
/* A framework id that is persisted but not registered in this run is "known". */
void frameworks_free(struct master *m);

/* --- agents (agents.c) --- */
struct agent *agents_find(struct master *m, const char *id);
/* Register / re-register from the protocol body. On success *reply is the 200 body. */
int agents_register(struct master *m, json_t *body, json_t **reply, char *err, size_t errlen);
/* -ENOENT: unknown (or not active) agent, caller answers 404. */
int agents_heartbeat(struct master *m, json_t *body, json_t **reply, char *err, size_t errlen);
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
/* Applies a STATUS body from the agent; *dup is set when the uuid was applied already.
 * Returns 0 (also for a duplicate or an unknown task: the agent gets its ack), or -EINVAL. */
int tasks_apply_status_json(struct master *m, const char *agent_id, json_t *update,
			    bool *dup, char *err, size_t errlen);
/* A master-generated transition (unreachable, lost, launch failed...). */
void tasks_transition(struct master *m, struct task *t, enum task_state state,
		      const char *reason, const char *message);
int tasks_persist(struct master *m, struct task *t);
/* Moves a task's resources in or out of its agent's used and its framework's allocation
 * for a state change from -> to (terminal: out of both; unreachable: out of the share). */
void tasks_account(struct master *m, struct task *t, enum task_state from, enum task_state to);
int tasks_load(struct master *m);
void tasks_free(struct master *m);
/* Recomputes fw->allocated's task part when a framework (re)registers. */
void tasks_attach_framework(struct master *m, struct framework *fw);

/* --- agent_link (agent_link.c) --- */
int agent_link_start(struct master *m);
void agent_link_stop(struct master *m);
/* Queue a launch/kill (lock held or not; takes link_mutex only). body is stolen. */
void agent_link_launch(struct master *m, const struct task *t, json_t *body);
void agent_link_kill(struct master *m, const struct task *t, double grace);
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

#endif
