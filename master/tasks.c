/* tasks.c - the master's task records: created from accepted launches, persisted (kind
 * "tasks"), loaded at start, queried and expunged by frameworks, killed. How status updates
 * change a record lives in status.c.
 *
 * Indexes (all O(1) to maintain): task id -> task (hash), and task groups by agent, by
 * framework and by (framework, app), each a list in creation order with a count of live
 * (non-terminal) tasks, so no path walks every task of the cluster to find a few. */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "lib/json_text.h"
#include "lib/log.h"
#include "lib/util.h"
#include "master/master_internal.h"
#include "master/task_query.h"

struct task *tasks_find(struct master *m, const char *task_id)
{
	struct hm_node *n = hashmap_get(&m->task_index, task_id);

	return n ? hm_entry(n, struct task, by_id) : NULL;
}

struct task_group *task_group_get(struct master *m, struct hashmap *map, const char *key)
{
	struct hm_node *n = hashmap_get(map, key);
	size_t len = strlen(key);
	struct task_group *g;

	if (n)
		return hm_entry(n, struct task_group, node);
	g = calloc(1, sizeof(*g) + len + 1);
	if (!g)
		return NULL;
	memcpy(g->key, key, len + 1);
	dl_init(&g->tasks);
	if (hashmap_put(map, &g->node, g->key) < 0) {
		free(g);
		return NULL;
	}
	g->all_next = m->groups;
	m->groups = g;
	return g;
}

static struct task_group *group_find(struct hashmap *map, const char *key)
{
	struct hm_node *n = hashmap_get(map, key);

	return n ? hm_entry(n, struct task_group, node) : NULL;
}

static void app_key(char *out, size_t len, const char *framework_id, const char *app_id)
{
	snprintf(out, len, "%s\x1f%s", framework_id, app_id);
}

struct task_group *tasks_on_agent(struct master *m, const char *agent_id)
{
	return group_find(&m->tasks_by_agent, agent_id);
}

/* Longest ids and names a record keeps (what the launch and agent structs can hold). */
#define TASK_ID_LEN 160
#define FRAMEWORK_ID_LEN 64
#define AGENT_ID_LEN 64
#define HOSTNAME_LEN 256
#define APP_ID_LEN 256

static void group_add(struct task_group *g, struct dlink *link, struct task_group **slot,
		      bool live, bool running)
{
	*slot = g;
	dl_add_tail(&g->tasks, link);
	g->count++;
	g->live += live;
	g->running += running;
}

static void group_del(struct task_group *g, struct dlink *link)
{
	if (!g)
		return;
	dl_del(link);
	g->count--;
}

/* Whether g is the app group of (framework_id, app_id): its key is app_key's. */
static bool is_app_group(const struct task_group *g, const char *framework_id,
			 const char *app_id)
{
	size_t n = strlen(framework_id);

	return strncmp(g->key, framework_id, n) == 0 && g->key[n] == '\x1f' &&
	       strcmp(g->key + n + 1, app_id) == 0;
}

/* Links a new record into every index; its framework, agent and app ids become the keys
 * of its groups. -EEXIST if its id is taken, -ENOMEM. */
static int task_link(struct master *m, struct task *t, const char *framework_id,
		     const char *agent_id, const char *app_id, uint64_t id_hash)
{
	bool live = !task_state_is_terminal(t->rec.state), running = t->rec.state == TASK_RUNNING;
	char key[FRAMEWORK_ID_LEN + APP_ID_LEN + 2];
	struct task_group *ga = m->last_made.agent, *gf = m->last_made.fw, *gp = m->last_made.app;
	int rc;

	if (!ga || strcmp(ga->key, agent_id) != 0)
		ga = task_group_get(m, &m->tasks_by_agent, agent_id);
	if (!gf || strcmp(gf->key, framework_id) != 0)
		gf = task_group_get(m, &m->tasks_by_fw, framework_id);
	if (!gp || !is_app_group(gp, framework_id, app_id)) {
		app_key(key, sizeof(key), framework_id, app_id);
		gp = task_group_get(m, &m->tasks_by_app, key);
	}
	if (!ga || !gf || !gp)
		return -ENOMEM;
	m->last_made.agent = ga;
	m->last_made.fw = gf;
	m->last_made.app = gp;
	rc = hashmap_put_hashed(&m->task_index, &t->by_id, t->rec.task_id, id_hash);
	if (rc < 0)
		return rc;
	dl_add_tail(&m->tasks, &t->all);
	m->task_count++;
	t->rec.agent_id = ga->key;
	t->rec.framework_id = gf->key;
	t->rec.app_id = gp->key + strlen(gf->key) + 1;
	group_add(ga, &t->on_agent, &t->g_agent, live, running);
	group_add(gf, &t->on_fw, &t->g_fw, live, running);
	group_add(gp, &t->on_app, &t->g_app, live, running);
	return 0;
}

static void task_unlink(struct master *m, struct task *t)
{
	hashmap_remove_node(&m->task_index, &t->by_id);
	dl_del(&t->all);
	m->task_count--;
	group_del(t->g_agent, &t->on_agent);
	group_del(t->g_fw, &t->on_fw);
	group_del(t->g_app, &t->on_app);
}

