/* placement_master.c - the master core with a reference scheduler, for bench/placement.
 *
 * The same master core as pacer-master (registry, DRF allocator, offers, task records,
 * status path, group-committed SQLite store, agent link, agent streams, tick thread, the
 * agent protocol routes and GET /v1/metrics, on the same pool HTTP server) with, instead of the Marathon layer, the simplest scheduler
 * that can use it: it keeps a count of tasks wanted, spreads them evenly over each batch of
 * offers, relaunches failed ones and costs O(1) per status update. Comparing a run against
 * it with a run against pacer-master (Marathon's app scheduler on top of the same core)
 * separates the core's placement cost from the app scheduler's.
 *
 * POST /bench/v1/want {"tasks": n} adds n tasks to launch; GET /ping answers "pong". */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "lib/http_client.h"
#include "lib/http_server.h"
#include "lib/log.h"
#include "lib/util.h"
#include "master/agent_stream.h"
#include "master/master_internal.h"

#define TASK_CPUS 0.01
#define TASK_MEM 8.0

struct ref {
	struct framework fw;
	struct master *m;
	long waiting, launched, running;
	unsigned long seq;
	json_t *command;
};

static void on_offers(struct framework *fw, struct offer **offers, size_t count)
{
	struct ref *r = fw->ctx;
	long per = r->waiting > 0 ? (long)((r->waiting + (long)count - 1) / (long)count) : 0;

	if (per > 1024)         /* more never fits one agent; keeps the launch array small */
		per = 1024;
	struct task_launch *ls = calloc(per > 0 ? (size_t)per : 1, sizeof(*ls));
	char err[256];

	for (size_t i = 0; i < count; i++) {
		const char *ids[1] = { offers[i]->id };
		double cpus = offers[i]->resources.cpus, mem = offers[i]->resources.mem;
		long n = 0;

		while (ls && n < per && r->waiting - n > 0 && cpus >= TASK_CPUS - 1e-9 &&
		       mem >= TASK_MEM) {
			struct task_launch *l = &ls[n++];

			memset(l, 0, sizeof(*l));
			snprintf(l->task_id, sizeof(l->task_id), "ref.%lu", ++r->seq);
			snprintf(l->name, sizeof(l->name), "ref");
			l->command = r->command;
			l->resources.cpus = TASK_CPUS;
			l->resources.mem = TASK_MEM;
			l->kill_grace_period_seconds = 3;
			cpus -= TASK_CPUS;
			mem -= TASK_MEM;
		}
		if (n == 0) {
			master_decline(r->m, fw, ids[0], r->waiting > 0 ? 0 : 5);
			continue;
		}
		if (master_accept(r->m, fw, ids, 1, ls, (size_t)n, 0, err, sizeof(err)) == 0) {
			r->waiting -= n;
			r->launched += n;
		} else {
			log_error("event=ref_accept_failed error=\"%s\"", err);
		}
	}
	free(ls);
	if (r->waiting <= 0 && !fw->suppressed)
		master_suppress_offers(r->m, fw);
}

static void on_rescinded(struct framework *fw, const char *offer_id)
{
	(void)fw;
	(void)offer_id;
}

static void on_status(struct framework *fw, const struct task_status *st)
{
	struct ref *r = fw->ctx;

	if (st->state == TASK_RUNNING)
		r->running++;
	if (!task_state_is_terminal(st->state))
		return;
	/* Replace it (like an app scheduler keeping `instances` tasks). */
	r->waiting++;
	master_expunge_task(r->m, st->task_id);
	if (fw->suppressed)
		master_revive_offers(r->m, fw);
}

static const struct framework_ops ref_ops = {
	.resource_offers = on_offers,
	.offer_rescinded = on_rescinded,
	.status_update = on_status,
};

static void h_want(struct http_request *req, struct http_response *resp, void *ctx)
{
	struct ref *r = ctx;
	json_t *body = http_body_json(req, resp);
	json_int_t n;

	if (!body)
		return;
	n = json_integer_value(json_object_get(body, "tasks"));
	json_decref(body);
	if (n <= 0) {
		http_respond_error(resp, 400, "field 'tasks' must be a positive integer");
		return;
	}
	master_lock(r->m);
	r->waiting += (long)n;
	master_revive_offers(r->m, &r->fw);
	master_unlock(r->m);
	http_respond_json(resp, 200, json_pack("{s:I}", "waiting", n));
}

