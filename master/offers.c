/* offers.c - what happens to an offer after the allocator made it: accepted with LAUNCH
 * operations (validated against the offered resources and ports), declined with a refuse
 * filter, or rescinded (timeout, agent gone). Resources not used go back to the pool. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "lib/log.h"
#include "lib/util.h"
#include "master/master_internal.h"

static struct offer_entry *find_offer(struct master *m, const char *id)
{
	struct hm_node *n = hashmap_get(&m->offer_index, id);

	return n ? hm_entry(n, struct offer_entry, by_id) : NULL;
}

/* Unlinks oe, gives its resources back to its agent and framework, frees it. */
static void offer_remove(struct master *m, struct offer_entry *oe)
{
	struct agent *a = agents_find(m, oe->offer.agent_id);

	hashmap_remove_node(&m->offer_index, &oe->by_id);
	dl_del(&oe->all);
	dl_del(&oe->on_agent);
	m->offer_count--;
	if (a)
		resources_subtract(&a->offered, &oe->offer.resources);
	oe->fw->allocated.cpus -= oe->offer.resources.cpus;
	oe->fw->allocated.mem -= oe->offer.resources.mem;
	oe->fw->allocated.disk -= oe->offer.resources.disk;
	if (oe->fw->allocated.cpus < 1e-9)
		oe->fw->allocated.cpus = 0;
	if (oe->fw->allocated.mem < 1e-9)
		oe->fw->allocated.mem = 0;
	if (oe->fw->allocated.disk < 1e-9)
		oe->fw->allocated.disk = 0;
	resources_free(&oe->offer.resources);
	free(oe);
}

static void add_filter(struct master *m, const char *fw_id, const char *agent_id,
		       double until)
{
	char key[sizeof(((struct refuse_filter *)0)->key)];
	struct refuse_filter *f;
	struct hm_node *n;

	snprintf(key, sizeof(key), "%s\x1f%s", fw_id, agent_id);
	n = hashmap_get(&m->filter_index, key);
	if (n) {
		f = hm_entry(n, struct refuse_filter, by_key);
		if (until > f->until)
			f->until = until;
		return;
	}
	f = calloc(1, sizeof(*f));
	if (!f)
		return;
	snprintf(f->key, sizeof(f->key), "%s", key);
	snprintf(f->framework_id, sizeof(f->framework_id), "%s", fw_id);
	f->until = until;
	hashmap_put(&m->filter_index, &f->by_key, f->key);
	f->next = m->filters;
	m->filters = f;
}

int master_decline(struct master *m, struct framework *fw, const char *offer_id,
		   double refuse_seconds)
{
	struct offer_entry *oe = find_offer(m, offer_id);
	char agent_id[64];

	if (!oe || oe->fw != fw)
		return -EINVAL;
	snprintf(agent_id, sizeof(agent_id), "%s", oe->offer.agent_id);
	offer_remove(m, oe);
	if (refuse_seconds > 0)
		add_filter(m, fw->id, agent_id, m->clock_mono() + refuse_seconds);
	return 0;
}

/* What a launch needs: its resources plus every assigned port as a range. */
static int launch_needs(const struct task_launch *l, struct resources *need)
{
	int rc;

	resources_init(need);
	rc = resources_copy(need, &l->resources);
	for (size_t i = 0; rc == 0 && i < l->port_count; i++)
		rc = port_ranges_add_range(&need->ports, l->ports[i], l->ports[i]);
	if (rc < 0)
		resources_free(need);
	return rc;
}

static int check_offers(struct master *m, struct framework *fw, const char *const *ids,
			size_t count, struct resources *avail, struct agent **agent, char *err,
			size_t errlen)
{
	const char *agent_id = NULL;

	if (count == 0) {
		snprintf(err, errlen, "no offers given");
		return -EINVAL;
	}
	for (size_t i = 0; i < count; i++) {
		struct offer_entry *oe = find_offer(m, ids[i]);

		for (size_t j = 0; j < i; j++) {
			if (strcmp(ids[i], ids[j]) == 0) {
				snprintf(err, errlen, "offer %s given twice", ids[i]);
				return -EINVAL;
			}
		}
		if (!oe || oe->fw != fw) {
			snprintf(err, errlen, "offer %s is unknown, expired or not yours", ids[i]);
			return -EINVAL;
		}
		if (agent_id && strcmp(agent_id, oe->offer.agent_id) != 0) {
			snprintf(err, errlen, "offers %s and %s are on different agents", ids[0],
				 ids[i]);
			return -EINVAL;
		}
		agent_id = oe->offer.agent_id;
		if (resources_add(avail, &oe->offer.resources) < 0) {
			snprintf(err, errlen, "out of memory");
			return -ENOMEM;
		}
	}
	*agent = agents_find(m, agent_id);
	if (!*agent || (*agent)->state != AGENT_ACTIVE) {
		snprintf(err, errlen, "agent %s is not active", agent_id);
		return -EINVAL;
	}
	return 0;
}

static int check_launch(struct master *m, const struct task_launch *l,
			const struct task_launch *earlier, size_t nearlier,
			struct resources *avail, struct resources *need, char *err, size_t errlen)
{
	int rc;

