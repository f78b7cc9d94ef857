/* main.c - pacer-agent: flags, start-up and signal handling. SIGTERM or SIGINT stops the
 * agent cleanly and leaves its tasks running; the next agent started on the same work dir
 * recovers them. Bad flags exit with status 2 and a message naming the flag. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <libgen.h>
#include <limits.h>
#include <malloc.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent/agent.h"
#include "lib/log.h"
#include "lib/util.h"

struct flags {
	const char *master, *work_dir, *resources, *attributes, *ip, *hostname;
	const char *executor, *bpffs, *log_level;
	long port;
	double usage_interval;
	bool agent_stream;
};

static const char usage[] =
	"usage: pacer-agent [options]\n"
	"  --master URL         master to register with (default http://127.0.0.1:5050)\n"
	"  --work-dir DIR       checkpoints and sandboxes (default /var/lib/pacer/agent)\n"
	"  --resources TEXT     e.g. 'cpus:2;mem:4096;disk:20000;ports:[31000-32000]'\n"
	"                       (default: detected; keys given override the detected ones)\n"
	"  --attributes TEXT    e.g. 'rack:a;zone:1'\n"
	"  --ip ADDR            address to bind and advertise (default 127.0.0.1)\n"
	"  --port N             API port (default 5051)\n"
	"  --hostname NAME      hostname reported to the master (default: this host's)\n"
	"  --executor PATH      pacer-executor binary (default: next to pacer-agent)\n"
	"  --bpffs DIR          bpffs mount point (default /sys/fs/bpf)\n"
	"  --usage-interval S   seconds between usage reports to the master (default 1)\n"
	"  --agent-stream on|off  the master's launches and kills and the status updates on one\n"
	"                       persistent connection (default on; off: HTTP calls only)\n"
	"  --log-level LEVEL    debug, info, warn or error (default info)\n"
	"  --help               this text\n";

static int sig_pipe[2] = { -1, -1 };

static void on_signal(int sig)
{
	int saved = errno;
	char c = (char)sig;

	if (write(sig_pipe[1], &c, 1) < 0) {
		/* nothing to do: the pipe is full, a stop is already pending */
	}
	errno = saved;
}

static void on_sigpipe(int sig)
{
	(void)sig;    /* a handler, not SIG_IGN: an ignored SIGPIPE would be inherited by tasks */
}

static int install_signals(void)
{
	struct sigaction sa = { 0 };

	if (pipe2(sig_pipe, O_CLOEXEC) < 0)
		return -errno;
	sa.sa_handler = on_signal;
	sigemptyset(&sa.sa_mask);
	sa.sa_flags = SA_RESTART;
	if (sigaction(SIGTERM, &sa, NULL) < 0 || sigaction(SIGINT, &sa, NULL) < 0)
		return -errno;
	sa.sa_handler = on_sigpipe;
	if (sigaction(SIGPIPE, &sa, NULL) < 0)
		return -errno;
	return 0;
}

static void bad_flag(const char *fmt, const char *value)
{
	fprintf(stderr, "pacer-agent: ");
	fprintf(stderr, fmt, value);
	fprintf(stderr, "\nRun 'pacer-agent --help' for the options.\n");
	exit(2);
}

static void parse_flags(int argc, char **argv, struct flags *f)
{
	static const struct option opts[] = {
		{ "master", required_argument, NULL, 'm' },
		{ "work-dir", required_argument, NULL, 'w' },
		{ "resources", required_argument, NULL, 'r' },
		{ "attributes", required_argument, NULL, 'a' },
		{ "ip", required_argument, NULL, 'i' },
		{ "port", required_argument, NULL, 'p' },
		{ "hostname", required_argument, NULL, 'H' },
		{ "executor", required_argument, NULL, 'e' },
		{ "bpffs", required_argument, NULL, 'b' },
		{ "log-level", required_argument, NULL, 'l' },
		{ "usage-interval", required_argument, NULL, 'U' },
		{ "agent-stream", required_argument, NULL, 'S' },
		{ "help", no_argument, NULL, 'h' },
		{ 0 }
	};
	char *end;
	int c;

	*f = (struct flags){ .master = "http://127.0.0.1:5050", .work_dir = "/var/lib/pacer/agent",
			     .ip = "127.0.0.1", .port = 5051, .bpffs = "/sys/fs/bpf", .log_level = "info",
			     .usage_interval = 1.0, .agent_stream = true };
	opterr = 0;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'm': f->master = optarg; break;
		case 'w': f->work_dir = optarg; break;
		case 'r': f->resources = optarg; break;
		case 'a': f->attributes = optarg; break;
		case 'i': f->ip = optarg; break;
		case 'H': f->hostname = optarg; break;
		case 'e': f->executor = optarg; break;
		case 'b': f->bpffs = optarg; break;
		case 'l': f->log_level = optarg; break;
		case 'U':
			errno = 0;
			f->usage_interval = strtod(optarg, &end);
			if (errno || end == optarg || *end || !(f->usage_interval >= 0.05) ||
			    f->usage_interval > 3600)
				bad_flag("--usage-interval must be seconds from 0.05 to 3600, not '%s'", optarg);
			break;
		case 'S':
			if (strcmp(optarg, "on") != 0 && strcmp(optarg, "off") != 0)
				bad_flag("--agent-stream must be on or off, not '%s'", optarg);
			f->agent_stream = strcmp(optarg, "on") == 0;
			break;
		case 'p':
			errno = 0;
			f->port = strtol(optarg, &end, 10);
			if (errno || end == optarg || *end || f->port < 0 || f->port > 65535)
				bad_flag("--port must be a number from 0 to 65535, not '%s'", optarg);
			break;
		case 'h': fputs(usage, stdout); exit(0);
		default:
			bad_flag("unknown or incomplete option '%s'", argv[optind - 1]);
		}
	}
	if (optind < argc)
		bad_flag("unexpected argument '%s'", argv[optind]);
}

