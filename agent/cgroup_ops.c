/* cgroup_ops.c - operations on one task cgroup across every hierarchy of the layout:
 * create, limit, attach, signal, remove, and the counters the containerizer reports. */
#include "agent/cgroup_fs.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "lib/util.h"

#define CFS_PERIOD_US 100000

static int knob_path(const char *root, const char *rel, const char *file, char *out, size_t len)
{
	return path_join(out, len, "%s/%s/%s", root, rel, file);
}

static int write_knob(const char *root, const char *rel, const char *file, const char *value)
{
	char path[PATH_MAX];
	int rc = knob_path(root, rel, file, path, sizeof(path));

	return rc ? rc : write_string_file(path, value);
}

static int read_u64_file(const char *path, uint64_t *value)
{
	char *text = read_file(path, NULL);
	char *end;
	int rc = 0;

	if (!text)
		return -errno;
	errno = 0;
	*value = strtoull(text, &end, 10);
	if (errno || end == text)
		rc = -EINVAL;
	free(text);
	return rc;
}

/* v2: a cgroup's children can use a controller only if the parent enables it. */
static int enable_v2_controllers(const struct cgroup_layout *l, const char *rel)
{
	static const char *const ctrls[] = { "+cpu", "+memory", "+pids" };
	char prefix[PATH_MAX];
	const char *slash = rel;

	for (;;) {
		size_t n = slash == rel ? 0 : (size_t)(slash - rel);

		if (path_join(prefix, sizeof(prefix), "%.*s", (int)n, rel))
			return -ENAMETOOLONG;
		for (size_t i = 0; i < ARRAY_SIZE(ctrls); i++) {
			int rc = write_knob(l->unified, prefix, "cgroup.subtree_control", ctrls[i]);

			if (rc && strcmp(ctrls[i], "+pids"))
				return rc;
		}
		slash = strchr(slash == rel ? rel : slash + 1, '/');
		if (!slash)
			return 0;
	}
}

int cgroup_create(const struct cgroup_layout *l, const char *rel)
{
	char path[PATH_MAX];
	int rc;

	if (l->mode == CGROUP_MODE_V2) {
		char parent[PATH_MAX];
		const char *last = strrchr(rel, '/');

		if (last) {
			if (path_join(parent, sizeof(parent), "%.*s", (int)(last - rel), rel))
				return -ENAMETOOLONG;
			if (path_join(path, sizeof(path), "%s/%s", l->unified, parent))
				return -ENAMETOOLONG;
			rc = mkdir_p(path, 0755);
			if (rc)
				return rc;
		}
		/* The enable walk is relative to the root: "" then each ancestor of rel. */
		rc = enable_v2_controllers(l, rel);
		if (rc)
			return rc;
	}
	for (int i = 0; i < l->nroots; i++) {
		rc = path_join(path, sizeof(path), "%s/%s", l->roots[i], rel);
		if (!rc)
			rc = mkdir_p(path, 0755);
		if (rc)
			return rc;
	}
	return 0;
}

