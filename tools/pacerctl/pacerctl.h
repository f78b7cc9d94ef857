/* pacerctl.h - what the pacerctl command files share: the parsed command line, the
 * request helper that turns HTTP errors into messages, and the aligned-table printer. */
#ifndef PACER_PACERCTL_H
#define PACER_PACERCTL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <jansson.h>

/* Exit codes: success, a failed request (server error, transport error), a usage error. */
enum { CTL_OK = 0, CTL_FAILED = 1, CTL_USAGE = 2 };

struct ctl {
	const char *master;      /* base URL without a trailing slash */
	bool json;               /* --json: print the server's JSON */
	const char *app;         /* --app ID (tasks list, usage) */
	const char *tenant;      /* --tenant T (usage) */
	bool scale;              /* --scale (tasks kill) */
	bool force;              /* --force (apps update/remove/scale) */
	const char *verb;
	char **args;             /* positional arguments after noun and verb */
	int nargs;
};

/* Sends one request to the master. body may be NULL. On a 2xx answer returns CTL_OK and
 * *out (optional) holds the parsed JSON body (NULL if the body is empty or not JSON).
 * Otherwise prints "pacerctl: <server message> (HTTP <status>)" or the transport error to
 * stderr and returns CTL_FAILED. */
int ctl_request(const struct ctl *c, const char *method, const char *path,
		const char *body, size_t body_len, json_t **out);
/* Prints v as indented JSON followed by a newline. */
void ctl_print_json(json_t *v);
/* "pacerctl: " + message on stderr; returns CTL_FAILED. */
int ctl_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Usage error for one command: prints the message and the command's usage line; returns
 * CTL_USAGE. */
int ctl_usage_error(const char *usage, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Marathon app paths: "web", "/web/" -> "/web"; writes the URL path form (no leading
 * slash) into out. Returns 0 or -EINVAL (empty) / -ENAMETOOLONG. */
int ctl_app_path(const char *id, char *out, size_t outlen);
/* The app path of a Marathon task id ("team_web.uuid" -> "team/web"); -EINVAL if the id
 * has no dot. */
int ctl_task_app_path(const char *task_id, char *out, size_t outlen);

/* Value formatting for table cells: numbers without needless decimals, "-" for null. */
void ctl_fmt_value(json_t *v, char *out, size_t outlen);

/* An aligned text table: columns separated by two spaces, headers in the first row. */
struct table;
struct table *table_new(const char *const *headers, size_t ncols);
/* Adds one row; cells are copied (NULL prints as "-"). Returns 0 or -ENOMEM. */
int table_add_row(struct table *t, const char *const *cells);
void table_print(const struct table *t, FILE *out);
void table_free(struct table *t);
/* Prints rows (a JSON array) as a table, one add_row call per element. Returns CTL_OK, or
 * CTL_FAILED when memory runs out. */
int ctl_print_table(const char *const *headers, size_t ncols, json_t *rows,
		    int (*add_row)(struct table *t, json_t *row));

/* The tasks table (tasks list, apps show): ID APP STATE HOST PORTS RX_BYTES TX_BYTES. */
int ctl_print_tasks_table(json_t *tasks);

/* One handler per noun; each parses its verb and arguments. */
int cmd_agents(struct ctl *c);
int cmd_apps(struct ctl *c);
int cmd_tasks(struct ctl *c);
int cmd_deployments(struct ctl *c);
int cmd_usage(struct ctl *c);

#endif
