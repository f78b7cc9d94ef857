/* cgroup_fs.h - the agent's view of the host's cgroup file systems.
 *
 * Two layouts are supported and detected at start-up:
 *   v2      /sys/fs/cgroup is cgroup2 with the cpu and memory controllers: one tree, limits in
 *           cpu.max / cpu.weight / memory.max, OOM kills in memory.events.
 *   hybrid  cgroup2 (usually /sys/fs/cgroup/unified) without controllers, where BPF programs
 *           attach, plus v1 hierarchies cpu, cpuacct, memory, pids: limits in cpu.shares /
 *           cpu.cfs_quota_us / memory.limit_in_bytes, OOM kills in memory.oom_control.
 * A task's cgroup is the same relative path ("pacer/<agent-id>/<task-id>") in every
 * hierarchy in use. All functions return 0 (or a count) or -errno. */
#ifndef PACER_AGENT_CGROUP_FS_H
#define PACER_AGENT_CGROUP_FS_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

enum cgroup_mode { CGROUP_MODE_V2, CGROUP_MODE_HYBRID };

/* v1 controllers the agent uses; each may share a mount with another (cpu,cpuacct). */
enum cgroup_v1_ctrl { CG_V1_CPU, CG_V1_CPUACCT, CG_V1_MEMORY, CG_V1_PIDS, CG_V1_COUNT };

#define CGROUP_MAX_HIERARCHIES (1 + CG_V1_COUNT)

struct cgroup_layout {
	enum cgroup_mode mode;
	char unified[PATH_MAX];            /* cgroup2 mount point */
	char v1[CG_V1_COUNT][PATH_MAX];    /* hybrid: v1 mount per controller, "" if absent */
	/* Distinct mount points in use (unified first), for create/attach/remove. */
	const char *roots[CGROUP_MAX_HIERARCHIES];
	int nroots;
};

/* Reads /proc/self/mounts. Fails with a message if there is no cgroup2 mount, or if neither
 * layout provides a memory and a cpu controller. */
int cgroup_layout_detect(struct cgroup_layout *l, char *err, size_t errlen);
const char *cgroup_mode_name(enum cgroup_mode m);

/* Directory of rel ("pacer/a/t") in the unified tree, or in the v1 hierarchy of ctrl. */
int cgroup_unified_dir(const struct cgroup_layout *l, const char *rel, char *out, size_t outlen);
int cgroup_v1_dir(const struct cgroup_layout *l, enum cgroup_v1_ctrl ctrl, const char *rel,
		  char *out, size_t outlen);

/* mkdir -p rel in every hierarchy (in v2 mode, enables cpu/memory/pids for its parents). */
int cgroup_create(const struct cgroup_layout *l, const char *rel);
bool cgroup_exists(const struct cgroup_layout *l, const char *rel);
/* cpus -> weight/shares and a CFS quota (period 100 ms); mem_bytes -> hard limit (0: none). */
int cgroup_set_limits(const struct cgroup_layout *l, const char *rel, double cpus, uint64_t mem_bytes);
/* Moves pid into rel in every hierarchy. */
int cgroup_attach(const struct cgroup_layout *l, const char *rel, pid_t pid);
/* Pids in rel (unified tree, which holds every task process). *out is malloc'd. */
int cgroup_pids(const struct cgroup_layout *l, const char *rel, pid_t **out, size_t *count);
/* Signals every process in rel; SIGKILL uses cgroup.kill when the kernel has it. Returns
 * the number of processes signalled (1 for cgroup.kill) or -errno; -ENOENT if no cgroup. */
int cgroup_signal(const struct cgroup_layout *l, const char *rel, int sig);
/* Removes rel everywhere; if processes are left, SIGKILLs them and waits up to
 * timeout_seconds for the cgroup to empty. Missing directories are fine. */
int cgroup_remove(const struct cgroup_layout *l, const char *rel, double timeout_seconds);
/* Names of the child cgroups of rel (unified tree). *names is a malloc'd array of malloc'd
 * strings; free with cgroup_free_names. */
int cgroup_children(const struct cgroup_layout *l, const char *rel, char ***names, size_t *count);
void cgroup_free_names(char **names, size_t count);

/* The file and key counting OOM kills of rel ("memory.events" + "oom_kill" in v2). */
int cgroup_oom_file(const struct cgroup_layout *l, const char *rel, char *out, size_t outlen);
#define CGROUP_OOM_KEY "oom_kill"
/* Reads "key value" lines (memory.events, memory.oom_control, cpu.stat). */
int cgroup_read_keyed(const char *path, const char *key, uint64_t *value);
int cgroup_oom_kills(const struct cgroup_layout *l, const char *rel, uint64_t *count);
int cgroup_cpu_ns(const struct cgroup_layout *l, const char *rel, uint64_t *ns);
int cgroup_mem_bytes(const struct cgroup_layout *l, const char *rel, uint64_t *bytes);
int cgroup_mem_peak(const struct cgroup_layout *l, const char *rel, uint64_t *bytes);
/* The cgroup2 id of rel (what bpf_skb_cgroup_id returns). */
int cgroup_id(const struct cgroup_layout *l, const char *rel, uint64_t *id);

#endif