	if (l->task_id[0] == '\0' || (!l->fresh_id && tasks_find(m, l->task_id))) {
		snprintf(err, errlen, "task id '%s' is empty or already in use", l->task_id);
		return -EINVAL;
	}
	for (size_t j = 0; !l->fresh_id && j < nearlier; j++) {
		if (strcmp(earlier[j].task_id, l->task_id) == 0) {
			snprintf(err, errlen, "task id '%s' launched twice", l->task_id);
			return -EINVAL;
		}
	}
	if (!json_is_object(l->command)) {
		snprintf(err, errlen, "task %s has no command", l->task_id);
		return -EINVAL;
	}
	if (l->port_count > ARRAY_SIZE(l->ports)) {
		snprintf(err, errlen, "task %s asks for too many ports", l->task_id);
		return -EINVAL;
	}
	rc = launch_needs(l, need);
	if (rc < 0) {
		snprintf(err, errlen, "out of memory");
		return rc;
	}
	for (size_t i = 0; i < l->port_count; i++) {
		if (!port_ranges_contains_port(&avail->ports, l->ports[i])) {
			snprintf(err, errlen, "task %s: port %u is not in the offered ranges",
				 l->task_id, l->ports[i]);
			goto bad;
		}
	}
	if (!resources_contains(avail, need)) {
		snprintf(err, errlen,
			 "task %s needs cpus=%g mem=%g disk=%g but the offers have cpus=%g mem=%g disk=%g left",
			 l->task_id, need->cpus, need->mem, need->disk, avail->cpus, avail->mem,
			 avail->disk);
		goto bad;
	}
	if (resources_subtract(avail, need) < 0) {
		snprintf(err, errlen, "out of memory");
		resources_free(need);
		return -ENOMEM;
	}
	return 0;
bad:
	resources_free(need);
	return -EINVAL;
}

int master_accept(struct master *m, struct framework *fw, const char *const *offer_ids,
		  size_t offer_count, const struct task_launch *launches, size_t launch_count,
		  double refuse_seconds, char *err, size_t errlen)
{
	struct resources avail, *needs = NULL;
	struct agent *a = NULL;
	char agent_id[64];
	size_t ok = 0;
	int rc;

	resources_init(&avail);
	rc = check_offers(m, fw, offer_ids, offer_count, &avail, &a, err, errlen);
	if (rc < 0)
		goto out;
	needs = calloc(launch_count ? launch_count : 1, sizeof(*needs));
	if (!needs) {
		snprintf(err, errlen, "out of memory");
		rc = -ENOMEM;
		goto out;
	}
	for (ok = 0; ok < launch_count; ok++) {
		rc = check_launch(m, &launches[ok], launches, ok, &avail, &needs[ok], err, errlen);
		if (rc < 0)
			goto out;
	}
	/* Valid: the offers are used up; what the launches leave returns to the pool. */
	snprintf(agent_id, sizeof(agent_id), "%s", a->id);
	for (size_t i = 0; i < offer_count; i++)
		offer_remove(m, find_offer(m, offer_ids[i]));
	for (size_t i = 0; i < launch_count; i++) {
		int trc = tasks_create(m, fw, a, &launches[i], &needs[i], NULL);

		if (trc < 0) {
			snprintf(err, errlen, "task %s could not be recorded: %s",
				 launches[i].task_id, strerror(-trc));
			rc = trc;
		}
	}
	if (refuse_seconds > 0)
		add_filter(m, fw->id, agent_id, m->clock_mono() + refuse_seconds);
out:
	for (size_t i = 0; needs && i < ok; i++)
		resources_free(&needs[i]);
	free(needs);
	resources_free(&avail);
	return rc;
}

/* Unlinks oe and tells its framework (which may then accept or decline other offers). */
static void rescind(struct master *m, struct offer_entry *oe, const char *why)
{
	struct framework *fw = oe->fw;
	char id[48];

	snprintf(id, sizeof(id), "%s", oe->offer.id);
	log_debug("event=offer_rescinded offer=%s framework=%s agent=%s why=%s", id, fw->id,
		  oe->offer.agent_id, why);
	offer_remove(m, oe);
	if (fw->ops->offer_rescinded)
		fw->ops->offer_rescinded(fw, id);
}

void allocator_expire_offers(struct master *m, double now)
{
	struct dlink *l = m->offers.next;

	while (l != &m->offers) {
		struct offer_entry *oe = dl_entry(l, struct offer_entry, all);

		if (oe->offer.expires_at > now) {
			l = l->next;
			continue;
		}
		rescind(m, oe, "timeout");
		/* The callback may have declined or accepted other offers. */
		l = m->offers.next;
	}
}

void allocator_rescind_agent(struct master *m, struct agent *a)
{
	while (!dl_empty(&a->offers))
		rescind(m, dl_entry(a->offers.next, struct offer_entry, on_agent), "agent_gone");
}

size_t allocator_offer_count(struct master *m)
{
	return m->offer_count;
}

void allocator_free(struct master *m)
{
	while (m->offers.next && !dl_empty(&m->offers)) {
		struct offer_entry *oe = dl_entry(m->offers.next, struct offer_entry, all);

		dl_del(&oe->all);
		dl_del(&oe->on_agent);
		resources_free(&oe->offer.resources);
		free(oe);
	}
	m->offer_count = 0;
	hashmap_destroy(&m->offer_index);
	while (m->filters) {
		struct refuse_filter *f = m->filters;

		m->filters = f->next;
		free(f);
	}
	hashmap_destroy(&m->filter_index);
}
