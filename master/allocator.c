/* allocator.c - one allocation cycle: each active agent's free resources (total minus
 * tasks minus outstanding offers) go, as one offer per agent per cycle, to the framework
 * with the lowest weighted dominant share (DRF) that wants offers and has not refused that
 * agent. Time is a parameter (no clock reads here), so unit tests drive it. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "lib/log.h"
#include "master/master_internal.h"

struct totals {
	double cpus, mem;
};

static struct totals cluster_totals(struct master *m)
{
	struct totals t = { 0, 0 };

	for (struct agent *a = m->agents; a; a = a->next) {
		if (a->state != AGENT_ACTIVE)
			continue;
		t.cpus += a->total.cpus;
		t.mem += a->total.mem;
	}
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
			free(f);
		} else {
			pp = &f->next;
		}
	}
}

bool allocator_filtered(struct master *m, const char *framework_id, const char *agent_id,
			double now)
{
	for (struct refuse_filter *f = m->filters; f; f = f->next)
		if (f->until > now && strcmp(f->framework_id, framework_id) == 0 &&
		    strcmp(f->agent_id, agent_id) == 0)
			return true;
	return false;
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
	oe->next = m->offers;
	m->offers = oe;
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
	struct totals t = cluster_totals(m);
	struct offer_entry **made = NULL;
	size_t n = 0, cap = 0;

	drop_expired_filters(m, now);
	for (struct agent *a = m->agents; a; a = a->next) {
		struct resources free_res;
		struct framework *fw;
		struct offer_entry *oe;

		if (a->state != AGENT_ACTIVE)
			continue;
		if (agent_free(a, &free_res) < 0)
			continue;
		fw = offerable(&free_res) ? pick_framework(m, a, now, t) : NULL;
		if (!fw) {
			resources_free(&free_res);
			continue;
		}
		if (n == cap) {
			size_t ncap = cap ? cap * 2 : 8;
			struct offer_entry **g = realloc(made, ncap * sizeof(*g));

			if (!g) {
				resources_free(&free_res);
				break;
			}
			made = g;
			cap = ncap;
		}
		oe = make_offer(m, fw, a, &free_res, now);
		resources_free(&free_res);
		if (oe)
			made[n++] = oe;
	}
	if (n)
		deliver(m, made, n);
	free(made);
}
