/* agents.c - the agent registry: register / re-register and heartbeat (the protocol in
 * docs/architecture.md), reconciliation of the tasks an agent reports against the master's
 * records, agents that fall silent (unreachable), persistence (kind "agents"). */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "lib/log.h"
#include "lib/util.h"
#include "master/heartbeat_wire.h"
#include "master/master_internal.h"

struct agent *agents_find(struct master *m, const char *id)
{
	struct hm_node *n = hashmap_get(&m->agent_index, id);

	return n ? hm_entry(n, struct agent, by_id) : NULL;
}

void agents_seen(struct master *m, const char *id)
{
	struct agent *a = agents_find(m, id);

	if (a && a->state == AGENT_ACTIVE)
		a->last_seen = m->clock_mono();
}

const char *master_agent_hostname(struct master *m, const char *agent_id)
{
	struct agent *a = agents_find(m, agent_id);

	return a ? a->hostname : NULL;
}

double agents_heartbeat_interval(const struct master *m)
{
	double iv = m->cfg.agent_timeout / 3;

	if (iv > 5)
		iv = 5;
	if (iv < 0.2)
		iv = 0.2;
	return iv;
}

static json_t *interval_json(const struct master *m)
{
	double iv = agents_heartbeat_interval(m);

	/* Whole seconds as an integer, so readers using json_integer_value work too. */
	return iv == floor(iv) ? json_integer((json_int_t)iv) : json_real(iv);
}

static struct agent *agent_new(struct master *m, const char *id)
{
	struct agent *a = calloc(1, sizeof(*a));
	struct agent **pp = &m->agents;

	if (!a)
		return NULL;
	snprintf(a->id, sizeof(a->id), "%s", id);
	resources_init(&a->total);
	resources_init(&a->used);
	resources_init(&a->offered);
	dl_init(&a->offers);
	if (hashmap_put(&m->agent_index, &a->by_id, a->id) < 0) {
		free(a);
		return NULL;
	}
	/* Registration order; the tail is remembered so a new agent costs O(1). */
	if (m->agents_tail)
		pp = &m->agents_tail->next;
	*pp = a;
	m->agents_tail = a;
	m->agent_count++;
	return a;
}

static void agent_free(struct agent *a)
{
	resources_free(&a->total);
	resources_free(&a->used);
	resources_free(&a->offered);
	json_decref(a->attributes);
	free(a);
}

static int agent_persist(struct master *m, struct agent *a)
{
	json_t *j = json_pack("{s:s,s:s,s:s,s:o,s:O,s:f}", "agent_id", a->id,
			      "hostname", a->hostname, "address", a->address,
			      "resources", resources_to_json(&a->total),
			      "attributes", a->attributes, "registered_at", a->registered_at);

	if (!j)
		return -ENOMEM;
	master_store_put(m, "agents", a->id, j);
	json_decref(j);
	return 0;
}

/* --- reconciliation --- */

/* One TASKREF from the agent: keep, refresh, or ask the agent to kill it. */
static void reconcile_ref(struct master *m, struct agent *a, const struct task_ref *ref,
			  json_t *kill, unsigned mark)
{
	const char *id = ref->task_id, *sname = ref->state;
	int st = sname ? task_state_parse(sname) : -1;
	bool agent_live = st < 0 || !task_state_is_terminal((enum task_state)st);
	struct task *t;

	if (!id)
		return;
	t = tasks_find(m, id);
	if (t)
		t->listed_mark = mark;
	if (!t || strcmp(t->rec.agent_id, a->id) != 0 || task_state_is_terminal(t->rec.state)) {
		if (agent_live) {
			log_info("event=reconcile_kill task=%s agent=%s why=%s", id, a->id,
				 t ? "terminal_or_elsewhere" : "unknown");
			json_array_append_new(kill, json_string(id));
		}
		return;
	}
	if (ref->has_stats) {
		struct task_net_stats s = { ref->rx_bytes, ref->tx_bytes, ref->rx_packets,
					    ref->tx_packets };

		tasks_set_stats(t, &s);
	}
	if (t->kill_requested && agent_live)
		json_array_append_new(kill, json_string(id));
	if (t->rec.state == TASK_UNREACHABLE && agent_live && st >= 0)
		tasks_transition(m, t, (enum task_state)st, "REASON_RECONCILIATION",
				 "agent is reachable again");
}

