/* tick.c - the master's clock: every --allocation-interval, with the lock held, agent
 * timeouts, offer expiry, an allocation cycle, then each framework's tick. A revive (or a
 * new agent, or freed resources) asks for an extra allocation cycle right away, so a new
 * app does not wait a whole interval for its first offer. */
#include <errno.h>
#include <time.h>
#include "lib/log.h"
#include "lib/util.h"
#include "master/master_internal.h"

#define ALLOC_MIN_GAP 0.005

void master_tick(struct master *m, double now)
{
	agents_check_timeouts(m, now);
	allocator_expire_offers(m, now);
	allocator_run(m, now);
	for (struct framework_entry *e = m->frameworks; e; e = e->next)
		if (e->fw->ops->tick)
			e->fw->ops->tick(e->fw, now);
}

static struct timespec mono_deadline(double at)
{
	struct timespec ts;

	ts.tv_sec = (time_t)at;
	ts.tv_nsec = (long)((at - (double)ts.tv_sec) * 1e9);
	if (ts.tv_nsec >= 1000000000L) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000L;
	}
	return ts;
}

static void *tick_main(void *arg)
{
	struct master *m = arg;
	double interval = m->cfg.allocation_interval > 0 ? m->cfg.allocation_interval : 1;
	double next = now_mono() + interval, last_alloc = 0;

	master_lock(m);
	while (!m->tick_stop) {
		double now = now_mono();

		if (now >= next) {
			master_tick(m, now);
			next = now + interval;
			m->allocate_now = false;
			continue;
		}
		/* Extra cycles at most every ALLOC_MIN_GAP, so a framework that revives from
		 * inside its offer callback cannot spin the allocator. */
		if (m->allocate_now && now - last_alloc >= ALLOC_MIN_GAP) {
			m->allocate_now = false;
			last_alloc = now;
			allocator_run(m, now);
			continue;
		}
		double wake = m->allocate_now ? last_alloc + ALLOC_MIN_GAP : next;
		struct timespec ts = mono_deadline(wake < next ? wake : next);
		pthread_cond_timedwait(&m->tick_cond, &m->lock, &ts);
	}
	master_unlock(m);
	return NULL;
}

int tick_start(struct master *m)
{
	int rc;

	m->tick_stop = false;
	rc = pthread_create(&m->tick_thread, NULL, tick_main, m);
	if (rc)
		return -rc;
	m->tick_running = true;
	return 0;
}

void tick_stop(struct master *m)
{
	if (!m->tick_running)
		return;
	master_lock(m);
	m->tick_stop = true;
	pthread_cond_signal(&m->tick_cond);
	master_unlock(m);
	pthread_join(m->tick_thread, NULL);
	m->tick_running = false;
}
