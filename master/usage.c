/* usage.c - the master's usage model (see usage.h, usage_model.h): applying the agents'
 * batches to the per-task records and the app/tenant sums, durability (the usage journal,
 * group-committed by a writer thread), checkpoints of the changed records into the store
 * (kinds usage_tasks, usage_agents, usage_retired) by a checkpoint thread, the load and
 * journal replay at start, and retention (finished tasks folded into their app's totals). */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lib/log.h"
#include "lib/util.h"
#include "master/master_internal.h"
#include "master/usage_model.h"

#define KIND_TASKS "usage_tasks"
#define KIND_AGENTS "usage_agents"
#define KIND_RETIRED "usage_retired"
#define CKPT_INTERVAL 10.0                  /* seconds between checkpoints, at least */
#define CKPT_SHARE 20.0                     /* and 20 x the last one's duration (<= 5% busy) */
#define CKPT_JOURNAL_BYTES (1024u << 20)    /* or once the journal is this big */
#define APP_ID_MAX 4096
#define GATHER_SECONDS 0.004                /* journal writes at most every 4 ms */

const struct usage_field usage_fields[] = {
	{ "rx_bytes", "pacer_task_receive_bytes_total", "Bytes received by the task (IP packets, headers included).", true, 1 },
	{ "tx_bytes", "pacer_task_transmit_bytes_total", "Bytes sent by the task (IP packets, headers included).", true, 1 },
	{ "rx_packets", "pacer_task_receive_packets_total", "Packets received by the task.", true, 1 },
	{ "tx_packets", "pacer_task_transmit_packets_total", "Packets sent by the task.", true, 1 },
	{ "tcp_connects", "pacer_task_tcp_connects_total", "TCP connections the task opened (connect).", true, 1 },
	{ "tcp_accepts", "pacer_task_tcp_accepts_total", "TCP connections the task accepted.", true, 1 },
	{ "udp_rx_datagrams", "pacer_task_udp_receive_datagrams_total", "UDP datagrams received by the task.", true, 1 },
	{ "udp_tx_datagrams", "pacer_task_udp_transmit_datagrams_total", "UDP datagrams sent by the task.", true, 1 },
	{ "policy_denials", "pacer_task_policy_denials_total", "Network operations of the task denied by policy.", true, 1 },
	{ "cpu_ns", "pacer_task_cpu_seconds_total", "CPU time used by the task's threads.", true, 1e-9 },
	{ "vfs_read_bytes", "pacer_task_read_bytes_total", "Bytes the task read through read system calls.", true, 1 },
	{ "vfs_write_bytes", "pacer_task_write_bytes_total", "Bytes the task wrote through write system calls.", true, 1 },
	{ "oom_kills", "pacer_task_oom_kills_total", "Processes of the task killed for exceeding its memory limit.", true, 1 },
	{ "mem_bytes", "pacer_task_memory_bytes", "Memory the task's cgroup uses now (0 once it ended).", false, 1 },
	{ "mem_peak_bytes", "pacer_task_memory_peak_bytes", "Highest memory use of the task's cgroup.", false, 1 },
};
const size_t usage_nfields = ARRAY_SIZE(usage_fields);
_Static_assert(ARRAY_SIZE(usage_fields) == USAGE_NFIELDS, "usage_wire.h's USAGE_NFIELDS");

void usage_tenant_of(const char *app_id, char *out, size_t outlen)
{
	const char *p = app_id ? app_id : "";
	size_t n;

	while (*p == '/')
		p++;
	n = strcspn(p, "/");
	if (n >= outlen)
		n = outlen - 1;
	memcpy(out, p, n);
	out[n] = '\0';
}

/* ---- the model ---- */

static struct usage_group *group_get(struct usage *u, const char *app_id)
{
	struct hm_node *n = hashmap_get(&u->apps, app_id);
	struct usage_group *a, *t;
	char tenant[256];
	size_t len;

	if (n)
		return hm_entry(n, struct usage_group, node);
	usage_tenant_of(app_id, tenant, sizeof(tenant));
	n = hashmap_get(&u->tenants, tenant);
	if (n)
		t = hm_entry(n, struct usage_group, node);
	else {
		len = strlen(tenant);
		t = calloc(1, sizeof(*t) + len + 1);
		if (!t)
			return NULL;
		memcpy(t->key, tenant, len + 1);
		hashmap_put(&u->tenants, &t->node, t->key);
		if (u->tenants_tail)
			u->tenants_tail->next = t;
		else
			u->tenants_head = t;
		u->tenants_tail = t;
	}
	len = strlen(app_id);
	a = calloc(1, sizeof(*a) + len + 1);
	if (!a)
		return NULL;
	memcpy(a->key, app_id, len + 1);
	a->tenant = t;
	hashmap_put(&u->apps, &a->node, a->key);
	if (u->apps_tail)
		u->apps_tail->next = a;
	else
		u->apps_head = a;
	u->apps_tail = a;
	if (t->last_app)
		t->last_app->next_app = a;
	else
		t->first_app = a;
	t->last_app = a;
	return a;
}

static struct usage_agent *agent_get(struct usage *u, const char *id)
{
	struct hm_node *n = hashmap_get(&u->agents, id);
	struct usage_agent *a;
	size_t len = strlen(id);

	if (n)
		return hm_entry(n, struct usage_agent, node);
	a = calloc(1, sizeof(*a) + len + 1);
	if (!a)
		return NULL;
	memcpy(a->id, id, len + 1);
	hashmap_put(&u->agents, &a->node, a->id);
	return a;
}

static void mark_agent(struct usage *u, struct usage_agent *a)
{
	if (a->dirty)
		return;
	a->dirty = true;
	a->dirty_next = u->dirty_agents;
	u->dirty_agents = a;
}

static void mark_task(struct usage *u, struct usage_task *t)
{
	if (t->dirty)
		return;
	t->dirty = true;
	t->dirty_next = u->dirty_tasks;
	u->dirty_tasks = t;
}

