/* framework.h - the boundary between the master and every scheduler (framework).
 *
 * The master offers each agent's unused resources to registered frameworks (DRF order);
 * a framework answers an offer by accepting it with LAUNCH operations or declining it with
 * a refuse filter; an unanswered offer is rescinded after --offer-timeout. The Marathon app
 * scheduler (master/marathon/) is one framework; the CI scheduler and external HTTP
 * frameworks will use the same calls.
 *
 * Locking: every function here must be called with master->lock held; callbacks are
 * invoked with it held and must not block or call the network. */
#ifndef PACER_MASTER_FRAMEWORK_H
#define PACER_MASTER_FRAMEWORK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <jansson.h>
#include "lib/resources.h"
#include "lib/task_state.h"

struct master;
struct framework;

struct offer {
	char id[48];
	char framework_id[64];
	char agent_id[64];
	char hostname[256];
	char agent_address[128];   /* "ip:port" of the agent's API */
	struct resources resources;
	json_t *attributes;        /* borrowed from the agent record; {"rack":"a"} */
	double expires_at;         /* monotonic seconds */
};

/* What a framework asks the master to launch from an accepted offer. */
struct task_launch {
	char task_id[160];
	char name[128];
	char app_id[256];               /* Marathon app path, "" for non-Marathon frameworks */
	json_t *command;                /* {"shell":bool,"value":"...","arguments":[...]} (borrowed) */
	json_t *env;                    /* {"K":"V"} or NULL (borrowed) */
	json_t *labels;                 /* {"K":"V"} or NULL (borrowed) */
	json_t *extra;                  /* framework-specific data stored with the task, or NULL */
	const char *extra_text;         /* extra as compact JSON text with sorted keys, or NULL:
					   the master prints it (borrowed) */
	struct resources resources;     /* must be contained in the offer's */
	uint32_t ports[64];             /* host ports assigned, in portDefinitions order */
	size_t port_count;
	const char *user;               /* or NULL */
	double kill_grace_period_seconds;
	json_t *health_checks;          /* TASKINFO "health_checks" the agent runs, or NULL (borrowed) */
	/* The TASKINFO members above that many launches share (command, env, labels, user,
	 * kill_grace_period_seconds) as JSON object members text ("\"command\":{...},..."),
	 * or NULL: the master writes them from those fields. A framework launching many
	 * tasks of one definition gives the same text to each (printed once). Borrowed. */
	const char *shared_info;
	/* The framework made task_id just now unique by construction (a time-ordered uuid in
	 * it): the master does not look it up before the launch (a cache miss per task at 1M
	 * tasks); creating the task still refuses an id in use. */
	bool fresh_id;
};

/* A status update as the framework sees it (after the master applied it). */
struct task_status {
	const char *task_id;
	const char *agent_id;
	const char *framework_id;
	enum task_state state;
	const char *message;            /* may be "" */
	const char *reason;             /* may be "" */
	double timestamp;               /* wall seconds */
	int exit_code;                  /* -1 if none */
	int signal;                     /* 0 if none */
	int healthy;                    /* the update's health: 1, 0, or -1 when it has none */
	bool health_only;               /* the state did not change, only the health did */
	bool health_changed;            /* healthy differs from the task's previous health */
};

/* A task's network counters as its agent last reported them (cumulative). */
struct task_net_stats {
	uint64_t rx_bytes, tx_bytes, rx_packets, tx_packets;
};

/* The master's record of a task (read-only for frameworks). The strings are never NULL
 * ("" when unset); the ones many tasks have in common (framework, agent, hostname, app,
 * version, extra) are shared between them, so a million records stay small. */
