/* agent_stream_status.c - the agents' status batches over their streams: the I/O thread
 * parses each 'S' frame (status_wire.c) and queues it; the status thread takes every batch
 * queued since its last round, applies them under one master->lock hold in arrival order,
 * waits once until the store has them durable, then appends each batch's acks frame to its
 * stream. A body that is not a status batch gets its 400 acks frame in the same queue, so
 * acks keep the order of the status frames. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/log.h"
#include "master/agent_stream_internal.h"
#include "master/master_internal.h"

void agent_stream_take_status(struct aconn *c, const char *p, size_t len)
{
	struct agent_stream *s = c->s;
	struct sbatch *sb;
	struct af_text json;
	char err[256] = "";
	bool syntax = false;
	uint64_t id;
	int rc;

	if (af_status_read(p, len, &id, &json, err, sizeof(err)) < 0) {
		agent_stream_fail(c, 400, err);
		return;
	}
	if (!(sb = calloc(1, sizeof(*sb)))) {
		log_error("event=agent_stream_status_dropped agent=%s error=\"out of memory\"",
			  c->agent_id);
		return;                 /* no ack: the agent sends it again */
	}
	sb->c = c;
	sb->id = id;
	rc = status_wire_parse(json.p, json.len, &sb->b, &syntax, err, sizeof(err));
	sb->ok = rc == 0;
	if (rc == -EINVAL) {
		sb->status = 400;
		snprintf(sb->message, sizeof(sb->message), "%s%s", syntax ? "Invalid JSON: " : "",
			 err);
	} else if (rc) {
		sb->status = 503;
		snprintf(sb->message, sizeof(sb->message), "out of memory");
	} else if (strcmp(sb->b.agent_id, c->agent_id) != 0) {
		sb->ok = false;
		sb->status = 400;
		snprintf(sb->message, sizeof(sb->message),
			 "invalid status: agent_id '%.100s' is not this stream's agent '%.60s'",
			 sb->b.agent_id, c->agent_id);
		status_wire_free(&sb->b);
	}
	master_status_enter(s->m);
	pthread_mutex_lock(&s->mu);
	c->refs++;
	if (s->sq_tail)
		s->sq_tail->next = sb;
	else
		s->sq_head = sb;
	s->sq_tail = sb;
	pthread_cond_signal(&s->status_cond);
	pthread_mutex_unlock(&s->mu);
}

struct ack_build {
	struct af_builder w;
	int rc;
};

static void ack_one(void *arg, const struct status_update *u, const char *err)
{
	struct ack_build *ab = arg;

	(void)u;
	if (ab->rc == 0)
		ab->rc = af_answer_add(&ab->w, err == NULL, err);
}

/* master->lock held: applies one batch; its ack frame goes to ack. */
static void apply_batch(struct master *m, struct sbatch *sb, struct frame_buf *ack)
{
	struct ack_build ab = { .rc = 0 };

	if (!sb->ok) {
		af_answer_begin(&ab.w, ack, AF_ACKS, sb->id, sb->status, sb->message);
		af_end(&ab.w);
		return;
	}
	agents_seen(m, sb->c->agent_id);
	if (af_answer_begin(&ab.w, ack, AF_ACKS, sb->id, 200, NULL) < 0)
		return;                 /* no ack: the agent sends the batch again */
	tasks_apply_status_each(m, sb->b.agent_id, sb->b.updates, sb->b.nupdates, ack_one, &ab);
	af_end(&ab.w);
}

/* Batches applied under one lock hold at most (their acks are built side by side). */
#define STATUS_GROUP 64

static void sbatch_free(struct sbatch *sb)
{
	if (sb->ok)
		status_wire_free(&sb->b);
	agent_stream_conn_put(sb->c);
	free(sb);
}

/* Appends a batch's acks frame to its stream (sent at once when nothing waits before it). */
static void send_ack(struct agent_stream *s, struct aconn *c, const struct frame_buf *ack)
{
	bool wake = false;

	pthread_mutex_lock(&s->mu);
	if (!c->gone && ack->len > ack->off) {
		bool waited = c->out.off < c->out.len;

		if (frame_buf_put(&c->out, ack->p + ack->off, ack->len - ack->off) == 0)
			wake = agent_stream_push_locked(c, waited);
	}
	pthread_mutex_unlock(&s->mu);
	if (wake)
		agent_stream_poke(s);
}

/* Applies up to STATUS_GROUP batches from list under one lock hold, waits once until they
 * are durable, sends their acks and frees them; returns the batches left. */
static struct sbatch *apply_group(struct agent_stream *s, struct sbatch *list)
{
	struct frame_buf acks[STATUS_GROUP] = { { 0 } };
	struct master *m = s->m;
	struct sbatch *sb = list;
	unsigned long seq;
	size_t n = 0;

	master_lock(m);
	for (; sb && n < STATUS_GROUP; sb = sb->next, n++) {
		apply_batch(m, sb, &acks[n]);
		master_status_leave(m);
	}
	seq = master_store_seq(m);
	master_unlock(m);
	master_store_wait(m, seq);      /* durable before the agent hears */
	for (size_t i = 0; i < n; i++) {
		struct sbatch *next = list->next;

		send_ack(s, list->c, &acks[i]);
		frame_buf_free(&acks[i]);
		sbatch_free(list);
		list = next;
	}
	return sb;
}

void *agent_stream_status_main(void *arg)
{
	struct agent_stream *s = arg;

	pthread_setname_np(pthread_self(), "agent-status");
	for (;;) {
		struct sbatch *list;

		pthread_mutex_lock(&s->mu);
		while (!s->stopping && !s->sq_head)
			pthread_cond_wait(&s->status_cond, &s->mu);
		list = s->sq_head;
		s->sq_head = s->sq_tail = NULL;
		pthread_mutex_unlock(&s->mu);
		if (!list)
			break;          /* stopping, nothing left */
		while (list)
			list = apply_group(s, list);
	}
	return NULL;
}

void agent_stream_drop_status(struct agent_stream *s)
{
	while (s->sq_head) {
		struct sbatch *sb = s->sq_head;

		s->sq_head = sb->next;
		sbatch_free(sb);
	}
}
