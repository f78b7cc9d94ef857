/* marathon_internal.h - the Marathon layer's shared state and the calls between its files
 * (apps registry, scheduler, deployments, API handlers). Everything here is guarded by the
 * master lock (master_lock), except the event bus, which has its own. */
#ifndef PACER_MARATHON_INTERNAL_H
#define PACER_MARATHON_INTERNAL_H

#include <stdbool.h>
#include <jansson.h>
#include "lib/hashmap.h"
#include "lib/http_server.h"
#include "master/framework.h"
#include "master/master.h"
#include "master/marathon/app.h"
#include "master/marathon/app_validate.h"
#include "master/marathon/events.h"

#define MARATHON_VERSION "1.11.0-pacer"
#define PACER_VERSION "0.1.0"
/* Store kinds and keys. */
#define KIND_APPS "apps"
#define KIND_APP_VERSIONS "app_versions"
#define KIND_DEPLOYMENTS "deployments"
#define KIND_GROUPS "groups"
#define KIND_META "meta"
#define META_FRAMEWORK_KEY "marathon_framework_id"

enum deploy_action { ACT_START, ACT_SCALE, ACT_RESTART, ACT_STOP };

/* Why an offer was not used for an app (GET /v2/queue), in Marathon's check order. */
enum offer_reason {
	REASON_CONSTRAINT = 1 << 0,     /* UnfulfilledConstraint */
	REASON_CPUS = 1 << 1,           /* InsufficientCpus */
	REASON_MEM = 1 << 2,            /* InsufficientMemory */
	REASON_DISK = 1 << 3,           /* InsufficientDisk */
	REASON_PORTS = 1 << 4,          /* InsufficientPorts */
};
#define OFFER_REASON_COUNT 5
#define QUEUE_LAST_OFFERS 10

struct unused_offer {
	char agent_id[64];
	char hostname[256];
	unsigned reasons;               /* enum offer_reason bits */
	double at;                      /* wall */
};

/* Offers seen while the app waits in the queue (reset when it starts waiting). */
struct queue_stats {
	long processed, unused;
	double last_unused_at, last_used_at;    /* wall, 0 = never */
	struct unused_offer last[QUEUE_LAST_OFFERS];
	int next, count;
};

struct mt_app {
	struct app app;
	bool deleting;                  /* a StopApplication deployment is running */
	/* Launch backoff: backoffSeconds x backoffFactor^(failures-1), at most
	 * maxLaunchDelaySeconds; reset by a successful run (scheduler.c). */
	int failures;
	double delay;                   /* the delay set by the last failure, seconds */
	double launch_after;            /* monotonic seconds; 0 = now */
	/* Set by each reconcile (scheduler.c): */
	int missing;                    /* instances of the current version not launched */
	int to_launch;                  /* launches the upgrade strategy allows now */
	double queued_since;            /* wall; 0 = not in the queue */
	bool was_waiting;               /* waited for offers at its last reconcile */
	struct constraint_counts cc;    /* placed tasks per constraint value */
	/* What cc was counted from (scheduler.c count_placed): the sum of hm_hash(agent id)
	 * over its tasks (launches add theirs), the definition and the agents' info then. A
	 * reconcile that finds the same tasks on the same agents keeps cc. */
	uint64_t cc_agents_sum;
	char cc_version[APP_VERSION_LEN];
	unsigned cc_agent_info_gen;
	struct queue_stats qs;
	bool settled;                   /* tasks match the definition (deployments_advance) */
	/* What every launch of the app's current definition shares, made once per version
	 * (scheduler.c fill_launch): the command, the extra data, the TASKINFO text. */
	char launch_version[APP_VERSION_LEN];
	json_t *launch_command, *launch_extra;
	char *launch_extra_text, *launch_shared_info;
	/* What its last reconcile found (scheduler.c), valid while its definition is the one
	 * it was then (seen_instances, seen_version) and no deployment step holds it:
	 * - simple: only tasks of the current definition, none killed, lost or unreachable,
	 *   no backoff, no health checks; then a task becoming TASK_RUNNING changes nothing
	 *   but whether the app is settled, which only its last one can (on_status);
	 * - quiet: settled with no timer running (no backoff, no unreachable or ignored
	 *   tasks), and since then no task of it changed and no launch or kill was made for
	 *   it: nothing to do until something changes; a whole reconcile passes over it. */
	bool simple, quiet;
	/* Something a walk must see happened since its last reconcile (app_changed): a whole
	 * reconcile walks a simple app only then (scheduler.c reconcile_pass). */
	bool walk_due;
	int seen_instances;
	char seen_version[APP_VERSION_LEN];
	struct hm_node by_id;           /* in marathon.apps_by_id */
	struct mt_app *next;
};

