/* master_link.c - the agent's side of the agent<->master protocol (docs/architecture.md):
 * registers with the task list, heartbeats with TASKREFs every heartbeat interval, kills
 * what the master lists in kill_tasks, and drains the status update outbox. Updates are
 * sent as soon as they are queued, all that are due in one POST /internal/v1/status
 * {"updates":[...]} (at most MAX_BATCH); the master answers per uuid and only what it
 * acknowledged leaves the outbox. One that is not acknowledged is sent again a second
 * later, and a task's later updates wait behind it, so the master sees each task's
 * updates in order. A 404 or an unreachable master makes the agent register again once it answers.
 * While the agent stream is up (stream_link.c) a batch goes as its 'S' frame instead of a
 * POST, with the same body, and the master's 'A' is taken as the POST's answer; a batch
 * whose stream broke before the answer counts as not acknowledged (sent again: the master
 * drops repeats by uuid). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "agent/agent.h"
#include "lib/http_lite.h"
#include "lib/log.h"
#include "lib/util.h"

#define HTTP_TIMEOUT_MS 5000
#define RETRY_SECONDS 1.0
#define MAX_BATCH 256          /* updates per POST /internal/v1/status */

struct link {
	struct agent *a;
	double interval;          /* heartbeat interval from the master */
	double next_heartbeat;    /* monotonic */
	double next_register;
	bool master_down_logged;
};

json_t *agent_task_refs(struct agent *a)
{
	json_t *refs = json_array();

	for (struct task *t = a->tasks; t && refs; t = t->next)
		if (!t->orphan)
			json_array_append_new(refs, agent_task_ref(t));
	return refs;
}

static void set_registered(struct agent *a, bool v)
{
	pthread_mutex_lock(&a->lock);
	a->registered = v;
	pthread_mutex_unlock(&a->lock);
}

/* POSTs a JSON text to the master; returns the HTTP status (0: unreachable). */
static long post_text(struct link *l, const char *path, const char *text, json_t **answer)
{
	struct http_result r = { 0 };
	char url[1024];
	long status;

	*answer = NULL;
	if (!text || path_join(url, sizeof(url), "%s%s", l->a->cfg.master_url, path))
		return -1;
	http_lite_call("POST", url, text, strlen(text), "application/json", HTTP_TIMEOUT_MS, &r);
	status = r.status;
	if (status == 0) {
		if (!l->master_down_logged)
			log_warn("event=master_unreachable url=%s error=\"%s\"", url, r.error);
		l->master_down_logged = true;
	} else {
		l->master_down_logged = false;
		*answer = http_result_json(&r);
	}
	http_result_free(&r);
	return status;
}

/* POSTs body (stolen) to the master; returns the HTTP status (0: unreachable). */
static long post(struct link *l, const char *path, json_t *body, json_t **answer)
{
	char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
	long status;

	json_decref(body);
	*answer = NULL;
	if (!text)
		return -1;
	status = post_text(l, path, text, answer);
	free(text);
	return status;
}

static void kill_listed(struct agent *a, json_t *answer)
{
	json_t *v;
	size_t i;

	json_array_foreach(json_object_get(answer, "kill_tasks"), i, v) {
		const char *id = json_string_value(v);

		if (!id)
			continue;
		log_info("event=master_kill task_id=%s", id);
		if (agent_task_kill(a, id, -1) == -ENOENT)
			log_debug("event=master_kill_unknown task_id=%s", id);
	}
}

static int do_register(struct link *l)
{
	struct agent *a = l->a;
	json_t *body, *answer;
	double hb;
	long status;

	pthread_mutex_lock(&a->lock);
	body = json_pack("{s:s, s:s, s:s, s:o, s:O, s:o}", "agent_id", a->agent_id,
			 "hostname", a->cfg.hostname, "address", a->address,
			 "resources", resources_to_json(&a->resources), "attributes", a->attributes,
			 "tasks", agent_task_refs(a));
	pthread_mutex_unlock(&a->lock);
	status = post(l, "/internal/v1/register", body, &answer);
	if (status != 200) {
		if (status > 0)
			log_warn("event=register_rejected status=%ld message=\"%s\"", status,
				 json_string_value(json_object_get(answer, "message")) ?: "");
		json_decref(answer);
		return -EAGAIN;
	}
	hb = json_number_value(json_object_get(answer, "heartbeat_interval_seconds"));
	l->interval = hb > 0 && hb <= 60 ? hb : 1.0;
	log_info("event=registered master=%s agent_id=%s heartbeat_interval=%.1f", a->cfg.master_url,
		 a->agent_id, l->interval);
	pthread_mutex_lock(&a->lock);
	a->registered = true;
	/* Whatever waited for the master goes out now. */
	for (struct outbox_entry *e = a->outbox.head; e; e = e->next)
		e->next_attempt = 0;
	pthread_mutex_unlock(&a->lock);
	stream_link_kick(a);           /* (re)open the agent stream now */
	kill_listed(a, answer);
	json_decref(answer);
	return 0;
}

