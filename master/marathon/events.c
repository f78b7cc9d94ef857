/* events.c - event bus with bounded per-subscriber queues. An event is formatted once
 * ("event: <type>\ndata: <json>\n\n") into a reference-counted message shared by all the
 * queues it is in. The bus is reference counted too: every subscriber holds a reference,
 * so a stream that outlives marathon_stop still finds its mutex. A subscriber on a pool
 * server (one that attached a waker) is read without blocking and woken on news. */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lib/log.h"
#include "lib/util.h"
#include "master/marathon/events.h"

struct message {
	int refs;                       /* guarded by the bus mutex */
	size_t len;
	char text[];
};

struct subscriber {
	struct events *ev;
	char **types;                   /* NULL = all */
	struct message *queue[EVENTS_QUEUE_MAX];
	size_t head, count, bytes;
	size_t offset;                  /* bytes of queue[head] already sent */
	bool dropped;
	struct http_waker *waker;       /* non-blocking reads; NULL: read() waits */
	double last_sent;               /* monotonic; keep-alives of non-blocking reads */
	struct subscriber *next;
};

struct events {
	pthread_mutex_t mu;
	pthread_cond_t cond;
	int refs;
	bool closed;
	struct subscriber *subs;
	size_t nsubs;
};

struct events *events_create(void)
{
	struct events *ev = calloc(1, sizeof(*ev));
	pthread_condattr_t ca;

	if (!ev)
		return NULL;
	pthread_mutex_init(&ev->mu, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&ev->cond, &ca);
	pthread_condattr_destroy(&ca);
	ev->refs = 1;
	return ev;
}

static void message_put(struct message *m)
{
	if (m && --m->refs == 0)
		free(m);
}

/* Called with ev->mu held; frees the bus when the last reference goes. Returns true if
 * the bus was freed (the caller must not unlock it then). */
static bool events_put_locked(struct events *ev)
{
	if (--ev->refs > 0)
		return false;
	pthread_mutex_unlock(&ev->mu);
	pthread_mutex_destroy(&ev->mu);
	pthread_cond_destroy(&ev->cond);
	free(ev);
	return true;
}

/* mu held: every waiting reader looks again. */
static void wake_all_locked(struct events *ev)
{
	pthread_cond_broadcast(&ev->cond);
	for (struct subscriber *s = ev->subs; s; s = s->next)
		if (s->waker)
			http_wake(s->waker);
}

void events_destroy(struct events *ev)
{
	if (!ev)
		return;
	pthread_mutex_lock(&ev->mu);
	ev->closed = true;
	wake_all_locked(ev);
	if (!events_put_locked(ev))
		pthread_mutex_unlock(&ev->mu);
}

void events_close(struct events *ev)
{
	if (!ev)
		return;
	pthread_mutex_lock(&ev->mu);
	ev->closed = true;
	wake_all_locked(ev);
	pthread_mutex_unlock(&ev->mu);
}

static bool wants(const struct subscriber *s, const char *type)
{
	if (!s->types)
		return true;
	for (char **t = s->types; *t; t++)
		if (strcmp(*t, type) == 0)
			return true;
	return false;
}

static void drop_queue(struct subscriber *s)
{
	while (s->count) {
		message_put(s->queue[s->head]);
		s->head = (s->head + 1) % EVENTS_QUEUE_MAX;
		s->count--;
	}
	s->bytes = 0;
	s->offset = 0;
}

/* Serialising an event nobody listens to is most of its cost (usage events come by the
 * ten thousand a second): skip it. A subscriber arriving meanwhile starts after it. */
bool events_wanted(struct events *ev, const char *type)
{
	bool any = false;

	if (!ev)
		return false;
	pthread_mutex_lock(&ev->mu);
	for (struct subscriber *s = ev->subs; s && !any; s = s->next)
		any = !s->dropped && wants(s, type);
	pthread_mutex_unlock(&ev->mu);
	return any;
}

void events_publish(struct events *ev, const char *type, json_t *data)
{
	char ts[32];
	char *json = NULL;
	struct message *m = NULL;
	size_t jlen, len;

	if (!ev || !data || !events_wanted(ev, type))
		goto out;
	format_iso8601(now_wall(), ts);
	json_object_set_new(data, "eventType", json_string(type));
	if (!json_object_get(data, "timestamp"))
		json_object_set_new(data, "timestamp", json_string(ts));
	json = json_dumps(data, JSON_COMPACT | JSON_REAL_PRECISION(15));
	if (!json)
		goto out;
	jlen = strlen(json);
	len = strlen("event: ") + strlen(type) + strlen("\ndata: ") + jlen + 2;
	m = malloc(sizeof(*m) + len + 1);
	if (!m)
		goto out;
	snprintf(m->text, len + 1, "event: %s\ndata: %s\n\n", type, json);
	m->len = len;
	m->refs = 1;

	pthread_mutex_lock(&ev->mu);
	for (struct subscriber *s = ev->subs; s; s = s->next) {
		if (s->dropped || !wants(s, type))
			continue;
		if (s->count == EVENTS_QUEUE_MAX || s->bytes + len > EVENTS_QUEUE_BYTES) {
			/* A slow client must never hold the master back: end its stream. */
			s->dropped = true;
			drop_queue(s);
			log_warn("event=sse_client_dropped reason=\"queue full\"");
			if (s->waker)
				http_wake(s->waker);
			continue;
		}
		m->refs++;
		s->queue[(s->head + s->count) % EVENTS_QUEUE_MAX] = m;
		s->count++;
		s->bytes += len;
		if (s->waker && s->count == 1)  /* a reader with more queued is not parked */
			http_wake(s->waker);
	}
	message_put(m);
	pthread_cond_broadcast(&ev->cond);
	pthread_mutex_unlock(&ev->mu);
out:
	free(json);
	json_decref(data);
}

