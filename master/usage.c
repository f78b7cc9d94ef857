/* usage.c - the master's usage model (see usage.h): per-task cumulative readings, the
 * agents' last applied batch numbers, app and tenant sums, rates, persistence in the store
 * (kinds usage_tasks and usage_agents; one commit per batch) and the usage_update events. */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lib/log.h"
#include "lib/util.h"
#include "master/usage.h"

#define KIND_TASKS "usage_tasks"
#define KIND_AGENTS "usage_agents"

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

struct usage {
	pthread_mutex_t mu;
	struct store *st;
	json_t *tasks;          /* task id -> record */
	json_t *agents;         /* agent id -> last applied seq */
	const struct usage_bus *bus;
	uint64_t batches, duplicates, skipped;

	/* Group commit: applied readings wait in dirty_* until one transaction writes them
	 * all; a batch is acknowledged once durable >= the generation it made. Without the
	 * writer thread (unit tests) every batch commits on its own. */
	json_t *dirty_tasks;    /* task id -> record (records are never changed once made) */
	json_t *dirty_agents;   /* agent id -> seq */
	uint64_t gen, durable;
	pthread_cond_t wake, done;
	pthread_t writer;
	bool writer_running, stop;
	uint64_t commits;
};

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

static int load_task(const char *key, json_t *value, void *arg)
{
	struct usage *u = arg;

	if (json_is_object(json_object_get(value, "counters")))
		json_object_set(u->tasks, key, value);
	return 0;
}

static int load_agent(const char *key, json_t *value, void *arg)
{
	struct usage *u = arg;

	json_object_set(u->agents, key, json_object_get(value, "seq"));
	return 0;
}

int usage_create(struct store *st, const struct usage_bus *bus, struct usage **out,
		 char *err, size_t errlen)
{
	struct usage *u = calloc(1, sizeof(*u));
	int rc;

	if (!u)
		return -ENOMEM;
	pthread_mutex_init(&u->mu, NULL);
	pthread_cond_init(&u->wake, NULL);
	pthread_cond_init(&u->done, NULL);
	u->st = st;
	u->dirty_tasks = json_object();
	u->dirty_agents = json_object();
	u->tasks = json_object();
	u->agents = json_object();
	u->bus = bus;
	if (!u->tasks || !u->agents || !u->dirty_tasks || !u->dirty_agents) {
		usage_destroy(u);
		return -ENOMEM;
	}
	rc = store_scan(st, KIND_TASKS, load_task, u);
	if (!rc)
		rc = store_scan(st, KIND_AGENTS, load_agent, u);
	if (rc < 0) {
		snprintf(err, errlen, "cannot load the usage totals: %s", strerror(-rc));
		usage_destroy(u);
		return rc;
	}
	log_info("event=usage_loaded tasks=%zu agents=%zu", json_object_size(u->tasks),
		 json_object_size(u->agents));
	*out = u;
	return 0;
}

void usage_destroy(struct usage *u)
{
	if (!u)
		return;
	usage_stop_writer(u);
	json_decref(u->tasks);
	json_decref(u->agents);
	json_decref(u->dirty_tasks);
	json_decref(u->dirty_agents);
	pthread_cond_destroy(&u->wake);
	pthread_cond_destroy(&u->done);
	pthread_mutex_destroy(&u->mu);
	free(u);
}

/* The report's counters as an object of the known fields (missing = 0); -EINVAL for a
 * field that is not a non-negative integer. */
static int parse_counters(json_t *report, json_t **out, char *err, size_t errlen, size_t idx)
{
	json_t *c = out ? json_object() : NULL;

	for (size_t i = 0; i < usage_nfields; i++) {
		json_t *v = json_object_get(report, usage_fields[i].name);

		if (v && (!json_is_integer(v) || json_integer_value(v) < 0)) {
			snprintf(err, errlen, "reports[%zu].%s must be a non-negative integer", idx,
				 usage_fields[i].name);
			json_decref(c);
			return -EINVAL;
		}
		if (c)
			json_object_set_new(c, usage_fields[i].name,
					    json_integer(v ? json_integer_value(v) : 0));
	}
	if (out)
		*out = c;
	return 0;
}

