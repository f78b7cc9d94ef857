/* main.c - pacer-bpf's command line (bpftool conventions: OBJECT COMMAND [ARGS], -j/-p):
 *   pacer-bpf [--agent ID | --bpffs DIR] [--work-dir DIR] [-j|-p] task show [ID]
 *   pacer-bpf ... tenant show
 *   pacer-bpf ... top [--once | -n N] [-d SECONDS] */
#include "tools/pacer-bpf/pacer_bpf.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void usage(FILE *f)
{
	fprintf(f,
		"Usage: pacer-bpf [OPTIONS] task show [TASK_ID]\n"
		"       pacer-bpf [OPTIONS] tenant show\n"
		"       pacer-bpf [OPTIONS] top [--once | -n N] [-d SECONDS]\n"
		"\n"
		"Reads the per-task accounting maps a Pacer agent pinned under\n"
		"<bpffs>/pacer/<agent-id>/ (works while the agent is down).\n"
		"\n"
		"Options:\n"
		"  --agent ID        the agent whose maps to read (default: the only one)\n"
		"  --bpffs DIR       bpffs mount point (default /sys/fs/bpf)\n"
		"  --work-dir DIR    agent work dir, to name apps and tenants\n"
		"                    (default /var/lib/pacer/agent)\n"
		"  -j, --json        JSON output\n"
		"  -p, --pretty      pretty-printed JSON output\n"
		"  -n N              top: print N screens, then exit\n"
		"  --once            top: same as -n 1\n"
		"  -d, --delay SEC   top: seconds between samples (default 1)\n"
		"  -h, --help        this help\n"
		"\n"
		"Exit status: 0 ok, 1 error (no such agent or task, bpffs not mounted), 2 usage.\n");
}

static int cmd_task_show(const struct opts *o, const char *id)
{
	struct snapshot s;
	char err[512];
	int rc = snapshot_take(o, &s, err, sizeof(err)), found = 0;
	const struct task_row *match = NULL;
	json_t *arr;

	if (rc) {
		fprintf(stderr, "pacer-bpf: %s\n", err);
		return EXIT_FAIL;
	}
	arr = json_array();
	for (size_t i = 0; i < s.n; i++) {
		if (id && strcmp(s.rows[i].task_id, id))
			continue;
		if (!found++ && id)
			match = &s.rows[i];
		json_array_append_new(arr, row_json(&s.rows[i]));
	}
	if (id && !found) {
		fprintf(stderr, "pacer-bpf: no such task: %s (not tracked by %s)\n", id, s.pin_dir);
		json_decref(arr);
		snapshot_free(&s);
		return EXIT_FAIL;
	}
	if (o->json) {
		print_json(o, id ? json_incref(json_array_get(arr, 0)) : json_incref(arr));
	} else if (match) {
		print_task_table(match, 1);
	} else {
		print_task_table(s.rows, s.n);
	}
	json_decref(arr);
	snapshot_free(&s);
	return EXIT_OK;
}

int main(int argc, char **argv)
{
	static const struct option longopts[] = {
		{ "agent", required_argument, NULL, 'a' },
		{ "bpffs", required_argument, NULL, 'b' },
		{ "work-dir", required_argument, NULL, 'w' },
		{ "json", no_argument, NULL, 'j' },
		{ "pretty", no_argument, NULL, 'p' },
		{ "once", no_argument, NULL, 'o' },
		{ "delay", required_argument, NULL, 'd' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 },
	};
	struct opts o = { .bpffs = "/sys/fs/bpf", .work_dir = "/var/lib/pacer/agent", .delay = 1 };
	const char *obj, *cmd;
	int c;

	while ((c = getopt_long(argc, argv, "+jpn:d:h", longopts, NULL)) != -1) {
		switch (c) {
		case 'a': o.agent = optarg; break;
		case 'b': o.bpffs = optarg; break;
		case 'w': o.work_dir = optarg; break;
		case 'j': o.json = true; break;
		case 'p': o.json = o.pretty = true; break;
		case 'o': o.iterations = 1; break;
		case 'n': o.iterations = atoi(optarg); break;
		case 'd': o.delay = atof(optarg); break;
		case 'h': usage(stdout); return EXIT_OK;
		default: usage(stderr); return EXIT_USAGE;
		}
	}
	if (optind >= argc) {
		usage(stderr);
		return EXIT_USAGE;
	}
	obj = argv[optind++];
	/* top's options may also follow the command: a second getopt pass over its words. */
	if (!strcmp(obj, "top")) {
		int base = optind - 1;          /* "top" plays argv[0] for the second pass */

		optind = 0;
		while ((c = getopt_long(argc - base, argv + base, "jpn:d:", longopts, NULL)) != -1) {
			switch (c) {
			case 'j': o.json = true; break;
			case 'p': o.json = o.pretty = true; break;
			case 'o': o.iterations = 1; break;
			case 'n': o.iterations = atoi(optarg); break;
			case 'd': o.delay = atof(optarg); break;
			default: usage(stderr); return EXIT_USAGE;
			}
		}
		if (o.delay <= 0 || o.iterations < 0) {
			fprintf(stderr, "pacer-bpf: -d must be > 0 and -n >= 0\n");
			return EXIT_USAGE;
		}
		return cmd_top(&o);
	}
	cmd = optind < argc ? argv[optind++] : "show";
	if (strcmp(cmd, "show")) {
		fprintf(stderr, "pacer-bpf: unknown command '%s %s'\n", obj, cmd);
		return EXIT_USAGE;
	}
	if (!strcmp(obj, "task")) {
		if (argc - optind > 1) {
			usage(stderr);
			return EXIT_USAGE;
		}
		return cmd_task_show(&o, optind < argc ? argv[optind] : NULL);
	}
	if (!strcmp(obj, "tenant")) {
		struct snapshot s;
		char err[512];
		int rc;

		if ((rc = snapshot_take(&o, &s, err, sizeof(err)))) {
			fprintf(stderr, "pacer-bpf: %s\n", err);
			return EXIT_FAIL;
		}
		rc = cmd_tenant_show(&o, &s);
		snapshot_free(&s);
		return rc;
	}
	fprintf(stderr, "pacer-bpf: unknown object '%s' (task, tenant, top)\n", obj);
	return EXIT_USAGE;
}
