/* agent_link.c - the master's outgoing calls to agents (POST /v1/launch, /v1/kill) made by
 * one worker thread from a FIFO queue, never with master->lock held (a slow agent must not
 * stall the master). A launch the agent did not take becomes TASK_FAILED
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
	j->body = body;
	snprintf(j->task_id, sizeof(j->task_id), "%s", t->rec.task_id);
	snprintf(j->agent_id, sizeof(j->agent_id), "%s", a->id);
	snprintf(j->url, sizeof(j->url), "http://%s%s", a->address, path);
	pthread_mutex_lock(&m->link_mutex);
	if (m->link_tail)
		m->link_tail->next = j;
	else
		m->link_head = j;
	m->link_tail = j;
	m->link_len++;
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
	json_decref(j->body);
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
	rc = http_call_json("POST", j->url, j->body, LINK_TIMEOUT_MS, &r);
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

static void *link_main(void *arg)
{
	struct master *m = arg;

	pthread_mutex_lock(&m->link_mutex);
	for (;;) {
		struct link_job *j;

		while (!m->link_stop && !m->link_head)
			pthread_cond_wait(&m->link_cond, &m->link_mutex);
		if (m->link_stop)
			break;
		j = m->link_head;
		m->link_head = j->next;
		if (!m->link_head)
			m->link_tail = NULL;
		m->link_len--;
		pthread_mutex_unlock(&m->link_mutex);
		run_job(m, j);
		job_free(j);
		pthread_mutex_lock(&m->link_mutex);
	}
	pthread_mutex_unlock(&m->link_mutex);
	return NULL;
}

int agent_link_start(struct master *m)
{
	int rc;

	m->link_stop = false;
	rc = pthread_create(&m->link_thread, NULL, link_main, m);
	if (rc)
		return -rc;
	m->link_running = true;
	return 0;
}

void agent_link_stop(struct master *m)
{
	if (!m->link_running)
		return;
	pthread_mutex_lock(&m->link_mutex);
	m->link_stop = true;
	pthread_cond_signal(&m->link_cond);
	pthread_mutex_unlock(&m->link_mutex);
	pthread_join(m->link_thread, NULL);
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
