/* agent_link.c - the master's outgoing calls to agents (POST /v1/launch, /v1/kill) made by
 * LINK_WORKERS threads, never with master->lock held (a slow agent must not stall the
 * master). Jobs wait in one queue per agent (struct link_queue, found by agent id); an
 * agent with jobs that no worker is calling is on the ready list. A worker takes the agent
 * at the head of the ready list and the run of same-kind jobs at the head of its queue (up
 * to LINK_BATCH_MAX tasks / LINK_BATCH_BYTES) and sends them as ONE batch call
 * ({"launches":[...]} or {"kills":[...]}, docs/architecture.md), so each agent gets its
 * calls one at a time and in order (a kill never overtakes its launch) while different
 * agents are called in parallel. Queueing and taking are O(1) per job.
 * A launch batch is sent only once the store has its tasks' records durable
 * (store_writer.c; one wait for the highest seq). A launch the agent refused, or a batch
 * call that failed, becomes TASK_FAILED (REASON_CONTAINER_LAUNCH_FAILED) for the tasks
 * concerned; a failed kill is simply retried: the task stays kill_requested and
 * reconciliation returns it in kill_tasks on every heartbeat. Reconciliation asks
 * agent_link_launch_pending before it takes a task its agent does not list for lost: a
 * launch waiting here behind a long queue is on the way, not lost. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "lib/http_client.h"
#include "lib/json_text.h"
#include "lib/log.h"
#include "lib/util.h"
#include "master/agent_stream.h"
#include "master/master_internal.h"

#define LINK_TIMEOUT_MS 5000

static const char *const json_headers[] = { "Content-Type: application/json", NULL };

int agent_link_init(struct master *m)
{
	dl_init(&m->link_all);
	dl_init(&m->link_ready);
	return hashmap_init(&m->link_queues);
}

/* The agent's queue, created on first use (link_mutex held); NULL without memory. */
static struct link_queue *queue_get(struct master *m, const char *agent_id)
{
	struct hm_node *n = hashmap_get(&m->link_queues, agent_id);
	struct link_queue *q;

	if (n)
		return hm_entry(n, struct link_queue, node);
	q = calloc(1, sizeof(*q));
	if (!q)
		return NULL;
	snprintf(q->agent_id, sizeof(q->agent_id), "%s", agent_id);
	hashmap_put(&m->link_queues, &q->node, q->agent_id);
	dl_add_tail(&m->link_all, &q->all);
	return q;
}

static void queue_free(struct master *m, struct link_queue *q)
{
	hashmap_remove_node(&m->link_queues, &q->node);
	dl_del(&q->all);
	free(q);
}

/* Queues body (JSON text, taken) for t's agent a (NULL: look it up). */
static void enqueue(struct master *m, enum link_job_kind kind, struct agent *a,
		    const struct task *t, char *body, size_t body_len)
{
	struct link_queue *q;
	struct link_job *j;

	if (!body)
		return;
	if (!a)
		a = agents_find(m, t->rec.agent_id);
	if (!a || !a->address[0] || !(j = malloc(sizeof(*j)))) {
		free(body);
		return;
	}
	j->kind = kind;
	j->body = body;
	j->body_len = body_len;
	j->next = NULL;
	strcpy_cut(j->task_id, sizeof(j->task_id), t->rec.task_id);
	j->store_seq = master_store_seq(m);
	pthread_mutex_lock(&m->link_mutex);
	q = queue_get(m, a->id);
	if (!q) {
		pthread_mutex_unlock(&m->link_mutex);
		log_warn("event=agent_call_dropped task=%s agent=%s error=\"out of memory\"",
			 t->rec.task_id, a->id);
		free(j->body);
		free(j);
		return;
	}
	snprintf(q->address, sizeof(q->address), "%s", a->address);
	if (q->tail)
		q->tail->next = j;
	else
		q->head = j;
	q->tail = j;
	m->link_len++;
	if (!q->busy && !q->on_ready) {
		q->on_ready = true;
		dl_add_tail(&m->link_ready, &q->ready);
		/* One idle worker is enough: nobody else can take this agent. */
		pthread_cond_signal(&m->link_cond);
	}
	pthread_mutex_unlock(&m->link_mutex);
}

void agent_link_launch(struct master *m, struct agent *a, const struct task *t, char *body)
{
	enqueue(m, LINK_LAUNCH, a, t, body, body ? strlen(body) : 0);
}

void agent_link_kill(struct master *m, const struct task *t, double grace)
{
	struct jtext b;
	char *body;

	jt_init(&b);
	jt_raw(&b, "{");
	jt_key(&b, "task_id");
	jt_str(&b, t->rec.task_id);
	jt_key(&b, "grace_period_seconds");
	jt_num(&b, grace);
	jt_raw(&b, "}");
	body = jt_take(&b);
	enqueue(m, LINK_KILL, NULL, t, body, body ? strlen(body) : 0);
}

static void job_free(struct link_job *j)
{
	free(j->body);
	free(j);
}

