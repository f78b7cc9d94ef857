/* main.c - pacerctl: the command line for a Pacer master's HTTP API.
 *   pacerctl [--master URL] [--json] <noun> <verb> [args]
 * Global options may appear anywhere; the master URL defaults to $PACER_MASTER, then
 * http://127.0.0.1:5050. Exit status: 0 ok, 1 the request failed, 2 usage error. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/http_client.h"
#include "tools/pacerctl/pacerctl.h"

#define DEFAULT_MASTER "http://127.0.0.1:5050"

static const char usage_text[] =
	"usage: pacerctl [--master URL] [--json] <noun> <verb> [args]\n"
	"\n"
	"  agents list                       registered agents and their resources\n"
	"  agents show ID                    one agent\n"
	"  apps list                         apps with instance and task counts\n"
	"  apps show ID                      one app and its tasks\n"
	"  apps add FILE|-                   create an app from a Marathon app definition\n"
	"  apps update ID FILE|- [--force]   replace an app's definition (new version)\n"
	"  apps scale ID N [--force]         set the number of instances\n"
	"  apps remove ID [--force]          delete an app and kill its tasks\n"
	"  apps restart ID [--force]         replace every task of an app\n"
	"  tasks list [--app ID]             tasks with state, host, ports and byte counters\n"
	"  tasks kill TASK [--scale]         kill a task (--scale: do not replace it)\n"
	"  deployments list                  deployments in progress\n"
	"  usage [--tenant T] [--app ID]     usage totals and rates per tenant, app and task\n"
	"\n"
	"options:\n"
	"  --master URL   master to talk to (default $PACER_MASTER, then " DEFAULT_MASTER ")\n"
	"  --json         print the server's JSON instead of a table\n"
	"  -h, --help     this text\n";

static int usage(FILE *out, int code)
{
	fputs(usage_text, out);
	return code;
}

struct noun {
	const char *name;
	int (*fn)(struct ctl *c);
};

static const struct noun nouns[] = {
	{ "agents", cmd_agents }, { "agent", cmd_agents },
	{ "apps", cmd_apps }, { "app", cmd_apps },
	{ "tasks", cmd_tasks }, { "task", cmd_tasks },
	{ "deployments", cmd_deployments }, { "deployment", cmd_deployments },
	{ "usage", cmd_usage },
};

/* Strips trailing slashes from the master URL into buf. */
static const char *normalise_master(const char *url, char *buf, size_t len)
{
	size_t n = strlen(url);

	while (n && url[n - 1] == '/')
		n--;
	if (n >= len)
		n = len - 1;
	memcpy(buf, url, n);
	buf[n] = '\0';
	return buf;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "master", required_argument, NULL, 'm' },
		{ "json", no_argument, NULL, 'j' },
		{ "app", required_argument, NULL, 'a' },
		{ "tenant", required_argument, NULL, 't' },
		{ "scale", no_argument, NULL, 's' },
		{ "force", no_argument, NULL, 'f' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct ctl c = { 0 };
	const char *master = getenv("PACER_MASTER");
	char master_buf[1024];
	const char *noun;
	size_t i;
	int opt;

	opterr = 0;
	while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (opt) {
		case 'm': master = optarg; break;
		case 'j': c.json = true; break;
		case 'a': c.app = optarg; break;
		case 't': c.tenant = optarg; break;
		case 's': c.scale = true; break;
		case 'f': c.force = true; break;
		case 'h': return usage(stdout, CTL_OK);
		default:
			fprintf(stderr, "pacerctl: unknown or incomplete option '%s'\n",
				argv[optind - 1]);
			return usage(stderr, CTL_USAGE);
		}
	}
	if (optind >= argc) {
		fputs("pacerctl: missing command\n", stderr);
		return usage(stderr, CTL_USAGE);
	}
	if (!master || !*master)
		master = DEFAULT_MASTER;
	c.master = normalise_master(master, master_buf, sizeof(master_buf));
	noun = argv[optind];
	c.verb = optind + 1 < argc ? argv[optind + 1] : NULL;
	c.args = argv + optind + 2;
	c.nargs = optind + 2 <= argc ? argc - optind - 2 : 0;

	if (!strcmp(noun, "help"))
		return usage(stdout, CTL_OK);
	for (i = 0; i < sizeof(nouns) / sizeof(nouns[0]); i++) {
		if (strcmp(noun, nouns[i].name))
			continue;
		http_client_global_init();
		return nouns[i].fn(&c);
	}
	fprintf(stderr, "pacerctl: unknown command '%s'\n", noun);
	return usage(stderr, CTL_USAGE);
}