/* A task's share of one group's sums, added (sign 1) or taken out (-1). */
static void group_adjust(struct usage_group *g, const struct usage_task *t, int sign)
{
	bool live = !t->final;

	for (size_t i = 0; i < USAGE_NFIELDS; i++) {
		if (usage_fields[i].counter || live)
			g->sum[i] += sign * (__int128)t->c[i];
		if (live && t->has_rates && usage_fields[i].counter)
			g->rates[i] += sign * t->r[i];
	}
	g->tasks += sign;
	g->running += sign * live;
	g->rated += sign * (live && t->has_rates);
	if (!g->rated)
		memset(g->rates, 0, sizeof(g->rates));      /* no drift left behind */
}

static void contribute(struct usage_task *t, int sign)
{
	group_adjust(t->app, t, sign);
	group_adjust(t->app->tenant, t, sign);
}

static void app_link(struct usage_group *a, struct usage_task *t)
{
	t->app = a;
	t->next = NULL;
	t->prev = a->last;
	if (a->last)
		a->last->next = t;
	else
		a->first = t;
	a->last = t;
}

static void app_unlink(struct usage_task *t)
{
	struct usage_group *a = t->app;

	if (t->prev)
		t->prev->next = t->next;
	else
		a->first = t->next;
	if (t->next)
		t->next->prev = t->prev;
	else
		a->last = t->prev;
}

/* The record of an agent's i-th reading: recent[i] when that is the same task (the usual
 * case), else a lookup. NULL: a new task. */
static struct usage_task *task_find(struct usage *u, const struct usage_agent *agent, size_t i,
				    const char *id)
{
	struct hm_node *n;

	if (i < agent->nrecent && agent->recent_epoch == u->retire_epoch &&
	    strcmp(agent->recent[i]->id, id) == 0)
		return agent->recent[i];
	n = hashmap_get(&u->tasks, id);
	return n ? hm_entry(n, struct usage_task, node) : NULL;
}

/* Applies one valid reading to its task's record t (NULL: a new task; mu held). Returns
 * the record (*applied false when the reading was ignored: taken before the task's final
 * one), or NULL when memory ran out. */
static struct usage_task *apply_reading(struct usage *u, struct usage_agent *agent, uint64_t seq,
					const struct usage_reading *r, struct usage_task *t,
					bool *applied)
{
	struct usage_group *app;
	int64_t c[USAGE_NFIELDS];
	double dt;

	*applied = false;
	/* The app lookup only when the task is new or moved (the app's key is hot). */
	if (t && (!r->app_id || strcmp(r->app_id, t->app->key) == 0))
		app = t->app;
	else if (!(app = group_get(u, r->app_id ? r->app_id : "")))
		return NULL;
	if (t && t->final && !r->final)
		return t;               /* a reading taken before the task ended */
	memcpy(c, r->counters, sizeof(c));
	if (!t) {
		size_t len = strlen(r->task_id);

		t = calloc(1, sizeof(*t) + len + 1);
		if (!t)
			return NULL;
		memcpy(t->id, r->task_id, len + 1);
		hashmap_put(&u->tasks, &t->node, t->id);
		app_link(app, t);
	} else {
		contribute(t, -1);
		/* Counters only grow: a lower reading (a missing field, an agent that lost its
		 * maps) never takes back what was already counted. */
		for (size_t i = 0; i < USAGE_NFIELDS; i++)
			if (usage_fields[i].counter && c[i] < t->c[i])
				c[i] = t->c[i];
		dt = r->at - t->at;
		if (dt > 0) {
			for (size_t i = 0; i < USAGE_NFIELDS; i++) {
				double v = (double)(c[i] - t->c[i]) / dt;

				t->r[i] = usage_fields[i].counter && isfinite(v) ? v : 0;
			}
			t->has_rates = true;
		}
		if (t->app != app) {
			app_unlink(t);
			app_link(app, t);
		}
	}
	memcpy(t->c, c, sizeof(c));
	t->final = r->final;
	t->at = r->at;
	t->seq = seq;
	t->agent = agent;
	contribute(t, 1);
	mark_task(u, t);
	*applied = true;
	return t;
}

/* Room for the agent's recent[] to hold n tasks; false (and no cache) when memory is short. */
static bool recent_reserve(struct usage_agent *agent, size_t n)
{
	struct usage_task **p;

	if (n <= agent->caprecent)
		return true;
	if (n > UINT32_MAX || !(p = realloc(agent->recent, n * sizeof(*p)))) {
		agent->nrecent = 0;
		return false;
	}
	agent->recent = p;
	agent->caprecent = (uint32_t)n;
	return true;
}

static bool listening(struct usage *u)
{
	return u->bus && (!u->bus->listening || u->bus->listening(u->bus->ctx));
}

/* Applies a batch whose seq is new for the agent (mu held); its valid readings have at set.
 * agent: its record when the caller has it, else NULL. journal: encode it into the pending
 * journal buffer. */
static int apply_batch(struct usage *u, struct usage_agent *agent, const struct usage_batch *b,
		       const struct usage_reading **valid, size_t nvalid, bool journal)
{
	bool events = listening(u), cache;
	int rc;

	if (!agent && !(agent = agent_get(u, b->agent_id)))
		return -ENOMEM;
	if (journal && (rc = usage_journal_encode(&u->pending, b->agent_id, b->seq, valid, nvalid)))
		return rc;
	cache = recent_reserve(agent, nvalid);
	for (size_t i = 0; i < nvalid; i++) {
		struct usage_task *t = task_find(u, agent, i, valid[i]->task_id);
		bool applied;

		/* (recent[i] is read above before it is replaced, so a batch that failed half
		 * way leaves only live tasks there.) */
		if (!(t = apply_reading(u, agent, b->seq, valid[i], t, &applied)))
			return -ENOMEM;
		if (cache)
			agent->recent[i] = t;
		if (applied && events)
			u->bus->publish(u->bus->ctx, "usage_update", usage_task_event(t));
	}
	if (cache) {
		agent->nrecent = (uint32_t)nvalid;
		agent->recent_epoch = u->retire_epoch;
	}
	agent->seq = b->seq;
	mark_agent(u, agent);
	u->gen++;
	u->batches++;
	return 0;
}

/* ---- durability ---- */

