/* status.c - applying status updates to task records: from agents (POST
 * /internal/v1/status, de-duplicated by uuid) and from the master itself (unreachable,
 * lost, launch failed). An applied update is persisted before the agent gets its ack, then
 * forwarded to the task's framework. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "lib/json_text.h"
#include "lib/log.h"
#include "lib/util.h"
#include "master/master_internal.h"

static bool uuid_seen(const struct task *t, const char *uuid)
{
	for (unsigned i = 0; i < t->uuid_cap; i++)
		if (strcmp(t->uuids[i], uuid) == 0)
			return true;
	return false;
}

/* The ring grows 2, 4, 8, 16 slots as updates come, then wraps (oldest forgotten). */
static void uuid_remember(struct task *t, const char *uuid)
{
	if (t->uuid_next >= t->uuid_cap && t->uuid_cap < TASK_UUID_MEMORY) {
		unsigned cap = t->uuid_cap ? t->uuid_cap * 2 : 2;
		char (*g)[37] = realloc(t->uuids, cap * sizeof(*g));

		if (!g)
			return;         /* not remembered: a resend would be applied as a repeat */
		memset(g + t->uuid_cap, 0, (cap - t->uuid_cap) * sizeof(*g));
		t->uuids = g;
		t->uuid_cap = cap;
	}
	strcpy_cut(t->uuids[t->uuid_next], sizeof(t->uuids[0]), uuid);
	t->uuid_next = (t->uuid_next + 1) % TASK_UUID_MEMORY;
}

struct change {
	enum task_state state;
	const char *reason, *message;
	double timestamp;
	int exit_code, signal;
	int healthy;                    /* -1: the update carries no health */
	bool health_only, health_changed;
};

/* The framework may expunge the task from inside its callback: hand it copies. */
static void forward(struct master *m, struct task *t, const struct change *c)
{
	struct framework *fw = frameworks_find(m, t->rec.framework_id);
	char *task_id = strdupa(t->rec.task_id);
	/* agent and framework ids are the keys of groups, which outlive the record */
	struct task_status st = {
		.task_id = task_id, .agent_id = t->rec.agent_id,
		.framework_id = t->rec.framework_id,
		.state = c->state, .message = c->message ? c->message : "",
		.reason = c->reason ? c->reason : "", .timestamp = c->timestamp,
		.exit_code = c->exit_code, .signal = c->signal, .healthy = c->healthy,
		.health_only = c->health_only, .health_changed = c->health_changed,
	};

	if (!fw || !fw->ops->status_update)
		return;
	fw->ops->status_update(fw, &st);
}

/* Sets the new state, frees resources on the first terminal state, persists, forwards. */
static void apply(struct master *m, struct task *t, const struct change *c)
{
	enum task_state old = t->rec.state;

	t->rec.state = c->state;
	t->rec.updated_at = m->clock_wall();
	if (c->state == TASK_RUNNING && t->rec.started_at == 0)
		t->rec.started_at = c->timestamp > 0 ? c->timestamp : t->rec.updated_at;
	tasks_account(m, t, old, c->state);
	if (task_state_is_terminal(c->state) && !task_state_is_terminal(old)) {
		t->kill_requested = false;
		master_wake_allocator(m);       /* resources are free again */
	}
	tasks_persist(m, t);
	log_info("event=task_status task=%s state=%s previous=%s reason=%s", t->rec.task_id,
		 task_state_name(c->state), task_state_name(old),
		 c->reason && c->reason[0] ? c->reason : "-");
	forward(m, t, c);       /* last: t may be gone afterwards */
}

void tasks_transition(struct master *m, struct task *t, enum task_state state,
		      const char *reason, const char *message)
{
	struct change c = {
		.state = state, .reason = reason, .message = message,
		.timestamp = m->clock_wall(), .exit_code = -1, .signal = 0, .healthy = -1,
	};

	if (task_state_is_terminal(t->rec.state))
		return;
	apply(m, t, &c);
}

static double nonneg(double v)
{
	return isfinite(v) && v > 0 ? v : 0;
}

