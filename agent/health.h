/* health.h - the agent's health checks (Marathon healthChecks, run agent-side like Mesos'
 * executor checks): the definitions the master sends in TASKINFO "health_checks"
 * (health_def.c), the pure per-check state machine (health_state.c, unit-tested with a
 * fake clock) and the checker thread that runs HTTP, TCP and COMMAND probes without
 * blocking anything else (health_check.c). */
#ifndef PACER_AGENT_HEALTH_H
#define PACER_AGENT_HEALTH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <jansson.h>

#define HC_MAX_CHECKS 16
#define HC_PATH_MAX 1024
#define HC_CAUSE_MAX 160

enum hc_protocol { HC_HTTP, HC_TCP, HC_COMMAND };

/* One check as the master resolved it (portIndex already turned into the host port). */
struct hc_def {
	enum hc_protocol protocol;
	const char *path;               /* HTTP: starts with '/'; borrowed from the JSON */
	uint32_t port;                  /* HTTP/TCP: 1-65535 */
	const char *command;            /* COMMAND: /bin/sh -c command; borrowed */
	double grace, interval, timeout, delay;   /* seconds */
	int max_failures;               /* 0: never unhealthy enough to be killed */
	bool ignore_1xx;
};

/* TASKINFO "health_checks" (absent or null: none). Strings are borrowed from arr. On error
 * -EINVAL with a message naming the field (/task/health_checks/<i>/<key>). */
int health_defs_parse(json_t *arr, struct hc_def *out, size_t *n, char *err, size_t errlen);
const char *hc_protocol_name(enum hc_protocol p);

/* ---- health_state.c: one check's state (pure: the caller passes the clocks) ---- */

enum hc_health { HC_UNKNOWN = -1, HC_UNHEALTHY = 0, HC_HEALTHY = 1 };

struct hc_state {
	double started;                 /* monotonic: the task's start (grace counts from it) */
	double next_due;                /* monotonic: when the next probe starts */
	int consecutive_failures;
	bool succeeded;                 /* a probe has passed since the task started */
	enum hc_health health;
	double first_success, last_success, last_failure;   /* wall seconds, 0: never */
	char last_failure_cause[HC_CAUSE_MAX];
};

/* The first probe is due delaySeconds after now (the task's start). */
void hc_state_init(struct hc_state *s, const struct hc_def *d, double now);
/* A probe ended at now (monotonic) / wall. Returns true when the result changes what the
 * master must hear: the health, or the failure count while it climbs to the threshold.
 * Failures inside the grace period are not counted unless a probe has passed before. */
bool hc_state_result(struct hc_state *s, const struct hc_def *d, bool ok, const char *cause,
		     double now, double wall);
/* A probe whose result is discarded (an ignored HTTP 1xx): only the next one is planned. */
void hc_state_skip(struct hc_state *s, const struct hc_def *d, double now);
/* A task's health from its checks: unhealthy if one is, healthy if all are, else unknown. */
enum hc_health hc_aggregate(const struct hc_state *s, size_t n);
/* {"alive","consecutive_failures","first_success","last_success","last_failure",
 * "last_failure_cause"} as sent in a status update (new reference). */
json_t *hc_state_json(const struct hc_state *s);

/* ---- health_check.c: the checker thread ---- */

struct agent;
void *agent_health_main(void *arg);

#endif
