/* http_server_internal.h - what http_server.c (routes, requests, start/stop) and
 * http_pool.c (pool mode: async answers, parked streams, workers) share. Not for users of
 * the server.
 *
 * Pool mode suspends connections: an async request until its answer comes, an idle stream
 * until its producer wakes it. A suspended connection is resumed only through its own
 * record (struct http_deferred, struct stream_conn) under that record's lock, and only
 * while MHD still has the connection; stopping resumes every one of them first (MHD must
 * not be stopped with suspended connections). Lock order: srv->mu, then a deferred's mu,
 * then MHD's own; MHD calls request_completed and the stream free callback without its
 * locks held. */
#ifndef PACER_HTTP_SERVER_INTERNAL_H
#define PACER_HTTP_SERVER_INTERNAL_H

#include <microhttpd.h>
#include <pthread.h>
#include "lib/http_server.h"

#define MAX_ROUTES 128
#define TICK_SECONDS 1      /* idle streams are read this often (their keep-alives) */
#define DRAIN_SECONDS 2     /* stopping waits this long for owed answers to go out */
#define WORKER_IDLE_SECONDS 10

struct route {
	char *method;
	char *prefix;      /* pattern without the trailing '*' */
	bool is_prefix;
	http_handler_fn fn;
	http_async_fn afn;
	bool quick;        /* pool mode: fn runs on the pool thread, not on a worker */
	void *ctx;
};

/* An ordinary route's request handed to a worker (pool mode). req points into the
 * connection's memory, which stays put while the connection waits for this answer (workers
 * are drained before the server answers what is owed at stop). */
struct job {
	struct job *next;
	struct route *r;
	struct http_deferred *d;
	struct http_request req;
};

struct http_deferred {
	pthread_mutex_t mu;
	pthread_cond_t cond;            /* thread per connection: the handler waits for answered */
	int refs;                       /* the answering side's and the connection's */
	struct MHD_Connection *conn;    /* NULL once the request completed */
	bool suspended, answered;
	struct http_response resp;      /* the answer, until the connection takes it */
	struct http_deferred *prev, *next;      /* srv->deferreds (srv->mu) */
	bool listed;
};

/* A stream on a pool server; the waker handed to the producer is this. */
struct stream_conn {
	struct http_stream s;
	struct http_server *srv;
	struct MHD_Connection *conn;
	bool suspended, woken;          /* srv->mu */
	struct stream_conn *prev, *next;        /* srv->streams (srv->mu) */
};

struct http_server {
	struct MHD_Daemon *daemon;
	struct route routes[MAX_ROUTES];
	int route_count;
	uint16_t port;
	bool pool;
	pthread_mutex_t mu;
	pthread_cond_t tick_cond;
	pthread_cond_t drained;         /* signalled when deferreds becomes empty */
	bool stopping;
	struct http_deferred *deferreds;        /* not yet completed */
	struct stream_conn *streams;
	pthread_t ticker;
	bool ticker_running;
	/* Workers (pool mode) run ordinary routes: started when a job finds none idle, up to
	 * workers_max, gone after WORKER_IDLE_SECONDS without work. srv->mu. */
	unsigned workers_max, workers_live, workers_idle, njobs;
	struct job *jobs, **jobs_tail;
	pthread_cond_t jobs_cond, workers_gone;
	bool workers_stop;
};

/* http_server.c */
void hs_response_release(struct http_response *resp);
void hs_no_answer(struct http_request *req, struct http_response *resp);

/* http_pool.c */
/* A token for a request on conn: one reference for the answer, one for the connection.
 * NULL when the server is stopping (or out of memory). */
struct http_deferred *hs_deferred_new(struct http_server *srv, struct MHD_Connection *conn);
/* The connection is done with d (answered and sent, or gone). */
void hs_deferred_release_conn(struct http_server *srv, struct http_deferred *d);
/* A pool server's response for stream (taken over on success). */
struct MHD_Response *hs_pool_stream_response(struct http_server *srv,
					     struct MHD_Connection *conn,
					     struct http_stream *stream);
void *hs_ticker_main(void *arg);
/* Hands a request to the workers; false if they are stopping (or none can run it). */
bool hs_job_queue(struct http_server *srv, struct route *r, struct http_deferred *d,
		  const struct http_request *req);
/* The workers finish what is queued (its memory is MHD's) and end. */
void hs_workers_stop(struct http_server *srv);
/* Answers what is owed (503), ends parked streams, waits a moment for the answers. */
void hs_release_waiters(struct http_server *srv);

#endif