static void do_heartbeat(struct link *l)
{
	struct agent *a = l->a;
	json_t *body, *answer;
	long status;

	pthread_mutex_lock(&a->lock);
	body = json_pack("{s:s, s:o}", "agent_id", a->agent_id, "tasks", agent_task_refs(a));
	pthread_mutex_unlock(&a->lock);
	status = post(l, "/internal/v1/heartbeat", body, &answer);
	if (status == 200) {
		kill_listed(a, answer);
	} else if (status == 404 || status == 0) {
		if (status == 404)
			log_warn("event=master_forgot_agent action=register");
		set_registered(a, false);
	} else {
		log_warn("event=heartbeat_rejected status=%ld", status);
	}
	json_decref(answer);
}

/* ---- the outbox ---- */

struct pending {
	char uuid[37];
	char *task_id;
};

/* With the lock held: the updates that may go now, oldest first, as the text of one
 * {"agent_id","updates":[...]} body (NULL: none, or no memory). An update waits while an
 * older update of its task waits (it inherits that one's retry time). */
static char *pick_batch(struct agent *a, struct pending *batch, size_t *n, double now)
{
	json_t *blocked = json_object(), *updates = json_array(), *body;
	char *text = NULL;

	*n = 0;
	if (!blocked || !updates)
		goto out;
	for (struct outbox_entry *e = a->outbox.head; e && *n < MAX_BATCH; e = e->next) {
		json_t *until = json_object_get(blocked, e->task_id);

		if (until) {
			if (e->next_attempt < json_real_value(until))
				e->next_attempt = json_real_value(until);
			continue;
		}
		if (e->next_attempt > now) {
			json_object_set_new(blocked, e->task_id, json_real(e->next_attempt));
			continue;
		}
		batch[*n].task_id = strdup(e->task_id);
		if (!batch[*n].task_id || json_array_append(updates, e->update) < 0) {
			free(batch[*n].task_id);
			break;
		}
		memcpy(batch[*n].uuid, e->uuid, sizeof(e->uuid));
		(*n)++;
	}
	if (*n == 0)
		goto out;
	body = json_pack("{s:s, s:O}", "agent_id", a->agent_id, "updates", updates);
	text = body ? json_dumps(body, JSON_COMPACT) : NULL;
	json_decref(body);
out:
	/* The tree shares the entries' updates: let go of it under the lock. */
	json_decref(updates);
	json_decref(blocked);
	if (!text) {
		for (size_t i = 0; i < *n; i++)
			free(batch[i].task_id);
		*n = 0;
	}
	return text;
}

/* With the lock held: the update and the task's later ones wait until retry. */
static void defer_task(struct agent *a, const char *task_id, double retry)
{
	for (struct outbox_entry *e = a->outbox.head; e; e = e->next)
		if (!task_id || strcmp(e->task_id, task_id) == 0)
			e->next_attempt = retry;
}

/* The master's result for uuid in a batch answer: true if acknowledged; *why otherwise. */
static bool acked(json_t *results, const char *uuid, const char **why)
{
	json_t *r;
	size_t i;

	*why = "no result for the update";
	json_array_foreach(results, i, r) {
		if (strcmp(json_string_value(json_object_get(r, "uuid")) ?: "", uuid) != 0)
			continue;
		if (json_is_true(json_object_get(r, "acknowledged")))
			return true;
		*why = json_string_value(json_object_get(r, "error")) ?: "not acknowledged";
	}
	return false;
}

/* Sends one batch text: as an 'S' frame on the agent stream when it is up, else as
 * POST /internal/v1/status. The answer is the POST's (status, body); a stream's results
 * get their updates' uuids (the 'A' items come in the batch's order). Returns the status,
 * 0 for an unreachable master, or -1 for a batch sent on a stream that gave no answer. */