/* One action of a deployment plan. */
struct deploy_item {
	char app_id[APP_ID_MAX + 1];
	enum deploy_action action;
	int step;                       /* index of its step in the plan */
	json_t *original;               /* the app before the change, NULL: created by it */
};

/* A plan of steps (Marathon's DeploymentPlan): the items of step k act only once every
 * item of the steps before is done. A change to one app is one item in one step. */
struct deployment {
	char id[37];
	char version[APP_VERSION_LEN];
	struct deploy_item *items;      /* sorted by step */
	int n_items;
	int total_steps;
	int current_step;               /* 0-based */
	struct deployment *next;
};

/* A group created through /v2/groups (kept even when empty) or one with dependencies.
 * Groups are otherwise implied by app ids: /a/b/c lives in /a and /a/b. */
struct mt_group {
	char id[APP_ID_MAX + 1];
	json_t *dependencies;           /* absolute ids, owned */
	char version[APP_VERSION_LEN];
	struct mt_group *next;
};

/* Terminal tasks to expunge from the master outside of its callbacks. */
struct expunge_entry {
	char task_id[160];
	struct expunge_entry *next;
};

struct marathon {
	struct master *m;
	struct store *store;
	struct events *events;
	struct framework fw;
	bool registered;
	struct mt_app *apps;            /* sorted by id */
	struct hashmap apps_by_id;      /* the same, by id (apps.c) */
	struct deployment *deployments; /* oldest first */
	int multi_step_deployments;     /* those of them with several steps */
	struct mt_group *groups;        /* groups made through /v2/groups, sorted by id */
	json_t *dirty_apps;             /* ids of apps changed since their last reconcile,
					 * reconciled together later (scheduler.c app_changed) */
	bool in_status_batch;
	struct expunge_entry *expunge;
	json_t *agent_ips;              /* agent id -> "ip", learnt from offers */
	json_t *agent_info;             /* agent id -> {"hostname","attributes"}, from offers */
	unsigned agent_info_gen;        /* bumped when agent_info changes what was counted */
	bool counted_unknown_agent;     /* constraint counts hold a task of an agent not in
					   agent_info */
	/* Clocks (tests replace them). */
	double (*clock_mono)(void);
	double (*clock_wall)(void);
	long long last_version_ms;      /* wall ms of the newest version handed out */
	bool waiting;                   /* some app waits for offers */
	bool new_work;                  /* an app started waiting in this reconcile */
	int full_reconcile_tasks;       /* tasks the last whole reconcile walked (quiet apps'
					 * are passed over, not walked) */
	double last_full_reconcile;     /* monotonic */
};

/* ---- apps.c: registry and persistence ---- */
struct mt_app *apps_find(struct marathon *mt, const char *id);
/* Takes ownership of *a's members (a is zeroed). Returns the registry entry or NULL. */
struct mt_app *apps_insert(struct marathon *mt, struct app *a);
void apps_remove(struct marathon *mt, struct mt_app *ma);    /* memory only */
/* Writes the app (kind apps) and this version (kind app_versions). */
int apps_persist(struct marathon *mt, const struct app *a);
/* Deletes the app and all its versions from the store. */
int apps_unpersist(struct marathon *mt, const char *id);
int apps_load(struct marathon *mt);
void apps_free_all(struct marathon *mt);
/* A fresh version string, strictly newer than any handed out before. */
void marathon_new_version(struct marathon *mt, char out[APP_VERSION_LEN]);
/* "/a" is an app and "/a/b" is asked for (or the other way round): the conflicting id. */
const char *apps_group_conflict(struct marathon *mt, const char *id);
/* Stored versions of an app, newest first; one stored version (new references). */
json_t *apps_versions(struct marathon *mt, const char *id);
json_t *apps_version_get(struct marathon *mt, const char *id, const char *version);

/* ---- groups.c: group registry, persistence (kind "groups"), tree, dependency graph ---- */
struct mt_group *groups_find(struct marathon *mt, const char *id);
/* Creates or replaces the group (deps borrowed; NULL: keep the current ones) and stores it. */
int groups_put(struct marathon *mt, const char *id, json_t *deps, const char *version);
/* Forgets (memory and store) the group and every group under it. */
void groups_remove_tree(struct marathon *mt, const char *id);
int groups_load(struct marathon *mt);
void groups_free_all(struct marathon *mt);
/* id lies strictly under group ("/" holds everything). */
bool group_contains(const char *group, const char *id);
/* The group exists: the root, a stored group, or one implied by an app or group in it. */
bool group_exists(struct marathon *mt, const char *id);
enum group_embed {
	EMBED_APPS = 1 << 0, EMBED_GROUPS = 1 << 1, EMBED_PODS = 1 << 2, EMBED_TASKS = 1 << 3,
};
/* The served group tree at id (new reference; NULL if it does not exist). */
json_t *group_json(struct marathon *mt, const char *id, unsigned embed);
/* Depths of the dependency graph of the registry (deleting apps only when with_deleting),
 * edited: app_edits maps an app id to its new dependencies (null: the app goes away),
 * group_edits a group id to its new dependencies (null: removed); either may be NULL.
 * 0, -ELOOP (cycle names an app on the cycle) or -ENOMEM. */