/* Writes what is pending (mu held on entry and return; dropped during the write). Bytes
 * whose write failed stay in inflight and go out first, alone, next time: a generation is
 * durable only once every byte before it is. One flush at a time (flushing). */
static int flush_locked(struct usage *u)
{
	uint64_t target;
	int rc;

	if (!u->inflight.len) {
		struct ujbuf tmp = u->inflight;

		if (!u->pending.len) {
			u->durable = u->gen;        /* every applied batch left a record */
			return 0;
		}
		u->inflight = u->pending;
		u->pending = tmp;
		u->pending.len = 0;
		u->inflight_gen = u->gen;
	}
	target = u->inflight_gen;
	u->flushes++;
	u->flushing = true;
	pthread_mutex_unlock(&u->mu);
	rc = usage_journal_append(u->journal, u->inflight.p, u->inflight.len);
	pthread_mutex_lock(&u->mu);
	u->flushing = false;
	if (rc) {
		log_error("event=usage_journal_failed error=\"%s\"", strerror(-rc));
	} else {
		u->inflight.len = 0;
		u->durable = target;
		u->commits++;
	}
	return rc;
}

/* An applied (or repeated) batch waiting until generation gen is durable. */
struct usage_waiter {
	struct usage_waiter *next;
	uint64_t gen, acked, last;
	usage_done_fn done;
	void *arg;
};

/* mu held: detaches the waiters of generations up to upto (a prefix: they queue in order). */
static struct usage_waiter *take_waiters_locked(struct usage *u, uint64_t upto)
{
	struct usage_waiter *head = u->waiters, **pp = &u->waiters;

	while (*pp && (*pp)->gen <= upto)
		pp = &(*pp)->next;
	if (pp == &u->waiters)
		return NULL;
	u->waiters = *pp;
	*pp = NULL;
	if (!u->waiters)
		u->waiters_tail = &u->waiters;
	return head;
}

/* mu not held: the answers (rc 0: durable). */
static void run_waiters(struct usage_waiter *w, int rc, const char *err)
{
	while (w) {
		struct usage_waiter *next = w->next;

		w->done(w->arg, rc, w->acked, w->last, rc ? err : NULL);
		free(w);
		w = next;
	}
}

/* Without the writer (unit tests, shutdown): the caller writes until everything applied
 * is durable (mu held; dropped while writing). One thread writes at a time; a caller that
 * finds a write going on leaves its waiter to that writer, which loops until its end. The
 * waiters answered go to *ok, or to *failed (all of them) when a write failed. */
static void settle_locked(struct usage *u, struct usage_waiter **ok, struct usage_waiter **failed,
			  int *rc)
{
	*rc = 0;
	while (!u->flushing && u->journal && u->durable < u->gen && !(*rc = flush_locked(u)))
		;
	*ok = take_waiters_locked(u, u->durable);
	*failed = *rc ? take_waiters_locked(u, u->gen) : NULL;
}

static void settle(struct usage *u)
{
	struct usage_waiter *ok, *failed;
	char err[128];
	int rc;

	settle_locked(u, &ok, &failed, &rc);
	pthread_mutex_unlock(&u->mu);
	snprintf(err, sizeof(err), "cannot store the usage: %s", strerror(-rc));
	run_waiters(ok, 0, NULL);
	run_waiters(failed, -EIO, err);
	pthread_mutex_lock(&u->mu);
}

/* ---- checkpoints ---- */

/* A copy of one changed task, taken under mu and written out without it. Apps and agents
 * are never freed, so their pointers stay good. */
struct snap_task {
	const struct usage_group *app;
	const struct usage_agent *agent;
	bool final, has_rates;
	double at;
	uint64_t seq;
	int64_t c[USAGE_NFIELDS];
	double r[USAGE_NFIELDS];
	char id[USAGE_TASK_ID_MAX + 1];
};

struct snap_agent { const struct usage_agent *agent; uint64_t seq; };
struct snap_retired { const struct usage_group *app; int64_t c[USAGE_NFIELDS]; long tasks; };

struct usage_ckpt {
	struct snap_task *tasks;
	size_t ntasks;
	struct snap_agent *agents;
	size_t nagents;
	struct snap_retired *retired;
	size_t nretired;
	char **deleted;             /* retired task ids */
	size_t ndeleted, capdeleted;
	bool keep_old;              /* the rotation failed: usage.journal.old may be live */
};

static void ckpt_free(struct usage_ckpt *c)
{
	if (!c)
		return;
	for (size_t i = 0; i < c->ndeleted; i++)
		free(c->deleted[i]);
	free(c->deleted);
	free(c->tasks);
	free(c->agents);
	free(c->retired);
	free(c);
}

static int reserve_text(struct ujbuf *b, size_t more);

/* JSON text of a string (the ids may hold any character). */
static void put_str(struct ujbuf *b, const char *s)
{
	if (reserve_text(b, strlen(s) * 6 + 3))
		return;
	b->p[b->len++] = '"';
	for (; *s; s++) {
		unsigned char ch = (unsigned char)*s;

		if (ch == '"' || ch == '\\') {
			b->p[b->len++] = '\\';
			b->p[b->len++] = (char)ch;
		} else if (ch < 0x20)
			b->len += (size_t)sprintf(b->p + b->len, "\\u%04x", ch);
		else
			b->p[b->len++] = (char)ch;
	}
	b->p[b->len++] = '"';
}

static int reserve_text(struct ujbuf *b, size_t more)
{
	size_t cap;
	char *p;

	if (b->cap - b->len > more)
		return 0;
	cap = b->cap ? b->cap : 1024;
	while (cap - b->len <= more)
		cap *= 2;
	p = realloc(b->p, cap);
	if (!p)
		return -ENOMEM;
	b->p = p;
	b->cap = cap;
	return 0;
}

static void tprintf(struct ujbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void tprintf(struct ujbuf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0 || reserve_text(b, (size_t)n + 1))
		return;
	va_start(ap, fmt);
	vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
	va_end(ap);
	b->len += (size_t)n;
}

/* Checkpoints write 100,000 records at a time: plain appends, printf only for doubles. */
static void put_raw(struct ujbuf *b, const char *s, size_t n)
{
	if (reserve_text(b, n))
		return;
	memcpy(b->p + b->len, s, n);
	b->len += n;
}

