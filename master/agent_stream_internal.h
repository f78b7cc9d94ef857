/* agent_stream_internal.h - what the three files of the master's agent streams share:
 * the transport (agent_stream.c: I/O thread, connections, upgrade), the link's calls
 * (agent_stream_calls.c) and the status batches (agent_stream_status.c). See agent_stream.h
 * and agent_stream.c's comment for the threads and the locking. */
#ifndef PACER_MASTER_AGENT_STREAM_INTERNAL_H
#define PACER_MASTER_AGENT_STREAM_INTERNAL_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "lib/frame.h"
#include "lib/hashmap.h"
#include "master/agent_stream.h"
#include "master/status_wire.h"

#define FRAME_MAX HTTP_MAX_BODY         /* as the HTTP routes' body limit */
#define RECV_CHUNK (64 * 1024)
#define RBUF_SIZE (FRAME_HEADER + FRAME_MAX + RECV_CHUNK)
#define MAX_EVENTS 256
#define KEEP_IN_BYTES (16 * 1024)       /* a larger idle input buffer is given back */
#define KEEP_OUT_BYTES (16 * 1024)      /* and a larger output buffer once sent */
/* A stream that has not said hello by then is closed (error frame 408): an idle
 * connection must not hold a socket for good. */
#define HELLO_DEADLINE_S 10.0

/* A link worker's call waiting for its results. */
struct call {
	uint64_t id;
	size_t n;
	char **why;                     /* the worker's: filled when answered */
	int rc;                         /* 1 waiting, 0 answered, < 0 failed */
	struct call *next;
};

struct aconn {
	struct agent_stream *s;
	int fd;
	struct http_upgraded *up;
	struct frame_buf in;            /* thread: the start of a frame not yet whole */
	struct frame_buf out;           /* mu: bytes the socket has not taken yet */
	struct hm_node node;            /* mu: s->by_agent, once named */
	char agent_id[64];              /* set once by the thread (hello), then read-only */
	bool named;                     /* mu: in s->by_agent */
	bool gone;                      /* mu (written by the thread only): closed */
	bool broken;                    /* mu: a writer's send failed: the thread closes it */
	bool dirty;                     /* mu: on s->dirty */
	bool closing;                   /* thread: an error went out; close once it is sent */
	uint32_t events;                /* thread: what epoll watches */
	int refs;                       /* mu */
	struct call *calls;             /* mu: calls sent, oldest first */
	uint64_t next_call;             /* mu */
	uint64_t frames;                /* thread */
	double opened_at;               /* thread: mono, when the thread took it */
	char peer[64];
	struct aconn *next_in, *next_dirty, *next_dead;
	struct aconn *prev, *next;      /* thread: s->conns */
};

/* A status frame read, waiting for the status thread. */
struct sbatch {
	struct aconn *c;                /* referenced */
	uint64_t id;
	bool ok;                        /* b is parsed; else status/message say why not */
	unsigned status;
	char message[300];
	struct status_batch b;
	struct sbatch *next;
};

struct agent_stream {
	struct master *m;
	struct http_upgrade_target target;
	int ep, evfd;
	pthread_t io_thread, status_thread;
	bool io_running, status_running;
	pthread_mutex_t mu;
	pthread_cond_t call_cond;       /* a call was answered or failed */
	pthread_cond_t status_cond;     /* status batches were queued, or stop */
	bool stopping, woken;           /* mu */
	struct aconn *incoming;         /* mu: upgraded, not yet watched */
	struct aconn *dirty;            /* mu: output to send or a broken socket */
	struct hashmap by_agent;        /* mu: named streams by agent id */
	struct sbatch *sq_head, *sq_tail;       /* mu: status batches for the status thread */
	struct aconn *conns;            /* thread */
	struct aconn *dead;             /* thread: closed during this round of events */
	char *rbuf;                     /* thread */
};


/* agent_stream.c */
void agent_stream_conn_put(struct aconn *c);
/* mu held: the thread must look at its lists; true if the caller must poke the eventfd. */
bool agent_stream_wake_locked(struct agent_stream *s);
void agent_stream_poke(struct agent_stream *s);
/* mu held, output just appended by a writer that is not the I/O thread: send it now when
 * nothing waited before it; hand the rest (or a broken socket) to the thread. True if the
 * caller must poke the eventfd. */
bool agent_stream_push_locked(struct aconn *c, bool waited_before);
/* The I/O thread: an error frame; the stream closes once it is sent. */
void agent_stream_fail(struct aconn *c, unsigned status, const char *msg);

/* agent_stream_calls.c: the I/O thread's handling of an 'R' frame (0, or -EINVAL with err:
 * the stream cannot go on); mu held: every call of a closing stream ends with rc. */
int agent_stream_take_results(struct aconn *c, const char *p, size_t len, char *err,
			      size_t errlen);
void agent_stream_end_calls_locked(struct aconn *c, int rc);

/* agent_stream_status.c: the I/O thread queues an 'S' frame; the status thread. */
void agent_stream_take_status(struct aconn *c, const char *p, size_t len);
void *agent_stream_status_main(void *arg);
/* After both threads stopped: frees the batches still queued. */
void agent_stream_drop_status(struct agent_stream *s);

#endif
