/* pacer_bpf.h - pacer-bpf: reads one node's pinned accounting maps directly (works while
 * the agent is down), bpftool style. Shared by the files of tools/pacer-bpf/. */
#ifndef PACER_TOOLS_PACER_BPF_H
#define PACER_TOOLS_PACER_BPF_H

#include <jansson.h>
#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "bpf/task_acct.h"

/* Exit codes: 0 ok, 1 runtime error (no agent, bpffs not mounted, no such task), 2 usage. */
enum { EXIT_OK = 0, EXIT_FAIL = 1, EXIT_USAGE = 2 };

struct opts {
	const char *bpffs;        /* bpffs mount point, default /sys/fs/bpf */
	const char *agent;        /* agent id; NULL: the only agent under <bpffs>/pacer */
	const char *work_dir;     /* agent work dir (task.json -> app id) */
	bool json, pretty;
	int iterations;           /* top: screens to print, 0 = until interrupted */
	double delay;             /* top: seconds between samples */
};

struct task_row {
	uint64_t cgroup_id;
	char task_id[TASK_ACCT_ID_LEN];
	char app_id[256];         /* "" if unknown */
	char tenant[128];         /* first segment of app_id, "-" if unknown */
	struct task_acct acct;
};

struct snapshot {
	struct task_row *rows;
	size_t n;
	char pin_dir[PATH_MAX];
};

/* acct_maps.c: resolves the agent's pin folder and reads every tracked task. On error
 * returns -errno with a message naming the problem in err. */
int snapshot_take(const struct opts *o, struct snapshot *s, char *err, size_t errlen);
void snapshot_free(struct snapshot *s);

/* output.c */
json_t *row_json(const struct task_row *r);
void print_json(const struct opts *o, json_t *v);   /* steals v */
void print_task_table(const struct task_row *rows, size_t n);
int cmd_tenant_show(const struct opts *o, const struct snapshot *s);
int cmd_top(const struct opts *o);

#endif
