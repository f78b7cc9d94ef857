/* agent_stream_calls.c - the link's launch and kill calls over the agents' streams: a
 * link worker appends a call frame to the agent's stream output (sent at once when nothing
 * waits before it) and waits for the results frame the I/O thread hands over; a call whose
 * stream closes, or that gets no answer in time, fails (agent_stream.h). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lib/log.h"
#include "lib/util.h"
#include "master/agent_stream_internal.h"
#include "master/master_internal.h"

/* mu held: the call ends with rc (0 answered, < 0 failed); its worker is woken. */
static void call_end_locked(struct agent_stream *s, struct call *k, int rc)
{
	k->rc = rc;
	pthread_cond_broadcast(&s->call_cond);
}

/* mu held: unlinks k from c's calls. */
static void call_unlink_locked(struct aconn *c, struct call *k)
{
	for (struct call **pp = &c->calls; *pp; pp = &(*pp)->next) {
		if (*pp == k) {
			*pp = k->next;
			return;
		}
	}
}

int agent_stream_call(struct master *m, const char *agent_id, enum agent_frame_type kind,
		      const struct link_job *jobs, size_t n, char **why, long timeout_ms)
{
	struct agent_stream *s = m->astream;
	struct call k = { .n = n, .why = why, .rc = 1 };
	struct af_builder w;
	struct hm_node *node;
	struct aconn *c;
	struct timespec until;
	bool waited, wake;
	int rc = 0;

	if (!s)
		return -ENOTCONN;
	until = timespec_after(CLOCK_MONOTONIC, (double)timeout_ms / 1000);
	pthread_mutex_lock(&s->mu);
	node = s->stopping ? NULL : hashmap_get(&s->by_agent, agent_id);
	if (!node) {
		rc = s->stopping ? -ESHUTDOWN : -ENOTCONN;
		pthread_mutex_unlock(&s->mu);
		return rc;
	}
	c = hm_entry(node, struct aconn, node);
	if (c->broken) {
		pthread_mutex_unlock(&s->mu);
		return -EPIPE;
	}
	k.id = ++c->next_call;
	waited = c->out.off < c->out.len;
	rc = af_call_begin(&w, &c->out, kind, k.id);
	if (rc) {
		pthread_mutex_unlock(&s->mu);
		return rc;
	}
	for (const struct link_job *j = jobs; rc == 0 && j; j = j->next)
		rc = af_call_add(&w, j->task_id, j->body, j->body_len);
	if (rc) {
		/* Cut the half-built frame off: the stream's bytes stay whole frames. */
		c->out.len = c->out.off + w.start;
		if (c->out.len == c->out.off)
			c->out.off = c->out.len = 0;
		pthread_mutex_unlock(&s->mu);
		return rc == -EINVAL ? -EINVAL : -ENOMEM;
	}
	af_end(&w);
	c->refs++;
	{
		struct call **pp = &c->calls;

		while (*pp)
			pp = &(*pp)->next;
		*pp = &k;
	}
	wake = agent_stream_push_locked(c, waited);
	while (k.rc == 1 && !s->stopping) {
		if (pthread_cond_timedwait(&s->call_cond, &s->mu, &until) == ETIMEDOUT) {
			if (k.rc == 1) {
				call_unlink_locked(c, &k);
				k.rc = -ETIMEDOUT;
			}
			break;
		}
	}
	if (k.rc == 1) {                /* stopping */
		call_unlink_locked(c, &k);
		k.rc = -ESHUTDOWN;
	}
	rc = k.rc;
	pthread_mutex_unlock(&s->mu);
	if (wake)
		agent_stream_poke(s);
	agent_stream_conn_put(c);
	return rc;
}

/* The I/O thread: an 'R' frame answers the call with its id (the oldest, normally). */
int agent_stream_take_results(struct aconn *c, const char *p, size_t len, char *err, size_t errlen)
{
	struct agent_stream *s = c->s;
	struct af_answer_reader r;
	struct af_answer_item it;
	struct call *k;
	int rc = af_answer_open(&r, p, len, err, errlen);

	if (rc)
		return rc;
	pthread_mutex_lock(&s->mu);
	for (k = c->calls; k && k->id != r.id; k = k->next)
		;
	if (!k) {                       /* its worker gave up waiting */
		pthread_mutex_unlock(&s->mu);
		log_warn("event=agent_stream_late_results agent=%s call=%llu", c->agent_id,
			 (unsigned long long)r.id);
		return 0;
	}
	call_unlink_locked(c, k);
	if (r.status != 200 || r.n != k->n) {
		char msg[400];

		if (r.status != 200)
			snprintf(msg, sizeof(msg), "agent %s answered %u: %.*s", c->agent_id, r.status,
				 (int)(r.message.len > 300 ? 300 : r.message.len), r.message.p);
		else
			snprintf(msg, sizeof(msg), "agent %s answered %u results for %zu tasks",
				 c->agent_id, r.n, k->n);
		for (size_t i = 0; i < k->n; i++)
			k->why[i] = strdup(msg);
		call_end_locked(s, k, 0);
		pthread_mutex_unlock(&s->mu);
		return 0;
	}
	for (size_t i = 0; i < k->n; i++) {
		char msg[400];

		rc = af_answer_next(&r, &it, err, errlen);
		if (rc <= 0) {
			/* A broken answer fails the whole call; the stream is closed. */
			for (size_t j = i; j < k->n; j++)
				k->why[j] = strdup("the agent's answer could not be read");
			call_end_locked(s, k, 0);
			pthread_mutex_unlock(&s->mu);
			return rc < 0 ? rc : -EINVAL;
		}
		if (it.ok)
			continue;
		snprintf(msg, sizeof(msg), "agent %s refused the task: %.*s", c->agent_id,
			 (int)(it.error.len > 300 ? 300 : it.error.len), it.error.p);
		k->why[i] = strdup(msg);
	}
	call_end_locked(s, k, 0);
	pthread_mutex_unlock(&s->mu);
	return af_answer_next(&r, &it, err, errlen);    /* 0: nothing after the last item */
}


void agent_stream_end_calls_locked(struct aconn *c, int rc)
{
	while (c->calls) {
		struct call *k = c->calls;

		c->calls = k->next;
		call_end_locked(c->s, k, rc);
	}
}
