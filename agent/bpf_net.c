/* bpf_net.c - loads bpf/task_acct.bpf.c once per agent through its skeleton, with its maps
 * pinned by name under the agent's pin folder (libbpf reuses pinned maps on the next load,
 * so counts survive an agent restart), attaches the tracing programs once (pinned links,
 * kept across restarts so nothing is counted twice or missed, replaced when an upgrade
 * changed a program) and the cgroup_skb programs per task cgroup (pinned links). */
#include "agent/bpf_net.h"

#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent/bpf_common.h"
#include "bpf/task_acct.skel.h"
#include "bpf/task_acct_read.h"
#include "lib/log.h"
#include "lib/util.h"

struct bpf_net {
	struct task_acct_bpf *skel;
	int acct_fd;
	int net_fd;
	int tracked_fd;
	bool percpu;
	char pin_dir[PATH_MAX];
	char links_dir[PATH_MAX];
};

/* Programs are pinned too, so `bpftool prog show pinned` finds them; a stale pin from the
 * previous run is replaced (tasks attached then keep the old program, same maps). */
static int pin_program(struct bpf_program *prog, const char *dir, const char *name)
{
	char path[PATH_MAX];
	int rc = path_join(path, sizeof(path), "%s/%s", dir, name);

	if (rc)
		return rc;
	unlink(path);
	return bpf_program__pin(prog, path);
}

/* The syscall exit tracepoints (category "syscalls") each syscall-family program is
 * attached to: BPF then runs only for these calls. */
static const char *const read_exits[] = {
	"sys_exit_read", "sys_exit_pread64", "sys_exit_readv", "sys_exit_preadv", "sys_exit_preadv2",
};
static const char *const write_exits[] = {
	"sys_exit_write", "sys_exit_pwrite64", "sys_exit_writev", "sys_exit_pwritev",
	"sys_exit_pwritev2",
};

/* The tag (hash of the instructions) of a loaded program; of the program behind a pinned
 * link when pin is set. Read-only settings (task_level, percpu) are not part of it. */
static int prog_tag(int prog_fd, const char *pin, __u8 tag[BPF_TAG_SIZE])
{
	struct bpf_prog_info pi = { 0 };
	struct bpf_link_info li = { 0 };
	__u32 plen = sizeof(pi), llen = sizeof(li);
	int fd = -1, rc = 0;

	if (pin) {
		int lfd = bpf_obj_get(pin);

		if (lfd < 0)
			return -errno;
		if (bpf_obj_get_info_by_fd(lfd, &li, &llen))
			rc = -errno;
		close(lfd);
		if (rc)
			return rc;
		fd = prog_fd = bpf_prog_get_fd_by_id(li.prog_id);
		if (fd < 0)
			return -errno;
	}
	if (bpf_obj_get_info_by_fd(prog_fd, &pi, &plen))
		rc = -errno;
	else
		memcpy(tag, pi.tag, BPF_TAG_SIZE);
	if (fd >= 0)
		close(fd);
	return rc;
}

/* links/trace:<name> attaches prog node-wide (tp: the syscalls tracepoint, else the
 * program's own attach point). A link pinned by a previous run of this agent keeps counting
 * into the same maps while the agent is down: it is kept when it runs the same program (not
 * doubled), and replaced when an upgraded agent brings a different one (the new link is
 * pinned over the old one by rename: for that instant both count, nothing is missed). */
