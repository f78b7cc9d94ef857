/* acct_maps.c - finds an agent's pin folder (<bpffs>/pacer/<agent-id>), reads the pinned
 * `tracked` (cgroup id -> task id), `task_acct` and `task_net` maps (network counters in
 * the task cgroups' storage; absent for an agent of an older build), and names each
 * task's app and tenant from the agent's checkpoint (<work-dir>/meta/tasks/<id>/task.json:
 * task.app_id).
 * The task id is kept in a pinned map rather than only in the work dir so that the
 * counters are named even without the work dir (another host path, a container). */
#include "tools/pacer-bpf/pacer_bpf.h"

#include <bpf/bpf.h>
#include <dirent.h>
#include <errno.h>
#include <linux/magic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/vfs.h>
#include <unistd.h>

#include "bpf/task_acct_read.h"
#include "lib/util.h"

static int find_agent(const struct opts *o, char *dir, size_t dirlen, char *err, size_t errlen)
{
	char root[PATH_MAX], only[256] = "";
	struct statfs st;
	struct dirent *de;
	int count = 0;
	DIR *d;

	if (statfs(o->bpffs, &st) < 0 || st.f_type != BPF_FS_MAGIC) {
		snprintf(err, errlen, "%s is not a mounted bpffs (mount -t bpf bpf %s)", o->bpffs,
			 o->bpffs);
		return -ENOENT;
	}
	if (path_join(root, sizeof(root), "%s/pacer", o->bpffs))
		return -ENAMETOOLONG;
	if (o->agent) {
		if (path_join(dir, dirlen, "%s/%s", root, o->agent))
			return -ENAMETOOLONG;
		if (access(dir, F_OK)) {
			snprintf(err, errlen, "no such agent: %s (no pin folder %s)", o->agent, dir);
			return -ENOENT;
		}
		return 0;
	}
	d = opendir(root);
	if (!d) {
		snprintf(err, errlen, "no Pacer agent on this node (%s: %s)", root, strerror(errno));
		return -ENOENT;
	}
	while ((de = readdir(d))) {
		if (de->d_name[0] == '.' || de->d_type != DT_DIR)
			continue;
		count++;
		snprintf(only, sizeof(only), "%s", de->d_name);
	}
	closedir(d);
	if (!count) {
		snprintf(err, errlen, "no Pacer agent on this node (%s is empty)", root);
		return -ENOENT;
	}
	if (count > 1) {
		snprintf(err, errlen, "%d agents under %s: choose one with --agent ID", count, root);
		return -EINVAL;
	}
	return path_join(dir, dirlen, "%s/%s", root, only);
}

static int open_pinned(const char *dir, const char *name, char *err, size_t errlen)
{
	char path[PATH_MAX];
	int fd;

	if (path_join(path, sizeof(path), "%s/%s", dir, name))
		return -ENAMETOOLONG;
	fd = bpf_obj_get(path);
	if (fd < 0) {
		fd = -errno;
		snprintf(err, errlen, "cannot open pinned map %s: %s", path, strerror(-fd));
	}
	return fd;
}

/* Without the agent's checkpoint, a Marathon task id still names its app: the app path
 * with '/' turned into '_' (app ids never contain '_'), a dot, a uuid. */
static void name_app_from_task_id(struct task_row *r)
{
	size_t n = strcspn(r->task_id, ".");
	char *p;

	if (r->task_id[n] != '.' || n == 0 || n + 2 > sizeof(r->app_id))
		return;
	snprintf(r->app_id, sizeof(r->app_id), "/%.*s", (int)n, r->task_id);
	for (p = r->app_id; *p; p++)
		if (*p == '_')
			*p = '/';
	snprintf(r->tenant, sizeof(r->tenant), "%.*s", (int)strcspn(r->app_id + 1, "/"),
		 r->app_id + 1);
}

/* "/tenant/app" -> app "/tenant/app", tenant "tenant"; from the agent's checkpoint if it
 * is there, else from the task id; neither: tenant "-". */
