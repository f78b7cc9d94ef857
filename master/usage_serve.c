/* usage_serve.c - the usage state served: GET /v1/usage as JSON (groups from their
 * incremental sums, tasks from their records), GET /metrics in the Prometheus text format,
 * and the usage_update event of one reading. JSON is built here only, when asked. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "master/usage_model.h"

static json_t *counters_json(const int64_t *c)
{
	json_t *o = json_object();

	for (size_t i = 0; i < usage_nfields; i++)
		json_object_set_new(o, usage_fields[i].name, json_integer(c[i]));
	return o;
}

static json_t *rates_json(const double *r, bool any)
{
	json_t *o = json_object();

	for (size_t i = 0; any && i < usage_nfields; i++)
		if (usage_fields[i].counter)
			json_object_set_new(o, usage_fields[i].name, json_real(r[i]));
	return o;
}

static json_t *task_json(const struct usage_task *t)
{
	return json_pack("{s:s,s:s,s:s,s:s,s:b,s:f,s:I,s:o,s:o}", "task_id", t->id, "app_id",
			 t->app->key, "tenant", t->app->tenant->key, "agent_id", t->agent->id,
			 "final", t->final, "at", t->at, "seq", (json_int_t)t->seq, "counters",
			 counters_json(t->c), "rates", rates_json(t->r, t->has_rates));
}

json_t *usage_task_event(const struct usage_task *t)
{
	json_t *e = task_json(t);

	json_object_del(e, "seq");
	return e;
}

/* The sums of a set of tasks, shaped like a group. */
struct sums {
	__int128 sum[USAGE_NFIELDS];
	double rates[USAGE_NFIELDS];
	long tasks, running, rated;
};

static void sums_of_group(struct sums *s, const struct usage_group *g)
{
	memcpy(s->sum, g->sum, sizeof(s->sum));
	memcpy(s->rates, g->rates, sizeof(s->rates));
	s->tasks = g->tasks;
	s->running = g->running;
	s->rated = g->rated;
}

static void sums_add_task(struct sums *s, const struct usage_task *t)
{
	bool live = !t->final;

	for (size_t i = 0; i < usage_nfields; i++) {
		if (usage_fields[i].counter || live)
			s->sum[i] += t->c[i];
		if (live && t->has_rates && usage_fields[i].counter)
			s->rates[i] += t->r[i];
	}
	s->tasks++;
	s->running += live;
	s->rated += live && t->has_rates;
}

/* As the sums were always shown: counters saturate at INT64_MAX; gauges and rates only
 * when a running task (with rates) is in. */
static json_t *group_json(const char *keyname, const char *key, const char *tenant,
			  const struct sums *s)
{
	json_t *c = json_object(), *r = json_object(), *g;

	for (size_t i = 0; i < usage_nfields; i++) {
		const struct usage_field *f = &usage_fields[i];
		__int128 v = s->sum[i];

		if (!f->counter && !s->running)
			continue;
		json_object_set_new(c, f->name, json_integer(v > INT64_MAX ? INT64_MAX : (json_int_t)v));
		if (f->counter && s->rated)
			json_object_set_new(r, f->name, json_real(s->rates[i] > 0 ? s->rates[i] : 0));
	}
	g = json_pack("{s:s,s:o,s:o,s:I,s:I}", keyname, key, "counters", c, "rates", r, "tasks",
		      (json_int_t)s->tasks, "running_tasks", (json_int_t)s->running);
	if (g && tenant)
		json_object_set_new(g, "tenant", json_string(tenant));
	return g;
}

static bool app_matches(const char *filter, const char *app)
{
	while (*filter == '/')
		filter++;
	while (*app == '/')
		app++;
	return strcmp(filter, app) == 0;
}

static void add_app(json_t *apps, json_t *tasks, const struct usage_group *a)
{
	struct sums s;

	if (!a->tasks)
		return;             /* all its tasks moved to another app */
	sums_of_group(&s, a);
	json_array_append_new(apps, group_json("app_id", a->key, a->tenant->key, &s));
	for (const struct usage_task *t = a->first; t; t = t->next)
		json_array_append_new(tasks, task_json(t));
}

