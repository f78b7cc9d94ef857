/* http_pool.c - the pool mode of the HTTP server (see http_server.h and
 * http_server_internal.h): answers owed by async routes (refcounted tokens, the connection
 * suspended until the answer), streams parked while they have nothing to send and woken by
 * their producer (plus a ticker for keep-alives), the on-demand workers that run ordinary
 * routes, and what stopping needs (every owed answer given, every parked stream ended). */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lib/http_server_internal.h"
#include "lib/log.h"

/* ---- async answers ---- */

static void deferred_put(struct http_deferred *d)
{
	bool last;

	pthread_mutex_lock(&d->mu);
	last = --d->refs == 0;
	pthread_mutex_unlock(&d->mu);
	if (!last)
		return;
	hs_response_release(&d->resp);
	pthread_mutex_destroy(&d->mu);
	pthread_cond_destroy(&d->cond);
	free(d);
}

/* d->mu held: the answer is in; a suspended connection goes on with it. */
static void deferred_answered_locked(struct http_deferred *d)
{
	d->answered = true;
	if (d->suspended && d->conn) {
		d->suspended = false;
		MHD_resume_connection(d->conn);
	}
	pthread_cond_signal(&d->cond);
}

void http_deferred_respond(struct http_deferred *d, struct http_response *resp)
{
	pthread_mutex_lock(&d->mu);
	if (d->answered) {              /* the server stopped and answered already */
		pthread_mutex_unlock(&d->mu);
		hs_response_release(resp);
	} else {
		d->resp = *resp;
		memset(resp, 0, sizeof(*resp));
		deferred_answered_locked(d);
		pthread_mutex_unlock(&d->mu);
	}
	deferred_put(d);
}

void http_deferred_finish(struct http_deferred *d, int status, const char *content_type,
			  const char *body, size_t len)
{
	struct http_response resp;
	char *copy = malloc(len + 1);

	memset(&resp, 0, sizeof(resp));
	if (!copy) {
		http_respond_error(&resp, 500, "out of memory");
	} else {
		memcpy(copy, body, len);
		copy[len] = '\0';
		resp.status = status;
		resp.content_type = content_type;
		resp.body = copy;
		resp.body_len = len;
	}
	http_deferred_respond(d, &resp);
}

struct http_deferred *hs_deferred_new(struct http_server *srv, struct MHD_Connection *conn)
{
	struct http_deferred *d = calloc(1, sizeof(*d));

	if (!d)
		return NULL;
	pthread_mutex_init(&d->mu, NULL);
	pthread_cond_init(&d->cond, NULL);
	d->refs = 2;
	d->conn = conn;
	pthread_mutex_lock(&srv->mu);
	if (!srv->stopping) {
		d->next = srv->deferreds;
		if (d->next)
			d->next->prev = d;
		srv->deferreds = d;
		d->listed = true;
	}
	pthread_mutex_unlock(&srv->mu);
	if (!d->listed) {
		pthread_mutex_destroy(&d->mu);
		pthread_cond_destroy(&d->cond);
		free(d);
		return NULL;
	}
	return d;
}

void hs_deferred_release_conn(struct http_server *srv, struct http_deferred *d)
{
	pthread_mutex_lock(&srv->mu);
	if (d->listed) {
		if (d->prev)
			d->prev->next = d->next;
		else
			srv->deferreds = d->next;
		if (d->next)
			d->next->prev = d->prev;
		d->listed = false;
		if (!srv->deferreds)
			pthread_cond_broadcast(&srv->drained);
	}
	pthread_mutex_unlock(&srv->mu);
	pthread_mutex_lock(&d->mu);
	d->conn = NULL;
	pthread_mutex_unlock(&d->mu);
	deferred_put(d);
}

/* ---- streams ---- */

void http_wake(struct http_waker *waker)
{
	struct stream_conn *sc = (struct stream_conn *)waker;
	struct http_server *srv = sc->srv;

	pthread_mutex_lock(&srv->mu);
	if (sc->suspended) {
		sc->suspended = false;
		MHD_resume_connection(sc->conn);
	} else {
		sc->woken = true;
	}
	pthread_mutex_unlock(&srv->mu);
}