static void h_ping(struct http_request *req, struct http_response *resp, void *ctx)
{
	(void)req;
	(void)ctx;
	http_respond_text(resp, 200, "text/plain", "pong");
}

int main(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "port", required_argument, NULL, 'p' },
		{ "bind", required_argument, NULL, 'b' },
		{ "work-dir", required_argument, NULL, 'w' },
		{ "agent-timeout", required_argument, NULL, 'a' },
		{ "offer-timeout", required_argument, NULL, 'o' },
		{ "allocation-interval", required_argument, NULL, 'i' },
		{ "log-level", required_argument, NULL, 'l' },
		{ NULL, 0, NULL, 0 },
	};
	struct master_config cfg = { .port = 5050, .work_dir = "/tmp/pacer-ref",
				     .agent_timeout = 15, .offer_timeout = 5,
				     .allocation_interval = 1, .hostname = "ref" };
	struct ref r = { 0 };
	struct store *st = NULL;
	struct master *m = NULL;
	struct http_server *srv = NULL;
	enum log_level level = LOG_LVL_WARN;
	char err[512];
	sigset_t sigs;
	int c, sig, status = 1;

	while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		switch (c) {
		case 'p': cfg.port = (uint16_t)atoi(optarg); break;
		case 'b': cfg.bind = optarg; break;
		case 'w': cfg.work_dir = optarg; break;
		case 'a': cfg.agent_timeout = atof(optarg); break;
		case 'o': cfg.offer_timeout = atof(optarg); break;
		case 'i': cfg.allocation_interval = atof(optarg); break;
		case 'l': level = (enum log_level)(log_level_parse(optarg) < 0 ? LOG_LVL_WARN
							: log_level_parse(optarg)); break;
		default: return 2;
		}
	}
	log_init("placement-master", level);
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	pthread_sigmask(SIG_BLOCK, &sigs, NULL);
	signal(SIGPIPE, SIG_IGN);
	http_client_global_init();
	if (store_sqlite_open(cfg.work_dir, &st, err, sizeof(err)) < 0 ||
	    master_create(&cfg, st, &m) < 0 || master_load(m, err, sizeof(err)) < 0) {
		log_error("event=start_failed error=\"%s\"", err);
		goto out;
	}
	srv = http_server_start_opts(&(struct http_server_opts){ .bind_addr = cfg.bind,
								.port = cfg.port, .threads = 4,
								.workers = 256 }, err, sizeof(err));
	if (!srv) {
		log_error("event=start_failed step=http error=\"%s\"", err);
		goto out;
	}
	r.m = m;
	r.command = json_pack("{s:b,s:s}", "shell", 1, "value", "sleep 3600");
	snprintf(r.fw.name, sizeof(r.fw.name), "reference");
	r.fw.weight = 1;
	r.fw.ops = &ref_ops;
	r.fw.ctx = &r;
	master_lock(m);
	c = master_register_framework(m, &r.fw);
	master_unlock(m);
	if (c < 0 || api_internal_register(m, srv) < 0 || api_agents_register(m, srv) < 0 ||
	    http_server_route(srv, "POST", "/bench/v1/want", h_want, &r) < 0 ||
	    http_server_route(srv, "GET", "/ping", h_ping, &r) < 0 ||
	    agent_stream_start(m, srv) < 0 || agent_link_start(m) < 0 || tick_start(m) < 0) {
		log_error("event=start_failed step=routes_or_threads");
		goto out;
	}
	sigwait(&sigs, &sig);
	status = 0;
out:
	if (m)
		agent_stream_stop(m);   /* upgraded sockets end before the server */
	if (srv)
		http_server_stop(srv);
	if (m) {
		tick_stop(m);
		agent_link_stop(m);
		agent_stream_free(m);
	}
	master_destroy(m);
	store_close(st);
	json_decref(r.command);
	return status;
}