static int attach_tracing(struct bpf_net *b, struct bpf_program *prog, const char *name,
			  const char *tp)
{
	char pin[PATH_MAX], tmp[PATH_MAX];
	__u8 old[BPF_TAG_SIZE], cur[BPF_TAG_SIZE];
	struct bpf_link *link;
	bool pinned;
	int rc = path_join(pin, sizeof(pin), "%s/trace:%s", b->links_dir, name);

	if (!rc)
		rc = path_join(tmp, sizeof(tmp), "%s/trace:%s:new", b->links_dir, name);
	if (rc)
		return rc;
	pinned = access(pin, F_OK) == 0;
	if (pinned && prog_tag(-1, pin, old) == 0 &&
	    prog_tag(bpf_program__fd(prog), NULL, cur) == 0 && !memcmp(old, cur, sizeof(old)))
		return 0;
	link = tp ? bpf_program__attach_tracepoint(prog, "syscalls", tp) : bpf_program__attach(prog);
	if (!link)
		return -errno;
	unlink(tmp);
	rc = bpf_link__pin(link, tmp);
	if (!rc && rename(tmp, pin) < 0) {
		rc = -errno;
		unlink(tmp);
	}
	if (!rc && pinned)
		log_info("event=bpf_tracing_link_replaced link=trace:%s", name);
	bpf_link__destroy(link);
	return rc;
}

/* True if the pin holds a node-wide tracing link, not a task's cgroup link (those are
 * named after the task id: an app called /trace has pins beginning with "trace:" too). */
static bool is_tracing_link(const char *path)
{
	struct bpf_link_info li = { 0 };
	__u32 len = sizeof(li);
	int fd = bpf_obj_get(path);
	bool tracing;

	if (fd < 0)
		return false;
	tracing = bpf_obj_get_info_by_fd(fd, &li, &len) == 0 && li.type != BPF_LINK_TYPE_CGROUP;
	close(fd);
	return tracing;
}

/* Tracing links pinned by an older agent for programs this one no longer has (the
 * node-wide tp_btf/sys_exit before the per-syscall tracepoints), and a replacement left
 * half-done by a crash (trace:<name>:new): unpinned once the new ones are attached, which
 * detaches them. */
static int drop_stale_tracing(struct bpf_net *b, const char *const *keep, size_t nkeep)
{
	struct dirent *de;
	DIR *d = opendir(b->links_dir);
	int first = 0;

	if (!d)
		return -errno;
	while ((de = readdir(d))) {
		const char *name = de->d_name;
		char path[PATH_MAX];
		bool kept = false;

		if (strncmp(name, "trace:", 6))
			continue;
		for (size_t i = 0; i < nkeep; i++)
			kept |= !strcmp(name + 6, keep[i]);
		if (kept || path_join(path, sizeof(path), "%s/%s", b->links_dir, name) ||
		    !is_tracing_link(path))
			continue;
		if (unlink(path) == 0)
			log_info("event=bpf_stale_link_removed link=%s", name);
		else if (errno != ENOENT && !first)
			first = -errno;
	}
	closedir(d);
	return first;
}

static int attach_all_tracing(struct bpf_net *b, char *err, size_t errlen)
{
	struct { struct bpf_program *prog; const char *const *tps; size_t ntps; } exits[] = {
		{ b->skel->progs.acct_read_exit, read_exits, ARRAY_SIZE(read_exits) },
		{ b->skel->progs.acct_write_exit, write_exits, ARRAY_SIZE(write_exits) },
	};
	const char *names[16];
	size_t nnames = 0;
	struct bpf_program *prog;
	int rc;

	bpf_object__for_each_program(prog, b->skel->obj) {
		if (bpf_program__type(prog) != BPF_PROG_TYPE_TRACING)
			continue;
		if (nnames == ARRAY_SIZE(names))
			goto too_many;
		names[nnames++] = bpf_program__name(prog);
		rc = attach_tracing(b, prog, bpf_program__name(prog), NULL);
		if (rc) {
			snprintf(err, errlen, "cannot attach BPF program %s: %s",
				 bpf_program__name(prog), strerror(-rc));
			return rc;
		}
	}
	for (size_t i = 0; i < ARRAY_SIZE(exits); i++) {
		for (size_t t = 0; t < exits[i].ntps; t++) {
			if (nnames == ARRAY_SIZE(names))
				goto too_many;
			names[nnames++] = exits[i].tps[t];
			rc = attach_tracing(b, exits[i].prog, exits[i].tps[t], exits[i].tps[t]);
			if (rc) {
				snprintf(err, errlen, "cannot attach BPF program %s to tracepoint "
					 "syscalls:%s: %s", bpf_program__name(exits[i].prog),
					 exits[i].tps[t], strerror(-rc));
				return rc;
			}
		}
	}
	rc = drop_stale_tracing(b, names, nnames);
	if (rc)
		snprintf(err, errlen, "cannot remove stale tracing links in %s: %s", b->links_dir,
			 strerror(-rc));
	return rc;
too_many:
	snprintf(err, errlen, "more than %zu tracing links in the task_acct object", ARRAY_SIZE(names));
	return -E2BIG;
}

