/* allocator.c - one allocation cycle: each active agent's free resources (total minus
 * tasks minus outstanding offers) go, as one offer per agent per cycle, to the framework
 * with the lowest weighted dominant share (DRF) that wants offers and has not refused that
 * agent. Time is a parameter (no clock reads here for decisions), so unit tests drive it.
 *
 * At scale a cycle is sliced: agents are visited in rotation from where the last cycle
 * stopped, offers go out in chunks (each chunk delivered before the next is made, so shares
 * include what the frameworks just accepted). A chunk starts at ALLOC_CHUNK_MIN agents and
 * doubles (up to ALLOC_CHUNK_MAX) while chunks are cheap; once a cycle has used
 * ALLOC_BUDGET_MS of real time, or the next chunk would not fit in what is left, it stops
 * and asks for the next cycle at once. The
 * master lock is thus never held for more than about one budget by the allocator, and
 * status updates and API calls get in between. Refuse filters are a hash on
 * (framework, agent); the cycle's duration goes into m->alloc (GET /v1/metrics). */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "lib/log.h"
#include "lib/util.h"
#include "master/master_internal.h"

#define ALLOC_CHUNK_MIN 4
#define ALLOC_CHUNK_MAX 256
#define ALLOC_BUDGET_MS 20.0

struct totals {
	double cpus, mem;
};

/* The active agents' totals: a walk of every agent only after one changed (at 10,000
 * agents the walk is a cache miss per agent, every cycle). */
static struct totals cluster_totals(struct master *m)
{
	struct totals t = { 0, 0 };

	if (m->totals_gen == m->agents_gen && m->agents_gen)
		return (struct totals){ m->totals_cpus, m->totals_mem };
	for (struct agent *a = m->agents; a; a = a->next) {
		if (a->state != AGENT_ACTIVE)
			continue;
		t.cpus += a->total.cpus;
		t.mem += a->total.mem;
	}
	m->totals_cpus = t.cpus;
	m->totals_mem = t.mem;
	m->totals_gen = m->agents_gen;
	return t;
}

static double share_of(const struct framework *fw, struct totals t)
{
	double cpu = t.cpus > 0 ? fw->allocated.cpus / t.cpus : 0;
	double mem = t.mem > 0 ? fw->allocated.mem / t.mem : 0;

	return (cpu > mem ? cpu : mem) / fw->weight;
}

double allocator_dominant_share(struct master *m, const struct framework *fw)
{
	return share_of(fw, cluster_totals(m));
}

static void drop_expired_filters(struct master *m, double now)
{
	struct refuse_filter **pp = &m->filters;

	while (*pp) {
		struct refuse_filter *f = *pp;

		if (f->until <= now) {
			*pp = f->next;
			hashmap_remove_node(&m->filter_index, &f->by_key);
			free(f);
		} else {
			pp = &f->next;
		}
	}
}

bool allocator_filtered(struct master *m, const char *framework_id, const char *agent_id,
			double now)
{
	char key[sizeof(((struct refuse_filter *)0)->key)];
	struct hm_node *n;

	if (!m->filters)
		return false;
	snprintf(key, sizeof(key), "%s\x1f%s", framework_id, agent_id);
	n = hashmap_get(&m->filter_index, key);
	return n && hm_entry(n, struct refuse_filter, by_key)->until > now;
}

void alloc_stats_record(struct alloc_stats *s, double ms, size_t offers)
{
	int b = 0;

	if (ms > ALLOC_HIST_MIN_MS)
		b = (int)ceil(log10(ms / ALLOC_HIST_MIN_MS) * ALLOC_HIST_PER_DECADE - 1e-9);
	if (b < 0)
		b = 0;
	if (b >= ALLOC_HIST_BUCKETS)
		b = ALLOC_HIST_BUCKETS - 1;
	s->counts[b]++;
	s->cycles++;
	s->offers += offers;
	s->sum_ms += ms;
	s->last_ms = ms;
	if (ms > s->max_ms)
		s->max_ms = ms;
}

/* Free resources of a: total - used - offered. */
static int agent_free(const struct agent *a, struct resources *out)
{
	int rc;

	resources_init(out);
	rc = resources_copy(out, &a->total);
	if (rc == 0)
		rc = resources_subtract(out, &a->used);
	if (rc == 0)
		rc = resources_subtract(out, &a->offered);
	if (rc < 0)
		resources_free(out);
	return rc;
}

static bool offerable(const struct resources *r)
{
	return r->cpus >= OFFER_MIN_CPUS || r->mem >= OFFER_MIN_MEM;
}

static struct framework *pick_framework(struct master *m, const struct agent *a, double now,
					struct totals t)
{
	struct framework *best = NULL;
	double best_share = 0;

	for (struct framework_entry *e = m->frameworks; e; e = e->next) {
		struct framework *fw = e->fw;
		double s;

		if (fw->suppressed || !fw->ops->resource_offers ||
		    allocator_filtered(m, fw->id, a->id, now))
			continue;
		s = share_of(fw, t);
		if (!best || s < best_share) {
			best = fw;
			best_share = s;
		}
	}
	return best;
}

static struct offer_entry *make_offer(struct master *m, struct framework *fw, struct agent *a,
				      struct resources *res, double now)
{
	struct offer_entry *oe = calloc(1, sizeof(*oe));
	struct offer *o;

