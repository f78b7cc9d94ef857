/* placement_stream.h - the simulated agents' agent streams (pacer-agent/1, issue 3) for the
 * placement load generator: after registering, every simulated agent opens
 * GET /internal/v1/agent/stream like a real agent, and one epoll thread owns every stream:
 * it answers the master's launch and kill calls ('L' / 'K': one 'R' at once, all accepted),
 * sends the resulting status updates as 'S' batches (at most one in flight per agent, up to
 * 256 updates, like the agent's outbox) and reads the master's 'A' acks. A master without
 * the route (404, 426) or a stream that breaks leaves the agent on HTTP (placement.c's
 * server and senders); the queued updates of a broken stream are handed back to go as POSTs.
 *
 * placement.c owns the agents (ids, task lists for heartbeats, counters); this file calls
 * back into it through struct stream_hooks, always from the epoll thread. */
#ifndef PACER_BENCH_PLACEMENT_STREAM_H
#define PACER_BENCH_PLACEMENT_STREAM_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct stream_hooks {
	const char *(*agent_id)(long i);
	/* the framework id for status updates ("" until the first launch told it) */
	const char *(*framework_id)(void);
	/* a task launched on agent i (its call element: task id, the element's JSON) */
	void (*launched)(long i, const char *task_id, size_t len, const char *json, size_t jlen);
	void (*kill_asked)(long i, const char *task_id, size_t len);
	/* an update acknowledged by the master ('R' TASK_RUNNING, 'K' TASK_KILLED) */
	void (*acked)(long i, char state, const char *task_id, size_t len);
	/* n updates the master did not acknowledge */
	void (*not_acked)(long i, long n);
	/* an update not sent because the stream closed: it goes another way (HTTP) */
	void (*requeue)(long i, char state, const char *task_id, size_t len);
};

struct stream_config {
	uint16_t master_port;           /* on 127.0.0.1 */
	long nagents;                   /* agent i connects from 127.10.<i/250>.<i%250+1> */
	const struct stream_hooks *hooks;
};

struct stream_stats {
	long open;                      /* streams open now */
	long opened;                    /* upgrades answered 101 (reopens included) */
	long refused;                   /* upgrades answered otherwise (404: a master without it) */
	long closed;                    /* open streams that broke or got 'E' */
	long errors;                    /* 'E' frames and frames that could not be read */
	long pending;                   /* agents whose first attempt has not ended yet */
	long launches, kills;           /* call elements answered */
	long batches, acked;            /* 'S' frames sent, updates acknowledged */
	int last_refusal;               /* the status of the last refused upgrade */
};

struct agent_streams;

/* Starts the epoll thread, which opens the N streams (a few hundred at a time). */
int agent_streams_start(const struct stream_config *cfg, struct agent_streams **out);
void agent_streams_stats(struct agent_streams *s, struct stream_stats *st);
/* Stops the thread, closes every stream and frees everything (s may be NULL). */
void agent_streams_stop(struct agent_streams *s);

#endif