struct task_record {
	const char *task_id;
	const char *framework_id;
	const char *agent_id;
	const char *hostname;
	const char *app_id;             /* "" for non-Marathon frameworks */
	const char *version;            /* framework's app version: extra.version, or "" */
	enum task_state state;
	bool kill_asked;                /* master_kill_task was called for it (stays set once the
					   task has ended) */
	bool health_checked;            /* launched with health checks the agent runs */
	bool has_stats;                 /* stats were reported */
	struct resources resources;
	const uint32_t *ports;          /* port_count host ports, in portDefinitions order */
	size_t port_count;
	double staged_at;               /* wall seconds */
	double started_at;              /* wall seconds of TASK_RUNNING, 0 if never */
	double updated_at;
	json_t *extra;                  /* framework data given at launch, or NULL (shared with
					   other tasks given the same data: never change it) */
	struct task_net_stats stats;    /* latest from the agent's heartbeat, if has_stats */
	json_t *health;                 /* latest {"healthy":bool,"checks":[...]} from the agent's
					   health checks (status.c), or NULL before the first */
};

struct framework_ops {
	void (*resource_offers)(struct framework *fw, struct offer **offers, size_t count);
	void (*offer_rescinded)(struct framework *fw, const char *offer_id);
	void (*status_update)(struct framework *fw, const struct task_status *status);
	/* Called every master tick (allocation interval) with the lock held. May be NULL. */
	void (*tick)(struct framework *fw, double now_mono);
	/* Around the updates of one agent's status batch (lock held): work a framework does per
	 * update may wait for the end. Either may be NULL. */
	void (*status_batch_begin)(struct framework *fw);
	void (*status_batch_end)(struct framework *fw);
};

struct framework {
	char id[64];                    /* stable across master restarts (stored) */
	char name[64];
	char role[64];                  /* tenant/role for DRF; "*" for all */
	double weight;                  /* DRF weight, default 1 */
	const struct framework_ops *ops;
	void *ctx;
	/* Owned by the master: */
	struct resources allocated;     /* sum of its tasks' and outstanding offers' resources */
	bool suppressed;                /* true: no offers wanted right now */
};

/* Registers fw (fw->id set by the caller; the master keeps the pointer). */
int master_register_framework(struct master *m, struct framework *fw);
/* Asks for offers again (after suppress) / stops offers when nothing is waiting. */
void master_revive_offers(struct master *m, struct framework *fw);
/* Asks for an allocation cycle soon, filters kept (offers declined for time come back). */
/* Queues a record for the master's store writer (group commit, durable a little later;
 * value NULL deletes): for what a framework may write from an offer callback without
 * waiting for a disk. */
void master_store_put(struct master *m, const char *kind, const char *key, json_t *value);
void master_wake_allocator(struct master *m);
void master_suppress_offers(struct master *m, struct framework *fw);

/* Accepts the offers (all on the same agent) with the given launches. Resources of the
 * offers not used by the launches go back to the pool (with refuse_seconds filter if > 0).
 * Returns 0, or -EINVAL (unknown/expired offer, launch does not fit; err says which). */
/* task_launch.shared_info for launches with l's command, env, labels, user and kill grace
 * (the caller frees it), or NULL without memory. */
char *master_shared_info_text(const struct task_launch *l);
int master_accept(struct master *m, struct framework *fw, const char *const *offer_ids,
		  size_t offer_count, const struct task_launch *launches, size_t launch_count,
		  double refuse_seconds, char *err, size_t errlen);
int master_decline(struct master *m, struct framework *fw, const char *offer_id,
		   double refuse_seconds);
/* Sends a kill to the task's agent. Unknown or terminal task: -ENOENT. */
int master_kill_task(struct master *m, const char *task_id, double grace_period_seconds);

/* Task queries (records stay owned by the master; valid while the lock is held). */
const struct task_record *master_find_task(struct master *m, const char *task_id);
/* Calls fn for every non-expunged task of the framework. */
void master_for_each_task(struct master *m, const char *framework_id,
			  void (*fn)(const struct task_record *t, void *arg), void *arg);
/* Forget a terminal task's record (after the framework processed it). */
void master_expunge_task(struct master *m, const char *task_id);

/* Agent queries, for schedulers that want to know hostnames/attributes. NULL if unknown. */
const char *master_agent_hostname(struct master *m, const char *agent_id);

#endif
