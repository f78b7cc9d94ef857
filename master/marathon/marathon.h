/* marathon.h - the Marathon layer of the master: the v2 REST API, the app model and its
 * validation, the app scheduler (a framework on master/framework.h), deployments and the
 * /v2/events Server-Sent Events stream. master/main.c starts it after the master core. */
#ifndef PACER_MASTER_MARATHON_H
#define PACER_MASTER_MARATHON_H

#include "lib/http_server.h"
#include "master/master.h"

struct marathon;

/* Loads apps/deployments from the store, registers the app scheduler framework with the
 * master and the /v2/... and /ping routes with srv. Call without master->lock held. */
int marathon_start(struct master *m, struct http_server *srv, struct marathon **out,
		   char *err, size_t errlen);
void marathon_stop(struct marathon *mt);
/* Ends every /v2/events stream now. Call before http_server_stop: the HTTP server waits
 * for its connection threads, and a stream reader otherwise sleeps until its next
 * keep-alive. */
void marathon_close_streams(struct marathon *mt);

#endif