int bpf_net_open(const char *pin_dir, const struct bpf_net_opts *opts, struct bpf_net **out,
		 char *err, size_t errlen)
{
	struct bpf_net *b = calloc(1, sizeof(*b));
	int rc;

	if (!b)
		return -ENOMEM;
	bpf_route_libbpf_logs();
	snprintf(b->pin_dir, sizeof(b->pin_dir), "%s", pin_dir);
	rc = path_join(b->links_dir, sizeof(b->links_dir), "%s/links", pin_dir);
	if (!rc)
		rc = mkdir_p(b->links_dir, 0700);
	if (rc) {
		snprintf(err, errlen, "cannot create %s/links: %s", pin_dir, strerror(-rc));
		goto err_free;
	}
	LIBBPF_OPTS(bpf_object_open_opts, oo, .pin_root_path = b->pin_dir);
	b->skel = task_acct_bpf__open_opts(&oo);
	if (!b->skel) {
		rc = -errno;
		snprintf(err, errlen, "cannot open the task_acct BPF object: %s", strerror(-rc));
		goto err_free;
	}
	b->percpu = !(opts && opts->shared_map);
	b->skel->rodata->percpu = b->percpu;
	b->skel->rodata->task_level = opts ? opts->task_level : 0;
	b->skel->rodata->count = !(opts && opts->hooks_only);
	if (!b->percpu) {
		bpf_map__set_type(b->skel->maps.task_acct, BPF_MAP_TYPE_HASH);
		bpf_map__set_type(b->skel->maps.task_net, BPF_MAP_TYPE_CGROUP_STORAGE);
	}
	rc = task_acct_bpf__load(b->skel);
	if (rc) {
		snprintf(err, errlen, "cannot load the task_acct BPF programs (pinned maps in %s "
			 "incompatible?): %s", pin_dir, strerror(-rc));
		goto err_destroy;
	}
	rc = pin_program(b->skel->progs.net_ingress, pin_dir, "net_ingress");
	if (!rc)
		rc = pin_program(b->skel->progs.net_egress, pin_dir, "net_egress");
	if (rc) {
		snprintf(err, errlen, "cannot pin the task_acct programs in %s: %s", pin_dir,
			 strerror(-rc));
		goto err_destroy;
	}
	rc = attach_all_tracing(b, err, errlen);
	if (rc)
		goto err_destroy;
	b->acct_fd = bpf_map__fd(b->skel->maps.task_acct);
	b->net_fd = bpf_map__fd(b->skel->maps.task_net);
	b->tracked_fd = bpf_map__fd(b->skel->maps.tracked);
	*out = b;
	return 0;
err_destroy:
	task_acct_bpf__destroy(b->skel);
err_free:
	free(b);
	return rc;
}

void bpf_net_close(struct bpf_net *b)
{
	if (!b)
		return;
	task_acct_bpf__destroy(b->skel);
	free(b);
}

/* bpffs refuses names with a dot (reserved by the kernel), task ids have them: '.' becomes
 * ':' (task ids never contain ':', so names stay unique): links/<id>:ingress. */