/* Rates per second between the previous reading and this one (counters only). */
static json_t *rates_between(json_t *old, double old_at, json_t *now, double now_at, json_t *keep)
{
	double dt = now_at - old_at;
	json_t *r;

	if (!old || !(dt > 0))
		return keep ? json_incref(keep) : json_object();
	r = json_object();
	for (size_t i = 0; i < usage_nfields; i++) {
		const struct usage_field *f = &usage_fields[i];
		json_int_t a, b;

		if (!f->counter)
			continue;
		a = json_integer_value(json_object_get(old, f->name));
		b = json_integer_value(json_object_get(now, f->name));
		json_object_set_new(r, f->name, json_real(b >= a ? (double)(b - a) / dt : 0));
	}
	return r;
}

/* ---- durability: one transaction for everything applied since the last one ---- */

/* Writes the given dirty sets in one transaction (no lock of ours held). */
static int write_sets(struct usage *u, json_t *tasks, json_t *agents)
{
	const char *key;
	json_t *v;
	int rc = store_begin(u->st), crc;

	if (rc)
		return rc;
	json_object_foreach(tasks, key, v) {
		if ((rc = store_put(u->st, KIND_TASKS, key, v)))
			break;
	}
	json_object_foreach(agents, key, v) {
		json_t *doc;

		if (rc)
			break;
		doc = json_pack("{s:O}", "seq", v);
		rc = doc ? store_put(u->st, KIND_AGENTS, key, doc) : -ENOMEM;
		json_decref(doc);
	}
	crc = store_commit(u->st);
	return rc ? rc : crc;
}

/* Takes the dirty sets and writes them (mu held on entry and on return). On failure the
 * sets go back, newer entries winning, for the next attempt. */
static int flush_locked(struct usage *u)
{
	json_t *tasks = u->dirty_tasks, *agents = u->dirty_agents;
	uint64_t target = u->gen;
	int rc;

	u->dirty_tasks = json_object();
	u->dirty_agents = json_object();
	pthread_mutex_unlock(&u->mu);
	rc = write_sets(u, tasks, agents);
	pthread_mutex_lock(&u->mu);
	if (rc) {
		json_object_update_missing(u->dirty_tasks, tasks);
		json_object_update_missing(u->dirty_agents, agents);
		log_error("event=usage_store_failed error=\"%s\"", strerror(-rc));
	} else {
		u->durable = target;
		u->commits++;
	}
	json_decref(tasks);
	json_decref(agents);
	pthread_cond_broadcast(&u->done);
	return rc;
}

/* mu held: returns once generation my is durable (0), or -EIO. */
static int wait_durable(struct usage *u, uint64_t my, char *err, size_t errlen)
{
	int rc = 0;

	if (!u->writer_running) {
		if (u->durable < my)
			rc = flush_locked(u);
	} else {
		pthread_cond_signal(&u->wake);
		while (u->durable < my && !u->stop)
			pthread_cond_wait(&u->done, &u->mu);
	}
	if (u->durable >= my)
		return 0;
	snprintf(err, errlen, "cannot store the usage: %s", rc ? strerror(-rc) : "the master is stopping");
	return -EIO;
}

static void *writer_main(void *arg)
{
	struct usage *u = arg;

	pthread_mutex_lock(&u->mu);
	while (!u->stop) {
		if (u->durable >= u->gen) {
			pthread_cond_wait(&u->wake, &u->mu);
			continue;
		}
		if (flush_locked(u)) {
			/* The store failed: waiters keep waiting (their agents resend); retry soon. */
			struct timespec ts;

			clock_gettime(CLOCK_REALTIME, &ts);
			ts.tv_nsec += 200 * 1000000L;
			if (ts.tv_nsec >= 1000000000L) {
				ts.tv_sec++;
				ts.tv_nsec -= 1000000000L;
			}
			pthread_cond_timedwait(&u->wake, &u->mu, &ts);
		}
	}
	pthread_mutex_unlock(&u->mu);
	return NULL;
}

