/* app.h - the Marathon app definition as the master keeps it, and its JSON forms.
 * An app is validated (app_validate.h) before app_from_json turns it into this struct;
 * app_to_json writes Marathon's field names back (the stored and the served form). */
#ifndef PACER_MARATHON_APP_H
#define PACER_MARATHON_APP_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <jansson.h>
#include "master/marathon/app_id.h"
#include "master/marathon/constraints.h"

#define APP_MAX_PORTS 64
#define APP_MAX_DEPENDENCIES 100
#define APP_VERSION_LEN 32

/* Marathon defaults. */
#define APP_DEFAULT_CPUS 1.0
#define APP_DEFAULT_MEM 128.0
#define APP_DEFAULT_DISK 0.0
#define APP_DEFAULT_INSTANCES 1
/* Used for kills when taskKillGracePeriodSeconds is not set (Mesos's default). */
#define APP_DEFAULT_KILL_GRACE 3.0
#define APP_DEFAULT_BACKOFF 1.0
#define APP_DEFAULT_BACKOFF_FACTOR 1.15
#define APP_DEFAULT_MAX_LAUNCH_DELAY 3600.0
#define APP_DEFAULT_MIN_HEALTH 1.0
#define APP_DEFAULT_MAX_OVER 1.0
/* Marathon's are 300 / 600 s; Pacer replaces a silent agent's tasks at once by default
 * (as it did before unreachableStrategy existed) and forgets them after 600 s. */
#define APP_DEFAULT_INACTIVE_AFTER 0.0
#define APP_DEFAULT_EXPUNGE_AFTER 600.0

enum kill_selection { KILL_YOUNGEST_FIRST, KILL_OLDEST_FIRST };

struct port_def {
	uint32_t port;                  /* 0: any free port */
	char protocol[16];              /* "tcp", "udp", "udp,tcp" */
	char name[64];                  /* "" if none */
	json_t *labels;                 /* object, owned */
};

struct app {
	char id[APP_ID_MAX + 1];        /* normalised: "/team-a/web" */
	char *cmd;                      /* NULL when args is used */
	json_t *args;                   /* array of strings, or NULL */
	double cpus, mem, disk;
	int instances;
	json_t *env;                    /* object of strings, owned */
	json_t *labels;                 /* object of strings, owned */
	struct port_def ports[APP_MAX_PORTS];
	size_t port_count;
	char *user;                     /* NULL if not set */
	double kill_grace;              /* < 0: not set */
	json_t *constraints;            /* [[field, op, value?]...], owned (validated) */
	json_t *dependencies;           /* absolute app or group ids, owned (validated) */
	struct constraint_set cs;       /* compiled from constraints */
	double backoff_seconds, backoff_factor, max_launch_delay;
	double min_health, max_over;    /* upgradeStrategy */
	enum kill_selection kill_selection;
	bool unreachable_disabled;      /* unreachableStrategy "disabled": never replaced */
	double inactive_after, expunge_after;
	json_t *health_checks;          /* healthChecks, stored form (health_checks.h); [] if none */
	/* Versions (ISO-8601 text, as Marathon prints them). */
	char version[APP_VERSION_LEN];
	char last_scaling_at[APP_VERSION_LEN];
	char last_config_change_at[APP_VERSION_LEN];
};

/* Fills a from a definition that passed app_validate (id already normalised by it).
 * Version fields are copied when present. Returns 0 or -ENOMEM/-EINVAL. */
int app_from_json(json_t *def, struct app *a);
/* The definition with Marathon field names, version and versionInfo (new reference). */
json_t *app_to_json(const struct app *a);
void app_free(struct app *a);            /* frees members, not a itself */
int app_copy(struct app *dst, const struct app *src);

/* True when a and b differ in anything but instances, dependencies and versions (an
 * update that needs new tasks rather than a scale). */
bool app_config_differs(const struct app *a, const struct app *b);

/* The command for a task: {"shell":true,"value":cmd} or
 * {"shell":false,"value":args[0],"arguments":args}. New reference. */
json_t *app_task_command(const struct app *a);

double app_kill_grace(const struct app *a);

#endif
