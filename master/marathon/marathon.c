/* marathon.c - starts and stops the Marathon layer: event bus, apps, groups and deployments from
 * the store, the app scheduler framework, and the /v2 and /ping routes. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "lib/log.h"
#include "master/marathon/marathon.h"
#include "master/marathon/marathon_internal.h"

int marathon_start(struct master *m, struct http_server *srv, struct marathon **out,
		   char *err, size_t errlen)
{
	struct marathon *mt = calloc(1, sizeof(*mt));
	int rc;

	*out = NULL;
	if (!mt) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	mt->m = m;
	mt->store = master_store(m);
	mt->events = events_create();
	if (!mt->events) {
		free(mt);
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	master_lock(m);
	rc = apps_load(mt);
	if (!rc)
		rc = groups_load(mt);
	if (!rc)
		rc = deployments_load(mt);
	if (rc) {
		snprintf(err, errlen, "cannot load apps and deployments from the store: %s",
			 strerror(-rc));
		goto fail_locked;
	}
	rc = scheduler_start(mt, err, errlen);
	if (rc)
		goto fail_locked;
	master_unlock(m);

	rc = api_apps_register(mt, srv);
	if (!rc)
		rc = api_tasks_register(mt, srv);
	if (!rc)
		rc = api_deployments_register(mt, srv);
	if (!rc)
		rc = api_misc_register(mt, srv);
	if (!rc)
		rc = api_queue_register(mt, srv);
	if (!rc)
		rc = api_groups_register(mt, srv);
	if (rc) {
		snprintf(err, errlen, "cannot register the Marathon routes: %s", strerror(-rc));
		/* The framework stays registered with the master: keep mt alive for it. */
		*out = mt;
		return rc;
	}
	{
		int apps_loaded = 0;

		for (struct mt_app *ma = mt->apps; ma; ma = ma->next)
			apps_loaded++;
		log_info("event=marathon_started apps_loaded=%d", apps_loaded);
	}
	*out = mt;
	return 0;

fail_locked:
	master_unlock(m);
	apps_free_all(mt);
	groups_free_all(mt);
	deployments_free_all(mt);
	scheduler_free(mt);
	events_destroy(mt->events);
	free(mt);
	return rc;
}

/* The master keeps a pointer to mt->fw: call this after the master's threads stopped
 * (or the HTTP server and the tick can no longer reach the framework). */
void marathon_stop(struct marathon *mt)
{
	if (!mt)
		return;
	apps_free_all(mt);
	groups_free_all(mt);
	deployments_free_all(mt);
	scheduler_free(mt);
	events_destroy(mt->events);
	free(mt);
}

void marathon_close_streams(struct marathon *mt)
{
	if (mt)
		events_close(mt->events);
}