int usage_start_writer(struct usage *u)
{
	int rc = pthread_create(&u->writer, NULL, writer_main, u);

	if (rc)
		return -rc;
	pthread_mutex_lock(&u->mu);
	u->writer_running = true;
	pthread_mutex_unlock(&u->mu);
	return 0;
}

void usage_stop_writer(struct usage *u)
{
	bool running;

	pthread_mutex_lock(&u->mu);
	running = u->writer_running;
	u->stop = true;
	pthread_cond_broadcast(&u->wake);
	pthread_cond_broadcast(&u->done);
	pthread_mutex_unlock(&u->mu);
	if (!running)
		return;
	pthread_join(u->writer, NULL);
	pthread_mutex_lock(&u->mu);
	u->writer_running = false;
	if (u->durable < u->gen)
		flush_locked(u);          /* what was applied but not yet written */
	pthread_mutex_unlock(&u->mu);
}

/* Validates and (unless dry) applies one report (mu held). *rec_out: the new record (borrowed from
 * u->tasks) or NULL when the report was ignored. */
static int apply_report(struct usage *u, const char *agent_id, uint64_t seq, json_t *rep,
			size_t idx, bool dry, json_t **rec_out, char *err, size_t errlen)
{
	const char *task_id = json_string_value(json_object_get(rep, "task_id"));
	const char *app_id = json_string_value(json_object_get(rep, "app_id"));
	json_t *fin = json_object_get(rep, "final"), *at = json_object_get(rep, "at");
	json_t *old, *counters, *rec;
	char tenant[256];
	double when;
	int rc;

	*rec_out = NULL;
	if (!task_id || !*task_id || strlen(task_id) > 200) {
		snprintf(err, errlen, "reports[%zu].task_id must be a task id", idx);
		return -EINVAL;
	}
	if (fin && !json_is_boolean(fin)) {
		snprintf(err, errlen, "reports[%zu].final must be a boolean", idx);
		return -EINVAL;
	}
	if (at && !json_is_number(at)) {
		snprintf(err, errlen, "reports[%zu].at must be a number (wall seconds)", idx);
		return -EINVAL;
	}
	if (dry)
		return parse_counters(rep, NULL, err, errlen, idx);
	if ((rc = parse_counters(rep, &counters, err, errlen, idx)))
		return rc;
	when = at ? json_number_value(at) : now_wall();
	old = json_object_get(u->tasks, task_id);
	if (old && json_is_true(json_object_get(old, "final")) && !json_is_true(fin)) {
		json_decref(counters);      /* a reading taken before the final one */
		return 0;
	}
	if (old) {
		/* Counters only grow: a reading that is lower (a missing field, an agent that
		 * lost its maps) never takes back what was already counted. */
		json_t *was = json_object_get(old, "counters");

		for (size_t i = 0; i < usage_nfields; i++) {
			json_int_t before = json_integer_value(json_object_get(was, usage_fields[i].name));
			json_int_t after = json_integer_value(json_object_get(counters, usage_fields[i].name));

			if (usage_fields[i].counter && after < before)
				json_object_set_new(counters, usage_fields[i].name, json_integer(before));
		}
	}
	if (!app_id && old)
		app_id = json_string_value(json_object_get(old, "app_id"));
	usage_tenant_of(app_id, tenant, sizeof(tenant));
	rec = json_pack("{s:s,s:s,s:s,s:s,s:b,s:f,s:I,s:o,s:o}", "task_id", task_id,
			"app_id", app_id ? app_id : "", "tenant", tenant, "agent_id", agent_id,
			"final", json_is_true(fin), "at", when, "seq", (json_int_t)seq,
			"counters", counters,
			"rates", rates_between(json_object_get(old, "counters"),
					       json_number_value(json_object_get(old, "at")), counters,
					       when, json_object_get(old, "rates")));
	if (!rec || json_object_set_new(u->tasks, task_id, rec) < 0)
		return -ENOMEM;
	*rec_out = rec;
	return 0;
}

