/* main.c - pacer-master: flags, start-up (store, master model, HTTP server, agent routes,
 * the Marathon layer, worker threads) and a clean shutdown on SIGTERM/SIGINT. */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include "lib/http_client.h"
#include "lib/http_server.h"
#include "lib/log.h"
#include "lib/util.h"
#include "master/marathon/events.h"
#include "master/marathon/marathon.h"
#include "master/master_internal.h"
#include "master/usage.h"
#include "master/usage_stream.h"
#include "master/agent_stream.h"

static const char usage[] =
	"Usage: pacer-master [options]\n"
	"\n"
	"The Pacer master: agent registry, DRF allocator and offers, task records, the\n"
	"Marathon v2 API, state under --work-dir (master.db, tasks.log).\n"
	"\n"
	"Options:\n"
	"  --port N                  HTTP port (default 5050)\n"
	"  --bind ADDR               address to listen on (default: all)\n"
	"  --work-dir DIR            state directory (default /var/lib/pacer/master)\n"
	"  --agent-timeout SECS      an agent silent this long is unreachable (default 15)\n"
	"  --offer-timeout SECS      unanswered offers are rescinded after this (default 5)\n"
	"  --allocation-interval SECS  time between allocation cycles (default 1)\n"
	"  --hostname NAME           name this master reports (default: the host name)\n"
	"  --usage-retention SECS    forget a finished task's usage record this long after its\n"
	"                            final reading, keeping it in its app's and tenant's totals\n"
	"                            (default 86400; 0 = keep every record)\n"
	"  --http-threads N          threads serving HTTP (an epoll pool; default 4, 1-64)\n"
	"  --log-level LEVEL         debug, info, warn or error (default info)\n"
	"  --help                    show this text\n";

/* Threads for the ordinary routes (everything but the agents' heartbeats and usage
 * reports): Marathon and /v1 reads and writes, registrations, status updates, which wait
 * for master->lock and store commits. Started as requests find none idle, so that many
 * status updates wait for (and share) one store commit, and an API call does not queue
 * behind them. */
#define HTTP_WORKERS 256

struct options {
	struct master_config cfg;
	enum log_level level;
	char hostname[HOST_NAME_MAX + 1];
	double usage_retention;
	unsigned http_threads;
};

static int bad(const char *flag, const char *value, const char *what)
{
	fprintf(stderr, "pacer-master: --%s '%s': %s\n", flag, value, what);
	fprintf(stderr, "Try 'pacer-master --help'.\n");
	return 2;
}

static int parse_seconds(const char *flag, const char *value, double *out)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(value, &end);
	if (errno || end == value || *end || !(v > 0) || v > 86400)
		return bad(flag, value, "expected a number of seconds > 0");
	*out = v;
	return 0;
}

