/* events.h - the Marathon event bus behind GET /v2/events (Server-Sent Events).
 * Publishing never blocks: each subscriber has a bounded queue, and a subscriber that
 * falls behind is dropped (its stream ends). Stream readers wait on a condition variable
 * (thread-per-connection servers) or are woken through the server's waker (pool servers),
 * and send a keep-alive comment when nothing happens. The bus has its own mutex; it may
 * be called with master->lock held. */
#ifndef PACER_MARATHON_EVENTS_H
#define PACER_MARATHON_EVENTS_H

#include <stddef.h>
#include <jansson.h>
#include "lib/http_server.h"

/* Per-subscriber limits: queued events and queued bytes. */
#define EVENTS_QUEUE_MAX 4096
#define EVENTS_QUEUE_BYTES (8u << 20)
#define EVENTS_KEEPALIVE_SECONDS 15.0

struct events;

struct events *events_create(void);
/* Ends every stream (readers return end-of-stream) and drops the creator's reference. */
void events_destroy(struct events *ev);
/* Ends every stream and refuses new subscribers; the bus stays usable for publishing. */
void events_close(struct events *ev);

/* Whether a subscriber's filter lets type through now (a publisher may skip building an
 * event nobody would get). */
bool events_wanted(struct events *ev, const char *type);
/* Adds "eventType" and "timestamp" to data (stolen) and queues it for every subscriber
 * whose filter lets type through. */
void events_publish(struct events *ev, const char *type, json_t *data);

/* A stream for one client. types: NULL-terminated list of event types to deliver, or NULL
 * for all (copied). Returns 0 or -ENOMEM/-ESHUTDOWN. */
int events_subscribe(struct events *ev, const char *const *types, struct http_stream *out);

size_t events_subscriber_count(struct events *ev);

#endif
