/* resources_detect.c - what this machine can offer when --resources does not say:
 * cpus from the scheduler affinity mask, memory from /proc/meminfo less 1 GiB left for the
 * system, disk from the free space of the work dir, ports [31000-32000] (Mesos defaults).
 * A --resources text overrides only the keys it names. */
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "agent/agent.h"

#define MEM_HEADROOM_MIB 1024.0
#define DEFAULT_PORTS "[31000-32000]"

static double detect_cpus(void)
{
	cpu_set_t set;
	long n;

	if (sched_getaffinity(0, sizeof(set), &set) == 0 && CPU_COUNT(&set) > 0)
		return CPU_COUNT(&set);
	n = sysconf(_SC_NPROCESSORS_ONLN);
	return n > 0 ? (double)n : 1;
}

static int detect_mem(double *mib)
{
	unsigned long long kb = 0;
	char line[256];
	FILE *f = fopen("/proc/meminfo", "re");
	double total;

	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "MemTotal: %llu kB", &kb) == 1)
			break;
	fclose(f);
	if (!kb)
		return -ENODATA;
	total = (double)(kb / 1024);
	/* Keep 1 GiB for the system, but never offer less than half of a small machine. */
	*mib = total - MEM_HEADROOM_MIB > total / 2 ? total - MEM_HEADROOM_MIB : total / 2;
	return 0;
}

int resources_detect(const char *work_dir, struct resources *out, char *err, size_t errlen)
{
	struct statvfs vfs;
	int rc;

	resources_init(out);
	out->cpus = detect_cpus();
	rc = detect_mem(&out->mem);
	if (rc) {
		snprintf(err, errlen, "cannot read MemTotal from /proc/meminfo: %s", strerror(-rc));
		return rc;
	}
	if (statvfs(work_dir, &vfs) < 0) {
		rc = -errno;
		snprintf(err, errlen, "cannot statvfs %s: %s", work_dir, strerror(errno));
		return rc;
	}
	out->disk = (double)((unsigned long long)vfs.f_bavail * vfs.f_frsize / (1024 * 1024));
	rc = port_ranges_parse(DEFAULT_PORTS, &out->ports);
	if (rc)
		snprintf(err, errlen, "cannot build the default port range");
	return rc;
}

/* True if the text form names key ("cpus", "mem", ...) as one of its ';' segments. */
static bool names_key(const char *text, const char *key)
{
	size_t klen = strlen(key);

	for (const char *p = text; p && *p; p = strchr(p, ';') ? strchr(p, ';') + 1 : NULL) {
		while (*p == ' ')
			p++;
		if (strncmp(p, key, klen) == 0 && (p[klen] == ':' || p[klen] == ' '))
			return true;
	}
	return false;
}

int resources_from_flag(const char *text, const char *work_dir, struct resources *out,
			char *err, size_t errlen)
{
	struct resources given;
	int rc;

	rc = resources_detect(work_dir, out, err, errlen);
	if (rc || !text)
		return rc;
	resources_init(&given);
	rc = resources_parse(text, &given, err, errlen);
	if (rc)
		goto out;
	if (names_key(text, "cpus"))
		out->cpus = given.cpus;
	if (names_key(text, "mem"))
		out->mem = given.mem;
	if (names_key(text, "disk"))
		out->disk = given.disk;
	if (names_key(text, "ports")) {
		port_ranges_free(&out->ports);
		rc = port_ranges_copy(&out->ports, &given.ports);
	}
out:
	resources_free(&given);
	if (rc)
		resources_free(out);
	return rc;
}