/* Pool mode: nothing to send now parks the connection until the producer wakes it. */
static ssize_t pool_stream_reader(void *cls, uint64_t pos, char *buf, size_t max)
{
	struct stream_conn *sc = cls;
	struct http_server *srv = sc->srv;

	(void)pos;
	for (;;) {
		ssize_t n = sc->s.read(sc->s.ctx, buf, max);

		if (n > 0)
			return n;
		if (n < 0)
			return MHD_CONTENT_READER_END_OF_STREAM;
		pthread_mutex_lock(&srv->mu);
		if (srv->stopping) {
			pthread_mutex_unlock(&srv->mu);
			return MHD_CONTENT_READER_END_OF_STREAM;
		}
		if (sc->woken) {        /* data came between the read and now */
			sc->woken = false;
			pthread_mutex_unlock(&srv->mu);
			continue;
		}
		sc->suspended = true;
		MHD_suspend_connection(sc->conn);
		pthread_mutex_unlock(&srv->mu);
		return 0;
	}
}

static void pool_stream_free(void *cls)
{
	struct stream_conn *sc = cls;
	struct http_server *srv = sc->srv;

	/* First the producer forgets the waker (its free takes the lock its wakes hold). */
	if (sc->s.free)
		sc->s.free(sc->s.ctx);
	pthread_mutex_lock(&srv->mu);
	if (sc->prev)
		sc->prev->next = sc->next;
	else
		srv->streams = sc->next;
	if (sc->next)
		sc->next->prev = sc->prev;
	pthread_mutex_unlock(&srv->mu);
	free(sc);
}

struct MHD_Response *hs_pool_stream_response(struct http_server *srv,
					     struct MHD_Connection *conn,
					     struct http_stream *stream)
{
	struct stream_conn *sc = calloc(1, sizeof(*sc));
	struct MHD_Response *r;

	if (!sc)
		return NULL;
	sc->s = *stream;
	sc->srv = srv;
	sc->conn = conn;
	r = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 16 * 1024, pool_stream_reader, sc,
					      pool_stream_free);
	if (!r) {
		free(sc);
		return NULL;
	}
	memset(stream, 0, sizeof(*stream));     /* owned by sc now */
	pthread_mutex_lock(&srv->mu);
	sc->next = srv->streams;
	if (sc->next)
		sc->next->prev = sc;
	srv->streams = sc;
	pthread_mutex_unlock(&srv->mu);
	if (sc->s.attach)
		sc->s.attach(sc->s.ctx, (struct http_waker *)sc);
	return r;
}

/* Idle streams are suspended and MHD times nothing out while they are: reading them now
 * and then lets them send keep-alives (which also finds clients that left). */
void *hs_ticker_main(void *arg)
{
	struct http_server *srv = arg;

	pthread_mutex_lock(&srv->mu);
	while (!srv->stopping) {
		struct timespec ts;

		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += TICK_SECONDS;
		pthread_cond_timedwait(&srv->tick_cond, &srv->mu, &ts);
		for (struct stream_conn *sc = srv->streams; sc && !srv->stopping; sc = sc->next) {
			if (sc->suspended) {
				sc->suspended = false;
				MHD_resume_connection(sc->conn);
			}
		}
	}
	pthread_mutex_unlock(&srv->mu);
	return NULL;
}

/* ---- workers (pool mode) ---- */