static void jobs_free(struct link_job *j)
{
	while (j) {
		struct link_job *next = j->next;

		job_free(j);
		j = next;
	}
}

/* One batch taken off an agent's queue. */
struct batch {
	enum link_job_kind kind;
	struct link_job *jobs;
	size_t n;
	char agent_id[64];
	char url[256];
};

/* The run of same-kind jobs at the head of q, bounded (link_mutex held). */
static void take_batch(struct master *m, struct link_queue *q, struct batch *b)
{
	struct link_job *last = NULL, *j = q->head;
	size_t bytes = 0;

	b->kind = j->kind;
	b->jobs = j;
	b->n = 0;
	while (j && j->kind == b->kind && b->n < LINK_BATCH_MAX &&
	       (b->n == 0 || bytes + j->body_len + 1 <= LINK_BATCH_BYTES)) {
		bytes += j->body_len + 1;
		b->n++;
		last = j;
		j = j->next;
	}
	last->next = NULL;
	q->head = j;
	if (!j)
		q->tail = NULL;
	m->link_len -= b->n;
	snprintf(b->agent_id, sizeof(b->agent_id), "%s", q->agent_id);
	snprintf(b->url, sizeof(b->url), "http://%s%s", q->address,
		 b->kind == LINK_LAUNCH ? "/v1/launch" : "/v1/kill");
}

/* {"launches":[...]} or {"kills":[...]}: the jobs' element texts joined. */
static char *batch_body(const struct batch *b, size_t *len)
{
	const char *open = b->kind == LINK_LAUNCH ? "{\"launches\":[" : "{\"kills\":[";
	size_t n = strlen(open) + 3, off;
	char *s;

	for (struct link_job *j = b->jobs; j; j = j->next)
		n += j->body_len + 1;
	s = malloc(n);
	if (!s)
		return NULL;
	off = (size_t)sprintf(s, "%s", open);
	for (struct link_job *j = b->jobs; j; j = j->next) {
		if (j != b->jobs)
			s[off++] = ',';
		memcpy(s + off, j->body, j->body_len);
		off += j->body_len;
	}
	off += (size_t)sprintf(s + off, "]}");
	*len = off;
	return s;
}

/* Fails the launches of the batch that are marked (why[i] non-NULL; all of them when why
 * itself is NULL: out of memory), under one lock hold. */
static void launches_failed(struct master *m, const struct batch *b, char **why)
{
	size_t i = 0;

	master_lock(m);
	for (struct link_job *j = b->jobs; j; j = j->next, i++) {
		const char *reason = why ? why[i] : "out of memory";
		struct task *t;

		if (!reason)
			continue;
		log_warn("event=launch_failed task=%s agent=%s error=\"%s\"", j->task_id,
			 b->agent_id, reason);
		t = tasks_find(m, j->task_id);
		if (t && !task_state_is_terminal(t->rec.state))
			tasks_transition(m, t, TASK_FAILED, "REASON_CONTAINER_LAUNCH_FAILED", reason);
	}
	master_unlock(m);
}

/* The agent's answer for each job: NULL (taken) or a malloc'd reason in why[i]. Returns
 * how many were refused. A result must name the job's task (order is the batch's). */
static size_t read_results(const struct batch *b, const struct http_result *r, char **why)
{
	json_t *answer = r->body ? json_loads(r->body, 0, NULL) : NULL;
	json_t *results = json_object_get(answer, "results");
	size_t i = 0, refused = 0;

	for (struct link_job *j = b->jobs; j; j = j->next, i++) {
		json_t *res = json_array_get(results, i);
		const char *id = json_string_value(json_object_get(res, "task_id"));
		const char *err = json_string_value(json_object_get(res, "error"));
		char msg[400];

		if (id && strcmp(id, j->task_id) == 0 && json_is_true(json_object_get(res, "accepted")))
			continue;
		if (id && strcmp(id, j->task_id) == 0 && err)
			snprintf(msg, sizeof(msg), "agent %s refused the task: %.300s", b->agent_id,
				 err);
		else
			snprintf(msg, sizeof(msg), "agent %s answered %ld without a result for the task",
				 b->agent_id, r->status);
		why[i] = strdup(msg);
		refused++;
	}
	json_decref(answer);
	return refused;
}