/* Task ids of agent a's non-terminal tasks that pass keep(). Framework callbacks run by
 * a transition may expunge any task, so loops that transition work on ids, not pointers. */
static json_t *task_ids_on(struct master *m, struct agent *a,
			   bool (*keep)(struct task *t, void *arg), void *arg)
{
	struct task_group *g = tasks_on_agent(m, a->id);
	json_t *ids = json_array();

	if (!g || !g->live)
		return ids;
	for (struct dlink *l = g->tasks.next; l != &g->tasks; l = l->next) {
		struct task *t = dl_entry(l, struct task, on_agent);

		if (!task_state_is_terminal(t->rec.state) && keep(t, arg))
			json_array_append_new(ids, json_string(t->rec.task_id));
	}
	return ids;
}

static bool not_listed(struct task *t, void *arg)
{
	return t->listed_mark != *(const unsigned *)arg;
}

static void reconcile(struct master *m, struct agent *a, const struct task_ref *refs,
		      size_t nrefs, json_t *kill)
{
	json_t *missing, *id;
	double now = m->clock_wall();
	unsigned mark = ++m->reconcile_epoch;
	size_t i;

	/* The tasks listed get this heartbeat's mark (no set of ids is built: at a million
	 * tasks the heartbeats list 200,000 a second). */
	for (i = 0; i < nrefs; i++)
		reconcile_ref(m, a, &refs[i], kill, mark);
	/* Tasks the master has there that the agent no longer lists. */
	missing = task_ids_on(m, a, not_listed, &mark);
	json_array_foreach(missing, i, id) {
		struct task *t = tasks_find(m, json_string_value(id));

		if (!t)
			continue;
		if (t->kill_requested)
			tasks_transition(m, t, TASK_KILLED, "REASON_RECONCILIATION",
					 "task not found on its agent after a kill");
		else if (now - t->rec.staged_at > RECONCILE_LOST_AFTER &&
			 !agent_link_launch_pending(m, a->id, t->rec.task_id))
			tasks_transition(m, t, TASK_LOST, "REASON_RECONCILIATION",
					 "task not found on its agent");
	}
	json_decref(missing);
}

/* A counter of a TASKREF's stats as heartbeat_wire.c reads it: an integer > 0 as it is, a
 * real in (0, 1.8e19) truncated, anything else 0. */
static uint64_t counter(json_t *obj, const char *key)
{
	json_t *v = json_object_get(obj, key);
	double d;

	if (json_is_integer(v))
		return json_integer_value(v) > 0 ? (uint64_t)json_integer_value(v) : 0;
	d = json_number_value(v);
	return d > 0 && d < 1.8e19 ? (uint64_t)d : 0;
}

/* The TASKREFs of a registration (read from its tree, as heartbeat_wire.c reads a
 * heartbeat's); the strings stay in tasks. NULL without memory (or with none). */
static struct task_ref *refs_from_json(json_t *tasks, size_t *n)
{
	struct task_ref *refs = calloc(json_array_size(tasks) + 1, sizeof(*refs));
	json_t *ref;
	size_t i;

	*n = 0;
	if (!refs)
		return NULL;
	json_array_foreach(tasks, i, ref) {
		json_t *stats = json_object_get(ref, "stats");
		struct task_ref *r = &refs[(*n)++];

		r->task_id = json_string_value(json_object_get(ref, "task_id"));
		r->state = json_string_value(json_object_get(ref, "state"));
		r->has_stats = json_is_object(stats);
		r->rx_bytes = counter(stats, "rx_bytes");
		r->tx_bytes = counter(stats, "tx_bytes");
		r->rx_packets = counter(stats, "rx_packets");
		r->tx_packets = counter(stats, "tx_packets");
	}
	return refs;
}

/* --- register / heartbeat --- */