static json_t *event_of(json_t *rec)
{
	return json_pack("{s:O,s:O,s:O,s:O,s:O,s:O,s:O,s:O}", "task_id", json_object_get(rec, "task_id"),
			 "app_id", json_object_get(rec, "app_id"), "tenant", json_object_get(rec, "tenant"),
			 "agent_id", json_object_get(rec, "agent_id"), "final", json_object_get(rec, "final"),
			 "at", json_object_get(rec, "at"), "counters", json_object_get(rec, "counters"),
			 "rates", json_object_get(rec, "rates"));
}

uint64_t usage_last_applied(struct usage *u, const char *agent_id)
{
	uint64_t last;

	pthread_mutex_lock(&u->mu);
	last = (uint64_t)json_integer_value(json_object_get(u->agents, agent_id));
	pthread_mutex_unlock(&u->mu);
	return last;
}

int usage_apply(struct usage *u, json_t *batch, uint64_t *acked, char *err, size_t errlen)
{
	const char *agent_id = json_string_value(json_object_get(batch, "agent_id"));
	json_t *jseq = json_object_get(batch, "seq"), *reports = json_object_get(batch, "reports");
	json_t *applied = NULL, *rep;
	uint64_t seq, last;
	size_t i;
	int rc = 0;

	if (!agent_id || !*agent_id) {
		snprintf(err, errlen, "agent_id is missing");
		return -EINVAL;
	}
	if (!json_is_integer(jseq) || json_integer_value(jseq) <= 0) {
		snprintf(err, errlen, "seq must be an integer > 0");
		return -EINVAL;
	}
	if (!json_is_array(reports)) {
		snprintf(err, errlen, "reports must be an array");
		return -EINVAL;
	}
	seq = (uint64_t)json_integer_value(jseq);
	*acked = seq;
	pthread_mutex_lock(&u->mu);
	last = (uint64_t)json_integer_value(json_object_get(u->agents, agent_id));
	if (seq <= last) {
		/* Applied before: acknowledge again, once what was applied is durable. */
		u->duplicates++;
		rc = wait_durable(u, u->gen, err, errlen);
		goto out;
	}
	applied = json_array();
	/* A bad report is logged and skipped, the rest applied: refusing the whole batch
	 * would have the agent resend the same bad entry forever and stall its node's usage. */
	json_array_foreach(reports, i, rep) {
		json_t *rec;
		char why[256];

		if (apply_report(u, agent_id, seq, rep, i, true, &rec, why, sizeof(why))) {
			u->skipped++;
			log_warn("event=usage_report_skipped agent=%s seq=%llu error=\"%s\"", agent_id,
				 (unsigned long long)seq, why);
			continue;
		}
		if ((rc = apply_report(u, agent_id, seq, rep, i, false, &rec, err, errlen)))
			goto out;
		if (rec)
			json_array_append(applied, rec);
	}
	json_array_foreach(applied, i, rep)
		json_object_set(u->dirty_tasks, json_string_value(json_object_get(rep, "task_id")), rep);
	json_object_set_new(u->dirty_agents, agent_id, json_integer((json_int_t)seq));
	json_object_set_new(u->agents, agent_id, json_integer((json_int_t)seq));
	u->gen++;
	u->batches++;
	if (u->bus)
		json_array_foreach(applied, i, rep)
			u->bus->publish(u->bus->ctx, "usage_update", event_of(rep));
	rc = wait_durable(u, u->gen, err, errlen);
out:
	pthread_mutex_unlock(&u->mu);
	json_decref(applied);
	return rc;
}

