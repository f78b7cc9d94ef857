/* marathon_internal.h - the Marathon layer's shared state and the calls between its files
 * (apps registry, scheduler, deployments, API handlers). Everything here is guarded by the
 * master lock (master_lock), except the event bus, which has its own. */
#ifndef PACER_MARATHON_INTERNAL_H
#define PACER_MARATHON_INTERNAL_H

#include <stdbool.h>
#include <jansson.h>
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
#define KIND_META "meta"
#define META_FRAMEWORK_KEY "marathon_framework_id"

enum deploy_action { ACT_START, ACT_SCALE, ACT_RESTART, ACT_STOP };

struct mt_app {
	struct app app;
	bool deleting;                  /* a StopApplication deployment is running */
	/* Launch backoff (Marathon's defaults: 1 s, x1.15 per failure, at most 3600 s). */
	int failures;
	double launch_after;            /* monotonic seconds; 0 = now */
	struct mt_app *next;
};

struct deployment {
	char id[37];
	char version[APP_VERSION_LEN];
	char app_id[APP_ID_MAX + 1];
	enum deploy_action action;
	json_t *original;               /* the app before the change, NULL for a start */
	struct deployment *next;
};

/* A kill this scheduler asked for (the task no longer counts towards its app). */
struct kill_entry {
	char task_id[160];
	struct kill_entry *next;
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
	struct deployment *deployments; /* oldest first */
	struct kill_entry *kills;
	struct expunge_entry *expunge;
	json_t *agent_ips;              /* agent id -> "ip", learnt from offers */
	long long last_version_ms;      /* wall ms of the newest version handed out */
	bool waiting;                   /* some app waits for offers */
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

/* ---- deployments.c ---- */
const char *deploy_action_name(enum deploy_action a);
struct deployment *deployment_for_app(struct marathon *mt, const char *app_id);
struct deployment *deployment_find(struct marathon *mt, const char *id);
/* Starts (persists, announces) a deployment for the app; original is copied (may be NULL). */
struct deployment *deployment_start(struct marathon *mt, const char *app_id,
				    enum deploy_action action, json_t *original,
				    const char *version);
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
int scheduler_start(struct marathon *mt, char *err, size_t errlen);
void scheduler_free(struct marathon *mt);
/* Brings every app towards its wanted tasks: kills surplus and outdated tasks, ends
 * deployments that are done, revives or suppresses offers. safe: not inside a master
 * callback (terminal records may be expunged). */
void scheduler_reconcile(struct marathon *mt, bool safe);
/* Asks the master to kill a task and remembers it. Returns 0 or -ENOENT. */
int scheduler_kill(struct marathon *mt, const char *task_id, double grace);
bool scheduler_kill_pending(struct marathon *mt, const char *task_id);
/* A new configuration starts without launch backoff. */
void scheduler_reset_backoff(struct mt_app *ma);

struct app_counts { int staged, running, healthy, unhealthy; };
void scheduler_counts(struct marathon *mt, const char *app_id, struct app_counts *out);
/* Non-terminal tasks of the app (NULL: all of this framework's). Records are valid while
 * the lock is held. *out is malloc'd; returns the count or -ENOMEM. */
int scheduler_tasks(struct marathon *mt, const char *app_id, const struct task_record ***out);

/* ---- app_ops.c: changes to apps, each one a deployment ---- */
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

#endif