/* Frees an unlinked (or never linked) record. */
static void task_free(struct master *m, struct task *t)
{
	intern_put(&m->strings, t->rec.hostname);
	intern_put(&m->strings, t->extra_text);
	json_decref(t->rec.health);
	free(t->uuids);
	free(t);
}

/* What a new record is made of (from a launch, or from the store). */
struct task_init {
	const char *task_id, *framework_id, *agent_id, *hostname, *app_id;
	enum task_state state;
	const struct resources *res;
	const uint32_t *ports;
	size_t port_count;
	json_t *extra;                  /* NULL: none */
	const char *extra_text;         /* extra printed (compact, sorted keys), or NULL */
	bool has_id_hash;               /* id_hash is hm_hash(task_id), taken early */
	uint64_t id_hash;
};

/* The shared copy of s with one more reference: the cached *last if it is s, else from
 * the table (and then cached in place of the one before). NULL without memory. */
static const char *shared(struct master *m, const char **last, const char *s)
{
	const char *got;

	if (*last && strcmp(*last, s) == 0)
		return intern_ref(*last);
	got = intern_get(&m->strings, s);
	if (got) {
		intern_put(&m->strings, *last);
		*last = intern_ref(got);
	}
	return got;
}

/* shared() for framework data, cached by the caller's pointer to its text. */
static const char *shared_extra(struct master *m, const char *s)
{
	struct shared_by_ptr *e =
		&m->last_made.extra[((uintptr_t)s >> 4) % ARRAY_SIZE(m->last_made.extra)];
	const char *got;

	if (e->from == s && strcmp(e->shared, s) == 0)
		return intern_ref(e->shared);
	got = shared(m, &e->shared, s);
	if (got)
		e->from = s;
	return got;
}

/* One allocation for the record, its port ranges, ports and id; the hostname and extra
 * shared through m->strings; linked into every index. -EEXIST (id taken), -ENOMEM. */