/* ---- aggregation ---- */

static void add_into(json_t *dst, json_t *src, bool sum_gauges)
{
	for (size_t i = 0; i < usage_nfields; i++) {
		const char *n = usage_fields[i].name;
		json_t *d = json_object_get(dst, n), *s = json_object_get(src, n);
		json_int_t sum;

		if (!s || (!usage_fields[i].counter && !sum_gauges))
			continue;
		if (json_is_real(s) || json_is_real(d))
			json_object_set_new(dst, n, json_real(json_number_value(d) + json_number_value(s)));
		else if (__builtin_add_overflow(json_integer_value(d), json_integer_value(s), &sum))
			json_object_set_new(dst, n, json_integer(INT64_MAX));     /* saturates */
		else
			json_object_set_new(dst, n, json_integer(sum));
	}
}

static json_t *group_get(json_t *groups, const char *key, const char *keyname, const char *tenant)
{
	json_t *g = json_object_get(groups, key);

	if (g)
		return g;
	g = json_pack("{s:s,s:o,s:o,s:i,s:i}", keyname, key, "counters", json_object(), "rates",
		      json_object(), "tasks", 0, "running_tasks", 0);
	if (tenant)
		json_object_set_new(g, "tenant", json_string(tenant));
	json_object_set_new(groups, key, g);
	return g;
}

static void group_add(json_t *g, json_t *rec)
{
	bool live = !json_is_true(json_object_get(rec, "final"));

	add_into(json_object_get(g, "counters"), json_object_get(rec, "counters"), live);
	if (live)
		add_into(json_object_get(g, "rates"), json_object_get(rec, "rates"), false);
	json_object_set_new(g, "tasks", json_integer(json_integer_value(json_object_get(g, "tasks")) + 1));
	if (live)
		json_object_set_new(g, "running_tasks",
				    json_integer(json_integer_value(json_object_get(g, "running_tasks")) + 1));
}

static bool app_matches(const char *filter, const char *app)
{
	while (*filter == '/')
		filter++;
	while (*app == '/')
		app++;
	return strcmp(filter, app) == 0;
}

static json_t *values_of(json_t *obj)
{
	json_t *arr = json_array(), *v;
	const char *k;

	json_object_foreach(obj, k, v)
		json_array_append(arr, v);
	return arr;
}

json_t *usage_query(struct usage *u, const char *tenant, const char *app, const char *task)
{
	json_t *tenants = json_object(), *apps = json_object(), *tasks = json_array(), *rec;
	const char *key;

	pthread_mutex_lock(&u->mu);
	json_object_foreach(u->tasks, key, rec) {
		const char *t_tenant = json_string_value(json_object_get(rec, "tenant")) ?: "";
		const char *t_app = json_string_value(json_object_get(rec, "app_id")) ?: "";

		if ((tenant && *tenant && strcmp(tenant, t_tenant)) || (app && *app && !app_matches(app, t_app)) ||
		    (task && *task && strcmp(task, key)))
			continue;
		json_array_append_new(tasks, json_deep_copy(rec));
		group_add(group_get(tenants, t_tenant, "tenant", NULL), rec);
		group_add(group_get(apps, t_app, "app_id", t_tenant), rec);
	}
	pthread_mutex_unlock(&u->mu);
	json_t *out = json_pack("{s:o,s:o,s:o}", "tenants", values_of(tenants), "apps", values_of(apps),
				"tasks", tasks);
	json_decref(tenants);
	json_decref(apps);
	return out;
}

/* ---- Prometheus text format ---- */

struct buf { char *p; size_t len, cap; bool oom; };

static void bprintf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void bprintf(struct buf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (b->oom)
		return;
	for (;;) {
		va_start(ap, fmt);
		n = vsnprintf(b->p + b->len, b->cap - b->len, fmt, ap);
		va_end(ap);
		if (n < 0) {
			b->oom = true;
			return;
		}
		if ((size_t)n < b->cap - b->len) {
			b->len += (size_t)n;
			return;
		}
		size_t cap = b->cap * 2 + (size_t)n + 1;
		char *p = realloc(b->p, cap);

		if (!p) {
			b->oom = true;
			return;
		}
		b->p = p;
		b->cap = cap;
	}
}

