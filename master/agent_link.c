/* agent_link.c - the master's outgoing calls to agents (POST /v1/launch, /v1/kill) made by
 * LINK_WORKERS threads from one FIFO queue, never with master->lock held (a slow agent must
 * not stall the master). A worker takes the oldest job whose agent no other worker is
 * calling, so each agent still gets its calls one at a time and in order (a kill never
 * overtakes its launch), while different agents are called in parallel; consecutive jobs
 * for one agent mostly go to the same worker and reuse its keep-alive connection. A launch
 * is sent only once the task's record is durable (store_writer.c). A launch the agent did not take becomes TASK_FAILED
 * (REASON_CONTAINER_LAUNCH_FAILED); a failed kill is simply retried: the task stays
 * kill_requested and reconciliation returns it in kill_tasks on every heartbeat. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "lib/http_client.h"
#include "lib/log.h"
#include "master/master_internal.h"

#define LINK_TIMEOUT_MS 5000

static const char *const json_headers[] = { "Content-Type: application/json", NULL };

static void enqueue(struct master *m, enum link_job_kind kind, const struct task *t,
		    const char *path, json_t *body)
{
	struct agent *a = agents_find(m, t->rec.agent_id);
	struct link_job *j;

	if (!body)
		return;
	if (!a || !a->address[0] || !(j = calloc(1, sizeof(*j)))) {
		json_decref(body);
		return;
	}
	j->kind = kind;
	j->body = json_dumps(body, JSON_COMPACT);
	json_decref(body);
	if (!j->body) {
		free(j);
		return;
	}
	snprintf(j->task_id, sizeof(j->task_id), "%s", t->rec.task_id);
	snprintf(j->agent_id, sizeof(j->agent_id), "%s", a->id);
	snprintf(j->url, sizeof(j->url), "http://%s%s", a->address, path);
	j->store_seq = master_store_seq(m);
	pthread_mutex_lock(&m->link_mutex);
	if (m->link_tail)
		m->link_tail->next = j;
	else
		m->link_head = j;
	m->link_tail = j;
	m->link_len++;
	/* One idle worker is enough; a worker that finishes a call wakes the others. */
	pthread_cond_signal(&m->link_cond);
	pthread_mutex_unlock(&m->link_mutex);
}

void agent_link_launch(struct master *m, const struct task *t, json_t *body)
{
	enqueue(m, LINK_LAUNCH, t, "/v1/launch", body);
}

void agent_link_kill(struct master *m, const struct task *t, double grace)
{
	enqueue(m, LINK_KILL, t, "/v1/kill",
		json_pack("{s:s,s:f}", "task_id", t->rec.task_id, "grace_period_seconds", grace));
}

static void job_free(struct link_job *j)
{
	free(j->body);
	free(j);
}

static void launch_failed(struct master *m, struct link_job *j, const char *why)
{
	struct task *t;

	log_warn("event=launch_failed task=%s agent=%s error=\"%s\"", j->task_id, j->agent_id,
		 why);
	master_lock(m);
	t = tasks_find(m, j->task_id);
	if (t && !task_state_is_terminal(t->rec.state))
		tasks_transition(m, t, TASK_FAILED, "REASON_CONTAINER_LAUNCH_FAILED", why);
	master_unlock(m);
}

static void run_job(struct master *m, struct link_job *j)
{
	struct http_result r;
	char why[400];
	int rc;

	memset(&r, 0, sizeof(r));
	if (j->kind == LINK_LAUNCH)
		master_store_wait(m, j->store_seq);
	rc = http_call("POST", j->url, j->body, strlen(j->body), json_headers, LINK_TIMEOUT_MS, &r);
	if (rc == 0 && r.status >= 200 && r.status < 300) {
		log_debug("event=agent_call_ok url=%s task=%s status=%ld", j->url, j->task_id,
			  r.status);
		goto out;
	}
	if (rc < 0)
		snprintf(why, sizeof(why), "agent %s unreachable: %.255s", j->agent_id, r.error);
	else
		snprintf(why, sizeof(why), "agent %s answered %ld: %.200s", j->agent_id, r.status,
			 r.body ? r.body : "");
	if (j->kind == LINK_LAUNCH)
		launch_failed(m, j, why);
	else
		log_warn("event=kill_send_failed task=%s error=\"%s\" retry=next_heartbeat",
			 j->task_id, why);
out:
	http_result_free(&r);
}