static void run_batch(struct master *m, struct batch *b)
{
	struct http_result r;
	unsigned long seq = 0;
	char **why = NULL, msg[400];
	char *body = NULL;
	size_t len = 0, refused = 0;
	int rc = -ENOMEM;

	memset(&r, 0, sizeof(r));
	why = calloc(b->n, sizeof(*why));
	if (b->kind == LINK_LAUNCH) {
		for (struct link_job *j = b->jobs; j; j = j->next)
			if (j->store_seq > seq)
				seq = j->store_seq;
		master_store_wait(m, seq);
	}
	rc = why ? agent_stream_call(m, b->agent_id, b->kind == LINK_LAUNCH ? AF_LAUNCH : AF_KILL,
				     b->jobs, b->n, why, LINK_TIMEOUT_MS) : -ENOMEM;
	if (rc == 0) {
		for (size_t i = 0; i < b->n; i++)
			refused += why[i] != NULL;
		log_debug("event=agent_call_ok agent=%s via=stream tasks=%zu refused=%zu",
			  b->agent_id, b->n, refused);
		goto answered;
	}
	if (rc == -ESHUTDOWN) {
		/* Not answered because the master stops: the tasks stay as they are and
		 * reconciliation settles them once the master is back. */
		log_info("event=agent_call_unanswered agent=%s tasks=%zu reason=\"master stopping\"",
			 b->agent_id, b->n);
		goto out;
	}
	if (rc != -ENOTCONN) {
		snprintf(msg, sizeof(msg), "agent %s stream: %s", b->agent_id,
			 rc == -EPIPE ? "closed before the agent answered" :
			 rc == -ETIMEDOUT ? "no answer in time" : strerror(-rc));
		for (size_t i = 0; why && i < b->n; i++)
			why[i] = strdup(msg);
		refused = b->n;
		goto answered;
	}
	rc = -ENOMEM;
	body = batch_body(b, &len);
	if (body && why)
		rc = http_call("POST", b->url, body, len, json_headers, LINK_TIMEOUT_MS, &r);
	if (rc == 0 && r.status >= 200 && r.status < 300) {
		refused = read_results(b, &r, why);
		log_debug("event=agent_call_ok url=%s tasks=%zu refused=%zu status=%ld", b->url,
			  b->n, refused, r.status);
	} else {
		if (!body || !why)
			snprintf(msg, sizeof(msg), "out of memory");
		else if (rc < 0)
			snprintf(msg, sizeof(msg), "agent %s unreachable: %.255s", b->agent_id,
				 r.error);
		else
			snprintf(msg, sizeof(msg), "agent %s answered %ld: %.200s", b->agent_id,
				 r.status, r.body ? r.body : "");
		for (size_t i = 0; why && i < b->n; i++)
			why[i] = strdup(msg);
		refused = b->n;
	}
answered:
	if (refused && b->kind == LINK_LAUNCH) {
		launches_failed(m, b, why);
	} else if (refused) {
		size_t i = 0;

		for (struct link_job *j = b->jobs; j; j = j->next, i++)
			if (!why || why[i])
				log_warn("event=kill_send_failed task=%s error=\"%s\" retry=next_heartbeat",
					 j->task_id, why && why[i] ? why[i] : "out of memory");
	}
out:
	for (size_t i = 0; why && i < b->n; i++)
		free(why[i]);
	free(why);
	free(body);
	http_result_free(&r);
}

static void *link_main(void *arg)
{
	struct link_worker *wa = arg;
	struct master *m = wa->m;

	pthread_setname_np(pthread_self(), "agent-link");
	pthread_mutex_lock(&m->link_mutex);
	for (;;) {
		struct link_queue *q;
		struct batch b;

		while (!m->link_stop && dl_empty(&m->link_ready))
			pthread_cond_wait(&m->link_cond, &m->link_mutex);
		if (m->link_stop)
			break;
		q = dl_entry(m->link_ready.next, struct link_queue, ready);
		dl_del(&q->ready);
		q->on_ready = false;
		q->busy = true;
		take_batch(m, q, &b);
		q->inflight = b.jobs;
		pthread_mutex_unlock(&m->link_mutex);
		run_batch(m, &b);
		pthread_mutex_lock(&m->link_mutex);
		q->inflight = NULL;
		jobs_free(b.jobs);
		q->busy = false;
		if (q->head) {
			/* More came meanwhile: behind the agents already waiting. */
			q->on_ready = true;
			dl_add_tail(&m->link_ready, &q->ready);
			pthread_cond_signal(&m->link_cond);
		} else {
			queue_free(m, q);
		}
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

static bool has_launch(const struct link_job *j, const char *task_id)
{
	for (; j; j = j->next)
		if (j->kind == LINK_LAUNCH && strcmp(j->task_id, task_id) == 0)
			return true;
	return false;
}

bool agent_link_launch_pending(struct master *m, const char *agent_id, const char *task_id)
{
	struct hm_node *n;
	bool pending = false;

	pthread_mutex_lock(&m->link_mutex);
	n = m->link_running ? hashmap_get(&m->link_queues, agent_id) : NULL;
	if (n) {
		struct link_queue *q = hm_entry(n, struct link_queue, node);

		pending = has_launch(q->inflight, task_id) || has_launch(q->head, task_id);
	}
	pthread_mutex_unlock(&m->link_mutex);
	return pending;
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
	while (m->link_all.next && !dl_empty(&m->link_all)) {
		struct link_queue *q = dl_entry(m->link_all.next, struct link_queue, all);

		jobs_free(q->head);
		queue_free(m, q);
	}
	if (m->link_all.next)
		dl_init(&m->link_ready);
	m->link_len = 0;
	hashmap_destroy(&m->link_queues);
	pthread_mutex_unlock(&m->link_mutex);
}
