/* output.c - pacer-bpf's views: JSON (-j compact, -p pretty) and plain tables for
 * `task show`, `tenant show` (tasks summed per tenant) and `top` (rates between two
 * samples, sorted by CPU then network rate, like bpftop). */
#include "tools/pacer-bpf/pacer_bpf.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "lib/util.h"

#define FIELD(x) { #x, offsetof(struct task_acct, x) }
static const struct { const char *name; size_t off; } fields[] = {
	FIELD(rx_bytes), FIELD(rx_packets), FIELD(tx_bytes), FIELD(tx_packets),
	FIELD(tcp_connects), FIELD(tcp_accepts), FIELD(udp_rx_datagrams), FIELD(udp_tx_datagrams),
	FIELD(policy_denials), FIELD(cpu_ns), FIELD(vfs_read_bytes), FIELD(vfs_write_bytes),
};

static uint64_t field(const struct task_acct *a, size_t i)
{
	return *(const uint64_t *)((const char *)a + fields[i].off);
}

static void add_acct(struct task_acct *sum, const struct task_acct *a)
{
	for (size_t i = 0; i < ARRAY_SIZE(fields); i++)
		*(uint64_t *)((char *)sum + fields[i].off) += field(a, i);
}

static json_t *acct_json(json_t *o, const struct task_acct *a)
{
	for (size_t i = 0; i < ARRAY_SIZE(fields); i++)
		json_object_set_new(o, fields[i].name, json_integer((json_int_t)field(a, i)));
	return o;
}

json_t *row_json(const struct task_row *r)
{
	json_t *o = json_pack("{s:s, s:I, s:s?, s:s}", "task_id", r->task_id,
			      "cgroup_id", (json_int_t)r->cgroup_id,
			      "app_id", r->app_id[0] ? r->app_id : NULL, "tenant", r->tenant);

	return o ? acct_json(o, &r->acct) : NULL;
}

void print_json(const struct opts *o, json_t *v)
{
	char *s = json_dumps(v, (o->pretty ? JSON_INDENT(2) : JSON_COMPACT) | JSON_PRESERVE_ORDER);

	if (s)
		printf("%s\n", s);
	free(s);
	json_decref(v);
}

static const char *human(uint64_t v, char *buf, size_t len)
{
	static const char *const units[] = { "", "K", "M", "G", "T", "P" };
	double d = (double)v;
	size_t u = 0;

	while (d >= 1000 && u + 1 < ARRAY_SIZE(units)) {
		d /= 1000;
		u++;
	}
	snprintf(buf, len, u ? "%.1f%s" : "%.0f%s", d, units[u]);
	return buf;
}

static void print_counts(const char *label, const struct task_acct *a)
{
	char b[8][16];

	printf("%-44s %8s %8s %8s %8s %5llu/%-5llu %8s %9.3f %8s %8s\n", label,
	       human(a->rx_bytes, b[0], 16), human(a->rx_packets, b[1], 16),
	       human(a->tx_bytes, b[2], 16), human(a->tx_packets, b[3], 16),
	       (unsigned long long)a->tcp_connects, (unsigned long long)a->tcp_accepts,
	       human(a->udp_rx_datagrams + a->udp_tx_datagrams, b[4], 16), (double)a->cpu_ns / 1e9,
	       human(a->vfs_read_bytes, b[5], 16), human(a->vfs_write_bytes, b[6], 16));
}

static void print_header(const char *what)
{
	printf("%-44s %8s %8s %8s %8s %11s %8s %9s %8s %8s\n", what, "RX_B", "RX_PKT", "TX_B",
	       "TX_PKT", "CONN/ACC", "UDP_DG", "CPU_S", "READ_B", "WRITE_B");
}

void print_task_table(const struct task_row *rows, size_t n)
{
	print_header("TASK");
	for (size_t i = 0; i < n; i++)
		print_counts(rows[i].task_id, &rows[i].acct);
}

int cmd_tenant_show(const struct opts *o, const struct snapshot *s)
{
	json_t *tenants = json_object();
	const char *name;
	json_t *v;

	/* Group by tenant: a JSON object keyed by tenant holding the summed counters. */
	for (size_t i = 0; i < s->n; i++) {
		const struct task_row *r = &s->rows[i];
		json_t *t = json_object_get(tenants, r->tenant);
		struct task_acct sum = { 0 };

		if (t) {
			for (size_t f = 0; f < ARRAY_SIZE(fields); f++)
				*(uint64_t *)((char *)&sum + fields[f].off) =
					(uint64_t)json_integer_value(json_object_get(t, fields[f].name));
			json_object_set_new(t, "tasks", json_integer(json_integer_value(
								json_object_get(t, "tasks")) + 1));
		} else {
			t = json_pack("{s:s, s:i}", "tenant", r->tenant, "tasks", 1);
			json_object_set_new(tenants, r->tenant, t);
		}
		add_acct(&sum, &r->acct);
		acct_json(t, &sum);
	}
	if (o->json) {
		json_t *arr = json_array();

		json_object_foreach(tenants, name, v)
			json_array_append(arr, v);
		json_decref(tenants);
		print_json(o, arr);
		return EXIT_OK;
	}
	print_header("TENANT (TASKS)");
	json_object_foreach(tenants, name, v) {
		struct task_acct sum = { 0 };
		char label[160];

		for (size_t f = 0; f < ARRAY_SIZE(fields); f++)
			*(uint64_t *)((char *)&sum + fields[f].off) =
				(uint64_t)json_integer_value(json_object_get(v, fields[f].name));
		snprintf(label, sizeof(label), "%s (%lld)", name,
			 (long long)json_integer_value(json_object_get(v, "tasks")));
		print_counts(label, &sum);
	}
	json_decref(tenants);
	return EXIT_OK;
}