static bool agent_busy(struct master *m, const char *agent_id)
{
	for (int i = 0; i < LINK_WORKERS; i++)
		if (strcmp(m->link_busy[i], agent_id) == 0)
			return true;
	return false;
}

/* The oldest job whose agent is not being called (link_mutex held), unlinked; or NULL. */
static struct link_job *take_job(struct master *m)
{
	struct link_job **pp = &m->link_head, *prev = NULL;

	for (; *pp; prev = *pp, pp = &(*pp)->next) {
		struct link_job *j = *pp;

		if (agent_busy(m, j->agent_id))
			continue;
		*pp = j->next;
		if (m->link_tail == j)
			m->link_tail = prev;
		m->link_len--;
		return j;
	}
	return NULL;
}

static void *link_main(void *arg)
{
	struct link_worker *wa = arg;
	struct master *m = wa->m;
	char *busy = m->link_busy[wa->index];

	pthread_mutex_lock(&m->link_mutex);
	for (;;) {
		struct link_job *j = NULL;

		while (!m->link_stop && !(j = take_job(m)))
			pthread_cond_wait(&m->link_cond, &m->link_mutex);
		if (m->link_stop) {
			if (j) {        /* not sent: back at the head for agent_link_free_queue */
				j->next = m->link_head;
				m->link_head = j;
				if (!m->link_tail)
					m->link_tail = j;
				m->link_len++;
			}
			break;
		}
		snprintf(busy, sizeof(m->link_busy[0]), "%s", j->agent_id);
		pthread_mutex_unlock(&m->link_mutex);
		run_job(m, j);
		job_free(j);
		pthread_mutex_lock(&m->link_mutex);
		busy[0] = '\0';
		/* Jobs for that agent may be waiting behind it: let the others look again. */
		pthread_cond_broadcast(&m->link_cond);
		if (m->link_throttled && m->link_len <= LINK_BACKLOG_MAX / 2) {
			/* The allocator held back for the backlog: it may go on now. Lock order
			 * is master->lock before link_mutex, so drop ours first. */
			m->link_throttled = false;
			pthread_mutex_unlock(&m->link_mutex);
			master_lock(m);
			master_wake_allocator(m);
			master_unlock(m);
			pthread_mutex_lock(&m->link_mutex);
		}
	}
	pthread_mutex_unlock(&m->link_mutex);
	return NULL;
}

int agent_link_start(struct master *m)
{
	int rc;

	/* The store writer goes with the link: both serve a running master (main.c starts
	 * the link after the model is loaded; unit tests that only drive the model have
	 * neither and write synchronously). */
	rc = store_writer_start(m);
	if (rc)
		return rc;
	m->link_stop = false;
	for (int i = 0; i < LINK_WORKERS; i++) {
		m->link_workers[i].m = m;
		m->link_workers[i].index = i;
		m->link_busy[i][0] = '\0';
		rc = pthread_create(&m->link_workers[i].thread, NULL, link_main, &m->link_workers[i]);
		if (rc) {
			pthread_mutex_lock(&m->link_mutex);
			m->link_stop = true;
			pthread_cond_broadcast(&m->link_cond);
			pthread_mutex_unlock(&m->link_mutex);
			while (i-- > 0)
				pthread_join(m->link_workers[i].thread, NULL);
			return -rc;
		}
	}
	m->link_running = true;
	return 0;
}

void agent_link_stop(struct master *m)
{
	if (!m->link_running)
		return;
	pthread_mutex_lock(&m->link_mutex);
	m->link_stop = true;
	pthread_cond_broadcast(&m->link_cond);
	pthread_mutex_unlock(&m->link_mutex);
	for (int i = 0; i < LINK_WORKERS; i++)
		pthread_join(m->link_workers[i].thread, NULL);
	m->link_running = false;
}

void agent_link_free_queue(struct master *m)
{
	pthread_mutex_lock(&m->link_mutex);
	while (m->link_head) {
		struct link_job *j = m->link_head;

		m->link_head = j->next;
		job_free(j);
	}
	m->link_tail = NULL;
	m->link_len = 0;
	pthread_mutex_unlock(&m->link_mutex);
}