static int task_new(struct master *m, const struct task_init *in, struct task **out)
{
	char id[TASK_ID_LEN], fw[FRAMEWORK_ID_LEN], agent[AGENT_ID_LEN], host[HOSTNAME_LEN];
	char app[APP_ID_LEN];
	size_t nr = in->res->ports.count, idlen;
	struct task_record *r;
	struct task *t;
	char *tail, *text;
	int rc;

	*out = NULL;
	idlen = strcpy_cut(id, sizeof(id), in->task_id);
	strcpy_cut(fw, sizeof(fw), in->framework_id);
	strcpy_cut(agent, sizeof(agent), in->agent_id);
	strcpy_cut(host, sizeof(host), in->hostname);
	strcpy_cut(app, sizeof(app), in->app_id);
	t = calloc(1, sizeof(*t) + nr * sizeof(struct port_range) +
		   in->port_count * sizeof(uint32_t) + idlen + 1);
	if (!t)
		return -ENOMEM;
	r = &t->rec;
	tail = (char *)(t + 1);
	r->resources.cpus = in->res->cpus;
	r->resources.mem = in->res->mem;
	r->resources.disk = in->res->disk;
	r->resources.ports.count = nr;
	if (nr) {
		r->resources.ports.ranges = (struct port_range *)tail;
		memcpy(tail, in->res->ports.ranges, nr * sizeof(struct port_range));
		tail += nr * sizeof(struct port_range);
	}
	r->port_count = in->port_count;
	if (in->port_count) {
		r->ports = (const uint32_t *)tail;
		memcpy(tail, in->ports, in->port_count * sizeof(uint32_t));
		tail += in->port_count * sizeof(uint32_t);
	}
	memcpy(tail, id, idlen + 1);
	r->task_id = tail;
	r->state = in->state;
	r->version = "";
	rc = -ENOMEM;
	r->hostname = shared(m, &m->last_made.hostname, host);
	if (!r->hostname)
		goto fail;
	if (in->extra) {
		text = in->extra_text ? NULL :
			json_dumps(in->extra, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
		t->extra_text = in->extra_text ? shared_extra(m, in->extra_text) :
				text ? intern_get(&m->strings, text) : NULL;
		free(text);
		r->extra = intern_json(t->extra_text);
		if (!r->extra)
			goto fail;
		r->version = json_string_value(json_object_get(r->extra, "version")) ?: "";
	}
	/* (an id cut to TASK_ID_LEN is not the one hashed) */
	rc = task_link(m, t, fw, agent, app, in->has_id_hash && !in->task_id[idlen] ? in->id_hash :
					     hm_hash(t->rec.task_id));
	if (rc < 0)
		goto fail;
	*out = t;
	return 0;
fail:
	task_free(m, t);
	return rc;
}

/* Resources as a JSON object (resources_to_json's shape). */
static void jt_resources(struct jtext *b, const struct resources *r)
{
	JT_LIT(b, "{\"cpus\":");
	jt_num(b, r->cpus);
	JT_LIT(b, ",\"mem\":");
	jt_num(b, r->mem);
	JT_LIT(b, ",\"disk\":");
	jt_num(b, r->disk);
	JT_LIT(b, ",\"ports\":[");
	for (size_t i = 0; i < r->ports.count; i++) {
		if (i)
			JT_LIT(b, ",[");
		else
			JT_LIT(b, "[");
		jt_int(b, r->ports.ranges[i].begin);
		JT_LIT(b, ",");
		jt_int(b, r->ports.ranges[i].end);
		JT_LIT(b, "]");
	}
	JT_LIT(b, "]}");
}

/* A record's store key: its creation sequence number in 16 hex digits, not its id, so
 * that the records of a placement wave go in at the end of the table and stay beside each
 * other (a commit then writes few pages; ids would scatter them over the whole table). */
#define TASK_KEY_LEN 17

static void seq_key(uint64_t v, char key[TASK_KEY_LEN])
{
	static const char hex[] = "0123456789abcdef";

	for (int i = 15; i >= 0; i--, v >>= 4)       /* "%016" PRIx64, without printf */
		key[i] = hex[v & 0xf];
	key[16] = '\0';
}

static void task_key(const struct task *t, char key[TASK_KEY_LEN])
{
	seq_key(t->store_seq, key);
}

uint64_t tasks_key_seq(const char *key)
{
	uint64_t v = 0;

	if (strlen(key) != TASK_KEY_LEN - 1)
		return 0;
	for (const char *p = key; *p; p++) {
		if (!isxdigit((unsigned char)*p) || isupper((unsigned char)*p))
			return 0;
		v = v * 16 + (uint64_t)(isdigit((unsigned char)*p) ? *p - '0' : *p - 'a' + 10);
	}
	return v;
}

/* The fields of a record that may change once it is stored (all of them: what a task log
 * update carries, task_log.h), health_text being its health as JSON text or NULL. */
static void jt_task_changes(struct jtext *b, const struct task *t, const char *health_text)
{
	const struct task_record *r = &t->rec;

	JT_LIT(b, "\"state\":");
	jt_str(b, task_state_name(r->state));
	JT_LIT(b, ",\"started_at\":");
	jt_num(b, r->started_at);
	JT_LIT(b, ",\"updated_at\":");
	jt_num(b, r->updated_at);
	JT_LIT(b, ",\"health_checked\":");
	jt_bool(b, r->health_checked);
	JT_LIT(b, ",\"kill_requested\":");
	jt_bool(b, t->kill_requested);
	JT_LIT(b, ",\"kill_grace\":");
	jt_num(b, t->kill_grace);
	JT_LIT(b, ",\"uuids\":");
	jt_raw(b, "[");
	for (unsigned i = 0; i < t->uuid_cap; i++) {
		if (!t->uuids[i][0])
			continue;
		jt_sep(b);
		jt_str(b, t->uuids[i]);
	}
	jt_raw(b, "]");
	JT_LIT(b, ",\"uuid_next\":");
	jt_int(b, t->uuid_next);
	JT_LIT(b, ",\"health\":");
	jt_raw(b, health_text ? health_text : "null");
}

/* The fields a record gets at creation and keeps (the part a task log update leaves out). */
static void jt_task_fixed(struct jtext *b, const struct task *t)
{
	const struct task_record *r = &t->rec;

	JT_LIT(b, "\"task_id\":");
	jt_str(b, r->task_id);
	JT_LIT(b, ",\"framework_id\":");
	jt_str(b, r->framework_id);
	JT_LIT(b, ",\"agent_id\":");
	jt_str(b, r->agent_id);
	JT_LIT(b, ",\"hostname\":");
	jt_str(b, r->hostname);
	JT_LIT(b, ",\"app_id\":");
	jt_str(b, r->app_id);
	JT_LIT(b, ",\"resources\":");
	jt_resources(b, &r->resources);
	JT_LIT(b, ",\"ports\":");
	jt_raw(b, "[");
	for (size_t i = 0; i < r->port_count; i++) {
		jt_sep(b);
		jt_int(b, r->ports[i]);
	}
	jt_raw(b, "]");
	JT_LIT(b, ",\"staged_at\":");
	jt_num(b, r->staged_at);
	JT_LIT(b, ",\"extra\":");
	jt_raw(b, t->extra_text ? t->extra_text : "null");
}

/* The stored record as JSON text (the TASKINFO sent to the agent is not stored: see
 * tasks_create), or with changes_only what a task log update carries. Written straight as
 * text, by the store writer (task_snap_text). */
static char *task_text(const struct task *t, const char *health_text, bool changes_only)
{
	struct jtext b;

	jt_init(&b);
	jt_reserve(&b, 1000);           /* a record is ~700 bytes: one 1 KiB buffer */
	jt_raw(&b, "{");
	if (!changes_only) {
		jt_task_fixed(&b, t);
		jt_raw(&b, ",");
	}
	jt_task_changes(&b, t, health_text);
	jt_raw(&b, "}");
	return jt_take(&b);
}

/* What task_text reads of a task, copied in one allocation under master->lock: the store
 * writer prints it without the lock (printing records was ~10% of the master's CPU at 1M
 * tasks, all of it in the lock the allocator and the status path need). t is a shallow
 * copy whose pointers lead into area. */
struct task_snap {
	struct task t;
	const char *health_text;
	_Alignas(8) char area[];
};

static size_t up8(size_t n)
{
	return (n + 7) & ~(size_t)7;
}

/* Copies n bytes of src to *at (8-aligned) and returns where they went. */
static void *place(char **at, const void *src, size_t n)
{
	void *dst = *at;

	if (n)
		memcpy(dst, src, n);
	*at += up8(n);
	return dst;
}

static struct task_snap *task_snap(const struct task *t)
{
	const struct task_record *r = &t->rec;
	const char *strs[6] = { r->task_id, r->framework_id, r->agent_id, r->hostname, r->app_id,
				t->extra_text };
	size_t lens[6], need = 0, nranges = r->resources.ports.count;
	char *health = r->health ? json_dumps(r->health, JSON_COMPACT) : NULL;
	size_t hlen = health ? strlen(health) + 1 : 0;
	struct task_snap *s;
	char *at;

	for (int i = 0; i < 6; i++) {
		lens[i] = strs[i] ? strlen(strs[i]) + 1 : 0;
		need += up8(lens[i]);
	}
	need += up8(nranges * sizeof(struct port_range)) + up8(r->port_count * sizeof(uint32_t)) +
		up8((size_t)t->uuid_cap * sizeof(*t->uuids)) + up8(hlen);
	s = malloc(sizeof(*s) + need);
	if (!s) {
		free(health);
		return NULL;
	}
	s->t = *t;
	at = s->area;
	s->t.rec.task_id = lens[0] ? place(&at, strs[0], lens[0]) : NULL;
	s->t.rec.framework_id = lens[1] ? place(&at, strs[1], lens[1]) : NULL;
	s->t.rec.agent_id = lens[2] ? place(&at, strs[2], lens[2]) : NULL;
	s->t.rec.hostname = lens[3] ? place(&at, strs[3], lens[3]) : NULL;
	s->t.rec.app_id = lens[4] ? place(&at, strs[4], lens[4]) : NULL;
	s->t.extra_text = lens[5] ? place(&at, strs[5], lens[5]) : NULL;
	s->t.rec.resources.ports.ranges = place(&at, r->resources.ports.ranges,
						nranges * sizeof(struct port_range));
	s->t.rec.ports = place(&at, r->ports, r->port_count * sizeof(uint32_t));
	s->t.uuids = place(&at, t->uuids, (size_t)t->uuid_cap * sizeof(*t->uuids));
	s->health_text = health ? place(&at, health, hlen) : NULL;
	free(health);
	return s;
}

static char *task_snap_text(const void *p, bool update)
{
	const struct task_snap *s = p;

	return task_text(&s->t, s->health_text, update);
}

/* full: the whole record even if it was stored before (a move into the task log). */
static int persist(struct master *m, struct task *t, bool full)
{
	struct task_snap *snap = task_snap(t);
	char key[TASK_KEY_LEN];

	if (!snap) {
		log_error("event=task_persist_failed task=%s error=\"out of memory\"",
			  t->rec.task_id);
		return -ENOMEM;
	}
	if (!t->store_seq) {
		t->store_seq = ++m->task_store_seq;
		full = true;
	}
	task_key(t, key);
	if (full)
		master_store_put_deferred(m, "tasks", key, snap, task_snap_text);
	else
		master_store_update_deferred(m, "tasks", key, snap, task_snap_text);
	return 0;
}

int tasks_persist(struct master *m, struct task *t)
{
	return persist(m, t, false);
}

void tasks_set_stats(struct task *t, const struct task_net_stats *stats)
{
	t->rec.stats = *stats;
	t->rec.has_stats = true;
}

static const char *str(json_t *obj, const char *key)
{
	return json_string_value(json_object_get(obj, key)) ?: "";
}

static double num(json_t *obj, const char *key)
{
	return json_number_value(json_object_get(obj, key));
}

static void uuids_from_json(struct task *t, json_t *j)
{
	json_t *v = json_object_get(j, "uuids");
	size_t i, n = json_array_size(v);

	if (n > TASK_UUID_MEMORY)
		n = TASK_UUID_MEMORY;
	if (n) {
		t->uuid_cap = n == TASK_UUID_MEMORY ? TASK_UUID_MEMORY : 2;
		while (t->uuid_cap < n)
			t->uuid_cap *= 2;
		t->uuids = calloc(t->uuid_cap, sizeof(*t->uuids));
		if (!t->uuids)
			t->uuid_cap = 0;
	}
	for (i = 0; i < n && i < t->uuid_cap; i++)
		snprintf(t->uuids[i], sizeof(t->uuids[i]), "%s",
			 json_string_value(json_array_get(v, i)) ?: "");
	t->uuid_next = (unsigned)json_integer_value(json_object_get(j, "uuid_next")) %
		       TASK_UUID_MEMORY;
	if (t->uuid_next > t->uuid_cap)
		t->uuid_next = t->uuid_cap % TASK_UUID_MEMORY;
}

/* A record from the store, linked. -EEXIST (duplicate id), -ENOMEM. */
static int task_from_json(struct master *m, const char *key, json_t *j, struct task **out)
{
	struct resources res;
	uint32_t ports[64];
	struct task_init in = {
		.task_id = str(j, "task_id")[0] ? str(j, "task_id") : key,
		.framework_id = str(j, "framework_id"),
		.agent_id = str(j, "agent_id"), .hostname = str(j, "hostname"),
		.app_id = str(j, "app_id"), .res = &res, .ports = ports,
	};
	struct task *t;
	json_t *v;
	size_t i;
	int st, rc;
	char err[128];

	resources_init(&res);
	st = task_state_parse(str(j, "state"));
	in.state = st < 0 ? TASK_UNKNOWN : (enum task_state)st;
	if (resources_from_json(json_object_get(j, "resources"), &res, err, sizeof(err)) < 0)
		log_warn("event=task_load_resources task=%s error=\"%s\"", key, err);
	json_array_foreach(json_object_get(j, "ports"), i, v) {
		if (in.port_count < ARRAY_SIZE(ports))
			ports[in.port_count++] = (uint32_t)json_integer_value(v);
	}
	v = json_object_get(j, "extra");
	in.extra = json_is_null(v) ? NULL : v;
	rc = task_new(m, &in, &t);
	resources_free(&res);
	if (rc < 0)
		return rc;
	t->store_seq = tasks_key_seq(key);
	if (t->store_seq > m->task_store_seq)
		m->task_store_seq = t->store_seq;
	t->rec.staged_at = num(j, "staged_at");
	t->rec.started_at = num(j, "started_at");
	t->rec.updated_at = num(j, "updated_at");
	v = json_object_get(j, "health");
	t->rec.health = json_is_object(v) ? json_incref(v) : NULL;
	t->kill_requested = json_is_true(json_object_get(j, "kill_requested"));
	t->rec.kill_asked = t->kill_requested || t->rec.state == TASK_KILLING;
	v = json_object_get(j, "health_checked");
	/* Records written before the field: the app scheduler's mark in extra. */
	t->rec.health_checked = v ? json_is_true(v) :
		json_is_true(json_object_get(t->rec.extra, "healthChecked"));
	t->kill_grace = num(j, "kill_grace");
	uuids_from_json(t, j);
	*out = t;
	return 0;
}

/* A task's resources count on its agent while it is not terminal, and for its framework's
 * DRF share while it is neither terminal nor unreachable (an unreachable agent is out of
 * the cluster totals, so its tasks are out of the shares too). */
static bool counts_for_agent(enum task_state s)
{
	return !task_state_is_terminal(s);
}

static bool counts_for_framework(enum task_state s)
{
	return !task_state_is_terminal(s) && s != TASK_UNREACHABLE;
}

static void account_agent(struct master *m, struct task *t, int sign)
{
	struct agent *a = agents_find(m, t->rec.agent_id);

	if (!a)
		return;
	if (sign > 0)
		resources_add(&a->used, &t->rec.resources);
	else
		resources_subtract(&a->used, &t->rec.resources);
}

static void account_framework(struct framework *fw, const struct task *t, int sign)
{
	if (!fw)
		return;
	fw->allocated.cpus += sign * t->rec.resources.cpus;
	fw->allocated.mem += sign * t->rec.resources.mem;
	fw->allocated.disk += sign * t->rec.resources.disk;
	if (fw->allocated.cpus < 1e-9)
		fw->allocated.cpus = 0;
	if (fw->allocated.mem < 1e-9)
		fw->allocated.mem = 0;
	if (fw->allocated.disk < 1e-9)
		fw->allocated.disk = 0;
}

void tasks_account(struct master *m, struct task *t, enum task_state from, enum task_state to)
{
	struct framework *fw = frameworks_find(m, t->rec.framework_id);
	bool was_live = !task_state_is_terminal(from), live = !task_state_is_terminal(to);

	(void)m;
	if (was_live != live) {
		int d = live ? 1 : -1;

		if (t->g_agent)
			t->g_agent->live += d;
		if (t->g_fw)
			t->g_fw->live += d;
		if (t->g_app)
			t->g_app->live += d;
	}
	if ((from == TASK_RUNNING) != (to == TASK_RUNNING)) {
		int d = to == TASK_RUNNING ? 1 : -1;

		if (t->g_agent)
			t->g_agent->running += d;
		if (t->g_fw)
			t->g_fw->running += d;
		if (t->g_app)
			t->g_app->running += d;
	}
	if (counts_for_agent(from) != counts_for_agent(to))
		account_agent(m, t, counts_for_agent(to) ? +1 : -1);
	if (counts_for_framework(from) != counts_for_framework(to))
		account_framework(fw, t, counts_for_framework(to) ? +1 : -1);
}

/* What a store scan gathers for migrate(): ids of task records in an older shape, or keys
 * of "task_infos" records. */
struct load_ctx {
	struct master *m;
	char **old;
	size_t n_old, cap_old;
	struct task *last;      /* the task load_one linked last (NULL: none) */
};

/* Adds a copy of s to c->old; false without memory. */
static bool remember(struct load_ctx *c, const char *s)
{
	if (c->n_old == c->cap_old) {
		size_t cap = c->cap_old ? c->cap_old * 2 : 64;
		char **g = realloc(c->old, cap * sizeof(*g));

		if (!g)
			return false;
		c->old = g;
		c->cap_old = cap;
	}
	if (!(c->old[c->n_old] = strdup(s)))
		return false;
	c->n_old++;
	return true;
}

static int load_one(const char *key, json_t *value, void *arg)
{
	struct load_ctx *c = arg;
	struct task *t;
	int rc = task_from_json(c->m, key, value, &t);

	if (rc == -EEXIST) {
		log_warn("event=task_load_duplicate task=%s", key);
		return 0;
	}
	if (rc < 0)
		return rc;
	c->last = t;
	if (counts_for_agent(t->rec.state))
		account_agent(c->m, t, +1);
	if (t->store_seq && !json_object_get(value, "info") &&
	    strcmp(str(value, "task_id"), t->rec.task_id) == 0)
		return 0;       /* the current format, naming its task */
	remember(c, t->rec.task_id);    /* (no memory: stays in its format, which loads) */
	return 0;
}

/* Rewrites records of earlier formats (keyed by task id, or the TASKINFO inside) in the
 * current one, and deletes the TASKINFO records of kind "task_infos", which nothing reads
 * (after the scans: a scan must not see its table change under it). One transaction for
 * all of them. */
static void migrate(struct master *m, char **ids, size_t n, char **infos, size_t n_infos)
{
	bool tx = (n || n_infos) && store_begin(m->store) == 0;

	for (size_t i = 0; i < n; i++) {
		struct task *t = tasks_find(m, ids[i]);

		if (t && !t->store_seq)         /* keyed by its id: gets a key of its own */
			store_del(m->store, "tasks", ids[i]);
		if (t)
			tasks_persist(m, t);
		free(ids[i]);
	}
	for (size_t i = 0; i < n_infos; i++) {
		store_del(m->store, "task_infos", infos[i]);
		free(infos[i]);
	}
	if (tx && store_commit(m->store) < 0)
		log_error("event=task_migrate_failed count=%zu", n + n_infos);
	if (n || n_infos)
		log_info("event=tasks_migrated records=%zu taskinfos_deleted=%zu", n, n_infos);
}

static int collect_key(const char *key, json_t *value, void *arg)
{
	(void)value;
	remember(arg, key);     /* (no memory: deleted at a later start) */
	return 0;
}

/* A record of the task log: its put with its last update laid over it. */
static int load_logged(uint64_t seq, const char *text, size_t len, const char *update,
		       size_t update_len, void *arg)
{
	char key[TASK_KEY_LEN];
	json_error_t jerr;
	json_t *v = json_loadb(text, len, 0, &jerr), *u = NULL;
	int rc;

	seq_key(seq, key);
	if (v && update && (!(u = json_loadb(update, update_len, 0, &jerr)) ||
			    json_object_update(v, u) < 0)) {
		json_decref(v);
		v = NULL;
	}
	json_decref(u);
	if (!v) {
		log_error("event=task_log_corrupt key=%s error=\"%s\"", key, jerr.text);
		return 0;       /* one bad record must not hide the others */
	}
	rc = load_one(key, v, arg);
	json_decref(v);
	return rc;
}

/* Rows of kind "tasks" still in the store while the master has a task log (written before
 * it had one): each is loaded (unless the log has its task already: a move that stopped
 * after the log's sync) and both its key and its task id are remembered for the move. */
struct move_ctx {
	struct load_ctx load, keys, ids;
};

static int load_from_store(const char *key, json_t *value, void *arg)
{
	struct move_ctx *mc = arg;
	const char *id = str(value, "task_id");
	int rc;

	remember(&mc->keys, key);       /* (no memory: moved at a later start) */
	if (*id && tasks_find(mc->load.m, id))
		return 0;
	mc->load.last = NULL;
	rc = load_one(key, value, &mc->load);
	if (rc == 0 && mc->load.last)   /* (its id may be the key: an older shape) */
		remember(&mc->ids, mc->load.last->rec.task_id);
	return rc;
}

static void free_list(struct load_ctx *c)
{
	for (size_t i = 0; i < c->n_old; i++)
		free(c->old[i]);
	free(c->old);
}

/* Writes the tasks loaded from the store into the log (one sync), then deletes their rows
 * from the store (one transaction): a crash between the two finds them in both, and the
 * log's copy wins. */
static void move_to_log(struct master *m, struct move_ctx *mc)
{
	bool tx;

	if (!mc->keys.n_old)
		return;
	for (size_t i = 0; i < mc->ids.n_old; i++) {
		struct task *t = tasks_find(m, mc->ids.old[i]);

		if (t)
			persist(m, t, true);    /* a key of its own if it was keyed by its id */
	}
	if (task_log_sync(m->task_log) < 0)
		return;                         /* logged; the rows stay for the next start */
	tx = store_begin(m->store) == 0;
	for (size_t i = 0; i < mc->keys.n_old; i++)
		store_del(m->store, "tasks", mc->keys.old[i]);
	if (tx && store_commit(m->store) < 0)
		log_error("event=task_move_failed count=%zu", mc->keys.n_old);
	else
		log_info("event=tasks_moved_to_log records=%zu", mc->keys.n_old);
}

int tasks_load(struct master *m)
{
	struct load_ctx c = { .m = m }, infos = { .m = m };
	struct move_ctx mc = { .load = { .m = m } };
	int rc = 0;

	if (m->task_log) {
		rc = task_log_scan(m->task_log, load_logged, &c);
		m->task_log_batch = true;       /* one sync for the moves, not one each */
		if (rc == 0)
			rc = store_scan(m->store, "tasks", load_from_store, &mc);
		if (rc == 0)
			move_to_log(m, &mc);
		m->task_log_batch = false;
		free_list(&mc.keys);
		free_list(&mc.ids);
		free_list(&mc.load);    /* older shapes among them: move_to_log rewrote them */
	} else {
		rc = store_scan(m->store, "tasks", load_one, &c);
	}
	store_scan(m->store, "task_infos", collect_key, &infos);
	migrate(m, c.old, c.n_old, infos.old, infos.n_old);
	free(c.old);
	free(infos.old);
	log_info("event=tasks_loaded count=%zu", m->task_count);
	return rc;
}

void tasks_attach_framework(struct master *m, struct framework *fw)
{
	struct task_group *g = group_find(&m->tasks_by_fw, fw->id);

	if (!g)
		return;
	for (struct dlink *l = g->tasks.next; l != &g->tasks; l = l->next) {
		struct task *t = dl_entry(l, struct task, on_fw);

		if (counts_for_framework(t->rec.state))
			account_framework(fw, t, +1);
	}
}

/* A jansson value as its JSON text (NULL: null). */
static void jt_json(struct jtext *b, json_t *v)
{
	char *text;

	if (!v) {
		jt_raw(b, "null");
		return;
	}
	text = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
	if (!text) {
		b->failed = true;
		return;
	}
	jt_raw(b, text);
	free(text);
}

/* The members of TASKINFO that task_launch.shared_info may hold. */
static void shared_info(struct jtext *b, const struct task_launch *l)
{
	jt_key(b, "command");
	jt_json(b, l->command);
	jt_key(b, "env");
	if (l->env)
		jt_json(b, l->env);
	else
		jt_raw(b, "{}");
	jt_key(b, "labels");
	if (l->labels)
		jt_json(b, l->labels);
	else
		jt_raw(b, "{}");
	if (l->user) {
		jt_key(b, "user");
		jt_str(b, l->user);
	}
	jt_key(b, "kill_grace_period_seconds");
	jt_num(b, l->kill_grace_period_seconds);
}

char *master_shared_info_text(const struct task_launch *l)
{
	struct jtext b;

	jt_init(&b);
	shared_info(&b, l);
	return jt_take(&b);
}

/* The element of POST /v1/launch for this task, {"framework_id":..,"task":TASKINFO}, as
 * JSON text (docs/architecture.md), written directly: a launch costs no tree. */
static char *launch_text(const struct framework *fw, const struct task_launch *l,
			 const struct resources *res)
{
	struct jtext b;

	jt_init(&b);
	jt_reserve(&b, 1000);
	JT_LIT(&b, "{\"framework_id\":");
	jt_str(&b, fw->id);
	JT_LIT(&b, ",\"task\":{\"task_id\":");
	jt_str(&b, l->task_id);
	JT_LIT(&b, ",\"name\":");
	jt_str(&b, l->name[0] ? l->name : l->task_id);
	JT_LIT(&b, ",\"app_id\":");
	jt_str(&b, l->app_id);
	JT_LIT(&b, ",\"resources\":");
	jt_resources(&b, res);
	JT_LIT(&b, ",\"ports\":");
	jt_raw(&b, "[");
	for (size_t i = 0; i < l->port_count; i++) {
		jt_sep(&b);
		jt_int(&b, l->ports[i]);
	}
	jt_raw(&b, "]");
	if (l->shared_info) {
		jt_raw(&b, ",");
		jt_raw(&b, l->shared_info);
	} else {
		shared_info(&b, l);
	}
	if (json_array_size(l->health_checks) > 0) {
		JT_LIT(&b, ",\"health_checks\":");
		jt_json(&b, l->health_checks);
	}
	jt_raw(&b, "}}");
	return jt_take(&b);
}

int tasks_create(struct master *m, struct framework *fw, struct agent *a,
		 const struct task_launch *l, const struct resources *res, struct task **out)
{
	struct task_init in = {
		.task_id = l->task_id, .framework_id = fw->id, .agent_id = a->id,
		.hostname = a->hostname, .app_id = l->app_id, .state = TASK_STAGING, .res = res,
		.ports = l->ports, .port_count = l->port_count, .extra = l->extra,
		.extra_text = l->extra ? l->extra_text : NULL,
	};
	struct task *t;
	char *body;
	int rc;

	/* The id's slot in the task index (a cache miss at a million tasks) loads while the
	 * launch text is printed. */
	in.id_hash = hashmap_prefetch(&m->task_index, l->task_id);
	in.has_id_hash = true;
	body = launch_text(fw, l, res);
	if (!body)
		return -ENOMEM;
	rc = task_new(m, &in, &t);
	if (rc < 0) {
		free(body);
		return rc;
	}
	t->rec.staged_at = t->rec.updated_at = m->clock_wall();
	t->rec.health_checked = json_array_size(l->health_checks) > 0;
	t->kill_grace = l->kill_grace_period_seconds;
	/* Only the record is stored, not the TASKINFO (as Mesos's master): the agent keeps
	 * what it was sent, a launch lost with a master restart is reconciled as
	 * TASK_LOST and replaced by its framework, which knows how to build it again. */
	tasks_persist(m, t);
	account_agent(m, t, +1);
	account_framework(fw, t, +1);
	agent_link_launch(m, a, t, body);
	log_info("event=task_launching task=%s framework=%s agent=%s cpus=%g mem=%g",
		 t->rec.task_id, fw->id, a->id, res->cpus, res->mem);
	if (out)
		*out = t;
	return 0;
}

const struct task_record *master_find_task(struct master *m, const char *task_id)
{
	struct task *t = tasks_find(m, task_id);

	return t ? &t->rec : NULL;
}

/* Walks a list of tasks linked through the member at offset off; fn may expunge the task
 * it is given (the next one is taken first). */
static void walk(struct dlink *head, size_t off,
		 void (*fn)(const struct task_record *t, void *arg), void *arg)
{
	struct dlink *l = head->next, *next;

	for (; l != head; l = next) {
		next = l->next;
		fn(&((struct task *)((char *)l - off))->rec, arg);
	}
}

void master_for_each_task(struct master *m, const char *framework_id,
			  void (*fn)(const struct task_record *t, void *arg), void *arg)
{
	struct task_group *g;

	if (!framework_id) {
		walk(&m->tasks, offsetof(struct task, all), fn, arg);
		return;
	}
	g = group_find(&m->tasks_by_fw, framework_id);
	if (g)
		walk(&g->tasks, offsetof(struct task, on_fw), fn, arg);
}

static struct task_group *app_group(struct master *m, const char *framework_id,
				    const char *app_id)
{
	char key[FRAMEWORK_ID_LEN + APP_ID_LEN + 2];

	app_key(key, sizeof(key), framework_id, app_id);
	return group_find(&m->tasks_by_app, key);
}

void master_for_each_app_task(struct master *m, const char *framework_id, const char *app_id,
			      void (*fn)(const struct task_record *t, void *arg), void *arg)
{
	struct task_group *g = app_group(m, framework_id, app_id);

	if (g)
		walk(&g->tasks, offsetof(struct task, on_app), fn, arg);
}

size_t master_app_live_tasks(struct master *m, const char *framework_id, const char *app_id)
{
	struct task_group *g = app_group(m, framework_id, app_id);

	return g ? g->live : 0;
}

size_t master_app_running_tasks(struct master *m, const char *framework_id, const char *app_id)
{
	struct task_group *g = app_group(m, framework_id, app_id);

	return g ? g->running : 0;
}

size_t master_framework_live_tasks(struct master *m, const char *framework_id)
{
	struct task_group *g = group_find(&m->tasks_by_fw, framework_id);

	return g ? g->live : 0;
}

void master_expunge_task(struct master *m, const char *task_id)
{
	struct task *t = tasks_find(m, task_id);

	if (!t)
		return;
	/* A non-terminal task forgotten here is killed by the next reconciliation. */
	tasks_account(m, t, t->rec.state, TASK_GONE);
	task_unlink(m, t);
	if (t->store_seq) {
		char key[TASK_KEY_LEN];

		task_key(t, key);
		master_store_put(m, "tasks", key, NULL);
	}
	task_free(m, t);
}

int master_kill_task(struct master *m, const char *task_id, double grace_period_seconds)
{
	struct task *t = tasks_find(m, task_id);
	struct agent *a;

	if (!t || task_state_is_terminal(t->rec.state))
		return -ENOENT;
	t->kill_requested = true;
	t->rec.kill_asked = true;
	t->kill_grace = grace_period_seconds;
	if (t->rec.state != TASK_UNREACHABLE) {
		tasks_account(m, t, t->rec.state, TASK_KILLING);
		t->rec.state = TASK_KILLING;
	}
	t->rec.updated_at = m->clock_wall();
	tasks_persist(m, t);
	a = agents_find(m, t->rec.agent_id);
	if (a && a->state == AGENT_ACTIVE)
		agent_link_kill(m, t, grace_period_seconds);
	log_info("event=task_kill task=%s agent=%s grace=%g", task_id, t->rec.agent_id,
		 grace_period_seconds);
	return 0;
}

int tasks_init(struct master *m)
{
	dl_init(&m->tasks);
	if (hashmap_init(&m->task_index) < 0 || hashmap_init(&m->tasks_by_agent) < 0 ||
	    hashmap_init(&m->tasks_by_fw) < 0 || hashmap_init(&m->tasks_by_app) < 0 ||
	    intern_init(&m->strings) < 0)
		return -ENOMEM;
	return 0;
}

void tasks_free(struct master *m)
{
	while (m->tasks.next && !dl_empty(&m->tasks)) {
		struct task *t = dl_entry(m->tasks.next, struct task, all);

		task_unlink(m, t);
		task_free(m, t);
	}
	while (m->groups) {
		struct task_group *g = m->groups;

		m->groups = g->all_next;
		free(g);
	}
	hashmap_destroy(&m->task_index);
	hashmap_destroy(&m->tasks_by_agent);
	hashmap_destroy(&m->tasks_by_fw);
	hashmap_destroy(&m->tasks_by_app);
	intern_put(&m->strings, m->last_made.hostname);
	for (size_t i = 0; i < ARRAY_SIZE(m->last_made.extra); i++)
		intern_put(&m->strings, m->last_made.extra[i].shared);
	memset(&m->last_made, 0, sizeof(m->last_made));
	intern_destroy(&m->strings);
}