static ssize_t sub_read(void *ctx, char *buf, size_t max)
{
	static const char keepalive[] = ":\n\n";
	struct subscriber *s = ctx;
	struct events *ev = s->ev;
	struct timespec deadline;
	ssize_t n = -1;

	clock_gettime(CLOCK_MONOTONIC, &deadline);
	deadline.tv_sec += (time_t)EVENTS_KEEPALIVE_SECONDS;
	pthread_mutex_lock(&ev->mu);
	if (s->waker && !s->count && !s->dropped && !ev->closed) {
		/* Non-blocking: nothing now, or a keep-alive when it is time for one. */
		double now = now_mono();

		n = 0;
		if (now - s->last_sent < EVENTS_KEEPALIVE_SECONDS)
			goto out;
		s->last_sent = now;
		n = (ssize_t)(max < sizeof(keepalive) - 1 ? max : sizeof(keepalive) - 1);
		memcpy(buf, keepalive, (size_t)n);
		goto out;
	}
	while (!s->waker && !s->count && !s->dropped && !ev->closed) {
		if (pthread_cond_timedwait(&ev->cond, &ev->mu, &deadline) == ETIMEDOUT)
			break;
	}
	if (s->dropped || ev->closed)
		goto out;
	if (!s->count) {                /* keep-alive: also tells us when the client left */
		n = (ssize_t)(max < sizeof(keepalive) - 1 ? max : sizeof(keepalive) - 1);
		memcpy(buf, keepalive, (size_t)n);
		goto out;
	}
	n = 0;
	while (s->count && (size_t)n < max) {
		struct message *m = s->queue[s->head];
		size_t left = m->len - s->offset;
		size_t take = left < max - (size_t)n ? left : max - (size_t)n;

		memcpy(buf + n, m->text + s->offset, take);
		n += (ssize_t)take;
		s->offset += take;
		if (s->offset == m->len) {
			s->bytes -= m->len;
			s->offset = 0;
			s->head = (s->head + 1) % EVENTS_QUEUE_MAX;
			s->count--;
			message_put(m);
		}
	}
	s->last_sent = now_mono();
out:
	pthread_mutex_unlock(&ev->mu);
	return n;
}

static void sub_attach(void *ctx, struct http_waker *waker)
{
	struct subscriber *s = ctx;

	pthread_mutex_lock(&s->ev->mu);
	s->waker = waker;
	s->last_sent = now_mono();
	pthread_mutex_unlock(&s->ev->mu);
}

static void free_types(char **types)
{
	for (char **t = types; t && *t; t++)
		free(*t);
	free(types);
}

static void sub_free(void *ctx)
{
	struct subscriber *s = ctx;
	struct events *ev = s->ev;

	pthread_mutex_lock(&ev->mu);
	for (struct subscriber **pp = &ev->subs; *pp; pp = &(*pp)->next) {
		if (*pp == s) {
			*pp = s->next;
			ev->nsubs--;
			break;
		}
	}
	drop_queue(s);
	if (!events_put_locked(ev))
		pthread_mutex_unlock(&ev->mu);
	free_types(s->types);
	free(s);
}

int events_subscribe(struct events *ev, const char *const *types, struct http_stream *out)
{
	struct subscriber *s = calloc(1, sizeof(*s));
	size_t n = 0;

	if (!s)
		return -ENOMEM;
	if (types) {
		while (types[n])
			n++;
		s->types = calloc(n + 1, sizeof(char *));
		if (!s->types)
			goto nomem;
		for (size_t i = 0; i < n; i++)
			if (!(s->types[i] = strdup(types[i])))
				goto nomem;
	}
	pthread_mutex_lock(&ev->mu);
	if (ev->closed) {
		pthread_mutex_unlock(&ev->mu);
		free_types(s->types);
		free(s);
		return -ESHUTDOWN;
	}
	s->ev = ev;
	ev->refs++;
	s->next = ev->subs;
	ev->subs = s;
	ev->nsubs++;
	pthread_mutex_unlock(&ev->mu);
	out->read = sub_read;
	out->free = sub_free;
	out->attach = sub_attach;
	out->ctx = s;
	return 0;

nomem:
	free_types(s->types);
	free(s);
	return -ENOMEM;
}

size_t events_subscriber_count(struct events *ev)
{
	size_t n;

	pthread_mutex_lock(&ev->mu);
	n = ev->nsubs;
	pthread_mutex_unlock(&ev->mu);
	return n;
}