int groups_depths(struct marathon *mt, json_t *app_edits, json_t *group_edits,
		  bool with_deleting, json_t **depth, char *cycle, size_t cycle_len);

/* ---- group_ops.c: changes to groups, each one deployment of many apps ---- */
struct group_result {
	struct deployment *d;           /* the deployment started */
	int status;                     /* on failure: the HTTP status */
	json_t *body;                   /* on failure: the answer (new reference) */
};
/* val: group_validate's output. create: POST (409 if the group exists). */
int group_op_apply(struct marathon *mt, json_t *val, bool create, bool force,
		   struct group_result *r);
int group_op_delete(struct marathon *mt, const char *id, bool force, struct group_result *r);
/* Undo a deployment of several apps (DELETE /v2/deployments/{id} without force). */
int group_op_rollback(struct marathon *mt, struct deployment *d, struct deployment **out);
/* An app definition would close a dependency cycle: -ELOOP (and the app on it). */
int groups_check_app_cycle(struct marathon *mt, const struct app *a, char *cycle, size_t len);

/* ---- deployments.c ---- */
const char *deploy_action_name(enum deploy_action a);
int deploy_action_parse(const char *s);         /* -1 if unknown */
/* The running deployment that has an action on the app (locks it), or NULL. */
struct deployment *deployment_for_app(struct marathon *mt, const char *app_id);
const struct deploy_item *deployment_item(const struct deployment *d, const char *app_id);
/* The app's action waits for an earlier step of its deployment: leave the app alone. */
bool deployment_held(struct marathon *mt, const char *app_id);
struct deployment *deployment_find(struct marathon *mt, const char *id);
/* Starts (persists, announces) a deployment for the app; original is copied (may be NULL). */
struct deployment *deployment_start(struct marathon *mt, const char *app_id,
				    enum deploy_action action, json_t *original,
				    const char *version);
/* Starts a plan: items (n, sorted by step, originals owned) are taken over, also on
 * failure (NULL: out of memory). */
struct deployment *deployment_start_plan(struct marathon *mt, struct deploy_item *items,
					 int n, int total_steps, const char *version);
/* Advances every deployment whose current step is done (after a reconcile): a stop is
 * done when the app is gone, any other action when the app is settled and
 * marathon_app_ready. Ends finished deployments. Returns true if a step advanced (the
 * apps of the next step can act now). */
bool deployments_advance(struct marathon *mt);
/* Ends a deployment: deployment_success or deployment_failed, store and memory removal. */
void deployment_finish(struct marathon *mt, struct deployment *d, bool success);
json_t *deployment_to_json(const struct deployment *d);
/* [{"id":...}] for an app (new reference). */
json_t *deployments_of_app_json(struct marathon *mt, const char *app_id);
/* The 409 body for a locked app. */
json_t *deployment_locked_body(const struct deployment *d);
int deployments_load(struct marathon *mt);
void deployments_free_all(struct marathon *mt);

/* ---- scheduler.c ---- */
/* Marathon's "ready": every one of the app's `instances` tasks of its current version is
 * TASK_RUNNING (health checks, once they exist, will add: and healthy). Dependent apps of
 * a deployment start only after this holds for their dependencies. */
bool marathon_app_ready(struct marathon *mt, const struct mt_app *ma);
int scheduler_start(struct marathon *mt, char *err, size_t errlen);
void scheduler_free(struct marathon *mt);
/* Brings every app towards its wanted tasks: kills surplus and outdated tasks, ends
 * deployments that are done, revives or suppresses offers. safe: not inside a master
 * callback (terminal records may be expunged). */
void scheduler_reconcile(struct marathon *mt, bool safe);
/* The same for one app only (after a change that concerns only it: a status update of one
 * of its tasks, offers used for it, its creation). Never suppresses offers. May remove ma
 * (a deleted app whose last task ended). */
void scheduler_reconcile_app(struct marathon *mt, struct mt_app *ma);
/* Asks the master to kill a task (its record's kill_asked is set). Returns 0 or -ENOENT. */
int scheduler_kill(struct marathon *mt, const char *task_id, double grace);
/* A new configuration (or DELETE /v2/queue/{id}/delay) starts without launch backoff. */
void scheduler_reset_backoff(struct mt_app *ma);
/* Seconds until the app may launch again (0: now). */
double scheduler_delay_left(struct marathon *mt, const struct mt_app *ma);
/* A task that stays TASK_RUNNING this long is a successful run: the backoff resets. */
double scheduler_min_successful_run(const struct app *a);
const char *offer_reason_name(unsigned reason_bit);