#define PUT_LIT(b, s) put_raw(b, s, sizeof(s) - 1)

static void put_u64(struct ujbuf *b, uint64_t v)
{
	char tmp[24], *p = tmp + sizeof(tmp);

	do {
		*--p = (char)('0' + v % 10);
		v /= 10;
	} while (v);
	put_raw(b, p, (size_t)(tmp + sizeof(tmp) - p));
}

/* "name": (quoted, with the colon) after a comma unless first. */
static void put_key(struct ujbuf *b, const char *name, bool first)
{
	size_t n = strlen(name);

	if (reserve_text(b, n + 4))
		return;
	if (!first)
		b->p[b->len++] = ',';
	b->p[b->len++] = '"';
	memcpy(b->p + b->len, name, n);
	b->len += n;
	b->p[b->len++] = '"';
	b->p[b->len++] = ':';
}

/* A rate to a millionth per second, in integer arithmetic (%.17g costs ~0.3 us, and a
 * checkpoint writes 13 rates for each of up to 100,000 tasks); %.17g beyond that range. */
static void put_rate(struct ujbuf *b, double r)
{
	uint64_t v, frac;
	char digits[6];

	if (!(r >= 0 && r < 9e12)) {
		tprintf(b, "%.17g", r);
		return;
	}
	v = (uint64_t)llround(r * 1e6);
	put_u64(b, v / 1000000);
	frac = v % 1000000;
	for (int i = 5; i >= 0; i--) {
		digits[i] = (char)('0' + frac % 10);
		frac /= 10;
	}
	PUT_LIT(b, ".");
	put_raw(b, digits, 6);
}

static void put_counters(struct ujbuf *b, const int64_t *c, bool gauges)
{
	bool first = true;

	PUT_LIT(b, "{");
	for (size_t i = 0; i < USAGE_NFIELDS; i++) {
		if (!usage_fields[i].counter && !gauges)
			continue;
		put_key(b, usage_fields[i].name, first);
		put_u64(b, (uint64_t)c[i]);       /* counters are >= 0 */
		first = false;
	}
	PUT_LIT(b, "}");
}

/* A task's record as the store keeps it: counters and rates as arrays in usage_fields
 * order (rates: the counter fields only; [] before the task's second reading). Compact,
 * because a checkpoint may write 100,000 of them and SQLite's cost grows with the bytes. */
static void task_text(struct ujbuf *b, const struct snap_task *t)
{
	PUT_LIT(b, "{\"task_id\":");
	put_str(b, t->id);
	PUT_LIT(b, ",\"app_id\":");
	put_str(b, t->app->key);
	PUT_LIT(b, ",\"agent_id\":");
	put_str(b, t->agent->id);
	if (t->final)
		PUT_LIT(b, ",\"final\":true");
	else
		PUT_LIT(b, ",\"final\":false");
	tprintf(b, ",\"at\":%.17g,\"seq\":", t->at);
	put_u64(b, t->seq);
	PUT_LIT(b, ",\"c\":[");
	for (size_t i = 0; i < USAGE_NFIELDS; i++) {
		if (i)
			PUT_LIT(b, ",");
		put_u64(b, (uint64_t)t->c[i]);
	}
	PUT_LIT(b, "],\"r\":[");
	for (size_t i = 0, n = 0; t->has_rates && i < USAGE_NFIELDS; i++) {
		if (!usage_fields[i].counter)
			continue;
		if (n++)
			PUT_LIT(b, ",");
		put_rate(b, t->r[i]);
	}
	PUT_LIT(b, "]}");
}

static int put_text(struct usage *u, const char *kind, const char *key, struct ujbuf *b)
{
	json_t *v;
	int rc;

	if (reserve_text(b, 1))
		return -ENOMEM;
	b->p[b->len] = '\0';
	if (store_is_sqlite(u->st))
		return store_sqlite_put_text(u->st, kind, key, b->p);
	v = json_loads(b->p, 0, NULL);
	rc = v ? store_put(u->st, kind, key, v) : -ENOMEM;
	json_decref(v);
	return rc;
}

/* Writes a snapshot in one transaction (no lock of ours held). */
static int ckpt_write(struct usage *u, const struct usage_ckpt *c)
{
	struct ujbuf b = { 0 };
	int rc = store_begin(u->st), crc;

	if (rc)
		return rc;
	for (size_t i = 0; !rc && i < c->ntasks; i++) {
		b.len = 0;
		task_text(&b, &c->tasks[i]);
		rc = put_text(u, KIND_TASKS, c->tasks[i].id, &b);
	}
	for (size_t i = 0; !rc && i < c->nagents; i++) {
		b.len = 0;
		tprintf(&b, "{\"seq\":%llu}", (unsigned long long)c->agents[i].seq);
		rc = put_text(u, KIND_AGENTS, c->agents[i].agent->id, &b);
	}
	for (size_t i = 0; !rc && i < c->nretired; i++) {
		const struct snap_retired *r = &c->retired[i];

		b.len = 0;
		tprintf(&b, "{\"app_id\":");
		put_str(&b, r->app->key);
		tprintf(&b, ",\"tenant\":");
		put_str(&b, r->app->tenant->key);
		tprintf(&b, ",\"tasks\":%ld,\"counters\":", r->tasks);
		put_counters(&b, r->c, false);
		tprintf(&b, "}");
		rc = put_text(u, KIND_RETIRED, r->app->key, &b);
	}
	for (size_t i = 0; !rc && i < c->ndeleted; i++) {
		rc = store_del(u->st, KIND_TASKS, c->deleted[i]);
		if (rc == -ENOENT)
			rc = 0;
	}
	free(b.p);
	crc = store_commit(u->st);
	return rc ? rc : crc;
}

static int64_t sat_add(int64_t a, int64_t b)
{
	int64_t s;

	return __builtin_add_overflow(a, b, &s) ? INT64_MAX : s;
}