/* Label values escape backslash, double quote and newline. */
static void blabel(struct buf *b, const char *name, const char *v, bool comma)
{
	bprintf(b, "%s%s=\"", comma ? "," : "", name);
	for (; v && *v; v++) {
		if (*v == '\\')
			bprintf(b, "\\\\");
		else if (*v == '"')
			bprintf(b, "\\\"");
		else if (*v == '\n')
			bprintf(b, "\\n");
		else
			bprintf(b, "%c", *v);
	}
	bprintf(b, "\"");
}

char *usage_metrics_text(struct usage *u)
{
	struct buf b = { .cap = 4096 };
	const char *key;
	json_t *rec;

	b.p = malloc(b.cap);
	if (!b.p)
		return NULL;
	b.p[0] = '\0';
	pthread_mutex_lock(&u->mu);
	for (size_t i = 0; i < usage_nfields; i++) {
		const struct usage_field *f = &usage_fields[i];

		bprintf(&b, "# HELP %s %s\n# TYPE %s %s\n", f->metric, f->help, f->metric,
			f->counter ? "counter" : "gauge");
		json_object_foreach(u->tasks, key, rec) {
			json_int_t v = json_integer_value(json_object_get(json_object_get(rec, "counters"), f->name));

			if (!f->counter && json_is_true(json_object_get(rec, "final")) &&
			    strcmp(f->name, "mem_peak_bytes"))
				v = 0;      /* an ended task uses no memory */
			bprintf(&b, "%s{", f->metric);
			blabel(&b, "tenant", json_string_value(json_object_get(rec, "tenant")), false);
			blabel(&b, "app", json_string_value(json_object_get(rec, "app_id")), true);
			blabel(&b, "task", key, true);
			blabel(&b, "agent", json_string_value(json_object_get(rec, "agent_id")), true);
			if (f->scale == 1)
				bprintf(&b, "} %lld\n", (long long)v);
			else
				bprintf(&b, "} %.9f\n", (double)v * f->scale);
		}
	}
	bprintf(&b, "# HELP pacer_usage_reports_total Usage batches from agents applied by the master.\n"
		"# TYPE pacer_usage_reports_total counter\npacer_usage_reports_total %llu\n",
		(unsigned long long)u->batches);
	bprintf(&b, "# HELP pacer_usage_duplicate_reports_total Usage batches acknowledged again without being applied.\n"
		"# TYPE pacer_usage_duplicate_reports_total counter\npacer_usage_duplicate_reports_total %llu\n",
		(unsigned long long)u->duplicates);
	bprintf(&b, "# HELP pacer_usage_skipped_reports_total Malformed task reports inside agent batches, skipped.\n"
		"# TYPE pacer_usage_skipped_reports_total counter\npacer_usage_skipped_reports_total %llu\n",
		(unsigned long long)u->skipped);
	bprintf(&b, "# HELP pacer_usage_store_commits_total Store transactions that wrote usage (one per group of batches).\n"
		"# TYPE pacer_usage_store_commits_total counter\npacer_usage_store_commits_total %llu\n",
		(unsigned long long)u->commits);
	pthread_mutex_unlock(&u->mu);
	if (b.oom) {
		free(b.p);
		return NULL;
	}
	return b.p;
}

int usage_subscribe(struct usage *u, struct http_stream *out)
{
	static const char *const types[] = { "usage_update", NULL };

	if (!u->bus)
		return -ENOTSUP;
	return u->bus->subscribe(u->bus->ctx, types, out);
}

void usage_close_streams(struct usage *u)
{
	if (u && u->bus)
		u->bus->close(u->bus->ctx);
}
