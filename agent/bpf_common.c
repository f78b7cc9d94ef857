/* bpf_common.c - libbpf log routing, bpffs mounting and the agent's pin folder. */
#include "agent/bpf_common.h"

#include <bpf/libbpf.h>
#include <dirent.h>
#include <errno.h>
#include <linux/magic.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <unistd.h>

#include "lib/log.h"
#include "lib/util.h"

static int libbpf_to_log(enum libbpf_print_level level, const char *fmt, va_list ap)
{
	char line[1024];
	size_t n;

	vsnprintf(line, sizeof(line), fmt, ap);
	n = strlen(line);
	while (n && line[n - 1] == '\n')
		line[--n] = '\0';
	if (!n)
		return 0;
	if (level == LIBBPF_WARN)
		log_warn("event=libbpf msg=\"%s\"", line);
	else if (level == LIBBPF_INFO)
		log_info("event=libbpf msg=\"%s\"", line);
	else
		log_debug("event=libbpf msg=\"%s\"", line);
	return 0;
}

static void set_print(void)
{
	libbpf_set_print(libbpf_to_log);
}

void bpf_route_libbpf_logs(void)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;

	pthread_once(&once, set_print);
}

static bool is_bpffs(const char *path)
{
	struct statfs st;

	return statfs(path, &st) == 0 && st.f_type == BPF_FS_MAGIC;
}

int bpf_agent_dir(const char *bpffs, const char *agent_id, char *dir, size_t dirlen,
		  char *err, size_t errlen)
{
	int rc;

	if (!is_bpffs(bpffs)) {
		rc = mkdir_p(bpffs, 0700);
		if (rc || mount("bpf", bpffs, "bpf", 0, "mode=0700") < 0) {
			rc = rc ? rc : -errno;
			snprintf(err, errlen, "cannot mount bpffs at %s: %s", bpffs, strerror(-rc));
			return rc;
		}
		log_info("event=bpffs_mounted path=%s", bpffs);
	}
	rc = path_join(dir, dirlen, "%s/pacer/%s", bpffs, agent_id);
	if (!rc)
		rc = mkdir_p(dir, 0700);
	if (rc)
		snprintf(err, errlen, "cannot create BPF pin folder %s/pacer/%s: %s", bpffs, agent_id,
			 strerror(-rc));
	return rc;
}

int bpf_remove_pins(const char *dir)
{
	struct dirent *de;
	DIR *d = opendir(dir);
	int first = 0;

	if (!d)
		return errno == ENOENT ? 0 : -errno;
	while ((de = readdir(d))) {
		char path[4096];

		if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, ".."))
			continue;
		if (path_join(path, sizeof(path), "%s/%s", dir, de->d_name))
			continue;
		if (de->d_type == DT_DIR) {
			int rc = bpf_remove_pins(path);

			if (rc && !first)
				first = rc;
		} else if (unlink(path) < 0 && errno != ENOENT && !first) {
			first = -errno;
		}
	}
	closedir(d);
	if (rmdir(dir) < 0 && errno != ENOENT && !first)
		first = -errno;
	return first;
}