/* Folds a finished task into its app's retired totals and forgets it (mu held). */
static int retire(struct usage *u, struct usage_ckpt *c, struct usage_task *t)
{
	struct usage_group *a = t->app;
	char *id = strdup(t->id);

	if (!id)
		return -ENOMEM;
	if (c->ndeleted == c->capdeleted) {
		size_t cap = c->capdeleted ? c->capdeleted * 2 : 64;
		char **d = realloc(c->deleted, cap * sizeof(*d));

		if (!d) {
			free(id);
			return -ENOMEM;
		}
		c->deleted = d;
		c->capdeleted = cap;
	}
	c->deleted[c->ndeleted++] = id;
	for (size_t i = 0; i < USAGE_NFIELDS; i++)
		if (usage_fields[i].counter)
			a->retired[i] = sat_add(a->retired[i], t->c[i]);
	a->retired_tasks++;
	a->retired_dirty = true;
	/* The sums already hold the task: they do not change. */
	hashmap_remove_node(&u->tasks, &t->node);
	app_unlink(t);
	free(t);
	u->retired++;
	u->retire_epoch++;              /* agents' recent[] may point at it */
	return 0;
}

/* Copies what changed since the last checkpoint and retires old finished tasks (mu held).
 * NULL when memory ran out (nothing is lost: the dirty marks stay). */
static struct usage_ckpt *snapshot_locked(struct usage *u)
{
	struct usage_ckpt *c = calloc(1, sizeof(*c));
	size_t nt = 0, na = 0, nr = 0;
	double cutoff = now_wall() - u->retention;

	if (!c)
		return NULL;
	for (struct usage_task *t = u->dirty_tasks; t; t = t->dirty_next)
		nt++;
	for (struct usage_agent *a = u->dirty_agents; a; a = a->dirty_next)
		na++;
	c->tasks = malloc((nt ? nt : 1) * sizeof(*c->tasks));
	c->agents = malloc((na ? na : 1) * sizeof(*c->agents));
	if (!c->tasks || !c->agents) {
		ckpt_free(c);
		return NULL;
	}
	for (struct usage_task *t = u->dirty_tasks; t; t = t->dirty_next) {
		struct snap_task *s = &c->tasks[c->ntasks++];

		s->app = t->app;
		s->agent = t->agent;
		s->final = t->final;
		s->has_rates = t->has_rates;
		s->at = t->at;
		s->seq = t->seq;
		memcpy(s->c, t->c, sizeof(s->c));
		memcpy(s->r, t->r, sizeof(s->r));
		strcpy(s->id, t->id);
		t->dirty = false;
	}
	u->dirty_tasks = NULL;
	for (struct usage_agent *a = u->dirty_agents; a; a = a->dirty_next) {
		c->agents[c->nagents++] = (struct snap_agent){ a, a->seq };
		a->dirty = false;
	}
	u->dirty_agents = NULL;
	if (u->retention > 0) {
		for (struct usage_group *a = u->apps_head; a; a = a->next) {
			for (struct usage_task *t = a->first, *next; t; t = next) {
				next = t->next;
				if (t->final && t->at < cutoff && retire(u, c, t))
					break;
			}
		}
	}
	for (struct usage_group *a = u->apps_head; a; a = a->next)
		nr += a->retired_dirty;
	if (nr) {
		c->retired = malloc(nr * sizeof(*c->retired));
		for (struct usage_group *a = u->apps_head; c->retired && a; a = a->next) {
			if (!a->retired_dirty)
				continue;
			c->retired[c->nretired].app = a;
			memcpy(c->retired[c->nretired].c, a->retired, sizeof(a->retired));
			c->retired[c->nretired++].tasks = a->retired_tasks;
			a->retired_dirty = false;
		}
	}
	return c;
}

static bool ckpt_empty(const struct usage_ckpt *c)
{
	return !c->ntasks && !c->nagents && !c->nretired && !c->ndeleted;
}

/* Takes a snapshot (mu held on entry and return) and starts a new journal (mu dropped:
 * only the thread that writes the journal calls this, so nothing is appended meanwhile;
 * batches applied meanwhile go to the new journal). NULL when there is nothing to write. */
static struct usage_ckpt *rotate_locked(struct usage *u)
{
	struct usage_ckpt *c = snapshot_locked(u);
	int rc;

	u->last_ckpt = now_mono();
	if (!c || ckpt_empty(c)) {
		ckpt_free(c);
		return NULL;
	}
	/* Records still pending belong to batches the snapshot holds: in the new journal
	 * they are skipped on replay (their seq is not above the agent's). */
	u->flushing = true;             /* no append meanwhile (the no-writer path) */
	pthread_mutex_unlock(&u->mu);
	rc = usage_journal_rotate(u->journal);
	pthread_mutex_lock(&u->mu);
	u->flushing = false;
	if (rc) {
		log_error("event=usage_journal_rotate_failed error=\"%s\"", strerror(-rc));
		c->keep_old = true;
	}
	return c;
}

static void *ckpt_main(void *arg)
{
	struct usage *u = arg;

	pthread_setname_np(pthread_self(), "usage-ckpt");
	pthread_mutex_lock(&u->mu);
	for (;;) {
		struct usage_ckpt *job;
		int rc;

		while (!u->ckpt_job && !u->stop)
			pthread_cond_wait(&u->ckpt_wake, &u->mu);
		if (!u->ckpt_job)
			break;
		job = u->ckpt_job;
		pthread_mutex_unlock(&u->mu);
		double start = now_mono();

		rc = ckpt_write(u, job);
		if (!rc && !job->keep_old)
			rc = usage_journal_drop_old(u->journal);
		pthread_mutex_lock(&u->mu);
		if (!rc) {
			/* A big state takes a while to write: space checkpoints so that writing them
			 * keeps the thread busy at most 1/CKPT_SHARE of the time. */
			double took = now_mono() - start;

			u->ckpt_gap = took * CKPT_SHARE > u->ckpt_interval ? took * CKPT_SHARE
									     : u->ckpt_interval;
			ckpt_free(job);
			u->ckpt_job = NULL;
			u->checkpoints++;
			continue;
		}
		log_error("event=usage_checkpoint_failed error=\"%s\"", strerror(-rc));
		if (u->stop)
			break;          /* the journals stay: replayed at the next start */
		struct timespec ts;

		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_sec += 1;
		pthread_cond_timedwait(&u->ckpt_wake, &u->mu, &ts);
	}
	pthread_mutex_unlock(&u->mu);
	return NULL;
}

