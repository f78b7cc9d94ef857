/* executor.h - pacer-executor, the per-task supervisor. The agent starts it (posix_spawn)
 * with `--spec <run_dir>/spec.json --ready-fd 3`; it outlives the agent.
 *
 *   pacer-executor (host pid ns, own session)          main.c
 *     └─ container init (PID 1 of new pid/mnt/uts/ipc ns) init.c
 *          └─ the command (PID 2)                      init.c
 *
 * Ready pipe protocol (fd 3, read by the agent until EOF): "P <init host pid>\n" once the
 * init is in its cgroups; "E <errno> <message>\n" on any failure. The command's exec closes
 * the last writer (CLOEXEC), so EOF after "P" and without "E" means the command runs.
 * Files in run_dir: spec.json (input), executor.json {"pid","start_time","init_pid"},
 * exit.json {"exited","exit_code","signal","oom_killed","message","finished_at"}. */
#ifndef PACER_EXECUTOR_H
#define PACER_EXECUTOR_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

struct exec_spec {
	json_t *root;                   /* owns every string below */
	const char *task_id;
	const char *sandbox;
	const char *run_dir;
	bool shell;
	const char *command;
	const char **argv;              /* NULL-terminated; the shell form when shell */
	const char **env;               /* NULL-terminated, PATH added if missing */
	const char *user;               /* NULL: stay root */
	const char **cgroups;           /* NULL-terminated cgroup directories to join */
	const char *oom_file;           /* NULL: no OOM detection */
	const char *oom_key;
	int clone_flags;                /* CLONE_NEW* */
	const char *hostname;
	bool mount_proc;
	bool private_tmp;
};

int exec_spec_load(const char *path, struct exec_spec *s, char *err, size_t errlen);
void exec_spec_free(struct exec_spec *s);

/* Writes "E <errno> <message>" to the ready pipe (if fd >= 0) and to stderr. */
void exec_report_error(int ready_fd, int errnum, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* The container init, in the child of clone(): sets up the mounts and hostname, waits for
 * sync_fd (it is then in all its cgroups), runs the command as its child, forwards
 * signals, writes the command's wait status to status_fd, and exits. Never returns. */
void container_init(const struct exec_spec *s, int sync_fd, int status_fd, int ready_fd)
	__attribute__((noreturn));

#endif
