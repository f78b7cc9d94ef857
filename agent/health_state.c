/* health_state.c - one health check's state machine, Marathon's rules: the first probe
 * after delaySeconds, then one every intervalSeconds (counted from the end of the last);
 * failures inside gracePeriodSeconds (from the task's start) are ignored until a probe has
 * passed; maxConsecutiveFailures failures in a row make the check unhealthy (0: the first
 * counted failure does, and the scheduler never kills for it); a pass makes it healthy and
 * resets the count. Pure: no clock, no I/O, so the unit tests drive it with a fake clock. */
#include <stdio.h>
#include <string.h>

#include "agent/health.h"
#include "lib/util.h"

void hc_state_init(struct hc_state *s, const struct hc_def *d, double now)
{
	memset(s, 0, sizeof(*s));
	s->started = now;
	s->next_due = now + d->delay;
	s->health = HC_UNKNOWN;
}

void hc_state_skip(struct hc_state *s, const struct hc_def *d, double now)
{
	s->next_due = now + d->interval;
}

bool hc_state_result(struct hc_state *s, const struct hc_def *d, bool ok, const char *cause,
		     double now, double wall)
{
	enum hc_health before = s->health;
	int threshold = d->max_failures > 0 ? d->max_failures : 1;

	s->next_due = now + d->interval;
	if (ok) {
		bool had_failures = s->consecutive_failures > 0;

		s->succeeded = true;
		s->consecutive_failures = 0;
		s->health = HC_HEALTHY;
		if (s->first_success == 0)
			s->first_success = wall;
		s->last_success = wall;
		return before != HC_HEALTHY || had_failures;
	}
	if (!s->succeeded && now - s->started < d->grace)
		return false;           /* still starting up: not counted */
	s->consecutive_failures++;
	s->last_failure = wall;
	snprintf(s->last_failure_cause, sizeof(s->last_failure_cause), "%s", cause ? cause : "");
	utf8_sanitize(s->last_failure_cause);   /* a cut path must not make the JSON fail */
	if (s->consecutive_failures >= threshold)
		s->health = HC_UNHEALTHY;
	return before != s->health || s->consecutive_failures <= threshold;
}

enum hc_health hc_aggregate(const struct hc_state *s, size_t n)
{
	bool all = n > 0;

	for (size_t i = 0; i < n; i++) {
		if (s[i].health == HC_UNHEALTHY)
			return HC_UNHEALTHY;
		all = all && s[i].health == HC_HEALTHY;
	}
	return all ? HC_HEALTHY : HC_UNKNOWN;
}

json_t *hc_state_json(const struct hc_state *s)
{
	json_t *o = json_pack("{s:i, s:f, s:f, s:f, s:s}",
			      "consecutive_failures", s->consecutive_failures,
			      "first_success", s->first_success, "last_success", s->last_success,
			      "last_failure", s->last_failure,
			      "last_failure_cause", s->last_failure_cause);

	if (o)
		json_object_set_new(o, "alive", s->health == HC_UNKNOWN ? json_null()
					       : json_boolean(s->health == HC_HEALTHY));
	return o;
}