static void timed_wait(pthread_cond_t *cv, pthread_mutex_t *mu, long ms)
{
	struct timespec ts;

	ts = timespec_after(CLOCK_REALTIME, (double)ms / 1000);
	pthread_cond_timedwait(cv, mu, &ts);
}

/* Group commit: a write + fdatasync costs the kernel (and a VM's disk) about the same for
 * one batch as for hundreds, so under load the writer lets batches gather for a few ms;
 * an idle writer writes the first batch at once. */
static void *writer_main(void *arg)
{
	struct usage *u = arg;
	double last = 0;

	pthread_setname_np(pthread_self(), "usage-writer");
	pthread_mutex_lock(&u->mu);
	while (!u->stop) {
		if (!u->ckpt_job && (now_mono() - u->last_ckpt >= u->ckpt_gap ||
				     usage_journal_size(u->journal) >= CKPT_JOURNAL_BYTES)) {
			u->ckpt_job = rotate_locked(u);
			if (u->ckpt_job)
				pthread_cond_signal(&u->ckpt_wake);
			continue;
		}
		if (!u->pending.len && u->durable >= u->gen) {
			u->writer_idle = true;
			timed_wait(&u->wake, &u->mu, 1000);
			u->writer_idle = false;
			continue;
		}
		double wait = last + GATHER_SECONDS - now_mono();

		if (wait > 0) {
			struct timespec ts = { 0, (long)(wait * 1e9) };

			pthread_mutex_unlock(&u->mu);
			nanosleep(&ts, NULL);
			pthread_mutex_lock(&u->mu);
		}
		last = now_mono();
		int rc = flush_locked(u);
		/* Answered now: the batches this write made durable, or (503) those it failed. */
		struct usage_waiter *w = take_waiters_locked(u, rc ? u->inflight_gen : u->durable);

		if (w) {
			char err[128];

			snprintf(err, sizeof(err), "cannot store the usage: %s", strerror(-rc));
			pthread_mutex_unlock(&u->mu);
			run_waiters(w, rc ? -EIO : 0, err);
			pthread_mutex_lock(&u->mu);
		}
		if (rc)
			timed_wait(&u->wake, &u->mu, 200);   /* the agents send again */
	}
	pthread_mutex_unlock(&u->mu);
	return NULL;
}

int usage_start_writer(struct usage *u)
{
	int rc = pthread_create(&u->ckpt_thread, NULL, ckpt_main, u);

	if (rc)
		return -rc;
	rc = pthread_create(&u->writer, NULL, writer_main, u);
	pthread_mutex_lock(&u->mu);
	u->ckpt_running = true;
	u->writer_running = rc == 0;
	if (rc) {
		u->stop = true;
		pthread_cond_broadcast(&u->ckpt_wake);
	}
	pthread_mutex_unlock(&u->mu);
	if (rc) {
		pthread_join(u->ckpt_thread, NULL);
		u->ckpt_running = false;
		u->stop = false;
	}
	return -rc;
}

void usage_stop_writer(struct usage *u)
{
	bool writer, ckpt;

	pthread_mutex_lock(&u->mu);
	writer = u->writer_running;
	ckpt = u->ckpt_running;
	u->stop = true;
	pthread_cond_broadcast(&u->wake);
	pthread_cond_broadcast(&u->ckpt_wake);
	pthread_mutex_unlock(&u->mu);
	if (writer)
		pthread_join(u->writer, NULL);
	if (ckpt)
		pthread_join(u->ckpt_thread, NULL);
	pthread_mutex_lock(&u->mu);
	u->writer_running = u->ckpt_running = false;
	settle(u);                        /* what was applied but not yet written */
	struct usage_waiter *left = take_waiters_locked(u, UINT64_MAX);

	pthread_mutex_unlock(&u->mu);
	run_waiters(left, -EIO, "cannot store the usage: the master is stopping");
}

void usage_set_checkpoint_interval(struct usage *u, double seconds)
{
	pthread_mutex_lock(&u->mu);
	u->ckpt_gap = u->ckpt_interval = seconds;
	pthread_cond_signal(&u->wake);
	pthread_mutex_unlock(&u->mu);
}

int usage_checkpoint(struct usage *u)
{
	struct usage_ckpt *c;
	int rc = 0;

	pthread_mutex_lock(&u->mu);
	if (u->writer_running || u->ckpt_job) {
		pthread_mutex_unlock(&u->mu);
		return -EBUSY;
	}
	while (u->durable < u->gen && !(rc = flush_locked(u)))
		;
	if (rc) {
		pthread_mutex_unlock(&u->mu);
		return rc;
	}
	c = rotate_locked(u);
	settle(u);                      /* batches that came during the rotation */
	pthread_mutex_unlock(&u->mu);
	if (!c)
		return 0;
	rc = ckpt_write(u, c);
	if (!rc && !c->keep_old)
		rc = usage_journal_drop_old(u->journal);
	ckpt_free(c);
	if (!rc)
		u->checkpoints++;
	return rc;
}

/* ---- load and replay ---- */

static json_int_t int_of(json_t *o, const char *name)
{
	return json_integer_value(json_object_get(o, name));
}

/* A record as task_text writes it, or in the earlier shape ("counters" and "rates" as
 * objects keyed by field name). */