	if (!oe)
		return NULL;
	o = &oe->offer;
	snprintf(o->id, sizeof(o->id), "%s-O%lu", m->offer_prefix, ++m->offer_seq);
	snprintf(o->framework_id, sizeof(o->framework_id), "%s", fw->id);
	snprintf(o->agent_id, sizeof(o->agent_id), "%s", a->id);
	snprintf(o->hostname, sizeof(o->hostname), "%s", a->hostname);
	snprintf(o->agent_address, sizeof(o->agent_address), "%s", a->address);
	o->resources = *res;            /* takes the port ranges */
	resources_init(res);
	o->attributes = a->attributes;
	o->expires_at = now + m->cfg.offer_timeout;
	oe->fw = fw;
	if (resources_add(&a->offered, &o->resources) < 0) {
		resources_free(&o->resources);
		free(oe);
		return NULL;
	}
	fw->allocated.cpus += o->resources.cpus;
	fw->allocated.mem += o->resources.mem;
	fw->allocated.disk += o->resources.disk;
	hashmap_put(&m->offer_index, &oe->by_id, o->id);
	dl_add_tail(m->offers.next, &oe->all);         /* at the head: newest first */
	dl_add_tail(&a->offers, &oe->on_agent);
	m->offer_count++;
	return oe;
}

/* Hands this cycle's offers to their frameworks, one callback per framework. The arrays
 * are built before any callback runs: a callback may accept or decline (freeing entries). */
static void deliver(struct master *m, struct offer_entry **made, size_t n)
{
	struct framework_entry *e;
	size_t fws = 0, k = 0;

	for (e = m->frameworks; e; e = e->next)
		fws++;
	struct {
		struct framework *fw;
		struct offer **offers;
		size_t count;
	} *batch = calloc(fws ? fws : 1, sizeof(*batch));
	struct offer **base = calloc(n ? n : 1, sizeof(*base)), **slots = base;

	if (!batch || !base)
		goto out;
	for (e = m->frameworks; e; e = e->next) {
		batch[k].fw = e->fw;
		batch[k].offers = slots;
		for (size_t i = 0; i < n; i++)
			if (made[i]->fw == e->fw)
				slots[batch[k].count++] = &made[i]->offer;
		slots += batch[k].count;
		k++;
	}
	for (k = 0; k < fws; k++) {
		if (!batch[k].count)
			continue;
		log_debug("event=offers_sent framework=%s count=%zu", batch[k].fw->id,
			  batch[k].count);
		batch[k].fw->ops->resource_offers(batch[k].fw, batch[k].offers, batch[k].count);
	}
out:
	free(base);
	free(batch);
}

void allocator_run(struct master *m, double now)
{
	double started = now_mono(), ms;
	struct totals t = cluster_totals(m);
	struct offer_entry **made = NULL;
	size_t n = 0, total = 0, visited = 0, chunk = ALLOC_CHUNK_MIN;
	double chunk_started = started;
	struct agent *a;

	if (m->filters)
		drop_expired_filters(m, now);
	if (!m->agent_count)
		goto out;
	/* Back pressure: no new launches while agents or the store lag far behind. */
	pthread_mutex_lock(&m->link_mutex);
	m->link_throttled = m->link_running && m->link_len > LINK_BACKLOG_MAX;
	pthread_mutex_unlock(&m->link_mutex);
	if (m->link_throttled) {
		m->alloc.held_link++;
		goto out;
	}
	m->status_throttled = __atomic_load_n(&m->status_inflight, __ATOMIC_RELAXED) >
			      STATUS_BACKLOG_MAX;
	if (m->status_throttled) {
		m->alloc.held_status++;
		goto out;
	}
	pthread_mutex_lock(&m->sw_mutex);
	m->sw_throttled = m->sw_running && m->sw_seq - m->sw_durable > STORE_BACKLOG_MAX;
	pthread_mutex_unlock(&m->sw_mutex);
	if (m->sw_throttled) {
		m->alloc.held_store++;
		goto out;
	}
	made = calloc(ALLOC_CHUNK_MAX, sizeof(*made));
	if (!made)
		goto out;
	/* Agents are never unlinked while the master runs: the remembered one is valid. */
	a = m->alloc_cursor ? m->alloc_cursor : m->agents;
	for (; visited < m->agent_count; visited++) {
		struct resources free_res;
		struct framework *fw;
		struct offer_entry *oe;
		struct agent *cur = a;

		/* Advance first: a callback below never removes agents, but take no chances
		 * with the pointer after frameworks ran. */
		a = a->next;
		if (!a)
			a = m->agents;
		if (cur->state != AGENT_ACTIVE || agent_free(cur, &free_res) < 0)
			continue;
		fw = offerable(&free_res) ? pick_framework(m, cur, now, t) : NULL;
		if (fw && (oe = make_offer(m, fw, cur, &free_res, now)))
			made[n++] = oe;
		resources_free(&free_res);
		if (n < chunk)
			continue;
		deliver(m, made, n);
		total += n;
		n = 0;
		/* Time of this chunk decides the next: stop if it would not fit in the budget,
		 * grow it while chunks stay cheap. */
		double t = now_mono(), used = (t - started) * 1000, last = (t - chunk_started) * 1000;

		chunk_started = t;
		if (used + last >= ALLOC_BUDGET_MS) {
			visited++;
			break;
		}
		if (last * 4 < ALLOC_BUDGET_MS - used && chunk < ALLOC_CHUNK_MAX)
			chunk *= 2;
	}
	if (n)
		deliver(m, made, n);
	total += n;
	m->alloc_cursor = a;
	if (visited < m->agent_count)
		master_wake_allocator(m);       /* the rest of the agents, right after */
	free(made);
out:
	ms = (now_mono() - started) * 1000;
	alloc_stats_record(&m->alloc, ms, total);
	log_debug("event=allocation_cycle ms=%.3f offers=%zu agents_visited=%zu", ms, total,
		  visited);
}