static int parse_register(json_t *body, const char **id, const char **hostname,
			  const char **address, struct resources *res, json_t **tasks,
			  char *err, size_t errlen)
{
	json_t *attrs = json_object_get(body, "attributes");

	if (!json_is_object(body)) {
		snprintf(err, errlen, "body must be a JSON object");
		return -EINVAL;
	}
	*id = json_string_value(json_object_get(body, "agent_id"));
	*hostname = json_string_value(json_object_get(body, "hostname"));
	*address = json_string_value(json_object_get(body, "address"));
	*tasks = json_object_get(body, "tasks");
	if (!*address || !**address || !strchr(*address, ':')) {
		snprintf(err, errlen, "field 'address' (\"ip:port\") is missing or invalid");
		return -EINVAL;
	}
	if (*id && (strlen(*id) >= sizeof(((struct agent *)0)->id) || strchr(*id, '/'))) {
		snprintf(err, errlen, "field 'agent_id' is too long or contains '/'");
		return -EINVAL;
	}
	if (*tasks && !json_is_array(*tasks)) {
		snprintf(err, errlen, "field 'tasks' must be an array");
		return -EINVAL;
	}
	if (attrs && !json_is_object(attrs)) {
		snprintf(err, errlen, "field 'attributes' must be an object");
		return -EINVAL;
	}
	if (!json_object_get(body, "resources")) {
		snprintf(err, errlen, "field 'resources' is missing");
		return -EINVAL;
	}
	return resources_from_json(json_object_get(body, "resources"), res, err, errlen);
}

int agents_register(struct master *m, json_t *body, json_t **reply, char *err, size_t errlen)
{
	const char *id, *hostname, *address;
	struct resources res;
	json_t *tasks, *kill, *attrs;
	struct task_ref *refs;
	size_t nrefs;
	char newid[64];
	struct agent *a;
	bool known;
	int rc;

	*reply = NULL;
	resources_init(&res);
	rc = parse_register(body, &id, &hostname, &address, &res, &tasks, err, errlen);
	if (rc < 0)
		goto out;
	if (!id || !*id) {
		char hex[13];

		random_hex(hex, 12);
		snprintf(newid, sizeof(newid), "agent-%s", hex);
		id = newid;
	}
	a = agents_find(m, id);
	known = a != NULL;
	if (!a && !(a = agent_new(m, id))) {
		rc = -ENOMEM;
		snprintf(err, errlen, "out of memory");
		goto out;
	}
	/* Whatever was offered from it before is void: resources may have changed. */
	allocator_rescind_agent(m, a);
	snprintf(a->address, sizeof(a->address), "%s", address);
	if (hostname && *hostname)
		snprintf(a->hostname, sizeof(a->hostname), "%s", hostname);
	else
		snprintf(a->hostname, sizeof(a->hostname), "%.*s",
			 (int)(strrchr(address, ':') - address), address);
	resources_free(&a->total);
	a->total = res;
	resources_init(&res);
	attrs = json_object_get(body, "attributes");
	json_decref(a->attributes);
	a->attributes = attrs ? json_deep_copy(attrs) : json_object();
	a->state = AGENT_ACTIVE;
	m->agents_gen++;
	a->last_seen = m->clock_mono();
	a->registered_at = m->clock_wall();
	rc = agent_persist(m, a);
	if (rc < 0) {
		snprintf(err, errlen, "cannot store agent %s: %s", a->id, strerror(-rc));
		goto out;
	}
	kill = json_array();
	refs = refs_from_json(tasks, &nrefs);
	reconcile(m, a, refs, nrefs, kill);
	free(refs);
	*reply = json_pack("{s:s,s:o,s:o}", "agent_id", a->id,
			   "heartbeat_interval_seconds", interval_json(m), "kill_tasks", kill);
	log_info("event=agent_%s id=%s hostname=%s address=%s cpus=%g mem=%g kill=%zu",
		 known ? "reregistered" : "registered", a->id, a->hostname, a->address,
		 a->total.cpus, a->total.mem, json_array_size(kill));
	master_wake_allocator(m);
out:
	resources_free(&res);
	return rc;
}

