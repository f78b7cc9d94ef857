/* agent.c - start-up and shutdown of the agent: the order matters. The work dir is locked
 * first (two agents on one work dir would fight over the same containers), then the id,
 * the outbox and the containerizer are loaded, the tasks recovered, and only then the
 * API and the threads start. Shutdown stops the API and the threads and releases
 * everything, but leaves the containers running for the next agent to recover. */
#include <errno.h>
#include <fcntl.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <unistd.h>

#include "agent/agent.h"
#include "lib/http_server.h"
#include "lib/log.h"
#include "lib/util.h"

static int lock_work_dir(struct agent *a, char *err, size_t errlen)
{
	char path[4096];
	int rc = path_join(path, sizeof(path), "%s/agent.lock", a->cfg.work_dir);

	if (rc) {
		snprintf(err, errlen, "work dir path too long");
		return rc;
	}
	a->lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
	if (a->lock_fd < 0) {
		rc = -errno;
		snprintf(err, errlen, "cannot open %s: %s", path, strerror(errno));
		return rc;
	}
	if (flock(a->lock_fd, LOCK_EX | LOCK_NB) < 0) {
		rc = -errno;
		snprintf(err, errlen, "%s is in use by another pacer-agent", a->cfg.work_dir);
		return rc;
	}
	return 0;
}

void agent_destroy_sync(struct agent *a)
{
	pthread_cond_destroy(&a->launch_cond);
	pthread_cond_destroy(&a->link_cond);
	pthread_cond_destroy(&a->monitor_cond);
	stream_link_destroy(&a->stream);
	pthread_mutex_destroy(&a->lock);
}

int agent_init_sync(struct agent *a)
{
	pthread_condattr_t attr;

	pthread_mutex_init(&a->lock, NULL);
	pthread_condattr_init(&attr);
	pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
	pthread_cond_init(&a->launch_cond, &attr);
	pthread_cond_init(&a->link_cond, &attr);
	pthread_cond_init(&a->monitor_cond, &attr);
	pthread_condattr_destroy(&attr);
	stream_link_init(&a->stream);
	return 0;
}

static int start_threads(struct agent *a, char *err, size_t errlen)
{
	enum { USAGE = 3 };
	struct { pthread_t *thread; void *(*main)(void *); } threads[] = {
		{ &a->launcher_thread, agent_launcher_main },
		{ &a->monitor_thread, agent_monitor_main },
		{ &a->link_thread, agent_link_main },
		[USAGE] = { &a->usage_thread, agent_usage_main },
		/* The health checker sees a->stopping within 100 ms (its longest poll). */
		{ &a->health_thread, agent_health_main },
	};
	size_t started;
	int rc = 0;

	for (started = 0; started < ARRAY_SIZE(threads); started++)
		if ((rc = pthread_create(threads[started].thread, NULL, threads[started].main, a)))
			break;
	if (!rc) {
		a->threads_started = true;
		return 0;
	}
	/* Stop and join the ones that started. */
	pthread_mutex_lock(&a->lock);
	a->stopping = true;
	pthread_cond_broadcast(&a->launch_cond);
	pthread_cond_broadcast(&a->monitor_cond);
	pthread_cond_broadcast(&a->link_cond);
	pthread_mutex_unlock(&a->lock);
	if (started > USAGE)
		agent_usage_stop(a);
	while (started-- > 0)
		pthread_join(*threads[started].thread, NULL);
	snprintf(err, errlen, "cannot start a thread: %s", strerror(rc));
	return -rc;
}

static void set_address(struct agent *a)
{
	uint16_t port = a->http ? http_server_port(a->http) : a->cfg.port;

	if (strchr(a->cfg.ip, ':'))
		snprintf(a->address, sizeof(a->address), "[%s]:%u", a->cfg.ip, port);
	else
		snprintf(a->address, sizeof(a->address), "%s:%u", a->cfg.ip, port);
}

int agent_start(struct agent *a, const struct agent_config *cfg, struct resources *res,
		json_t *attributes, char *err, size_t errlen)
{
	struct containerizer_config czc;
	int rc;

	memset(a, 0, sizeof(*a));
	a->cfg = *cfg;
	a->resources = *res;            /* moved */
	resources_init(res);
	a->attributes = attributes;
	a->lock_fd = -1;
	agent_init_sync(a);

	rc = lock_work_dir(a, err, errlen);
	if (!rc)
		rc = checkpoint_agent_id(cfg->work_dir, a->agent_id, err, errlen);
	if (rc)
		goto err;
	rc = outbox_open(&a->outbox, cfg->work_dir);
	if (rc) {
		snprintf(err, errlen, "cannot load the status updates in %s/meta/updates: %s",
			 cfg->work_dir, strerror(-rc));
		goto err;
	}
	rc = usage_spool_open(&a->usage, cfg->work_dir, 0);
	if (rc) {
		snprintf(err, errlen, "cannot load the usage spool in %s/meta: %s", cfg->work_dir,
			 strerror(-rc));
		goto err;
	}
	czc = (struct containerizer_config){ .agent_id = a->agent_id, .work_dir = cfg->work_dir,
					     .executor_path = cfg->executor_path, .bpffs = cfg->bpffs };
	rc = containerizer_create(&czc, &a->cz, err, errlen);
	if (rc)
		goto err;
	malloc_trim(0);                  /* BPF object loading leaves freed BTF behind */
	rc = agent_recover(a);
	if (rc) {
		snprintf(err, errlen, "cannot read the task checkpoints: %s", strerror(-rc));
		goto err;
	}
	rc = agent_api_start(a, err, errlen);
	if (rc)
		goto err;
	set_address(a);
	rc = start_threads(a, err, errlen);
	if (rc)
		goto err;
	rc = stream_link_start(a);
	if (rc) {
		snprintf(err, errlen, "cannot start the agent stream's thread: %s", strerror(-rc));
		goto err;
	}
	log_info("event=agent_started agent_id=%s address=%s work_dir=%s master=%s pending_updates=%zu",
		 a->agent_id, a->address, cfg->work_dir, cfg->master_url, a->outbox.count);
	return 0;
err:
	agent_stop(a);
	return rc ? rc : -EIO;
}

void agent_stop(struct agent *a)
{
	struct task *t;

	pthread_mutex_lock(&a->lock);
	a->stopping = true;
	pthread_cond_broadcast(&a->launch_cond);
	pthread_cond_broadcast(&a->link_cond);
	pthread_cond_broadcast(&a->monitor_cond);
	pthread_mutex_unlock(&a->lock);
	if (a->http)
		http_server_stop(a->http);
	a->http = NULL;
	stream_link_stop(a);           /* also wakes the link thread from a wait for an ack */
	if (a->threads_started) {
		pthread_join(a->launcher_thread, NULL);
		pthread_join(a->monitor_thread, NULL);
		pthread_join(a->link_thread, NULL);
		agent_usage_stop(a);
		pthread_join(a->usage_thread, NULL);
		pthread_join(a->health_thread, NULL);
		a->threads_started = false;
	}
	if (a->cz)
		containerizer_destroy(a->cz);
	a->cz = NULL;
	while ((t = a->tasks)) {
		a->tasks = t->next;
		agent_task_free(t);
	}
	outbox_close(&a->outbox);
	usage_spool_close(&a->usage);
	resources_free(&a->resources);
	json_decref(a->attributes);
	a->attributes = NULL;
	if (a->lock_fd >= 0)
		close(a->lock_fd);
	a->lock_fd = -1;
	agent_destroy_sync(a);
}
