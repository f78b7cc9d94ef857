/* cgroup_layout.c - finds the cgroup file systems from /proc/self/mounts and decides
 * between the pure v2 layout and the hybrid (v2 for BPF + v1 controllers) layout. */
#include "agent/cgroup_fs.h"

#include <errno.h>
#include <mntent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/util.h"

static const char *const v1_names[CG_V1_COUNT] = {
	[CG_V1_CPU] = "cpu", [CG_V1_CPUACCT] = "cpuacct",
	[CG_V1_MEMORY] = "memory", [CG_V1_PIDS] = "pids",
};

const char *cgroup_mode_name(enum cgroup_mode m)
{
	return m == CGROUP_MODE_V2 ? "v2" : "hybrid";
}

/* True if the space-separated list in <dir>/cgroup.controllers holds every wanted name. */
static bool has_controllers(const char *dir, const char *const *wanted, size_t n)
{
	char path[PATH_MAX];
	char *text;
	bool ok = true;

	if (path_join(path, sizeof(path), "%s/cgroup.controllers", dir))
		return false;
	text = read_file(path, NULL);
	if (!text)
		return false;
	for (size_t i = 0; i < n && ok; i++) {
		char *tok, *save = NULL, *copy = strdup(text);

		ok = false;
		for (tok = copy ? strtok_r(copy, " \n", &save) : NULL; tok; tok = strtok_r(NULL, " \n", &save))
			if (!strcmp(tok, wanted[i]))
				ok = true;
		free(copy);
	}
	free(text);
	return ok;
}

static void add_root(struct cgroup_layout *l, const char *root)
{
	for (int i = 0; i < l->nroots; i++)
		if (!strcmp(l->roots[i], root))
			return;
	l->roots[l->nroots++] = root;
}

int cgroup_layout_detect(struct cgroup_layout *l, char *err, size_t errlen)
{
	static const char *const v2_needed[] = { "cpu", "memory" };
	struct mntent ent, *m;
	char buf[4096];
	FILE *f;

	memset(l, 0, sizeof(*l));
	f = setmntent("/proc/self/mounts", "r");
	if (!f) {
		snprintf(err, errlen, "cannot read /proc/self/mounts: %s", strerror(errno));
		return -errno;
	}
	while ((m = getmntent_r(f, &ent, buf, sizeof(buf)))) {
		if (!strcmp(m->mnt_type, "cgroup2") && !l->unified[0]) {
			snprintf(l->unified, sizeof(l->unified), "%s", m->mnt_dir);
			continue;
		}
		if (strcmp(m->mnt_type, "cgroup"))
			continue;
		for (int c = 0; c < CG_V1_COUNT; c++)
			if (!l->v1[c][0] && hasmntopt(m, v1_names[c]))
				snprintf(l->v1[c], sizeof(l->v1[c]), "%s", m->mnt_dir);
	}
	endmntent(f);

	if (!l->unified[0]) {
		snprintf(err, errlen, "no cgroup2 file system is mounted (needed for the BPF programs)");
		return -ENOENT;
	}
	if (has_controllers(l->unified, v2_needed, ARRAY_SIZE(v2_needed))) {
		l->mode = CGROUP_MODE_V2;
		memset(l->v1, 0, sizeof(l->v1));
		add_root(l, l->unified);
		return 0;
	}
	if (!l->v1[CG_V1_CPU][0] || !l->v1[CG_V1_MEMORY][0]) {
		snprintf(err, errlen, "cgroup2 at %s has no cpu/memory controllers and no v1 cpu and "
			 "memory hierarchies are mounted", l->unified);
		return -ENOENT;
	}
	l->mode = CGROUP_MODE_HYBRID;
	add_root(l, l->unified);
	for (int c = 0; c < CG_V1_COUNT; c++)
		if (l->v1[c][0])
			add_root(l, l->v1[c]);
	return 0;
}

int cgroup_unified_dir(const struct cgroup_layout *l, const char *rel, char *out, size_t outlen)
{
	return path_join(out, outlen, "%s/%s", l->unified, rel);
}

int cgroup_v1_dir(const struct cgroup_layout *l, enum cgroup_v1_ctrl ctrl, const char *rel,
		  char *out, size_t outlen)
{
	if (l->mode != CGROUP_MODE_HYBRID || !l->v1[ctrl][0])
		return -ENOENT;
	return path_join(out, outlen, "%s/%s", l->v1[ctrl], rel);
}