static int load_task(const char *key, json_t *v, void *arg)
{
	struct usage *u = arg;
	json_t *counters = json_object_get(v, "counters"), *rates = json_object_get(v, "rates");
	json_t *carr = json_object_get(v, "c"), *rarr = json_object_get(v, "r");
	const char *app_id = json_string_value(json_object_get(v, "app_id"));
	const char *agent_id = json_string_value(json_object_get(v, "agent_id"));
	struct usage_group *app;
	struct usage_agent *agent;
	struct usage_task *t;
	size_t len = strlen(key);

	if ((!json_is_object(counters) && !json_is_array(carr)) || hashmap_get(&u->tasks, key))
		return 0;
	app = group_get(u, app_id ? app_id : "");
	agent = agent_get(u, agent_id ? agent_id : "");
	t = calloc(1, sizeof(*t) + len + 1);
	if (!app || !agent || !t) {
		free(t);
		return -ENOMEM;
	}
	memcpy(t->id, key, len + 1);
	t->agent = agent;
	t->final = json_is_true(json_object_get(v, "final"));
	t->at = json_number_value(json_object_get(v, "at"));
	t->seq = (uint64_t)int_of(v, "seq");
	for (size_t i = 0, r = 0; i < USAGE_NFIELDS; i++) {
		json_int_t c = carr ? json_integer_value(json_array_get(carr, i))
				    : int_of(counters, usage_fields[i].name);

		t->c[i] = c > 0 ? c : 0;
		if (!usage_fields[i].counter)
			continue;
		t->r[i] = rarr ? json_number_value(json_array_get(rarr, r++))
			       : json_number_value(json_object_get(rates, usage_fields[i].name));
	}
	t->has_rates = rarr ? json_array_size(rarr) > 0 : json_object_size(rates) > 0;
	hashmap_put(&u->tasks, &t->node, t->id);
	app_link(app, t);
	contribute(t, 1);
	return 0;
}

static int load_retired(const char *key, json_t *v, void *arg)
{
	struct usage *u = arg;
	struct usage_group *a = group_get(u, key);
	json_t *counters = json_object_get(v, "counters");
	long n = (long)int_of(v, "tasks");

	if (!a)
		return -ENOMEM;
	for (size_t i = 0; i < USAGE_NFIELDS; i++) {
		json_int_t c = usage_fields[i].counter ? int_of(counters, usage_fields[i].name) : 0;

		a->retired[i] = c > 0 ? c : 0;
		a->sum[i] += a->retired[i];
		a->tenant->sum[i] += a->retired[i];
	}
	a->retired_tasks = n;
	a->tasks += n;
	a->tenant->tasks += n;
	return 0;
}

static int load_agent(const char *key, json_t *v, void *arg)
{
	struct usage *u = arg;
	struct usage_agent *a = agent_get(u, key);

	if (!a)
		return -ENOMEM;
	a->seq = (uint64_t)int_of(v, "seq");
	return 0;
}

static int replay_batch(void *arg, const struct usage_batch *b)
{
	struct usage *u = arg;
	const struct usage_reading **valid = malloc((b->nreports ? b->nreports : 1) * sizeof(*valid));
	struct hm_node *n = hashmap_get(&u->agents, b->agent_id);
	int rc = 0;

	if (!valid)
		return -ENOMEM;
	/* Idempotent: what the store's checkpoint already holds is not above its seq. */
	if (!n || b->seq > hm_entry(n, struct usage_agent, node)->seq) {
		for (size_t i = 0; i < b->nreports; i++)
			valid[i] = &b->reports[i];
		rc = apply_batch(u, NULL, b, valid, b->nreports, false);
	}
	free(valid);
	return rc;
}

int usage_create(struct store *st, const char *dir, double retention,
		 const struct usage_bus *bus, struct usage **out, char *err, size_t errlen)
{
	struct usage *u = calloc(1, sizeof(*u));
	size_t records = 0, torn = 0;
	int rc;

	if (!u)
		return -ENOMEM;
	pthread_mutex_init(&u->mu, NULL);
	pthread_cond_init(&u->wake, NULL);
	pthread_cond_init(&u->ckpt_wake, NULL);
	u->waiters_tail = &u->waiters;
	u->st = st;
	u->bus = bus;
	u->retention = retention > 0 ? retention : 0;
	u->last_ckpt = now_mono();
	u->ckpt_gap = u->ckpt_interval = CKPT_INTERVAL;
	snprintf(u->dir, sizeof(u->dir), "%s", dir);
	if (hashmap_init(&u->tasks) || hashmap_init(&u->agents) || hashmap_init(&u->apps) ||
	    hashmap_init(&u->tenants)) {
		usage_destroy(u);
		return -ENOMEM;
	}
	rc = store_scan(st, KIND_TASKS, load_task, u);
	if (!rc)
		rc = store_scan(st, KIND_RETIRED, load_retired, u);
	if (!rc)
		rc = store_scan(st, KIND_AGENTS, load_agent, u);
	if (rc < 0) {
		snprintf(err, errlen, "cannot load the usage totals: %s", strerror(-rc));
		goto fail;
	}
	rc = usage_journal_replay(dir, replay_batch, u, &records, &torn);
	if (rc < 0) {
		snprintf(err, errlen, "cannot replay the usage journal in %s: %s", dir, strerror(-rc));
		goto fail;
	}
	rc = usage_journal_open(dir, &u->journal);
	if (rc < 0) {
		snprintf(err, errlen, "cannot open the usage journal in %s: %s", dir, strerror(-rc));
		goto fail;
	}
	/* What the journals held goes into the store now; they start over (a torn tail is
	 * cut off with them). */
	if ((records || torn || usage_journal_size(u->journal)) && (rc = usage_checkpoint(u)) < 0) {
		snprintf(err, errlen, "cannot checkpoint the usage journal: %s", strerror(-rc));
		goto fail;
	}
	if (usage_journal_size(u->journal)) {
		/* Nothing to checkpoint but a torn tail: start the file over. */
		if ((rc = usage_journal_rotate(u->journal)) < 0 || (rc = usage_journal_drop_old(u->journal)) < 0) {
			snprintf(err, errlen, "cannot reset the usage journal: %s", strerror(-rc));
			goto fail;
		}
	}
	log_info("event=usage_loaded tasks=%zu agents=%zu journal_records=%zu torn=%zu",
		 hashmap_count(&u->tasks), hashmap_count(&u->agents), records, torn);
	*out = u;
	return 0;
fail:
	usage_destroy(u);
	return rc;
}

static void free_all(struct usage *u)
{
	struct usage_group *g, *gn;
	struct hm_node *n;

	for (g = u->apps_head; g; g = gn) {
		struct usage_task *t, *tn;

		for (t = g->first; t; t = tn) {
			tn = t->next;
			free(t);
		}
		gn = g->next;
		free(g);
	}
	for (g = u->tenants_head; g; g = gn) {
		gn = g->next;
		free(g);
	}
	for (size_t pos = 0; (n = hashmap_next(&u->agents, &pos));) {
		struct usage_agent *a = hm_entry(n, struct usage_agent, node);

		free(a->recent);
		free(a);
	}
}