struct app_counts { int staged, running, healthy, unhealthy; };
void scheduler_counts(struct marathon *mt, const char *app_id, struct app_counts *out);
/* Non-terminal tasks of the app (NULL: all of this framework's). Records are valid while
 * the lock is held. *out is malloc'd; returns the count or -ENOMEM. */
int scheduler_tasks(struct marathon *mt, const char *app_id, const struct task_record ***out);

/* ---- health.c: health check results of tasks (the agent runs the checks) ---- */
/* 1 healthy, 0 unhealthy, -1 no result yet (or launched without health checks). */
int health_of(const struct task_record *t);
/* The task counts as healthy for deployments and upgrades: TASK_RUNNING and, if it was
 * launched with health checks, its last result is healthy. */
bool health_task_ready(const struct task_record *t);
/* Marathon's healthCheckResults of the task (new reference; [] before the first result). */
json_t *health_results_json(const struct task_record *t);
/* A status update with a health change: health_status_changed_event. */
void health_on_status(struct marathon *mt, const struct task_status *st,
		      const struct task_record *t);
/* Kills the app's unhealthy tasks (unhealthy_task_kill_event), unless its checks allow
 * any number of failures (maxConsecutiveFailures 0). */
void health_kill_unhealthy(struct marathon *mt, const struct mt_app *ma,
			   const struct task_record **v, int n);

/* ---- agents_seen.c: agents' addresses, hostnames and attributes learnt from offers ---- */
/* Fills mt->agent_ips and mt->agent_info from the store. 0 or -errno. */
int agents_seen_load(struct marathon *mt);
/* Learns from an offer round; stores the agents that changed in one transaction. */
void agents_seen_offers(struct marathon *mt, struct offer **offers, size_t count);

/* ---- app_ops.c: changes to apps, each one a deployment ---- */
/* The registry and store half of a change, without a deployment (a group change makes one
 * plan for all its apps). create: a (consumed on success) becomes the app at version;
 * -EEXIST. update: a (consumed on success) replaces ma's definition; *act is
 * ACT_SCALE or ACT_RESTART and *original the app before (new reference). */
int app_apply_create(struct marathon *mt, struct app *a, const char *version);
int app_apply_update(struct marathon *mt, struct mt_app *ma, struct app *a, const char *version,
		     enum deploy_action *act, json_t **original);
/* Creates the app from a validated definition (consumed). Returns 0 or -EEXIST. */
int app_op_create(struct marathon *mt, struct app *a, struct deployment **out);
/* Replaces the app's definition with a (consumed): a scale when only instances differ,
 * a restart otherwise. Locked app: -EBUSY and *locked = the 409 body, unless force (the
 * running deployment is then cancelled). Clears a pending deletion. */
int app_op_update(struct marathon *mt, struct mt_app *ma, struct app *a, bool force,
		  struct deployment **out, json_t **locked);
int app_op_scale(struct marathon *mt, struct mt_app *ma, int instances, bool force,
		 struct deployment **out, json_t **locked);
int app_op_restart(struct marathon *mt, struct mt_app *ma, bool force,
		   struct deployment **out, json_t **locked);
int app_op_delete(struct marathon *mt, struct mt_app *ma, bool force,
		  struct deployment **out, json_t **locked);
/* a (parsed from a stored version, which validation strips of versionInfo) takes that
 * version's lastConfigChangeAt, so app_op_update treats its tasks as current. */
void app_restore_config_version(struct app *a, json_t *stored);
/* Undo a running deployment (DELETE /v2/deployments/{id} without force). */
int app_op_rollback(struct marathon *mt, struct deployment *d, struct deployment **out);
/* {"deploymentId","version"} (new reference). */
json_t *app_op_result(const struct deployment *d);
/* Announces an API change (api_post_event). */
void app_op_announce(struct marathon *mt, struct http_request *req, const struct app *a);

/* ---- api_tasks.c ---- */
json_t *marathon_task_json(struct marathon *mt, const struct task_record *t);
/* Task ids json array of the app's tasks. */
json_t *marathon_app_tasks_json(struct marathon *mt, const char *app_id);

/* ---- api_apps.c: the served app form (definition + counts + deployments) ---- */
json_t *marathon_app_json(struct marathon *mt, const struct mt_app *ma, bool with_tasks);

/* ---- route registration (one per api_*.c) ---- */
int api_apps_register(struct marathon *mt, struct http_server *srv);
int api_tasks_register(struct marathon *mt, struct http_server *srv);
int api_deployments_register(struct marathon *mt, struct http_server *srv);
int api_misc_register(struct marathon *mt, struct http_server *srv);
int api_queue_register(struct marathon *mt, struct http_server *srv);
int api_groups_register(struct marathon *mt, struct http_server *srv);

#endif
