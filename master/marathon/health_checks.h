/* health_checks.h - an app's healthChecks: validation, stored form, launch form. */
#ifndef PACER_MARATHON_HEALTH_CHECKS_H
#define PACER_MARATHON_HEALTH_CHECKS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <jansson.h>

#define HEALTH_CHECKS_MAX 16

/* Validates an app's "healthChecks" (v, borrowed) for an app with nports ports; problems go
 * to details under /healthChecks(i)/field. Returns the stored form with Marathon's defaults
 * filled in (new reference), or NULL when something was wrong. */
json_t *health_checks_validate(json_t *v, size_t nports, json_t *details);
/* TASKINFO "health_checks" for a task with these host ports (in portDefinitions order):
 * portIndex resolved, protocols mapped to HTTP/TCP/COMMAND. NULL when there is none. */
json_t *health_checks_for_launch(json_t *checks, const uint32_t *ports, size_t nports);
/* Some check has maxConsecutiveFailures > 0: an unhealthy task is killed (0: never). */
bool health_checks_kill_unhealthy(json_t *checks);

#endif