/* ---- top -------------------------------------------------------------------------- */

struct rate {
	const struct task_row *row;
	double cpu_pct, rx_bps, tx_bps, read_bps, write_bps, conn_ps;
};

static int cmp_rate(const void *a, const void *b)
{
	const struct rate *x = a, *y = b;
	double kx = x->cpu_pct * 1e12 + x->rx_bps + x->tx_bps;
	double ky = y->cpu_pct * 1e12 + y->rx_bps + y->tx_bps;

	return kx < ky ? 1 : kx > ky ? -1 : strcmp(x->row->task_id, y->row->task_id);
}

static const struct task_row *find_row(const struct snapshot *s, uint64_t id)
{
	for (size_t i = 0; i < s->n; i++)
		if (s->rows[i].cgroup_id == id)
			return &s->rows[i];
	return NULL;
}

static void sleep_s(double s)
{
	struct timespec ts = { .tv_sec = (time_t)s, .tv_nsec = (long)((s - floor(s)) * 1e9) };

	nanosleep(&ts, NULL);
}

static int top_once(const struct opts *o, bool clear)
{
	struct snapshot a, b;
	struct rate *rates;
	char err[512];
	double t0, dt;
	size_t n = 0;
	int rc;

	if ((rc = snapshot_take(o, &a, err, sizeof(err))))
		goto fail;
	t0 = now_mono();
	sleep_s(o->delay);
	if ((rc = snapshot_take(o, &b, err, sizeof(err)))) {
		snapshot_free(&a);
		goto fail;
	}
	dt = now_mono() - t0;
	rates = calloc(b.n + 1, sizeof(*rates));
	for (size_t i = 0; rates && i < b.n; i++) {
		const struct task_row *now = &b.rows[i], *then = find_row(&a, now->cgroup_id);
		struct task_acct z = { 0 };
		const struct task_acct *p = then ? &then->acct : &z;

		rates[n++] = (struct rate){
			.row = now,
			.cpu_pct = 100.0 * (double)(now->acct.cpu_ns - p->cpu_ns) / (dt * 1e9),
			.rx_bps = (double)(now->acct.rx_bytes - p->rx_bytes) / dt,
			.tx_bps = (double)(now->acct.tx_bytes - p->tx_bytes) / dt,
			.read_bps = (double)(now->acct.vfs_read_bytes - p->vfs_read_bytes) / dt,
			.write_bps = (double)(now->acct.vfs_write_bytes - p->vfs_write_bytes) / dt,
			.conn_ps = (double)(now->acct.tcp_connects + now->acct.tcp_accepts -
					    p->tcp_connects - p->tcp_accepts) / dt,
		};
	}
	qsort(rates, n, sizeof(*rates), cmp_rate);
	if (o->json) {
		json_t *arr = json_array();

		for (size_t i = 0; i < n; i++)
			json_array_append_new(arr, json_pack("{s:s, s:s, s:f, s:f, s:f, s:f, s:f, s:f}",
				"task_id", rates[i].row->task_id, "tenant", rates[i].row->tenant,
				"cpu_percent", rates[i].cpu_pct, "rx_bytes_per_s", rates[i].rx_bps,
				"tx_bytes_per_s", rates[i].tx_bps, "read_bytes_per_s", rates[i].read_bps,
				"write_bytes_per_s", rates[i].write_bps, "connections_per_s", rates[i].conn_ps));
		print_json(o, arr);
	} else {
		char h[5][16];

		if (clear)
			printf("\033[H\033[2J");
		printf("pacer-bpf top  %s  %zu tasks  interval %.1fs\n", b.pin_dir, n, dt);
		printf("%-44s %6s %9s %9s %9s %9s %7s\n", "TASK", "CPU%", "RX_B/s", "TX_B/s", "READ_B/s",
		       "WRITE_B/s", "CONN/s");
		for (size_t i = 0; i < n; i++)
			printf("%-44s %6.1f %9s %9s %9s %9s %7.1f\n", rates[i].row->task_id, rates[i].cpu_pct,
			       human((uint64_t)rates[i].rx_bps, h[0], 16), human((uint64_t)rates[i].tx_bps, h[1], 16),
			       human((uint64_t)rates[i].read_bps, h[2], 16),
			       human((uint64_t)rates[i].write_bps, h[3], 16), rates[i].conn_ps);
	}
	fflush(stdout);
	free(rates);
	snapshot_free(&a);
	snapshot_free(&b);
	return EXIT_OK;
fail:
	fprintf(stderr, "pacer-bpf: %s\n", err);
	return EXIT_FAIL;
}

int cmd_top(const struct opts *o)
{
	bool tty = isatty(STDOUT_FILENO) && !o->json;

	for (int i = 0; !o->iterations || i < o->iterations; i++) {
		int rc = top_once(o, tty);

		if (rc)
			return rc;
	}
	return EXIT_OK;
}