static void *worker_main(void *arg)
{
	struct http_server *srv = arg;

	pthread_mutex_lock(&srv->mu);
	for (;;) {
		struct http_response resp;
		struct timespec ts;
		struct job *j;

		srv->workers_idle++;
		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += WORKER_IDLE_SECONDS;
		while (!srv->jobs && !srv->workers_stop &&
		       pthread_cond_timedwait(&srv->jobs_cond, &srv->mu, &ts) != ETIMEDOUT)
			;
		srv->workers_idle--;
		if (!(j = srv->jobs))
			break;          /* idle too long, or stopping with every queued job run */
		srv->jobs = j->next;
		if (!srv->jobs)
			srv->jobs_tail = &srv->jobs;
		srv->njobs--;
		pthread_mutex_unlock(&srv->mu);
		memset(&resp, 0, sizeof(resp));
		j->r->fn(&j->req, &resp, j->r->ctx);
		hs_no_answer(&j->req, &resp);
		http_deferred_respond(j->d, &resp);
		free(j);
		pthread_mutex_lock(&srv->mu);
	}
	if (--srv->workers_live == 0)
		pthread_cond_broadcast(&srv->workers_gone);
	pthread_mutex_unlock(&srv->mu);
	return NULL;
}

/* srv->mu held: one more worker (detached; stop waits for workers_live to reach 0). */
static bool worker_spawn_locked(struct http_server *srv)
{
	pthread_attr_t attr;
	pthread_t t;
	int rc;

	pthread_attr_init(&attr);
	pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
	rc = pthread_create(&t, &attr, worker_main, srv);
	pthread_attr_destroy(&attr);
	if (rc) {
		log_warn("event=http_worker_failed error=\"%s\" workers=%u", strerror(rc),
			 srv->workers_live);
		return false;
	}
	srv->workers_live++;
	return true;
}

bool hs_job_queue(struct http_server *srv, struct route *r, struct http_deferred *d,
		  const struct http_request *req)
{
	struct job *j = calloc(1, sizeof(*j));
	bool queued = false;

	if (!j)
		return false;
	j->r = r;
	j->d = d;
	j->req = *req;
	pthread_mutex_lock(&srv->mu);
	if (!srv->workers_stop &&
	    (srv->njobs < srv->workers_idle || srv->workers_live >= srv->workers_max ||
	     worker_spawn_locked(srv) || srv->workers_live > 0)) {
		*srv->jobs_tail = j;
		srv->jobs_tail = &j->next;
		srv->njobs++;
		pthread_cond_signal(&srv->jobs_cond);
		queued = true;
	}
	pthread_mutex_unlock(&srv->mu);
	if (!queued)
		free(j);
	return queued;
}

void hs_workers_stop(struct http_server *srv)
{
	pthread_mutex_lock(&srv->mu);
	srv->stopping = true;
	srv->workers_stop = true;
	pthread_cond_broadcast(&srv->jobs_cond);
	while (srv->workers_live > 0)
		pthread_cond_wait(&srv->workers_gone, &srv->mu);
	pthread_mutex_unlock(&srv->mu);
}

/* Every waiting request gets an answer and every parked stream runs to its end, so that no
 * connection is suspended (or a thread waiting) when MHD stops; nothing new waits after.
 * The answers get a moment to go out before MHD closes the sockets. */
void hs_release_waiters(struct http_server *srv)
{
	struct timespec deadline;

	pthread_mutex_lock(&srv->mu);
	srv->stopping = true;
	for (struct http_deferred *d = srv->deferreds; d; d = d->next) {
		pthread_mutex_lock(&d->mu);
		if (!d->answered) {
			http_respond_error(&d->resp, 503, "The server is shutting down");
			deferred_answered_locked(d);
		}
		pthread_mutex_unlock(&d->mu);
	}
	for (struct stream_conn *sc = srv->streams; sc; sc = sc->next) {
		if (sc->suspended) {
			sc->suspended = false;
			MHD_resume_connection(sc->conn);
		}
	}
	pthread_cond_broadcast(&srv->tick_cond);
	clock_gettime(CLOCK_REALTIME, &deadline);
	deadline.tv_sec += DRAIN_SECONDS;
	while (srv->deferreds &&
	       pthread_cond_timedwait(&srv->drained, &srv->mu, &deadline) != ETIMEDOUT)
		;
	pthread_mutex_unlock(&srv->mu);
}