void usage_destroy(struct usage *u)
{
	if (!u)
		return;
	usage_stop_writer(u);
	ckpt_free(u->ckpt_job);
	usage_journal_close(u->journal);
	free_all(u);
	hashmap_destroy(&u->tasks);
	hashmap_destroy(&u->agents);
	hashmap_destroy(&u->apps);
	hashmap_destroy(&u->tenants);
	free(u->pending.p);
	free(u->inflight.p);
	pthread_cond_destroy(&u->wake);
	pthread_cond_destroy(&u->ckpt_wake);
	pthread_mutex_destroy(&u->mu);
	free(u);
}

/* ---- the API ---- */

uint64_t usage_last_applied(struct usage *u, const char *agent_id)
{
	struct hm_node *n;
	uint64_t last;

	pthread_mutex_lock(&u->mu);
	n = hashmap_get(&u->agents, agent_id);
	last = n ? hm_entry(n, struct usage_agent, node)->seq : 0;
	pthread_mutex_unlock(&u->mu);
	return last;
}

void usage_note_stream(struct usage *u, int conns, uint64_t batches)
{
	if (conns)
		__atomic_add_fetch(&u->stream_conns, (uint64_t)(int64_t)conns, __ATOMIC_RELAXED);
	if (batches)
		__atomic_add_fetch(&u->stream_batches, batches, __ATOMIC_RELAXED);
}

void usage_apply_async(struct usage *u, struct usage_batch *b, usage_done_fn done, void *arg)
{
	const struct usage_reading *stackv[32], **valid = stackv;
	struct usage_waiter *w = malloc(sizeof(*w)), *ok = NULL, *failed = NULL;
	struct hm_node *n;
	size_t nvalid = 0;
	double now = 0;
	char err[128];
	int rc;

	if (!w || (b->nreports > ARRAY_SIZE(stackv) &&
		   !(valid = malloc(b->nreports * sizeof(*valid))))) {
		free(w);
		done(arg, -ENOMEM, 0, 0, "cannot apply the usage: out of memory");
		return;
	}
	/* A bad report is logged and skipped, the rest applied: refusing the whole batch
	 * would have the agent resend the same bad entry forever and stall its node's usage. */
	for (size_t i = 0; i < b->nreports; i++) {
		struct usage_reading *r = &b->reports[i];

		if (!r->bad_name && r->app_id && strlen(r->app_id) > APP_ID_MAX) {
			r->bad_name = "app_id";
			r->bad_what = "must be at most 4096 bytes";
		}
		if (r->bad_name) {
			log_warn("event=usage_report_skipped agent=%s seq=%llu error=\"reports[%zu].%s %s\"",
				 b->agent_id, (unsigned long long)b->seq, i, r->bad_name, r->bad_what);
			continue;
		}
		if (!r->has_at) {
			r->at = now ? now : (now = now_wall());
			r->has_at = true;
		}
		valid[nvalid++] = r;
	}
	w->next = NULL;
	w->acked = b->seq;
	w->done = done;
	w->arg = arg;
	pthread_mutex_lock(&u->mu);
	n = hashmap_get(&u->agents, b->agent_id);
	if (n && b->seq <= hm_entry(n, struct usage_agent, node)->seq) {
		/* Applied before: acknowledge again, once what was applied is durable. */
		u->duplicates++;
		w->last = hm_entry(n, struct usage_agent, node)->seq;
	} else {
		u->skipped += b->nreports - nvalid;
		rc = apply_batch(u, n ? hm_entry(n, struct usage_agent, node) : NULL, b, valid,
				 nvalid, true);
		if (rc) {
			pthread_mutex_unlock(&u->mu);
			snprintf(err, sizeof(err), "cannot apply the usage: %s", strerror(-rc));
			free(w);
			done(arg, -EIO, 0, 0, err);
			goto out;
		}
		w->last = b->seq;
	}
	w->gen = u->gen;
	*u->waiters_tail = w;
	u->waiters_tail = &w->next;
	if (!u->writer_running) {
		settle_locked(u, &ok, &failed, &rc);
		snprintf(err, sizeof(err), "cannot store the usage: %s", strerror(-rc));
	} else if (u->durable >= w->gen) {
		ok = take_waiters_locked(u, u->durable);        /* a repeat, already durable */
	} else if (u->writer_idle) {
		pthread_cond_signal(&u->wake);
	}
	pthread_mutex_unlock(&u->mu);
	run_waiters(ok, 0, NULL);
	run_waiters(failed, -EIO, err);
out:
	if (valid != stackv)
		free(valid);
}

struct sync_apply {
	pthread_mutex_t mu;
	pthread_cond_t cond;
	bool done;
	int rc;
	uint64_t acked;
	char err[256];
};

static void sync_done(void *arg, int rc, uint64_t acked, uint64_t last, const char *err)
{
	struct sync_apply *s = arg;

	(void)last;
	pthread_mutex_lock(&s->mu);
	s->rc = rc;
	s->acked = acked;
	snprintf(s->err, sizeof(s->err), "%s", err ? err : "");
	s->done = true;
	pthread_cond_signal(&s->cond);
	pthread_mutex_unlock(&s->mu);
}

int usage_apply(struct usage *u, struct usage_batch *b, uint64_t *acked, char *err, size_t errlen)
{
	struct sync_apply s = { .done = false };

	pthread_mutex_init(&s.mu, NULL);
	pthread_cond_init(&s.cond, NULL);
	*acked = b->seq;
	usage_apply_async(u, b, sync_done, &s);
	pthread_mutex_lock(&s.mu);
	while (!s.done)
		pthread_cond_wait(&s.cond, &s.mu);
	pthread_mutex_unlock(&s.mu);
	pthread_cond_destroy(&s.cond);
	pthread_mutex_destroy(&s.mu);
	if (s.rc)
		snprintf(err, errlen, "%s", s.err);
	return s.rc;
}