json_t *usage_query(struct usage *u, const char *tenant, const char *app, const char *task)
{
	json_t *tenants = json_array(), *apps = json_array(), *tasks = json_array();
	struct sums s;

	if (tenant && !*tenant)
		tenant = NULL;
	if (app && !*app)
		app = NULL;
	if (task && !*task)
		task = NULL;
	pthread_mutex_lock(&u->mu);
	if (task) {
		/* One task: its groups are its own sums. */
		struct hm_node *n = hashmap_get(&u->tasks, task);
		const struct usage_task *t = n ? hm_entry(n, struct usage_task, node) : NULL;

		if (t && (!tenant || !strcmp(tenant, t->app->tenant->key)) &&
		    (!app || app_matches(app, t->app->key))) {
			memset(&s, 0, sizeof(s));
			sums_add_task(&s, t);
			json_array_append_new(tenants, group_json("tenant", t->app->tenant->key, NULL, &s));
			json_array_append_new(apps, group_json("app_id", t->app->key, t->app->tenant->key, &s));
			json_array_append_new(tasks, task_json(t));
		}
	} else if (app) {
		/* Matching apps (with or without the leading slash); their tenants sum only them. */
		for (const struct usage_group *a = u->apps_head; a; a = a->next) {
			if (!app_matches(app, a->key) || (tenant && strcmp(tenant, a->tenant->key)))
				continue;
			add_app(apps, tasks, a);
		}
		for (const struct usage_group *tn = u->tenants_head; tn; tn = tn->next) {
			bool any = false;

			memset(&s, 0, sizeof(s));
			for (const struct usage_group *a = tn->first_app; a; a = a->next_app) {
				if (!app_matches(app, a->key) || (tenant && strcmp(tenant, tn->key)))
					continue;
				any = true;
				for (size_t i = 0; i < usage_nfields; i++) {
					s.sum[i] += a->sum[i];
					s.rates[i] += a->rates[i];
				}
				s.tasks += a->tasks;
				s.running += a->running;
				s.rated += a->rated;
			}
			if (any && s.tasks)
				json_array_append_new(tenants, group_json("tenant", tn->key, NULL, &s));
		}
	} else {
		for (const struct usage_group *tn = u->tenants_head; tn; tn = tn->next) {
			if ((tenant && strcmp(tenant, tn->key)) || !tn->tasks)
				continue;
			sums_of_group(&s, tn);
			json_array_append_new(tenants, group_json("tenant", tn->key, NULL, &s));
			for (const struct usage_group *a = tn->first_app; a; a = a->next_app)
				add_app(apps, tasks, a);
		}
	}
	pthread_mutex_unlock(&u->mu);
	return json_pack("{s:o,s:o,s:o}", "tenants", tenants, "apps", apps, "tasks", tasks);
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

/* /metrics at 100,000 tasks is 1.5 million lines: plain appends, printf for headers only. */
static void bput(struct buf *b, const char *s, size_t n)
{
	if (b->oom)
		return;
	if (b->cap - b->len <= n) {
		size_t cap = b->cap * 2 + n + 1;
		char *p = realloc(b->p, cap);

		if (!p) {
			b->oom = true;
			return;
		}
		b->p = p;
		b->cap = cap;
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

static void bu64(struct buf *b, uint64_t v, int min_digits)
{
	char tmp[24], *p = tmp + sizeof(tmp);

	do {
		*--p = (char)('0' + v % 10);
		v /= 10;
	} while (v || tmp + sizeof(tmp) - p < min_digits);
	bput(b, p, (size_t)(tmp + sizeof(tmp) - p));
}

/* Label values escape backslash, double quote and newline. */
static void blabel(struct buf *b, const char *name, const char *v, bool comma)
{
	if (comma)
		bput(b, ",", 1);
	bput(b, name, strlen(name));
	bput(b, "=\"", 2);
	while (v && *v) {
		size_t run = strcspn(v, "\\\"\n");

		bput(b, v, run);
		v += run;
		if (!*v)
			break;
		bput(b, *v == '\\' ? "\\\\" : *v == '"' ? "\\\"" : "\\n", 2);
		v++;
	}
	bput(b, "\"", 1);
}

static void counter_line(struct buf *b, const char *name, const char *help, uint64_t v)
{
	bprintf(b, "# HELP %s %s\n# TYPE %s counter\n%s %llu\n", name, help, name, name,
		(unsigned long long)v);
}

char *usage_metrics_text(struct usage *u)
{
	struct buf b = { .cap = 4096 };

	b.p = malloc(b.cap);
	if (!b.p)
		return NULL;
	b.p[0] = '\0';
	struct buf labels = { .cap = 4096 };
	size_t *ends = NULL, n = 0;

	labels.p = malloc(labels.cap);
	pthread_mutex_lock(&u->mu);
	/* Each task's label set, escaped once for all fifteen families. */
	ends = malloc((hashmap_count(&u->tasks) + 1) * sizeof(*ends));
	if (!ends || !labels.p)
		b.oom = true;
	for (const struct usage_group *a = u->apps_head; !b.oom && a; a = a->next) {
		for (const struct usage_task *t = a->first; t; t = t->next) {
			blabel(&labels, "tenant", a->tenant->key, false);
			blabel(&labels, "app", a->key, true);
			blabel(&labels, "task", t->id, true);
			blabel(&labels, "agent", t->agent->id, true);
			ends[n++] = labels.len;
		}
	}
	b.oom |= labels.oom;
	for (size_t i = 0; !b.oom && i < usage_nfields; i++) {
		const struct usage_field *f = &usage_fields[i];
		size_t mlen = strlen(f->metric), k = 0;

		bprintf(&b, "# HELP %s %s\n# TYPE %s %s\n", f->metric, f->help, f->metric,
			f->counter ? "counter" : "gauge");
		for (const struct usage_group *a = u->apps_head; a; a = a->next) {
			for (const struct usage_task *t = a->first; t; t = t->next, k++) {
				uint64_t v = (uint64_t)t->c[i];
				size_t from = k ? ends[k - 1] : 0;

				if (!f->counter && t->final && strcmp(f->name, "mem_peak_bytes"))
					v = 0;      /* an ended task uses no memory */
				bput(&b, f->metric, mlen);
				bput(&b, "{", 1);
				bput(&b, labels.p + from, ends[k] - from);
				bput(&b, "} ", 2);
				if (f->scale == 1) {
					bu64(&b, v, 1);
				} else if (f->scale == 1e-9) {
					/* Nanoseconds as seconds with nine decimals, exactly. */
					bu64(&b, v / 1000000000, 1);
					bput(&b, ".", 1);
					bu64(&b, v % 1000000000, 9);
				} else {
					bprintf(&b, "%.9f", (double)v * f->scale);
				}
				bput(&b, "\n", 1);
			}
		}
	}
	counter_line(&b, "pacer_usage_reports_total", "Usage batches from agents applied by the master.",
		     u->batches);
	counter_line(&b, "pacer_usage_duplicate_reports_total",
		     "Usage batches acknowledged again without being applied.", u->duplicates);
	counter_line(&b, "pacer_usage_skipped_reports_total",
		     "Malformed task reports inside agent batches, skipped.", u->skipped);
	counter_line(&b, "pacer_usage_store_commits_total",
		     "Usage journal writes (one write and fdatasync per group of batches).", u->commits);
	counter_line(&b, "pacer_usage_checkpoints_total",
		     "Checkpoints of the usage state into the store (the journal starts over).",
		     u->checkpoints);
	counter_line(&b, "pacer_usage_retired_tasks_total",
		     "Finished tasks folded into their app's and tenant's totals and forgotten.", u->retired);
	counter_line(&b, "pacer_usage_stream_batches_total",
		     "Usage batches read from the agents' usage streams (the rest came as POSTs).",
		     __atomic_load_n(&u->stream_batches, __ATOMIC_RELAXED));
	bprintf(&b, "# HELP %s %s\n# TYPE %s gauge\n%s %llu\n", "pacer_usage_stream_connections",
		"Agents' usage streams open now.", "pacer_usage_stream_connections",
		"pacer_usage_stream_connections",
		(unsigned long long)__atomic_load_n(&u->stream_conns, __ATOMIC_RELAXED));
	pthread_mutex_unlock(&u->mu);
	free(labels.p);
	free(ends);
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
