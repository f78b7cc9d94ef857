/* tick.c - the master's clock: every --allocation-interval, with the lock held, agent
 * timeouts, offer expiry, an allocation cycle, then each framework's tick. A revive (or a
 * new agent, or freed resources) asks for an extra allocation cycle, which runs as soon as
 * the tick thread gets the lock: requests made meanwhile are coalesced into that one cycle,
 * not delayed. Only a request made from inside an allocation cycle (a framework reviving in
 * its offer callback) waits ALLOC_ECHO_GAP, so such a framework cannot spin the allocator. */
#include <errno.h>
#include <time.h>
#include <unistd.h>
#include "lib/log.h"
#include "lib/util.h"
#include "master/master_internal.h"

#define ALLOC_ECHO_GAP 0.005

/* One allocation cycle. Clears the pending request first (this cycle serves it) and says
 * whether a new one was made from inside the cycle: with the lock held all along, only
 * the framework callbacks run by allocator_run can have made it. */
static bool allocation_cycle(struct master *m, double now)
{
	m->allocate_now = false;
	allocator_run(m, now);
	return m->allocate_now;
}

/* The periodic tick; returns whether its allocation cycle echoed a request (see above).
 * A request from a framework's tick (after the cycle) is a new one and runs at once. */
static bool periodic_tick(struct master *m, double now)
{
	bool echo;

	agents_check_timeouts(m, now);
	allocator_expire_offers(m, now);
	echo = allocation_cycle(m, now);
	for (struct framework_entry *e = m->frameworks; e; e = e->next)
		if (e->fw->ops->tick)
			e->fw->ops->tick(e->fw, now);
	return echo;
}

void master_tick(struct master *m, double now)
{
	periodic_tick(m, now);
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

/* Back-to-back cycles would hold the lock for good (a mutex does not queue its waiters:
 * the unlocking thread takes it again first). After a cycle that others waited through,
 * the lock is left to them until none waits, for at most as long as the cycle took
 * (at least YIELD_MIN): API calls and status updates get in under a busy allocator. */
#define YIELD_MIN 0.001

static void yield_to_waiters(struct master *m, double cycle_seconds)
{
	double until;

	if (atomic_load(&m->lock_waiters) == 0)
		return;
	until = now_mono() + (cycle_seconds > YIELD_MIN ? cycle_seconds : YIELD_MIN);
	master_unlock(m);
	while (atomic_load(&m->lock_waiters) > 0 && now_mono() < until)
		usleep(100);
	master_lock(m);
}

static void *tick_main(void *arg)
{
	struct master *m = arg;
	double interval = m->cfg.allocation_interval > 0 ? m->cfg.allocation_interval : 1;
	double next = now_mono() + interval;
	double not_before = 0;          /* an echoed request waits until then */

	pthread_setname_np(pthread_self(), "master-tick");

	master_lock(m);
	while (!m->tick_stop) {
		double now = now_mono();
		bool echo;

		if (now >= next) {
			echo = periodic_tick(m, now);
			next = now + interval;
		} else if (m->allocate_now && now >= not_before) {
			echo = allocation_cycle(m, now);
		} else {
			double wake = m->allocate_now && not_before < next ? not_before : next;
			struct timespec ts = mono_deadline(wake);

			/* tick_cond is signalled (lock held) with every request. */
			pthread_cond_timedwait(&m->tick_cond, &m->lock, &ts);
			continue;
		}
		not_before = echo ? now + ALLOC_ECHO_GAP : 0;
		yield_to_waiters(m, now_mono() - now);
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