/* Returns -1 to go on, or an exit code. */
static int parse_flags(int argc, char **argv, struct options *o)
{
	enum { O_PORT = 1, O_BIND, O_WORK, O_AGENT_TO, O_OFFER_TO, O_ALLOC, O_HOST, O_LOG, O_HELP,
	       O_RETENTION, O_HTTP_THREADS };
	static const struct option opts[] = {
		{ "port", required_argument, NULL, O_PORT },
		{ "bind", required_argument, NULL, O_BIND },
		{ "work-dir", required_argument, NULL, O_WORK },
		{ "agent-timeout", required_argument, NULL, O_AGENT_TO },
		{ "offer-timeout", required_argument, NULL, O_OFFER_TO },
		{ "allocation-interval", required_argument, NULL, O_ALLOC },
		{ "hostname", required_argument, NULL, O_HOST },
		{ "log-level", required_argument, NULL, O_LOG },
		{ "help", no_argument, NULL, O_HELP },
		{ "usage-retention", required_argument, NULL, O_RETENTION },
		{ "http-threads", required_argument, NULL, O_HTTP_THREADS },
		{ NULL, 0, NULL, 0 },
	};
	int c, rc;

	o->cfg = (struct master_config){
		.port = 5050, .bind = NULL, .work_dir = "/var/lib/pacer/master",
		.agent_timeout = 15, .offer_timeout = 5, .allocation_interval = 1,
	};
	o->level = LOG_LVL_INFO;
	o->usage_retention = USAGE_RETENTION_DEFAULT;
	o->http_threads = 4;
	if (gethostname(o->hostname, sizeof(o->hostname)) < 0)
		snprintf(o->hostname, sizeof(o->hostname), "localhost");
	o->cfg.hostname = o->hostname;
	opterr = 0;
	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		char *end;
		long port;

		rc = 0;
		switch (c) {
		case O_PORT:
			errno = 0;
			port = strtol(optarg, &end, 10);
			if (errno || *end || end == optarg || port < 0 || port > 65535)
				return bad("port", optarg, "expected a port number 0-65535");
			o->cfg.port = (uint16_t)port;
			break;
		case O_BIND: o->cfg.bind = optarg; break;
		case O_WORK: o->cfg.work_dir = optarg; break;
		case O_AGENT_TO: rc = parse_seconds("agent-timeout", optarg, &o->cfg.agent_timeout); break;
		case O_OFFER_TO: rc = parse_seconds("offer-timeout", optarg, &o->cfg.offer_timeout); break;
		case O_ALLOC:
			rc = parse_seconds("allocation-interval", optarg, &o->cfg.allocation_interval);
			break;
		case O_HOST: o->cfg.hostname = optarg; break;
		case O_RETENTION:
			errno = 0;
			o->usage_retention = strtod(optarg, &end);
			if (errno || end == optarg || *end || !(o->usage_retention >= 0) ||
			    o->usage_retention > 100 * 365 * 86400.0)
				return bad("usage-retention", optarg, "expected a number of seconds >= 0");
			break;
		case O_HTTP_THREADS: {
			long n;

			errno = 0;
			n = strtol(optarg, &end, 10);
			if (errno || end == optarg || *end || n < 1 || n > 64)
				return bad("http-threads", optarg, "expected a number of threads 1-64");
			o->http_threads = (unsigned)n;
			break;
		}
		case O_LOG:
			rc = log_level_parse(optarg);
			if (rc < 0)
				return bad("log-level", optarg, "expected debug, info, warn or error");
			o->level = (enum log_level)rc;
			rc = 0;
			break;
		case O_HELP:
			fputs(usage, stdout);
			return 0;
		default:
			if (optopt)
				fprintf(stderr, "pacer-master: option %s needs a value\n",
					argv[optind - 1]);
			else
				fprintf(stderr, "pacer-master: unknown option: %s\n", argv[optind - 1]);
			fprintf(stderr, "Try 'pacer-master --help'.\n");
			return 2;
		}
		if (rc)
			return rc;
	}
	if (optind < argc) {
		fprintf(stderr, "pacer-master: unexpected argument: %s\n", argv[optind]);
		fprintf(stderr, "Try 'pacer-master --help'.\n");
		return 2;
	}
	return -1;
}

/* The usage module's event bus: its own instance of the Marathon layer's SSE bus. */
static void bus_publish(void *ctx, const char *type, json_t *data) { events_publish(ctx, type, data); }
static int bus_subscribe(void *ctx, const char *const *types, struct http_stream *out)
{ return events_subscribe(ctx, types, out); }
static void bus_close(void *ctx) { events_close(ctx); }
static bool bus_listening(void *ctx) { return events_subscriber_count(ctx) > 0; }

