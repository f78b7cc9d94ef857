/* containerizer.h - runs one task in a container, driving a list of isolators (Mesos
 * style: each isolator owns one concern - cgroups, namespaces, BPF counters - behind the
 * same calls). The agent core (tasks.c) only talks to this header.
 *
 * A task's process tree is supervised by its own pacer-executor process, which outlives
 * an agent restart and records the exit status in <run_dir>/exit.json. */
#ifndef PACER_AGENT_CONTAINERIZER_H
#define PACER_AGENT_CONTAINERIZER_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>
#include <jansson.h>

struct containerizer;

struct containerizer_config {
	const char *agent_id;           /* names host objects: pacer/<agent-id>/<task-id> */
	const char *work_dir;           /* agent work dir */
	const char *executor_path;      /* pacer-executor binary */
	const char *bpffs;              /* bpffs mount point, default /sys/fs/bpf */
};

struct container_spec {
	const char *task_id;
	const char *sandbox_dir;        /* created by the caller; stdout/stderr go there */
	const char *run_dir;            /* created by the caller; executor files (pid, exit.json) */
	bool shell;                     /* true: /bin/sh -c command */
	const char *command;            /* shell string, or program path when !shell */
	const char *const *argv;        /* !shell: full argv (argv[0] = program), NULL-terminated */
	const char *const *envp;        /* NULL-terminated KEY=VALUE list */
	double cpus;                    /* cpu shares + CFS quota */
	uint64_t mem_bytes;             /* hard memory limit */
	const char *user;               /* NULL: run as the agent's user */
	const char *hostname;           /* UTS hostname inside the container */
};

/* How a container ended. */
struct container_exit {
	bool exited;                    /* true: normal exit with exit_code */
	int exit_code;
	int signal;                     /* terminating signal, 0 if none */
	bool oom_killed;                /* the memory limit was hit and the kernel killed it */
	char message[256];              /* e.g. "Command exited with status 1" */
};

/* Cumulative counters of a task (bpf/task_acct.h: exact, from the BPF map; they continue
 * across agent restarts) and its memory from the cgroup files. acct_cpu_ns is the BPF
 * count (sched_switch); cpu_ns the cgroup's own cpu accounting beside it. */
struct container_usage {
	uint64_t rx_bytes, tx_bytes, rx_packets, tx_packets;
	uint64_t tcp_connects, tcp_accepts;
	uint64_t udp_rx_datagrams, udp_tx_datagrams;
	uint64_t policy_denials;
	uint64_t acct_cpu_ns;
	uint64_t vfs_read_bytes, vfs_write_bytes;
	uint64_t cpu_ns;
	uint64_t mem_bytes;             /* memory.current / memory.usage_in_bytes */
	uint64_t mem_peak_bytes;        /* memory.peak / memory.max_usage_in_bytes */
	uint64_t oom_kills;
};

/* Detects the cgroup layout (v2, or hybrid v1+v2), mounts bpffs if needed, loads and pins
 * the BPF programs under <bpffs>/pacer/<agent-id>/. */
int containerizer_create(const struct containerizer_config *cfg, struct containerizer **out,
			 char *err, size_t errlen);
void containerizer_destroy(struct containerizer *c);

/* Prepares every isolator, starts pacer-executor, returns once the task's command has been
 * exec'd (or failed to). *executor_pid is the supervisor's pid. */
int containerizer_launch(struct containerizer *c, const struct container_spec *spec,
			 pid_t *executor_pid, char *err, size_t errlen);

/* After an agent restart: re-adopts a task whose executor may still be running.
 * Returns 1 if it is still running, 0 if it already ended (then *exit is filled from
 * exit.json, or marked as lost if there is none), <0 on error. */
int containerizer_recover(struct containerizer *c, const char *task_id, const char *run_dir,
			  pid_t executor_pid, struct container_exit *exit);

/* For tests and fuzzing: *exit from an exit.json document (NULL: none); 0, or -EINVAL with
 * *exit marked lost when it is not what the executor writes. */
int container_exit_from_json(json_t *j, struct container_exit *exit);

/* Non-blocking: 1 and *exit filled if the task ended (its cgroup is empty and the executor
 * is gone), 0 if still running. */
int containerizer_poll(struct containerizer *c, const char *task_id, struct container_exit *exit);

/* SIGTERM to the whole tree now; SIGKILL to every process in the cgroup once
 * grace_seconds have passed (the caller polls; containerizer_poll enforces the deadline). */
int containerizer_kill(struct containerizer *c, const char *task_id, double grace_seconds);

int containerizer_usage(struct containerizer *c, const char *task_id, struct container_usage *u);

/* A process to start inside a running container (containerizer_exec). */
struct container_exec {
	const char *command;            /* /bin/sh -c command */
	const char *const *envp;        /* NULL-terminated KEY=VALUE list */
	const char *cwd;                /* working directory; "/" if it cannot be entered */
	const char *user;               /* NULL: the agent's user */
};

/* Starts x inside the task's container: its init's mount, pid, uts and ipc namespaces and
 * its cgroups, stdio on /dev/null, no_new_privs. The returned process leads its own process
 * group (kill(-pid, SIGKILL) ends all of it), exits with the command's status (128 + signal
 * when killed) and is the caller's child to reap. -ESRCH if the container is not running. */
int containerizer_exec(struct containerizer *c, const char *task_id,
		       const struct container_exec *x, pid_t *pid, char *err, size_t errlen);

/* Removes cgroups, BPF attachments and counters of a task that ended. */
int containerizer_cleanup(struct containerizer *c, const char *task_id);

/* Every task id that has a cgroup under pacer/<agent-id>/ (to find orphans after a
 * restart). Returns a JSON array of strings (new reference). */
json_t *containerizer_list(struct containerizer *c);

/* Removes everything this agent made on the host: kills and removes every task cgroup
 * under pacer/<agent-id>/, unpins the BPF links, programs and maps under
 * <bpffs>/pacer/<agent-id>/. For tests and the demo's Ctrl-C cleanup; afterwards only
 * containerizer_destroy may be called. */
int containerizer_purge(struct containerizer *c);

/* The cgroup layout in use: "v2" or "hybrid". */
const char *containerizer_cgroup_mode(struct containerizer *c);

#endif