/* The health an agent's health checks reported ("healthy" and "health_checks"), kept with
 * only the fields the master serves, typed: {"healthy":bool,"checks":[{"alive",
 * "consecutive_failures","first_success","last_success","last_failure",
 * "last_failure_cause"}]}. NULL when the update carries no health. */
static json_t *health_from_update(const struct status_update *u)
{
	json_t *checks;

	if (!u->has_healthy)
		return NULL;
	checks = json_array();
	for (unsigned i = 0; checks && i < u->nchecks; i++) {
		const struct status_check *c = &u->checks[i];
		double failures = nonneg(c->consecutive_failures);
		char cause[256];

		snprintf(cause, sizeof(cause), "%s", c->last_failure_cause ?: "");
		utf8_sanitize(cause);
		json_array_append_new(checks, json_pack("{s:o, s:I, s:f, s:f, s:f, s:s}",
			"alive", c->alive < 0 ? json_null() : json_boolean(c->alive),
			"consecutive_failures", failures < 0x1p63 ? (json_int_t)failures : INT64_MAX,
			"first_success", nonneg(c->first_success),
			"last_success", nonneg(c->last_success),
			"last_failure", nonneg(c->last_failure), "last_failure_cause", cause));
	}
	return checks ? json_pack("{s:b, s:o}", "healthy", u->healthy, "checks", checks) : NULL;
}

/* Records an update's health. Returns true when that is all it changes (the task is in
 * the update's state already, or being killed): the framework hears of the health only. */
static bool apply_health(struct master *m, struct task *t, json_t *health, struct change *c)
{
	json_t *before = t->rec.health ? json_object_get(t->rec.health, "healthy") : NULL;

	c->healthy = json_is_true(json_object_get(health, "healthy"));
	c->health_changed = !json_is_boolean(before) || json_is_true(before) != c->healthy;
	json_decref(t->rec.health);
	t->rec.health = health;
	if (c->state != t->rec.state && t->rec.state != TASK_KILLING)
		return false;
	c->state = t->rec.state;
	c->health_only = true;
	tasks_persist(m, t);
	if (c->health_changed)
		log_info("event=task_health task=%s healthy=%s", t->rec.task_id,
			 c->healthy ? "true" : "false");
	forward(m, t, c);       /* last: t may be gone afterwards */
	return true;
}

int tasks_apply_status(struct master *m, const char *agent_id, const struct status_update *u,
		       bool *dup, char *err, size_t errlen)
{
	const char *uuid = u->uuid, *task_id = u->task_id, *state_name = u->state;
	struct change c = { .exit_code = -1, .healthy = -1 };
	json_t *health;
	struct task *t;
	int st;

	*dup = false;
	if (!uuid || !uuid[0] || !task_id || !state_name) {
		snprintf(err, errlen, "update needs string fields uuid, task_id and state");
		return -EINVAL;
	}
	st = task_state_parse(state_name);
	if (st < 0) {
		snprintf(err, errlen, "update.state '%s' is not a task state", state_name);
		return -EINVAL;
	}
	t = tasks_find(m, task_id);
	if (!t) {
		/* Acknowledged anyway: the agent must stop resending; reconciliation kills it. */
		log_warn("event=status_unknown_task task=%s agent=%s state=%s", task_id, agent_id,
			 state_name);
		return 0;
	}
	if (strcmp(t->rec.agent_id, agent_id) != 0) {
		log_warn("event=status_wrong_agent task=%s agent=%s expected=%s", task_id, agent_id,
			 t->rec.agent_id);
		return 0;
	}
	if (uuid_seen(t, uuid)) {
		*dup = true;
		return 0;
	}
	uuid_remember(t, uuid);
	if (task_state_is_terminal(t->rec.state)) {
		/* Already final (e.g. LOST by reconciliation): remember the uuid only. */
		tasks_persist(m, t);
		return 0;
	}
	c.state = (enum task_state)st;
	c.reason = u->reason ? u->reason : "";
	c.message = u->message ? u->message : "";
	c.timestamp = u->timestamp;
	if (c.timestamp <= 0)
		c.timestamp = m->clock_wall();
	if (u->has_exit_code)
		c.exit_code = (int)u->exit_code;
	if (u->has_signal)
		c.signal = (int)u->signal;
	health = health_from_update(u);
	if (health && apply_health(m, t, health, &c))
		return 0;
	if (c.state == t->rec.state) {
		/* A repeat of the state the task is in (a restarted agent re-reporting it): no
		 * transition, so frameworks and event subscribers hear nothing new. */
		tasks_persist(m, t);
		return 0;
	}
	apply(m, t, &c);
	return 0;
}