static void name_app(const struct opts *o, struct task_row *r)
{
	char path[PATH_MAX];
	const char *app;
	json_t *j;

	snprintf(r->tenant, sizeof(r->tenant), "-");
	name_app_from_task_id(r);
	if (path_join(path, sizeof(path), "%s/meta/tasks/%s/task.json", o->work_dir, r->task_id))
		return;
	j = json_load_file(path, 0, NULL);
	app = json_string_value(json_object_get(json_object_get(j, "task"), "app_id"));
	if (app && *app) {
		const char *seg = app + (*app == '/');

		snprintf(r->app_id, sizeof(r->app_id), "%s", app);
		snprintf(r->tenant, sizeof(r->tenant), "%.*s", (int)strcspn(seg, "/"), seg);
	}
	json_decref(j);
}

static int grow(struct snapshot *s, size_t *cap)
{
	struct task_row *n;

	if (s->n < *cap)
		return 0;
	*cap = *cap ? *cap * 2 : 64;
	n = realloc(s->rows, *cap * sizeof(*n));
	if (!n)
		return -ENOMEM;
	s->rows = n;
	return 0;
}

static int cmp_task(const void *a, const void *b)
{
	return strcmp(((const struct task_row *)a)->task_id, ((const struct task_row *)b)->task_id);
}

int snapshot_take(const struct opts *o, struct snapshot *s, char *err, size_t errlen)
{
	struct bpf_map_info info = { 0 };
	uint32_t len = sizeof(info);
	uint64_t key, *prev = NULL;
	int acct = -1, tracked = -1, net = -1, rc;
	bool acct_percpu, net_percpu = false;
	size_t cap = 0;

	memset(s, 0, sizeof(*s));
	rc = find_agent(o, s->pin_dir, sizeof(s->pin_dir), err, errlen);
	if (rc)
		return rc;
	acct = open_pinned(s->pin_dir, "task_acct", err, errlen);
	if (acct < 0)
		return acct;
	tracked = open_pinned(s->pin_dir, "tracked", err, errlen);
	if (tracked < 0) {
		rc = tracked;
		goto out;
	}
	if (bpf_obj_get_info_by_fd(acct, &info, &len) < 0) {
		rc = -errno;
		snprintf(err, errlen, "cannot inspect %s/task_acct: %s", s->pin_dir, strerror(-rc));
		goto out;
	}
	acct_percpu = info.type == BPF_MAP_TYPE_PERCPU_HASH;
	/* Network counters in the cgroups' storage; an agent of an older build has no
	 * task_net (its skb programs count into task_acct). */
	net = open_pinned(s->pin_dir, "task_net", (char[8]){ 0 }, 8);
	if (net >= 0)
		net_percpu = task_acct_map_percpu(net);
	/* Every counted cgroup has an entry in task_acct; its name comes from tracked. */
	while (bpf_map_get_next_key(acct, prev, &key) == 0) {
		struct tracked_task name;
		struct task_row *r;

		prev = &key;
		if ((rc = grow(s, &cap)))
			goto out;
		r = &s->rows[s->n];
		memset(r, 0, sizeof(*r));
		r->cgroup_id = key;
		if (task_acct_read(acct, acct_percpu, net, net_percpu, key, &r->acct))
			continue;       /* deleted meanwhile (task cleaned up) */
		if (bpf_map_lookup_elem(tracked, &key, &name) == 0)
			snprintf(r->task_id, sizeof(r->task_id), "%.*s", (int)sizeof(name.task_id) - 1,
				 name.task_id);
		else
			snprintf(r->task_id, sizeof(r->task_id), "cgroup-%llu", (unsigned long long)key);
		name_app(o, r);
		s->n++;
	}
	qsort(s->rows, s->n, sizeof(*s->rows), cmp_task);
	rc = 0;
out:
	if (tracked >= 0)
		close(tracked);
	if (net >= 0)
		close(net);
	close(acct);
	if (rc)
		snapshot_free(s);
	return rc;
}

void snapshot_free(struct snapshot *s)
{
	free(s->rows);
	s->rows = NULL;
	s->n = 0;
}