static int link_pin_path(struct bpf_net *b, const char *task_id, const char *dir, char *out,
			 size_t outlen)
{
	int rc = path_join(out, outlen, "%s/%s:%s", b->links_dir, task_id, dir);
	char *p = out + strlen(b->links_dir) + 1;

	for (; !rc && *p; p++)
		if (*p == '.')
			*p = ':';
	return rc;
}

static int attach_one(struct bpf_net *b, struct bpf_program *prog, const char *task_id,
		      const char *dir, int cg_fd)
{
	char pin[PATH_MAX];
	struct bpf_link *link;
	int rc = link_pin_path(b, task_id, dir, pin, sizeof(pin));

	if (rc)
		return rc;
	if (access(pin, F_OK) == 0)
		return 0;
	link = bpf_program__attach_cgroup(prog, cg_fd);
	if (!link)
		return -errno;
	rc = bpf_link__pin(link, pin);
	/* Closes our fd only: the pin keeps the link (and the attachment) alive. */
	bpf_link__destroy(link);
	return rc;
}

int bpf_net_attach(struct bpf_net *b, const char *task_id, const char *cgroup_dir,
		   uint64_t cgroup_id, char *err, size_t errlen)
{
	struct tracked_task name = { 0 };
	int cg_fd, rc;

	if (strlen(task_id) >= sizeof(name.task_id)) {
		snprintf(err, errlen, "task id %s is too long for the BPF maps", task_id);
		return -ENAMETOOLONG;
	}
	memcpy(name.task_id, task_id, strlen(task_id));
	rc = task_acct_track(b->acct_fd, b->percpu, cgroup_id);
	if (!rc && bpf_map_update_elem(b->tracked_fd, &cgroup_id, &name, BPF_ANY) < 0)
		rc = -errno;
	if (rc) {
		snprintf(err, errlen, "cannot add task %s to the task_acct maps: %s", task_id,
			 strerror(-rc));
		return rc;
	}
	cg_fd = open(cgroup_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (cg_fd < 0) {
		rc = -errno;
		snprintf(err, errlen, "cannot open cgroup %s: %s", cgroup_dir, strerror(-rc));
		return rc;
	}
	rc = attach_one(b, b->skel->progs.net_ingress, task_id, "ingress", cg_fd);
	if (!rc)
		rc = attach_one(b, b->skel->progs.net_egress, task_id, "egress", cg_fd);
	close(cg_fd);
	if (rc)
		snprintf(err, errlen, "cannot attach the task_acct programs to %s: %s", cgroup_dir,
			 strerror(-rc));
	return rc;
}

int bpf_net_attached(struct bpf_net *b, const char *task_id)
{
	static const char *const dirs[] = { "ingress", "egress" };
	char pin[PATH_MAX];

	for (size_t i = 0; i < ARRAY_SIZE(dirs); i++) {
		if (link_pin_path(b, task_id, dirs[i], pin, sizeof(pin)) || access(pin, F_OK))
			return 0;
	}
	return 1;
}

int bpf_net_read(struct bpf_net *b, uint64_t cgroup_id, struct task_acct *out)
{
	return task_acct_read(b->acct_fd, b->percpu, b->net_fd, b->percpu, cgroup_id, out);
}

int bpf_net_detach(struct bpf_net *b, const char *task_id, uint64_t cgroup_id)
{
	static const char *const dirs[] = { "ingress", "egress" };
	char pin[PATH_MAX];
	int first = 0;

	for (size_t i = 0; i < ARRAY_SIZE(dirs); i++) {
		int rc = link_pin_path(b, task_id, dirs[i], pin, sizeof(pin));

		if (!rc && unlink(pin) < 0 && errno != ENOENT)
			rc = -errno;
		if (rc && !first)
			first = rc;
	}
	if (!cgroup_id)
		return first;
	if (bpf_map_delete_elem(b->acct_fd, &cgroup_id) < 0 && errno != ENOENT && !first)
		first = -errno;
	if (bpf_map_delete_elem(b->tracked_fd, &cgroup_id) < 0 && errno != ENOENT && !first)
		first = -errno;
	return first;
}
