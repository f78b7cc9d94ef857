/* agent_stream.h - the master's end of the agent streams (pacer-agent/1, lib/agent_frame.h):
 * one persistent connection per agent, opened by the agent with GET
 * /internal/v1/agent/stream (upgraded), that carries the link's launch and kill calls to the
 * agent and their results back, and the agent's status batches to the master and their acks,
 * instead of one HTTP call per batch each way (issue 3: at 10k agents those calls were a
 * third of the master's CPU).
 *
 * One I/O thread with its own epoll reads and writes every stream; a status thread applies
 * the status batches (all those that arrived meanwhile under one lock hold) and releases
 * their acks once the store has them durable; link workers (agent_link.c) hand a call to the
 * agent's stream and wait for its results. An agent without a stream gets HTTP calls. */
#ifndef PACER_MASTER_AGENT_STREAM_H
#define PACER_MASTER_AGENT_STREAM_H

#include <stddef.h>

#include "lib/agent_frame.h"
#include "lib/http_server.h"

struct master;
struct agent_stream;
struct link_job;

/* Starts both threads and adds the route to srv (a pool server); m->astream is set. */
int agent_stream_start(struct master *m, struct http_server *srv);
/* Before http_server_stop: closes every stream (calls waiting get -ESHUTDOWN, acks not sent
 * are dropped: the agents send those updates again) and ends the threads. */
void agent_stream_stop(struct master *m);
void agent_stream_free(struct master *m);

/* Sends the n jobs (all of kind AF_LAUNCH or AF_KILL) to agent_id's stream as one call and
 * waits up to timeout_ms for its results: 0 with why[i] NULL for each job accepted and a
 * malloc'd reason for each refused; -ENOTCONN: the agent has no stream (use HTTP);
 * -EPIPE: the stream closed before the answer; -ETIMEDOUT; -ESHUTDOWN: the master is
 * stopping; -ENOMEM. Any thread, master->lock not held. */
int agent_stream_call(struct master *m, const char *agent_id, enum agent_frame_type kind,
		      const struct link_job *jobs, size_t n, char **why, long timeout_ms);

/* Streams open now (GET /v1/metrics). */
size_t agent_stream_count(struct master *m);

#endif
