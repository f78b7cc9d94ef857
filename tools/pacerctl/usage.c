/* usage.c - `pacerctl usage [--tenant T] [--app ID]`: the master's usage view from
 * GET /v1/usage: one table per tenant, app and (with --app) task, with cumulative totals
 * in base units and the recent send/receive rates. --json prints the server's answer. */
#include <curl/curl.h>
#include <stdio.h>
#include <string.h>

#include "tools/pacerctl/pacerctl.h"

#define USAGE_USAGE "usage [--tenant T] [--app ID] [--json]"

static json_int_t counter(json_t *row, const char *name)
{
	return json_integer_value(json_object_get(json_object_get(row, "counters"), name));
}

static double rate(json_t *row, const char *name)
{
	return json_number_value(json_object_get(json_object_get(row, "rates"), name));
}

/* The cells after the row's name columns. */
static void number_cells(json_t *row, char cells[][32])
{
	snprintf(cells[0], 32, "%lld", (long long)counter(row, "rx_bytes"));
	snprintf(cells[1], 32, "%lld", (long long)counter(row, "tx_bytes"));
	snprintf(cells[2], 32, "%lld", (long long)(counter(row, "rx_packets") + counter(row, "tx_packets")));
	snprintf(cells[3], 32, "%.3f", (double)counter(row, "cpu_ns") / 1e9);
	snprintf(cells[4], 32, "%lld", (long long)counter(row, "vfs_read_bytes"));
	snprintf(cells[5], 32, "%lld", (long long)counter(row, "vfs_write_bytes"));
	snprintf(cells[6], 32, "%.0f", rate(row, "rx_bytes") + rate(row, "tx_bytes"));
}

#define NNUM 7
static const char *const num_headers[NNUM] = {
	"RX_BYTES", "TX_BYTES", "PACKETS", "CPU_SECONDS", "READ_BYTES", "WRITE_BYTES", "NET_BYTES/S"
};

/* names: the row's leading string fields (NULL-terminated list of keys); heads their headers. */
static int print_table(const char *title, json_t *rows, const char *const *keys,
		       const char *const *heads, size_t nkeys)
{
	const char *headers[16], *cells[16];
	char num[NNUM][32];
	struct table *t;
	json_t *row;
	size_t i;
	int ret = CTL_OK;

	for (i = 0; i < nkeys; i++)
		headers[i] = heads[i];
	for (i = 0; i < NNUM; i++)
		headers[nkeys + i] = num_headers[i];
	t = table_new(headers, nkeys + NNUM);
	if (!t)
		return ctl_fail("out of memory");
	json_array_foreach(rows, i, row) {
		char tasks[32];

		for (size_t k = 0; k < nkeys; k++) {
			json_t *v = json_object_get(row, keys[k]);

			if (json_is_string(v)) {
				cells[k] = json_string_value(v)[0] ? json_string_value(v) : "-";
			} else {
				ctl_fmt_value(v, tasks, sizeof(tasks));
				cells[k] = strcmp(keys[k], "final") == 0
					   ? (json_is_true(v) ? "ended" : "running") : tasks;
			}
		}
		number_cells(row, num);
		for (size_t k = 0; k < NNUM; k++)
			cells[nkeys + k] = num[k];
		if (table_add_row(t, cells) < 0) {
			ret = ctl_fail("out of memory");
			break;
		}
	}
	printf("%s\n", title);
	table_print(t, stdout);
	table_free(t);
	return ret;
}

int cmd_usage(struct ctl *c)
{
	static const char *const tenant_keys[] = { "tenant", "tasks", "running_tasks" };
	static const char *const tenant_heads[] = { "TENANT", "TASKS", "RUNNING" };
	static const char *const app_keys[] = { "app_id", "tenant", "tasks", "running_tasks" };
	static const char *const app_heads[] = { "APP", "TENANT", "TASKS", "RUNNING" };
	static const char *const task_keys[] = { "task_id", "agent_id", "final" };
	static const char *const task_heads[] = { "TASK", "AGENT", "STATE" };
	char path[2048];
	char *t = NULL, *a = NULL;
	json_t *out = NULL;
	int ret;

	if (c->verb && strcmp(c->verb, "show"))
		return ctl_usage_error(USAGE_USAGE, "unknown argument '%s'", c->verb);
	if (c->nargs > 0)
		return ctl_usage_error(USAGE_USAGE, "unexpected argument '%s'", c->args[0]);
	if (c->tenant)
		t = curl_easy_escape(NULL, c->tenant, 0);
	if (c->app)
		a = curl_easy_escape(NULL, c->app, 0);
	snprintf(path, sizeof(path), "/v1/usage?tenant=%s&app=%s", t ? t : "", a ? a : "");
	curl_free(t);
	curl_free(a);
	ret = ctl_request(c, "GET", path, NULL, 0, &out);
	if (ret != CTL_OK)
		return ret;
	if (c->json) {
		ctl_print_json(out);
	} else {
		ret = print_table("TENANTS", json_object_get(out, "tenants"), tenant_keys, tenant_heads, 3);
		if (ret == CTL_OK) {
			printf("\n");
			ret = print_table("APPS", json_object_get(out, "apps"), app_keys, app_heads, 4);
		}
		if (ret == CTL_OK && c->app) {
			printf("\n");
			ret = print_table("TASKS", json_object_get(out, "tasks"), task_keys, task_heads, 3);
		}
	}
	json_decref(out);
	return ret;
}