/* Was an earlier update of the batch, for the same task, rejected? Rejections are rare: a
 * scan of the updates so far is enough. */
static bool task_rejected_before(const struct status_update *updates, const bool *rejected,
				 size_t n, const char *task_id)
{
	for (size_t i = 0; i < n; i++)
		if (rejected[i] && updates[i].task_id && strcmp(updates[i].task_id, task_id) == 0)
			return true;
	return false;
}

void tasks_apply_status_each(struct master *m, const char *agent_id,
			     const struct status_update *updates, size_t n,
			     void (*result)(void *arg, const struct status_update *u,
					    const char *err),
			     void *arg)
{
	bool *rejected = calloc(n ? n : 1, sizeof(*rejected));
	size_t nrejected = 0;

	for (struct framework_entry *e = m->frameworks; e; e = e->next)
		if (e->fw->ops->status_batch_begin)
			e->fw->ops->status_batch_begin(e->fw);
	for (size_t i = 0; i < n; i++) {
		const struct status_update *u = &updates[i];
		char err[256] = "";
		bool dup = false;
		int rc;

		if (!rejected) {
			snprintf(err, sizeof(err), "out of memory");
			rc = -ENOMEM;
		} else if (nrejected && u->task_id &&
			   task_rejected_before(updates, rejected, i, u->task_id)) {
			snprintf(err, sizeof(err), "follows a rejected update of task '%.160s'",
				 u->task_id);
			rc = -EINVAL;
		} else {
			rc = tasks_apply_status(m, agent_id, u, &dup, err, sizeof(err));
		}
		if (rc < 0) {
			if (rejected) {
				rejected[i] = true;
				nrejected++;
			}
			utf8_sanitize(err);     /* a message cut short must still be text */
		}
		result(arg, u, rc < 0 ? err : NULL);
	}
	for (struct framework_entry *e = m->frameworks; e; e = e->next)
		if (e->fw->ops->status_batch_end)
			e->fw->ops->status_batch_end(e->fw);
	free(rejected);
}

/* One result of the JSON answer. */
static void result_json(void *arg, const struct status_update *u, const char *err)
{
	struct jtext *out = arg;

	jt_sep(out);
	jt_raw(out, "{");
	jt_key(out, "uuid");
	jt_str(out, u->uuid);           /* null when it is not a string */
	if (err) {
		jt_key(out, "error");
		jt_str(out, err);
	} else {
		jt_key(out, "acknowledged");
		jt_bool(out, true);
	}
	jt_raw(out, "}");
}

char *tasks_apply_status_batch(struct master *m, const char *agent_id,
			       const struct status_update *updates, size_t n)
{
	struct jtext out;

	jt_init(&out);
	jt_raw(&out, "{\"results\":[");
	tasks_apply_status_each(m, agent_id, updates, n, result_json, &out);
	jt_raw(&out, "]}");
	return jt_take(&out);
}

void master_status_enter(struct master *m)
{
	__atomic_add_fetch(&m->status_inflight, 1, __ATOMIC_RELAXED);
}

void master_status_leave(struct master *m)
{
	/* The allocator held back while updates queued up: it may go on once they thin out. */
	if (__atomic_sub_fetch(&m->status_inflight, 1, __ATOMIC_RELAXED) <= STATUS_BACKLOG_MAX / 2 &&
	    m->status_throttled) {
		m->status_throttled = false;
		master_wake_allocator(m);
	}
}