static long send_batch(struct link *l, const char *text, const struct pending *batch, size_t n,
		       json_t **answer)
{
	long status;
	int rc = stream_link_status(l->a, text, strlen(text), HTTP_TIMEOUT_MS, &status, answer);
	json_t *results;

	if (rc == -ENOTCONN)
		return post_text(l, "/internal/v1/status", text, answer);
	if (rc < 0) {
		log_warn("event=status_unanswered updates=%zu error=\"%s\" action=resend", n,
			 strerror(-rc));
		return -1;
	}
	results = json_object_get(*answer, "results");
	for (size_t i = 0; i < n && i < json_array_size(results); i++)
		json_object_set_new(json_array_get(results, i), "uuid", json_string(batch[i].uuid));
	return status;
}

/* Sends one batch (POST /internal/v1/status {"updates":[...]} or its 'S' frame); drops
 * from the outbox exactly what the master acknowledged, in order, and defers the rest (with
 * their tasks' later updates). Returns false if the master could not be reached. */
static bool flush_outbox(struct link *l)
{
	struct agent *a = l->a;
	struct pending batch[MAX_BATCH];
	json_t *answer = NULL, *results;
	bool reachable = true;
	long status;
	char *text;
	size_t n;

	pthread_mutex_lock(&a->lock);
	text = pick_batch(a, batch, &n, now_mono());
	pthread_mutex_unlock(&a->lock);
	if (!text)
		return true;
	status = send_batch(l, text, batch, n, &answer);
	free(text);
	results = json_object_get(answer, "results");
	pthread_mutex_lock(&a->lock);
	if (status == 0 || status == 404) {
		reachable = false;    /* down, or it does not know us: register again */
		a->registered = false;
		defer_task(a, NULL, now_mono() + RETRY_SECONDS);
	}
	for (size_t i = 0; i < n; i++) {
		const char *why;

		if (reachable && status == 200 && acked(results, batch[i].uuid, &why)) {
			agent_update_acked(a, batch[i].uuid);
		} else if (reachable) {
			if (status == 200)
				log_warn("event=status_not_acknowledged task_id=%s uuid=%s error=\"%s\"",
					 batch[i].task_id, batch[i].uuid, why);
			else if (status > 0)
				log_warn("event=status_not_acknowledged task_id=%s uuid=%s status=%ld",
					 batch[i].task_id, batch[i].uuid, status);
			defer_task(a, batch[i].task_id, now_mono() + RETRY_SECONDS);
		}
		free(batch[i].task_id);
	}
	pthread_mutex_unlock(&a->lock);
	json_decref(answer);
	return reachable;
}

/* With the lock held: the earliest time an update becomes due (0: none pending). */
static double next_update_due(struct agent *a)
{
	double due = 0;

	for (struct outbox_entry *e = a->outbox.head; e; e = e->next)
		if (due == 0 || e->next_attempt < due)
			due = e->next_attempt > 0 ? e->next_attempt : 1e-9;
	return due;
}

static void wait_until(struct agent *a, double mono_deadline)
{
	double left = mono_deadline - now_mono();
	struct timespec ts;

	if (left <= 0)
		return;
	ts = timespec_after(CLOCK_MONOTONIC, left);
	pthread_cond_timedwait(&a->link_cond, &a->lock, &ts);
}

void *agent_link_main(void *arg)
{
	struct link l = { .a = arg, .interval = 1.0 };
	struct agent *a = arg;

	pthread_mutex_lock(&a->lock);
	while (!a->stopping) {
		bool registered = a->registered;
		double now = now_mono(), wake, due;

		pthread_mutex_unlock(&a->lock);
		if (!registered && now >= l.next_register) {
			if (do_register(&l) == 0)
				l.next_heartbeat = now_mono() + l.interval;
			else
				l.next_register = now_mono() + RETRY_SECONDS;
		} else if (registered && now >= l.next_heartbeat) {
			do_heartbeat(&l);
			l.next_heartbeat = now_mono() + l.interval;
		}
		pthread_mutex_lock(&a->lock);
		registered = a->registered;
		pthread_mutex_unlock(&a->lock);
		if (registered && !flush_outbox(&l))
			l.next_register = now_mono() + RETRY_SECONDS;

		pthread_mutex_lock(&a->lock);
		if (a->stopping)
			break;
		wake = a->registered ? l.next_heartbeat : l.next_register;
		due = a->registered ? next_update_due(a) : 0;
		if (due > 0 && due < wake)
			wake = due;
		wait_until(a, wake);
	}
	pthread_mutex_unlock(&a->lock);
	http_lite_thread_cleanup();
	return NULL;
}