int agents_heartbeat(struct master *m, const struct heartbeat *hb, json_t **reply, char *err,
		     size_t errlen)
{
	const char *id = hb->agent_id;
	struct agent *a;
	json_t *kill;

	*reply = NULL;
	if (!id || (hb->has_tasks && !hb->tasks_array)) {
		snprintf(err, errlen, "heartbeat needs 'agent_id' (string) and 'tasks' (array)");
		return -EINVAL;
	}
	a = agents_find(m, id);
	/* A recovering or unreachable agent re-registers with its full state first. */
	if (!a || a->state != AGENT_ACTIVE) {
		snprintf(err, errlen, "agent %s is not registered", id);
		return -ENOENT;
	}
	a->last_seen = m->clock_mono();
	kill = json_array();
	reconcile(m, a, hb->tasks, hb->ntasks, kill);
	*reply = json_pack("{s:o}", "kill_tasks", kill);
	return 0;
}

static bool reachable_task(struct task *t, void *arg)
{
	(void)arg;
	return t->rec.state != TASK_UNREACHABLE;
}

/* A silent agent is noticed within a second (a quarter of the timeout if that is shorter),
 * not at every tick: at 10,000 agents and a 0.1 s allocation interval the walk of every
 * agent at each tick was ~3% of the tick thread. */
#define TIMEOUT_CHECK_EVERY 1.0

void agents_check_timeouts(struct master *m, double now)
{
	double every = m->cfg.agent_timeout / 4 < TIMEOUT_CHECK_EVERY ?
		       m->cfg.agent_timeout / 4 : TIMEOUT_CHECK_EVERY;

	if (now < m->next_timeout_check && m->next_timeout_check - now <= every)
		return;         /* (a clock that went back: check now) */
	m->next_timeout_check = now + every;
	for (struct agent *a = m->agents; a; a = a->next) {
		json_t *ids, *id;
		size_t i;

		if (a->state == AGENT_UNREACHABLE || now - a->last_seen <= m->cfg.agent_timeout)
			continue;
		log_warn("event=agent_unreachable id=%s hostname=%s silent_for=%.1f", a->id,
			 a->hostname, now - a->last_seen);
		a->state = AGENT_UNREACHABLE;
		m->agents_gen++;
		allocator_rescind_agent(m, a);
		ids = task_ids_on(m, a, reachable_task, NULL);
		json_array_foreach(ids, i, id) {
			struct task *t = tasks_find(m, json_string_value(id));

			if (t)
				tasks_transition(m, t, TASK_UNREACHABLE, "REASON_AGENT_REMOVED",
						 "agent is unreachable");
		}
		json_decref(ids);
	}
}

static int load_one(const char *key, json_t *v, void *arg)
{
	struct master *m = arg;
	struct agent *a = agent_new(m, key);
	const char *s;
	char err[128];
	json_t *attrs;

	if (!a)
		return -ENOMEM;
	s = json_string_value(json_object_get(v, "hostname"));
	snprintf(a->hostname, sizeof(a->hostname), "%s", s ? s : "");
	s = json_string_value(json_object_get(v, "address"));
	snprintf(a->address, sizeof(a->address), "%s", s ? s : "");
	if (resources_from_json(json_object_get(v, "resources"), &a->total, err,
				sizeof(err)) < 0)
		log_warn("event=agent_load_resources id=%s error=\"%s\"", key, err);
	attrs = json_object_get(v, "attributes");
	a->attributes = json_is_object(attrs) ? json_deep_copy(attrs) : json_object();
	a->registered_at = json_number_value(json_object_get(v, "registered_at"));
	a->state = AGENT_RECOVERING;
	m->agents_gen++;
	a->last_seen = m->clock_mono();
	return 0;
}

int agents_load(struct master *m)
{
	int rc = store_scan(m->store, "agents", load_one, m);

	log_info("event=agents_loaded count=%zu state=recovering", m->agent_count);
	return rc;
}

void agents_free(struct master *m)
{
	while (m->agents) {
		struct agent *a = m->agents;

		m->agents = a->next;
		agent_free(a);
	}
	m->agents_tail = NULL;
	m->alloc_cursor = NULL;
	m->agent_count = 0;
	hashmap_destroy(&m->agent_index);
}