static void check_flags(const struct flags *f)
{
	unsigned char addr[16];

	if (strncmp(f->master, "http://", 7) != 0)
		bad_flag("--master must be an http:// URL (the agent speaks plain HTTP), not '%s'",
			 f->master);
	if (inet_pton(AF_INET, f->ip, addr) != 1)
		bad_flag("--ip must be an IPv4 address (the agent's API listens on IPv4), not '%s'",
			 f->ip);
	if (log_level_parse(f->log_level) < 0)
		bad_flag("--log-level must be debug, info, warn or error, not '%s'", f->log_level);
	if (!f->work_dir[0])
		bad_flag("--work-dir must not be empty%s", "");
	if (f->hostname && (!f->hostname[0] || strlen(f->hostname) > 255))
		bad_flag("--hostname must be 1-255 characters, not '%s'", f->hostname);
}

/* <dir of /proc/self/exe>/pacer-executor */
static char *default_executor(void)
{
	char exe[PATH_MAX], *out = NULL;
	ssize_t n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);

	if (n <= 0)
		return strdup("pacer-executor");
	exe[n] = '\0';
	if (asprintf(&out, "%s/pacer-executor", dirname(exe)) < 0)
		return NULL;
	return out;
}

/* Strips trailing slashes so paths can be appended. */
static char *master_url(const char *url)
{
	char *u = strdup(url);
	size_t n = u ? strlen(u) : 0;

	while (n > 0 && u[n - 1] == '/')
		u[--n] = '\0';
	return u;
}

static int wait_for_signal(void)
{
	char c = 0;

	while (read(sig_pipe[0], &c, 1) < 0 && errno == EINTR)
		;
	return c;
}

int main(int argc, char **argv)
{
	struct flags f;
	struct agent_config cfg = { 0 };
	struct resources res;
	struct agent *agent = NULL;
	json_t *attrs = NULL;
	char err[512] = "", host[256] = "", work_dir[PATH_MAX];
	char *executor = NULL, *master = NULL;
	int rc, status = 1, sig;

	parse_flags(argc, argv, &f);
	check_flags(&f);
	mallopt(M_ARENA_MAX, 2);         /* few arenas: the agent should stay small */
	log_init("pacer-agent", (enum log_level)log_level_parse(f.log_level));
	resources_init(&res);

	if (f.attributes) {
		attrs = attributes_parse(f.attributes, err, sizeof(err));
		if (!attrs)
			bad_flag("--attributes: %s", err);
	} else {
		attrs = json_object();
	}
	rc = mkdir_p(f.work_dir, 0755);
	if (rc || !realpath(f.work_dir, work_dir)) {
		fprintf(stderr, "pacer-agent: cannot create --work-dir %s: %s\n", f.work_dir,
			strerror(rc ? -rc : errno));
		goto out;
	}
	if (resources_from_flag(f.resources, work_dir, &res, err, sizeof(err))) {
		json_decref(attrs);
		bad_flag("--resources: %s", err);
	}
	if (!f.hostname && gethostname(host, sizeof(host) - 1) < 0)
		snprintf(host, sizeof(host), "localhost");
	executor = f.executor ? strdup(f.executor) : default_executor();
	master = master_url(f.master);
	agent = calloc(1, sizeof(*agent));
	if (!executor || !master || !agent || install_signals() < 0) {
		fprintf(stderr, "pacer-agent: out of memory or cannot install signal handlers\n");
		goto out;
	}
	cfg = (struct agent_config){ .master_url = master, .work_dir = work_dir, .ip = f.ip,
				     .port = (uint16_t)f.port, .hostname = f.hostname ? f.hostname : host,
				     .executor_path = executor, .bpffs = f.bpffs,
				     .usage_interval = f.usage_interval, .agent_stream = f.agent_stream };
	rc = agent_start(agent, &cfg, &res, attrs, err, sizeof(err));
	attrs = NULL;                    /* owned by the agent now */
	if (rc) {
		log_error("event=start_failed error=\"%s\"", err);
		fprintf(stderr, "pacer-agent: %s\n", err);
		goto out;
	}
	sig = wait_for_signal();
	log_info("event=stopping signal=%d tasks=left_running", sig);
	agent_stop(agent);
	log_info("event=stopped");
	status = 0;
out:
	resources_free(&res);
	json_decref(attrs);
	free(agent);
	free(executor);
	free(master);
	if (sig_pipe[0] >= 0) {
		close(sig_pipe[0]);
		close(sig_pipe[1]);
	}
	return status;
}