bool cgroup_exists(const struct cgroup_layout *l, const char *rel)
{
	char path[PATH_MAX];
	struct stat st;

	if (cgroup_unified_dir(l, rel, path, sizeof(path)))
		return false;
	return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

int cgroup_set_limits(const struct cgroup_layout *l, const char *rel, double cpus, uint64_t mem_bytes)
{
	char v[64];
	int rc;

	if (cpus > 0) {
		uint64_t quota = (uint64_t)(cpus * CFS_PERIOD_US);

		if (quota < 1000)
			quota = 1000;
		if (l->mode == CGROUP_MODE_V2) {
			uint64_t weight = (uint64_t)(cpus * 100 + 0.5);

			weight = weight < 1 ? 1 : weight > 10000 ? 10000 : weight;
			snprintf(v, sizeof(v), "%" PRIu64, weight);
			if ((rc = write_knob(l->unified, rel, "cpu.weight", v)))
				return rc;
			snprintf(v, sizeof(v), "%" PRIu64 " %d", quota, CFS_PERIOD_US);
			if ((rc = write_knob(l->unified, rel, "cpu.max", v)))
				return rc;
		} else {
			uint64_t shares = (uint64_t)(cpus * 1024 + 0.5);
			const char *root = l->v1[CG_V1_CPU];

			snprintf(v, sizeof(v), "%" PRIu64, shares < 2 ? 2 : shares);
			if ((rc = write_knob(root, rel, "cpu.shares", v)))
				return rc;
			snprintf(v, sizeof(v), "%d", CFS_PERIOD_US);
			if ((rc = write_knob(root, rel, "cpu.cfs_period_us", v)))
				return rc;
			snprintf(v, sizeof(v), "%" PRIu64, quota);
			if ((rc = write_knob(root, rel, "cpu.cfs_quota_us", v)))
				return rc;
		}
	}
	if (mem_bytes) {
		snprintf(v, sizeof(v), "%" PRIu64, mem_bytes);
		if (l->mode == CGROUP_MODE_V2) {
			if ((rc = write_knob(l->unified, rel, "memory.max", v)))
				return rc;
			/* Swap would let a task exceed its limit silently; absent without swap. */
			rc = write_knob(l->unified, rel, "memory.swap.max", "0");
		} else {
			const char *root = l->v1[CG_V1_MEMORY];

			if ((rc = write_knob(root, rel, "memory.limit_in_bytes", v)))
				return rc;
			rc = write_knob(root, rel, "memory.memsw.limit_in_bytes", v);
		}
		if (rc && rc != -ENOENT)
			return rc;
	}
	return 0;
}

int cgroup_attach(const struct cgroup_layout *l, const char *rel, pid_t pid)
{
	char v[32];

	snprintf(v, sizeof(v), "%d", (int)pid);
	for (int i = 0; i < l->nroots; i++) {
		int rc = write_knob(l->roots[i], rel, "cgroup.procs", v);

		if (rc)
			return rc;
	}
	return 0;
}

int cgroup_pids(const struct cgroup_layout *l, const char *rel, pid_t **out, size_t *count)
{
	char path[PATH_MAX];
	char *text, *p, *end;
	size_t n = 0, cap = 0;
	pid_t *pids = NULL;
	int rc = knob_path(l->unified, rel, "cgroup.procs", path, sizeof(path));

	*out = NULL;
	*count = 0;
	if (rc)
		return rc;
	text = read_file(path, NULL);
	if (!text)
		return -errno;
	for (p = text;; p = end) {
		long v = strtol(p, &end, 10);

		if (end == p)
			break;
		if (n == cap) {
			pid_t *grown = realloc(pids, (cap = cap ? cap * 2 : 16) * sizeof(*pids));

			if (!grown) {
				free(pids);
				free(text);
				return -ENOMEM;
			}
			pids = grown;
		}
		pids[n++] = (pid_t)v;
	}
	free(text);
	*out = pids;
	*count = n;
	return 0;
}

int cgroup_signal(const struct cgroup_layout *l, const char *rel, int sig)
{
	pid_t *pids;
	size_t n;
	int rc;

	if (sig == SIGKILL) {
		rc = write_knob(l->unified, rel, "cgroup.kill", "1");
		if (rc != -ENOENT)
			return rc ? rc : 1;
		if (!cgroup_exists(l, rel))
			return -ENOENT;
	}
	rc = cgroup_pids(l, rel, &pids, &n);
	if (rc)
		return rc;
	for (size_t i = 0; i < n; i++)
		kill(pids[i], sig);
	free(pids);
	return (int)n;
}

static void sleep_ms(long ms)
{
	struct timespec ts = { .tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

/* rmdir fails with EBUSY while processes are inside: kill them and retry until the deadline. */
static int remove_one(const struct cgroup_layout *l, const char *root, const char *rel, double deadline)
{
	char path[PATH_MAX];
	int rc = path_join(path, sizeof(path), "%s/%s", root, rel);

	if (rc)
		return rc;
	for (;;) {
		if (rmdir(path) == 0 || errno == ENOENT)
			return 0;
		if (errno != EBUSY)
			return -errno;
		if (now_mono() > deadline)
			return -EBUSY;
		cgroup_signal(l, rel, SIGKILL);
		sleep_ms(5);
	}
}

int cgroup_remove(const struct cgroup_layout *l, const char *rel, double timeout_seconds)
{
	double deadline = now_mono() + timeout_seconds;
	int first = 0;

	/* v1 hierarchies first: the unified dir is where cgroup_signal finds the pids. */
	for (int i = l->nroots - 1; i >= 0; i--) {
		int rc = remove_one(l, l->roots[i], rel, deadline);

		if (rc && !first)
			first = rc;
	}
	return first;
}

int cgroup_children(const struct cgroup_layout *l, const char *rel, char ***names, size_t *count)
{
	char path[PATH_MAX];
	struct dirent *de;
	size_t n = 0, cap = 0;
	char **out = NULL;
	DIR *d;
	int rc = cgroup_unified_dir(l, rel, path, sizeof(path));

	*names = NULL;
	*count = 0;
	if (rc)
		return rc;
	d = opendir(path);
	if (!d)
		return errno == ENOENT ? 0 : -errno;
	while ((de = readdir(d))) {
		if (de->d_type != DT_DIR || de->d_name[0] == '.')
			continue;
		if (n == cap) {
			char **grown = realloc(out, (cap = cap ? cap * 2 : 16) * sizeof(*out));

			if (!grown)
				goto nomem;
			out = grown;
		}
		if (!(out[n] = strdup(de->d_name)))
			goto nomem;
		n++;
	}
	closedir(d);
	*names = out;
	*count = n;
	return 0;
nomem:
	closedir(d);
	cgroup_free_names(out, n);
	return -ENOMEM;
}

void cgroup_free_names(char **names, size_t count)
{
	for (size_t i = 0; i < count; i++)
		free(names[i]);
	free(names);
}

int cgroup_read_keyed(const char *path, const char *key, uint64_t *value)
{
	size_t klen = strlen(key);
	char *text = read_file(path, NULL);
	char *line, *save = NULL;
	int rc = -ENOENT;

	if (!text)
		return -errno;
	for (line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		if (!strncmp(line, key, klen) && line[klen] == ' ') {
			*value = strtoull(line + klen + 1, NULL, 10);
			rc = 0;
			break;
		}
	}
	free(text);
	return rc;
}

int cgroup_oom_file(const struct cgroup_layout *l, const char *rel, char *out, size_t outlen)
{
	if (l->mode == CGROUP_MODE_V2)
		return knob_path(l->unified, rel, "memory.events", out, outlen);
	return knob_path(l->v1[CG_V1_MEMORY], rel, "memory.oom_control", out, outlen);
}

int cgroup_oom_kills(const struct cgroup_layout *l, const char *rel, uint64_t *count)
{
	char path[PATH_MAX];
	int rc = cgroup_oom_file(l, rel, path, sizeof(path));

	return rc ? rc : cgroup_read_keyed(path, CGROUP_OOM_KEY, count);
}

int cgroup_cpu_ns(const struct cgroup_layout *l, const char *rel, uint64_t *ns)
{
	char path[PATH_MAX];
	uint64_t usec;
	int rc;

	if (l->mode == CGROUP_MODE_HYBRID && l->v1[CG_V1_CPUACCT][0]) {
		rc = knob_path(l->v1[CG_V1_CPUACCT], rel, "cpuacct.usage", path, sizeof(path));
		return rc ? rc : read_u64_file(path, ns);
	}
	/* cgroup2 keeps usage_usec in cpu.stat even without the cpu controller. */
	rc = knob_path(l->unified, rel, "cpu.stat", path, sizeof(path));
	if (!rc)
		rc = cgroup_read_keyed(path, "usage_usec", &usec);
	if (!rc)
		*ns = usec * 1000;
	return rc;
}

static int mem_file(const struct cgroup_layout *l, const char *rel, const char *v2, const char *v1,
		    uint64_t *bytes)
{
	char path[PATH_MAX];
	int rc;

	if (l->mode == CGROUP_MODE_V2)
		rc = knob_path(l->unified, rel, v2, path, sizeof(path));
	else
		rc = knob_path(l->v1[CG_V1_MEMORY], rel, v1, path, sizeof(path));
	return rc ? rc : read_u64_file(path, bytes);
}

int cgroup_mem_bytes(const struct cgroup_layout *l, const char *rel, uint64_t *bytes)
{
	return mem_file(l, rel, "memory.current", "memory.usage_in_bytes", bytes);
}

int cgroup_mem_peak(const struct cgroup_layout *l, const char *rel, uint64_t *bytes)
{
	return mem_file(l, rel, "memory.peak", "memory.max_usage_in_bytes", bytes);
}

int cgroup_id(const struct cgroup_layout *l, const char *rel, uint64_t *id)
{
	struct {
		struct file_handle fh;
		uint64_t cgid;
	} h = { .fh.handle_bytes = sizeof(uint64_t) };
	char path[PATH_MAX];
	int mount_id;
	int rc = cgroup_unified_dir(l, rel, path, sizeof(path));

	if (rc)
		return rc;
	if (name_to_handle_at(AT_FDCWD, path, &h.fh, &mount_id, 0) < 0)
		return -errno;
	memcpy(id, h.fh.f_handle, sizeof(*id));
	return 0;
}