int main(int argc, char **argv)
{
	struct options o;
	struct store *st = NULL;
	struct master *m = NULL;
	struct http_server *srv = NULL;
	struct marathon *mt = NULL;
	struct usage *um = NULL;
	struct usage_stream *ustream = NULL;
	struct usage_bus usage_bus = { .publish = bus_publish, .subscribe = bus_subscribe,
				       .close = bus_close, .listening = bus_listening };
	char err[512] = "";
	sigset_t sigs;
	int rc, sig, status = 1;

	rc = parse_flags(argc, argv, &o);
	if (rc >= 0)
		return rc;
	log_init("pacer-master", o.level);

	/* Every thread inherits this mask; the main thread takes the signals with sigwait. */
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	signal(SIGPIPE, SIG_IGN);
	raise_nofile_limit();
	http_client_global_init();

	rc = store_sqlite_open(o.cfg.work_dir, &st, err, sizeof(err));
	if (rc < 0) {
		log_error("event=start_failed step=store error=\"%s\"", err);
		goto out;
	}
	rc = master_create(&o.cfg, st, &m);
	if (rc < 0) {
		log_error("event=start_failed step=master error=\"%s\"", strerror(-rc));
		goto out;
	}
	rc = master_load(m, err, sizeof(err));
	if (rc < 0) {
		log_error("event=start_failed step=load error=\"%s\"", err);
		goto out;
	}
	usage_bus.ctx = events_create();
	rc = usage_bus.ctx ? usage_create(st, o.cfg.work_dir, o.usage_retention, &usage_bus, &um,
					       err, sizeof(err)) : -ENOMEM;
	if (rc == 0 && (rc = usage_start_writer(um)) < 0)
		snprintf(err, sizeof(err), "cannot start the usage writer: %s", strerror(-rc));
	if (rc < 0) {
		if (!usage_bus.ctx)
			snprintf(err, sizeof(err), "out of memory");
		log_error("event=start_failed step=usage error=\"%s\"", err);
		goto out;
	}
	srv = http_server_start_opts(&(struct http_server_opts){
					     .bind_addr = o.cfg.bind, .port = o.cfg.port,
					     .threads = o.http_threads,
					     .workers = HTTP_WORKERS },
				     err, sizeof(err));
	if (!srv) {
		log_error("event=start_failed step=http port=%u error=\"%s\"", o.cfg.port, err);
		goto out;
	}
	if (api_internal_register(m, srv) < 0 || api_agents_register(m, srv) < 0 ||
	    api_usage_register(um, srv) < 0) {
		log_error("event=start_failed step=routes");
		goto out;
	}
	rc = usage_stream_start(um, srv, &ustream);
	if (rc < 0) {
		log_error("event=start_failed step=usage_stream error=\"%s\"", strerror(-rc));
		goto out;
	}
	rc = agent_stream_start(m, srv);
	if (rc < 0) {
		log_error("event=start_failed step=agent_stream error=\"%s\"", strerror(-rc));
		goto out;
	}
	rc = marathon_start(m, srv, &mt, err, sizeof(err));
	if (rc < 0) {
		log_error("event=start_failed step=marathon error=\"%s\"", err);
		goto out;
	}
	if (agent_link_start(m) < 0 || tick_start(m) < 0) {
		log_error("event=start_failed step=threads");
		goto out;
	}
	log_info("event=master_started port=%u work_dir=%s hostname=%s agent_timeout=%g "
		 "offer_timeout=%g allocation_interval=%g",
		 http_server_port(srv), o.cfg.work_dir, o.cfg.hostname, o.cfg.agent_timeout,
		 o.cfg.offer_timeout, o.cfg.allocation_interval);

	if (sigwait(&sigs, &sig) == 0)
		log_info("event=master_stopping signal=%s", strsignal(sig));
	status = 0;
out:
	/* No more requests (event streams end first; requests still waiting for an answer,
	 * such as usage reports before their journal write, get 503), then no more ticks or
	 * agent calls, then the schedulers. */
	if (mt)
		marathon_close_streams(mt);
	usage_close_streams(um);
	usage_stop_streams(ustream);    /* upgraded sockets must be closed before the server */
	if (m)
		agent_stream_stop(m);   /* link calls waiting on a stream end unanswered */
	if (srv)
		http_server_stop(srv);
	if (m) {
		tick_stop(m);
		agent_link_stop(m);
	}
	if (mt)
		marathon_stop(mt);
	if (m)
		agent_stream_free(m);
	master_destroy(m);
	usage_destroy(um);
	usage_stream_free(ustream);     /* after the journal writer's last answers */
	events_destroy(usage_bus.ctx);
	store_close(st);
	if (status == 0)
		log_info("event=master_stopped");
	return status;
}
