/* placement.c - the placement load generator (`make bench-placement`, issue 3).
 *
 * One process simulates N agents against a real pacer-master over the real agent protocol
 * (docs/architecture.md): it registers them (POST /internal/v1/register) and heartbeats
 * them with their task lists (bodies written as text). After registering, every simulated
 * agent opens its agent stream (pacer-agent/1, placement_stream.c), as agents do: one
 * epoll thread answers the master's launch and kill calls on it at once (every task
 * accepted, read from the call element's header, no JSON parse) and reports TASK_RUNNING
 * (TASK_KILLED) for them as status frames, at most STATUS_BATCH updates per frame, one
 * frame in flight per agent. An agent without a stream (case N:M:http or --agent-http, or
 * a master that answers the upgrade with 404) is called over HTTP instead: it answers
 * POST /v1/launch (batch form, answered per task) with 202 and reports the updates with
 * POST /internal/v1/status (64 sender threads, the same batching). Then it creates apps
 * totalling M instances through /v2/apps and measures the time until the master has
 * acknowledged TASK_RUNNING for all M. It reports placements/s, the master's allocation
 * cycle p50/p99 (from GET /v1/metrics when the master has it), master CPU seconds
 * (/proc/<pid>/stat), its own CPU seconds over the same window (getrusage: every
 * simulated agent), the master's peak RSS (VmHWM), and for a case run both ways in one
 * invocation (N:M and N:M:http) the stream/HTTP ratios.
 *
 * Every simulated agent has its own address 127.10.<i/250>.<i%250+1>:<port> on one
 * listening socket (the agent an HTTP launch is for is the local address the master
 * connected to); its stream connects from that address. The whole run happens in a fresh
 * network namespace with only loopback up, so nothing but loopback traffic is possible and
 * the wildcard listener is invisible outside. Every wait has a deadline; the run stops by
 * itself. Needs root (unshare).
 *
 * A usage case (--usage-case N:T, issue 4) registers N agents the same way (no agent
 * streams) and, instead of placing tasks, has every agent report usage for T tasks once a
 * second over its own connection (placement_usage.c); it reports the master's CPU with and
 * without that load. */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <math.h>
#include <net/if.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <microhttpd.h>
#include "lib/http_client.h"
#include "lib/http_server.h"
#include "lib/json_text.h"
#include "lib/util.h"
#include "bench/placement_stream.h"
#include "bench/placement_usage.h"

#define MAX_CASES 8
/* Threads posting the apps at once (POST /v2/apps, one app each; a deploy tool with many
 * apps would post them in parallel too). Each POST waits for the master's lock between
 * allocation cycles and then for its store commit: 4 posters took ~10 s of a 14 s run for
 * 1,000 apps at 10k agents, so the apps, not the placement, set the pace. */
#define APP_POSTERS 16
#define TASK_CPUS 0.01
#define TASK_MEM 8.0

struct bcase {
	const char *label;
	const char *bin;
	long agents, tasks;
	bool ref;               /* bench/placement_master: POST /bench/v1/want, not /v2/apps */
	bool usage;             /* a usage-ingestion case: tasks = readings per agent batch */
	bool http;              /* the agents never open agent streams (calls and status: HTTP) */
	enum usage_mode mode;   /* usage: how the batches go */
};

struct opts {
	struct bcase cases[MAX_CASES];
	int ncases;
	int senders, hb_threads;
	double timeout, alloc_interval, usage_seconds;
	bool constraints;
	const char *json_out;
	const char *keep_logs;
};

/* ---- simulated agents ---- */

struct job {
	char state;             /* 'R' running, 'K' killed */
	char task_id[160];
	struct job *next;
};

struct sim_agent {
	char id[32];
	char addr[48];
	pthread_mutex_t mu;
	/* ids of its RUNNING tasks (for heartbeats), one after the other, each NUL-ended */
	char *tasks;
	size_t tasks_len, tasks_cap, ntasks;
	double next_hb;
	/* Its status updates not sent yet (S.qmu): one batch in flight per agent, like the
	 * agent's outbox, so its updates reach the master in order. */
	struct job *qhead, *qtail;
	bool busy, on_ready;
	long next_ready;
};

/* Most updates one simulated agent sends in one POST /internal/v1/status. */
#define STATUS_BATCH 256       /* as the agent (master_link.c MAX_BATCH) */

struct sim {
	struct sim_agent *agents;
	long nagents;
	char master[64];        /* "127.0.0.1:port" */
	uint16_t port;          /* the agents' port */
	char framework_id[80];
	double hb_interval;
	/* status queue: agents with updates to send, oldest first (linked by next_ready) */
	pthread_mutex_t qmu;
	pthread_cond_t qcond;
	long ready_head, ready_tail;     /* -1: none */
	bool stop;
	atomic_long launches, running_acked, status_errors, hb_sent, hb_errors, kills;
	atomic_long http_launches;      /* of launches: those that came as POST /v1/launch */
};

static struct sim S;
/* SIGINT/SIGTERM: every wait ends early and the normal clean-up runs. */
static volatile sig_atomic_t interrupted;

static void on_signal(int sig)
{
	(void)sig;
	interrupted = 1;
}

static double mono(void)
{
	return now_mono();
}

static long agent_index(struct MHD_Connection *c)
{
	const union MHD_ConnectionInfo *ci =
		MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
	struct sockaddr_in sin;
	socklen_t len = sizeof(sin);
	uint32_t a;
	long i;

	if (!ci || getsockname(ci->connect_fd, (struct sockaddr *)&sin, &len) < 0)
		return -1;
	a = ntohl(sin.sin_addr.s_addr);
	if ((a >> 16) != ((127u << 8) | 10u))
		return -1;
	i = (long)((a >> 8) & 0xff) * 250 + (long)(a & 0xff) - 1;
	return i >= 0 && i < S.nagents ? i : -1;
}

/* S.qmu held: the agent waits for a sender (unless one is sending for it). */
static void make_ready(long ai)
{
	struct sim_agent *a = &S.agents[ai];

	if (a->busy || a->on_ready || !a->qhead)
		return;
	a->on_ready = true;
	a->next_ready = -1;
	if (S.ready_tail >= 0)
		S.agents[S.ready_tail].next_ready = ai;
	else
		S.ready_head = ai;
	S.ready_tail = ai;
	pthread_cond_signal(&S.qcond);
}

/* Queues the agent's updates (state for every task id in ids) in one go. */
static void push_jobs(long ai, char state, const char *const *ids, size_t n)
{
	struct sim_agent *a = &S.agents[ai];
	struct job *first = NULL, *last = NULL;

	for (size_t i = 0; i < n; i++) {
		struct job *j = calloc(1, sizeof(*j));

		if (!j)
			break;
		j->state = state;
		snprintf(j->task_id, sizeof(j->task_id), "%s", ids[i]);
		if (last)
			last->next = j;
		else
			first = j;
		last = j;
	}
	if (!first)
		return;
	pthread_mutex_lock(&S.qmu);
	if (a->qtail)
		a->qtail->next = first;
	else
		a->qhead = first;
	a->qtail = last;
	make_ready(ai);
	pthread_mutex_unlock(&S.qmu);
}

static void agent_add_task(struct sim_agent *a, const char *tid, size_t len);

/* The elements of a call: the batch form's array under key, or the body itself. */
static size_t call_elements(json_t *body, const char *key, json_t **list)
{
	*list = json_object_get(body, key);
	return *list ? json_array_size(*list) : 1;
}

/* The answer to a launch or kill call: the per-task results for the batch form; for the
 * single form 202 if the task was taken, else the error the real agent gives. */
static void answer_calls(struct http_response *resp, json_t *list, json_t *results, size_t ok,
			 int fail_status, const char *fail_message)
{
	if (list)
		http_respond_json(resp, 202, json_pack("{s:O}", "results", results));
	else if (ok)
		http_respond_json(resp, 202, json_object());
	else
		http_respond_error(resp, fail_status, "%s", fail_message);
}

/* POST /v1/launch, batch ({"launches":[...]}) or single form: every task is taken (in the
 * agent's heartbeats from now on, like a real agent) and reported TASK_RUNNING at once. */
static void h_launch(struct http_request *req, struct http_response *resp, void *ctx)
{
	json_t *body = http_body_json(req, resp), *list, *results = json_array();
	long ai = agent_index(req->conn);
	size_t n, ok = 0;
	const char **ids;

	(void)ctx;
	if (!body)
		goto out;
	n = call_elements(body, "launches", &list);
	ids = calloc(n ? n : 1, sizeof(*ids));
	if (ai < 0 || !ids || !results) {
		http_respond_error(resp, 400, "unknown agent address");
		free(ids);
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		json_t *el = list ? json_array_get(list, i) : body;
		const char *tid = json_string_value(json_object_get(json_object_get(el, "task"),
								    "task_id"));
		const char *fw = json_string_value(json_object_get(el, "framework_id"));

		if (!tid) {
			json_array_append_new(results, json_pack("{s:n,s:s}", "task_id", "error",
								 "no task.task_id"));
			continue;
		}
		if (fw && !S.framework_id[0])
			snprintf(S.framework_id, sizeof(S.framework_id), "%s", fw);
		agent_add_task(&S.agents[ai], tid, strlen(tid));
		ids[ok++] = tid;
		json_array_append_new(results, json_pack("{s:s,s:b}", "task_id", tid, "accepted", 1));
	}
	atomic_fetch_add(&S.launches, (long)ok);
	atomic_fetch_add(&S.http_launches, (long)ok);
	push_jobs(ai, 'R', ids, ok);
	free(ids);
	answer_calls(resp, list, results, ok, 400, "no task.task_id");
out:
	json_decref(results);
	json_decref(body);
}

/* POST /v1/kill, batch ({"kills":[...]}) or single form: reported TASK_KILLED at once. */
static void h_kill(struct http_request *req, struct http_response *resp, void *ctx)
{
	json_t *body = http_body_json(req, resp), *list, *results = json_array();
	long ai = agent_index(req->conn);
	size_t n, ok = 0;
	const char **ids;

	(void)ctx;
	if (!body)
		goto out;
	n = call_elements(body, "kills", &list);
	ids = calloc(n ? n : 1, sizeof(*ids));
	if (ai < 0 || !ids || !results) {
		http_respond_error(resp, 404, "unknown agent address");
		free(ids);
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		json_t *el = list ? json_array_get(list, i) : body;
		const char *tid = json_string_value(json_object_get(el, "task_id"));

		if (!tid) {
			json_array_append_new(results, json_pack("{s:n,s:s,s:i}", "task_id", "error",
								 "unknown task", "status", 404));
			continue;
		}
		ids[ok++] = tid;
		json_array_append_new(results, json_pack("{s:s,s:b}", "task_id", tid, "accepted", 1));
	}
	atomic_fetch_add(&S.kills, (long)ok);
	push_jobs(ai, 'K', ids, ok);
	free(ids);
	answer_calls(resp, list, results, ok, 404, "unknown task");
out:
	json_decref(results);
	json_decref(body);
}

static void agent_add_task(struct sim_agent *a, const char *tid, size_t len)
{
	pthread_mutex_lock(&a->mu);
	if (a->tasks_len + len + 1 > a->tasks_cap) {
		size_t nc = a->tasks_cap ? a->tasks_cap : 1024;
		char *g;

		while (nc < a->tasks_len + len + 1)
			nc *= 2;
		if (!(g = realloc(a->tasks, nc)))
			goto out;
		a->tasks = g;
		a->tasks_cap = nc;
	}
	memcpy(a->tasks + a->tasks_len, tid, len);
	a->tasks[a->tasks_len + len] = '\0';
	a->tasks_len += len + 1;
	a->ntasks++;
out:
	pthread_mutex_unlock(&a->mu);
}

/* (Kills are few: a walk of the agent's ids and a move of the ones after.) */
static void agent_drop_task(struct sim_agent *a, const char *tid, size_t len)
{
	pthread_mutex_lock(&a->mu);
	for (size_t at = 0; at < a->tasks_len;) {
		size_t n = strlen(a->tasks + at);

		if (n == len && memcmp(a->tasks + at, tid, len) == 0) {
			memmove(a->tasks + at, a->tasks + at + n + 1, a->tasks_len - at - n - 1);
			a->tasks_len -= n + 1;
			a->ntasks--;
			break;
		}
		at += n + 1;
	}
	pthread_mutex_unlock(&a->mu);
}

/* ---- the agents' streams (placement_stream.c) call back here, from their thread ---- */

/* The framework's id from the first launch element: {"framework_id":"...",...}. */
static void learn_framework(const char *json, size_t len)
{
	const char *k = memmem(json, len, "\"framework_id\"", 14), *end = json + len, *v;

	if (!k)
		return;
	for (k += 14; k < end && (*k == ' ' || *k == ':'); k++)
		;
	if (k >= end || *k != '"')
		return;
	k++;
	v = memchr(k, '"', (size_t)(end - k));
	if (v && v - k < (long)sizeof(S.framework_id))
		snprintf(S.framework_id, sizeof(S.framework_id), "%.*s", (int)(v - k), k);
}

static const char *hook_framework_id(void)
{
	return S.framework_id;
}

static void hook_launched(long i, const char *tid, size_t len, const char *json, size_t jlen)
{
	if (!S.framework_id[0])
		learn_framework(json, jlen);
	agent_add_task(&S.agents[i], tid, len);
	atomic_fetch_add(&S.launches, 1);
}

static void hook_kill_asked(long i, const char *tid, size_t len)
{
	(void)i;
	(void)tid;
	(void)len;
	atomic_fetch_add(&S.kills, 1);
}

static void hook_acked(long i, char state, const char *tid, size_t len)
{
	if (state == 'R')
		atomic_fetch_add(&S.running_acked, 1);
	else
		agent_drop_task(&S.agents[i], tid, len);
}

static void hook_not_acked(long i, long n)
{
	(void)i;
	atomic_fetch_add(&S.status_errors, n);
}

/* An update of a stream that closed: it goes as a POST (sender_main). */
static void hook_requeue(long i, char state, const char *tid, size_t len)
{
	char id[256];
	const char *ids[1] = { id };

	snprintf(id, sizeof(id), "%.*s", (int)len, tid);
	push_jobs(i, state, ids, 1);
}

static const char *sim_agent_id(long i)
{
	return S.agents[i].id;
}

static const struct stream_hooks stream_hooks = {
	.agent_id = sim_agent_id,
	.framework_id = hook_framework_id,
	.launched = hook_launched,
	.kill_asked = hook_kill_asked,
	.acked = hook_acked,
	.not_acked = hook_not_acked,
	.requeue = hook_requeue,
};

static int post(const char *path, json_t *body, long timeout_ms, struct http_result *r)
{
	char url[160];

	snprintf(url, sizeof(url), "http://%s%s", S.master, path);
	memset(r, 0, sizeof(*r));
	return http_call_json("POST", url, body, timeout_ms, r);
}

/* The master's acknowledgement of uuid in a batch answer. */
static bool acked(json_t *results, size_t i, const char *uuid)
{
	json_t *r = json_array_get(results, i);

	return json_is_true(json_object_get(r, "acknowledged")) &&
	       strcmp(json_string_value(json_object_get(r, "uuid")) ?: "", uuid) == 0;
}

/* Takes the agent at the head of the ready list and sends up to STATUS_BATCH of its updates
 * in one POST /internal/v1/status {"agent_id","updates":[...]}, as the agent's outbox does. */
static void *sender_main(void *arg)
{
	(void)arg;
	for (;;) {
		struct job *jobs, *j, *last = NULL;
		struct http_result r;
		struct sim_agent *a;
		json_t *body, *updates, *answer;
		char (*uuids)[37];
		size_t n = 0, i;
		long ai;
		int rc;

		pthread_mutex_lock(&S.qmu);
		while (!S.stop && S.ready_head < 0)
			pthread_cond_wait(&S.qcond, &S.qmu);
		if (S.stop) {
			pthread_mutex_unlock(&S.qmu);
			return NULL;
		}
		ai = S.ready_head;
		a = &S.agents[ai];
		S.ready_head = a->next_ready;
		if (S.ready_head < 0)
			S.ready_tail = -1;
		a->on_ready = false;
		a->busy = true;
		jobs = a->qhead;
		for (j = jobs; j && n < STATUS_BATCH; j = j->next, n++)
			last = j;
		a->qhead = last->next;
		if (!a->qhead)
			a->qtail = NULL;
		last->next = NULL;
		pthread_mutex_unlock(&S.qmu);

		uuids = calloc(n, sizeof(*uuids));
		updates = json_array();
		for (j = jobs, i = 0; j && uuids; j = j->next, i++) {
			uuid_v4(uuids[i]);
			json_array_append_new(updates, json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:f}",
				"uuid", uuids[i], "task_id", j->task_id, "framework_id", S.framework_id,
				"state", j->state == 'R' ? "TASK_RUNNING" : "TASK_KILLED",
				"message", "", "source", "SOURCE_EXECUTOR", "timestamp", now_wall()));
		}
		body = json_pack("{s:s,s:o}", "agent_id", a->id, "updates", updates);
		rc = post("/internal/v1/status", body, 30000, &r);
		json_decref(body);
		answer = rc == 0 && r.status == 200 ? http_result_json(&r) : NULL;
		for (j = jobs, i = 0; j; i++) {
			struct job *next = j->next;

			if (uuids && acked(json_object_get(answer, "results"), i, uuids[i])) {
				if (j->state == 'R')
					atomic_fetch_add(&S.running_acked, 1);
				else
					agent_drop_task(a, j->task_id, strlen(j->task_id));
			} else {
				atomic_fetch_add(&S.status_errors, 1);
			}
			free(j);
			j = next;
		}
		json_decref(answer);
		free(uuids);
		http_result_free(&r);
		pthread_mutex_lock(&S.qmu);
		a->busy = false;
		make_ready(ai);
		pthread_mutex_unlock(&S.qmu);
	}
}

static json_t *register_body(long i)
{
	struct sim_agent *a = &S.agents[i];

	return json_pack("{s:s,s:s,s:s,s:{s:s,s:s},s:[]}", "agent_id", a->id, "hostname", a->id,
			 "address", a->addr, "attributes", "rack", "", "zone", "", "tasks");
}

static int register_agent(long i, json_t *resources)
{
	json_t *body = register_body(i), *attrs = json_object_get(body, "attributes");
	struct http_result r;
	char v[16];
	int rc;

	json_object_set(body, "resources", resources);
	snprintf(v, sizeof(v), "r%ld", i % 20);
	json_object_set_new(attrs, "rack", json_string(v));
	snprintf(v, sizeof(v), "z%ld", i % 4);
	json_object_set_new(attrs, "zone", json_string(v));
	rc = post("/internal/v1/register", body, 30000, &r);
	json_decref(body);
	if (rc == 0 && r.status == 200) {
		json_t *j = http_result_json(&r);
		double iv = json_number_value(json_object_get(j, "heartbeat_interval_seconds"));

		if (iv > 0)
			S.hb_interval = iv;
		json_decref(j);
		rc = 0;
	} else {
		fprintf(stderr, "placement: register %s: %ld %s%s\n", S.agents[i].id, r.status,
			r.body ? r.body : "", r.error);
		rc = -1;
	}
	http_result_free(&r);
	return rc;
}

struct reg_arg {
	long from, step;
	json_t *resources;
	int failed;
};

static void *register_main(void *p)
{
	struct reg_arg *ra = p;

	for (long i = ra->from; i < S.nagents; i += ra->step)
		if (register_agent(i, ra->resources) < 0)
			ra->failed++;
	return NULL;
}

/* {"agent_id","tasks":[{"task_id","framework_id","state":"TASK_RUNNING"},...]} as text
 * (NULL without memory). */
static char *heartbeat_body(struct sim_agent *a)
{
	struct jtext b;

	jt_init(&b);
	pthread_mutex_lock(&a->mu);
	jt_reserve(&b, a->tasks_len + a->ntasks * (strlen(S.framework_id) + 80) + 64);
	jt_raw(&b, "{");
	jt_key(&b, "agent_id");
	jt_str(&b, a->id);
	jt_key(&b, "tasks");
	jt_raw(&b, "[");
	for (size_t at = 0; at < a->tasks_len; at += strlen(a->tasks + at) + 1) {
		jt_sep(&b);
		jt_raw(&b, "{");
		jt_key(&b, "task_id");
		jt_str(&b, a->tasks + at);
		jt_key(&b, "framework_id");
		jt_str(&b, S.framework_id);
		jt_key(&b, "state");
		jt_raw(&b, "\"TASK_RUNNING\"}");
	}
	pthread_mutex_unlock(&a->mu);
	jt_raw(&b, "]}");
	return jt_take(&b);
}

struct hb_arg {
	long from, step;
	json_t *resources;
};

static void *heartbeat_main(void *p)
{
	struct hb_arg *ha = p;

	while (!S.stop) {
		double now = mono(), soonest = now + 1;

		for (long i = ha->from; i < S.nagents && !S.stop; i += ha->step) {
			static const char *const json_type[] = { "Content-Type: application/json", NULL };
			struct sim_agent *a = &S.agents[i];
			struct http_result r = { 0 };
			char url[160], *body;

			if (a->next_hb > now) {
				if (a->next_hb < soonest)
					soonest = a->next_hb;
				continue;
			}
			body = heartbeat_body(a);
			snprintf(url, sizeof(url), "http://%s/internal/v1/heartbeat", S.master);
			if (body && http_call("POST", url, body, strlen(body), json_type, 30000,
					      &r) == 0 && r.status == 200)
				atomic_fetch_add(&S.hb_sent, 1);
			else if (r.status == 404)
				register_agent(i, ha->resources);
			else
				atomic_fetch_add(&S.hb_errors, 1);
			free(body);
			http_result_free(&r);
			a->next_hb = mono() + S.hb_interval;
			now = mono();
		}
		while (!S.stop && mono() < soonest)
			usleep(20000);
	}
	return NULL;
}

/* ---- the master process ---- */

static int lo_up(void)
{
	struct ifreq ifr;
	int fd = socket(AF_INET, SOCK_DGRAM, 0), rc;

	if (fd < 0)
		return -errno;
	memset(&ifr, 0, sizeof(ifr));
	snprintf(ifr.ifr_name, sizeof(ifr.ifr_name), "lo");
	rc = ioctl(fd, SIOCGIFFLAGS, &ifr);
	if (rc == 0) {
		ifr.ifr_flags |= IFF_UP | IFF_RUNNING;
		rc = ioctl(fd, SIOCSIFFLAGS, &ifr);
	}
	close(fd);
	return rc < 0 ? -errno : 0;
}

static uint16_t free_port(void)
{
	struct sockaddr_in sin = { .sin_family = AF_INET };
	socklen_t len = sizeof(sin);
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	uint16_t p = 0;

	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (fd >= 0 && bind(fd, (struct sockaddr *)&sin, sizeof(sin)) == 0 &&
	    getsockname(fd, (struct sockaddr *)&sin, &len) == 0)
		p = ntohs(sin.sin_port);
	if (fd >= 0)
		close(fd);
	return p;
}

static pid_t start_master(const char *bin, const char *dir, uint16_t port, double alloc_iv,
			  const char *log)
{
	char ports[16], iv[32];
	pid_t pid;

	snprintf(ports, sizeof(ports), "%u", port);
	snprintf(iv, sizeof(iv), "%g", alloc_iv);
	pid = fork();
	if (pid != 0)
		return pid;
	/* The master never outlives the generator, however that ends. */
	prctl(PR_SET_PDEATHSIG, SIGKILL);
	int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC, 0644);

	if (fd >= 0) {
		dup2(fd, 2);
		dup2(fd, 1);
		close(fd);
	}
	execl(bin, bin, "--port", ports, "--bind", "127.0.0.1", "--work-dir", dir,
	      "--agent-timeout", "600", "--offer-timeout", "30", "--allocation-interval", iv,
	      "--log-level", "warn", (char *)NULL);
	_exit(127);
}

double proc_cpu_seconds(pid_t pid)
{
	char path[64], *text, *p;
	unsigned long ut = 0, st = 0;
	double v = -1;

	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	text = read_file(path, NULL);
	if (!text)
		return -1;
	p = strrchr(text, ')');         /* comm may contain spaces */
	if (p && sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut,
			&st) == 2)
		v = (double)(ut + st) / (double)sysconf(_SC_CLK_TCK);
	free(text);
	return v;
}

static long proc_status_kib(pid_t pid, const char *field)
{
	char path[64], *text, *p;
	long v = -1;

	snprintf(path, sizeof(path), "/proc/%d/status", pid);
	text = read_file(path, NULL);
	if (!text)
		return -1;
	p = strstr(text, field);
	if (p)
		v = strtol(p + strlen(field) + 1, NULL, 10);
	free(text);
	return v;
}

static int get_json(const char *path, json_t **out)
{
	char url[160];
	struct http_result r;
	int rc;

	snprintf(url, sizeof(url), "http://%s%s", S.master, path);
	memset(&r, 0, sizeof(r));
	rc = http_call("GET", url, NULL, 0, NULL, 10000, &r);
	*out = NULL;
	if (rc == 0 && r.status == 200)
		*out = http_result_json(&r);
	rc = rc == 0 ? (int)r.status : -1;
	http_result_free(&r);
	return rc;
}

static bool wait_ping(pid_t pid, double deadline)
{
	while (mono() < deadline && !interrupted) {
		json_t *j = NULL;
		char url[160];
		struct http_result r;

		snprintf(url, sizeof(url), "http://%s/ping", S.master);
		memset(&r, 0, sizeof(r));
		if (http_call("GET", url, NULL, 0, NULL, 1000, &r) == 0 && r.status == 200) {
			http_result_free(&r);
			return true;
		}
		http_result_free(&r);
		json_decref(j);
		if (waitpid(pid, NULL, WNOHANG) == pid)
			return false;
		usleep(20000);
	}
	return false;
}

/* ---- apps ---- */

struct app_plan {
	long napps;
	long instances_each, remainder;
};

static json_t *app_def(const char *run, long k, long instances, long agents, bool constraints)
{
	json_t *app = json_pack("{s:s,s:s,s:f,s:f,s:I}", "id", "", "cmd", "sleep 3600",
				"cpus", TASK_CPUS, "mem", TASK_MEM, "instances",
				(json_int_t)instances);
	char id[96], maxper[24];

	snprintf(id, sizeof(id), "/bench-%s/app-%04ld", run, k);
	json_object_set_new(app, "id", json_string(id));
	if (k % 4 == 0)
		json_object_set_new(app, "portDefinitions", json_array());
	if (!constraints)
		return app;
	switch (k % 4) {
	case 1:
		json_object_set_new(app, "constraints", json_pack("[[s,s,s]]", "rack", "GROUP_BY", "20"));
		break;
	case 2:
		json_object_set_new(app, "constraints", json_pack("[[s,s,s]]", "zone", "LIKE", "z[0-2]"));
		break;
	case 3:
		snprintf(maxper, sizeof(maxper), "%ld", 2 * ((instances + agents - 1) / agents) + 1);
		json_object_set_new(app, "constraints",
				    json_pack("[[s,s,s]]", "hostname", "MAX_PER", maxper));
		break;
	}
	return app;
}

struct app_arg {
	const char *run;
	long from, step, napps, per, rem, agents;
	bool constraints;
	int failed, fallback;
};

static void *apps_main(void *p)
{
	struct app_arg *aa = p;

	for (long k = aa->from; k < aa->napps; k += aa->step) {
		long inst = aa->per + (k < aa->rem ? 1 : 0);
		json_t *def = app_def(aa->run, k, inst, aa->agents, aa->constraints);
		struct http_result r;

		post("/v2/apps", def, 60000, &r);
		if (r.status == 422 && json_object_get(def, "constraints")) {
			/* Constraints not available in this master: the same app without them. */
			http_result_free(&r);
			json_object_del(def, "constraints");
			post("/v2/apps", def, 60000, &r);
			aa->fallback++;
		}
		if (r.status != 201 && r.status != 200) {
			fprintf(stderr, "placement: POST /v2/apps: %ld %s%s\n", r.status,
				r.body ? r.body : "", r.error);
			aa->failed++;
		}
		json_decref(def);
		http_result_free(&r);
	}
	return NULL;
}

/* ---- one case ---- */

struct result {
	struct bcase c;
	bool ok;
	long placed;
	double register_s, apps_s, total_s, rate;
	double cycle_p50_ms, cycle_p99_ms, cycle_max_ms;
	long cycles;
	long store_commits, store_writes;       /* the master's store writer, during the run */
	long held[3];                           /* cycles held back: agent link, status, store */
	double cpu_s;
	double gen_cpu_s;                       /* this process (every simulated agent) */
	long launches, http_launches;           /* tasks launched; of them, by POST /v1/launch */
	struct stream_stats ss;
	long hwm_kib;
	int constraint_fallback;
	struct usage_load_result u;
	char why[200];
};

/* Percentile from the master's histogram delta (bucket upper bounds in ms). */
static double hist_pct(json_t *before, json_t *after, double pct, long *count)
{
	json_t *ub = json_object_get(after, "bucket_upper_ms");
	json_t *ca = json_object_get(after, "bucket_counts");
	json_t *cb = json_object_get(before, "bucket_counts");
	size_t n = json_array_size(ca);
	long total = 0, seen = 0, need;

	for (size_t i = 0; i < n; i++)
		total += (long)(json_integer_value(json_array_get(ca, i)) -
				json_integer_value(json_array_get(cb, i)));
	*count = total;
	if (total <= 0)
		return -1;
	need = (long)ceil(pct / 100.0 * (double)total);
	for (size_t i = 0; i < n; i++) {
		seen += (long)(json_integer_value(json_array_get(ca, i)) -
			       json_integer_value(json_array_get(cb, i)));
		if (seen >= need) {
			json_t *b = json_array_get(ub, i);

			return json_is_number(b) ? json_number_value(b)
						 : json_number_value(json_object_get(after, "max_ms"));
		}
	}
	return -1;
}

static void clear_sim(void)
{
	for (long i = 0; i < S.nagents; i++) {
		for (struct job *j = S.agents[i].qhead, *next; j; j = next) {
			next = j->next;
			free(j);
		}
		free(S.agents[i].tasks);
		pthread_mutex_destroy(&S.agents[i].mu);
	}
	free(S.agents);
	S.agents = NULL;
	S.ready_head = S.ready_tail = -1;
}

/* This process's user+system CPU seconds (every thread). */
static double self_cpu_seconds(void)
{
	struct rusage ru;

	if (getrusage(RUSAGE_SELF, &ru) < 0)
		return -1;
	return (double)ru.ru_utime.tv_sec + (double)ru.ru_utime.tv_usec / 1e6 +
	       (double)ru.ru_stime.tv_sec + (double)ru.ru_stime.tv_usec / 1e6;
}

/* Every simulated agent opens its agent stream; waits until each first attempt ended
 * (opened, or refused: that agent stays on HTTP). */
static struct agent_streams *open_streams(const struct bcase *c, uint16_t mport)
{
	struct stream_config cfg = { .master_port = mport, .nagents = c->agents,
				     .hooks = &stream_hooks };
	struct agent_streams *st;
	struct stream_stats ss;
	double t0 = mono(), deadline = t0 + 120;

	if (agent_streams_start(&cfg, &st) < 0) {
		fprintf(stderr, "placement: cannot start the agent streams: the agents use HTTP\n");
		return NULL;
	}
	do {
		usleep(10000);
		agent_streams_stats(st, &ss);
	} while (ss.pending > 0 && mono() < deadline && !interrupted);
	fprintf(stderr, "placement: %ld of %ld agent streams open in %.2f s", ss.open, c->agents,
		mono() - t0);
	if (ss.refused)
		fprintf(stderr, "; %ld refused (the last: %d), those agents use HTTP", ss.refused,
			ss.last_refusal);
	if (ss.pending)
		fprintf(stderr, "; %ld not answered yet", ss.pending);
	fputc('\n', stderr);
	return st;
}

static void run_usage(const struct opts *o, const struct bcase *c, pid_t pid, uint16_t mport,
		      struct result *res)
{
	struct usage_load l = { .master_port = mport, .master_pid = pid, .nagents = c->agents,
				.agent_id = sim_agent_id, .tasks_per_agent = (int)c->tasks,
				.interval = 1.0, .idle_seconds = 10, .seconds = o->usage_seconds,
				.mode = c->mode, .interrupted = &interrupted };

	res->ok = usage_load_run(&l, &res->u) == 0 && res->u.batches_ok > 0;
	if (!res->ok)
		snprintf(res->why, sizeof(res->why), "%s", res->u.why[0] ? res->u.why : "no batch acknowledged");
	res->hwm_kib = proc_status_kib(pid, "VmHWM:");
}

static void run_case(const struct opts *o, const struct bcase *c, struct result *res)
{
	char dir[] = "/tmp/pacer-placement-XXXXXX", log[128], run[16];
	pthread_t *senders = NULL, hb[16], workers[APP_POSTERS > 8 ? APP_POSTERS : 8];
	struct agent_streams *streams = NULL;
	struct hb_arg hba[16];
	struct reg_arg ra[8];
	struct app_arg aa[APP_POSTERS];
	struct http_server *srv = NULL;
	json_t *resources = NULL, *m0 = NULL, *m1 = NULL;
	double t0, t_apps, t_end, deadline, cpu0, gen0, per_agent;
	long napps, per;
	pid_t pid = -1;
	char err[256];
	int nsend = 0, nhb = 0;

	memset(res, 0, sizeof(*res));
	res->c = *c;
	if (!mkdtemp(dir)) {
		snprintf(res->why, sizeof(res->why), "mkdtemp: %s", strerror(errno));
		return;
	}
	snprintf(log, sizeof(log), "%s/master.log", dir);
	memset(&S, 0, sizeof(S));
	pthread_mutex_init(&S.qmu, NULL);
	pthread_cond_init(&S.qcond, NULL);
	S.ready_head = S.ready_tail = -1;
	S.nagents = c->agents;
	S.hb_interval = 5;
	S.agents = calloc((size_t)c->agents, sizeof(*S.agents));
	srv = http_server_start(NULL, 0, err, sizeof(err));
	if (!srv || !S.agents) {
		snprintf(res->why, sizeof(res->why), "agent server: %.150s", err);
		goto out;
	}
	http_server_route(srv, "POST", "/v1/launch", h_launch, NULL);
	http_server_route(srv, "POST", "/v1/kill", h_kill, NULL);
	S.port = http_server_port(srv);
	for (long i = 0; i < c->agents; i++) {
		struct sim_agent *a = &S.agents[i];

		snprintf(a->id, sizeof(a->id), "sim-%06ld", i);
		snprintf(a->addr, sizeof(a->addr), "127.10.%ld.%ld:%u", i / 250, i % 250 + 1,
			 S.port);
		pthread_mutex_init(&a->mu, NULL);
	}
	uint16_t mport = free_port();

	snprintf(S.master, sizeof(S.master), "127.0.0.1:%u", mport);
	pid = start_master(c->bin, dir, mport, o->alloc_interval, log);
	if (pid < 0 || !wait_ping(pid, mono() + 30)) {
		snprintf(res->why, sizeof(res->why), "master did not start (see %s)", log);
		goto out;
	}
	/* Room for twice the average number of tasks per agent. */
	per_agent = 2.0 * ceil((double)c->tasks / (double)c->agents) + 4;
	resources = json_pack("{s:f,s:f,s:f,s:[[ii]]}", "cpus", per_agent * TASK_CPUS + 0.5,
			      "mem", per_agent * TASK_MEM + 256, "disk", 10000.0, "ports",
			      31000, 31000 + (int)per_agent + 16);
	t0 = mono();
	for (int k = 0; k < 8; k++) {
		ra[k] = (struct reg_arg){ .from = k, .step = 8, .resources = resources };
		pthread_create(&workers[k], NULL, register_main, &ra[k]);
	}
	for (int k = 0; k < 8; k++)
		pthread_join(workers[k], NULL);
	for (int k = 0; k < 8; k++) {
		if (ra[k].failed) {
			snprintf(res->why, sizeof(res->why), "%d registrations failed", ra[k].failed);
			goto out;
		}
	}
	res->register_s = mono() - t0;
	for (long i = 0; i < c->agents; i++)
		S.agents[i].next_hb = mono() + S.hb_interval * (double)i / (double)c->agents;
	senders = calloc((size_t)o->senders, sizeof(*senders));
	for (nsend = 0; senders && nsend < o->senders; nsend++)
		pthread_create(&senders[nsend], NULL, sender_main, NULL);
	for (nhb = 0; nhb < o->hb_threads && nhb < 16; nhb++) {
		hba[nhb] = (struct hb_arg){ .from = nhb, .step = o->hb_threads,
					    .resources = resources };
		pthread_create(&hb[nhb], NULL, heartbeat_main, &hba[nhb]);
	}
	if (c->usage) {
		run_usage(o, c, pid, mport, res);
		goto out;
	}
	if (!c->http)
		streams = open_streams(c, mport);
	/* Warm-up (not timed): one app of one instance, so one-off first-offer work in the
	 * master (per-agent bookkeeping of the app scheduler) is not counted as placement. */
	snprintf(run, sizeof(run), "%05x", (unsigned)(getpid() & 0xfffff));
	{
		json_t *def = c->ref ? json_pack("{s:i}", "tasks", 1)
			: json_pack("{s:s,s:s,s:f,s:f,s:i,s:[]}", "id", "/bench-warm/one",
				    "cmd", "sleep 3600", "cpus", TASK_CPUS, "mem", TASK_MEM,
				    "instances", 1, "portDefinitions");
		struct http_result r;

		post(c->ref ? "/bench/v1/want" : "/v2/apps", def, 60000, &r);
		json_decref(def);
		http_result_free(&r);
		deadline = mono() + 60;
		while (atomic_load(&S.running_acked) < 1 && mono() < deadline && !interrupted)
			usleep(5000);
		if (atomic_load(&S.running_acked) < 1) {
			snprintf(res->why, sizeof(res->why), "warm-up task never ran");
			goto out;
		}
	}
	atomic_store(&S.running_acked, 0);
	atomic_store(&S.launches, 0);
	atomic_store(&S.http_launches, 0);
	get_json("/v1/metrics", &m0);
	cpu0 = proc_cpu_seconds(pid);
	gen0 = self_cpu_seconds();

	napps = c->tasks / 1000;
	if (napps < 1)
		napps = 1;
	if (napps > 1000)
		napps = 1000;
	per = c->tasks / napps;
	t0 = mono();
	if (c->ref) {
		json_t *def = json_pack("{s:I}", "tasks", (json_int_t)c->tasks);
		struct http_result r;

		post("/bench/v1/want", def, 60000, &r);
		if (r.status != 200)
			snprintf(res->why, sizeof(res->why), "POST /bench/v1/want: %ld", r.status);
		json_decref(def);
		http_result_free(&r);
	}
	for (int k = 0; !c->ref && k < APP_POSTERS; k++) {
		aa[k] = (struct app_arg){ .run = run, .from = k, .step = APP_POSTERS, .napps = napps,
					  .per = per, .rem = c->tasks % napps,
					  .agents = c->agents, .constraints = o->constraints };
		pthread_create(&workers[k], NULL, apps_main, &aa[k]);
	}
	for (int k = 0; !c->ref && k < APP_POSTERS; k++) {
		pthread_join(workers[k], NULL);
		res->constraint_fallback += aa[k].fallback;
		if (aa[k].failed)
			snprintf(res->why, sizeof(res->why), "%d app creations failed", aa[k].failed);
	}
	t_apps = mono();
	res->apps_s = t_apps - t0;
	deadline = t0 + o->timeout;
	while (atomic_load(&S.running_acked) < c->tasks && mono() < deadline &&
	       !interrupted && waitpid(pid, NULL, WNOHANG) == 0)
		usleep(2000);
	t_end = mono();
	res->placed = atomic_load(&S.running_acked);
	res->total_s = t_end - t0;
	res->rate = res->total_s > 0 ? (double)res->placed / res->total_s : 0;
	res->cpu_s = proc_cpu_seconds(pid) - cpu0;
	res->gen_cpu_s = self_cpu_seconds() - gen0;
	res->launches = atomic_load(&S.launches);
	res->http_launches = atomic_load(&S.http_launches);
	res->hwm_kib = proc_status_kib(pid, "VmHWM:");
	res->ok = res->placed >= c->tasks && !res->why[0];
	if (!res->ok && !res->why[0] && interrupted)
		snprintf(res->why, sizeof(res->why), "interrupted");
	else if (!res->ok && !res->why[0])
		snprintf(res->why, sizeof(res->why), "only %ld of %ld RUNNING after %.0f s",
			 res->placed, c->tasks, o->timeout);
	res->cycle_p50_ms = res->cycle_p99_ms = res->cycle_max_ms = -1;
	if (get_json("/v1/metrics", &m1) == 200 && m0) {
		json_t *b = json_object_get(m0, "allocation_cycles");
		json_t *a = json_object_get(m1, "allocation_cycles");

		res->cycle_p50_ms = hist_pct(b, a, 50, &res->cycles);
		res->cycle_p99_ms = hist_pct(b, a, 99, &res->cycles);
		res->cycle_max_ms = json_number_value(json_object_get(a, "max_ms"));
		for (int k = 0; k < 3; k++) {
			static const char *const why[] = { "agent_link", "status", "store" };
			json_t *hb = json_object_get(json_object_get(b, "held_back"), why[k]);
			json_t *ha = json_object_get(json_object_get(a, "held_back"), why[k]);

			res->held[k] = (long)(json_integer_value(ha) - json_integer_value(hb));
		}
		b = json_object_get(m0, "store");
		a = json_object_get(m1, "store");
		res->store_commits = (long)(json_integer_value(json_object_get(a, "batches")) -
					    json_integer_value(json_object_get(b, "batches")));
		res->store_writes = (long)(json_integer_value(json_object_get(a, "writes")) -
					   json_integer_value(json_object_get(b, "writes")));
	}
out:
	agent_streams_stats(streams, &res->ss);
	agent_streams_stop(streams);
	S.stop = true;
	pthread_mutex_lock(&S.qmu);
	pthread_cond_broadcast(&S.qcond);
	pthread_mutex_unlock(&S.qmu);
	for (int k = 0; k < nsend; k++)
		pthread_join(senders[k], NULL);
	for (int k = 0; k < nhb; k++)
		pthread_join(hb[k], NULL);
	free(senders);
	if (pid > 0) {
		double until = mono() + 30;

		kill(pid, SIGTERM);
		while (waitpid(pid, NULL, WNOHANG) == 0 && mono() < until)
			usleep(20000);
		if (mono() >= until) {
			kill(pid, SIGKILL);
			waitpid(pid, NULL, 0);
		}
	}
	if (srv)
		http_server_stop(srv);
	fprintf(stderr, "placement: %s%s N=%ld M=%ld: launches=%ld (http %ld) kills=%ld "
		"status_errors=%ld heartbeats=%ld hb_errors=%ld streams: opened=%ld refused=%ld "
		"closed=%ld errors=%ld batches=%ld acked=%ld\n", c->label, c->http ? " (http)" : "",
		c->agents, c->tasks, atomic_load(&S.launches), atomic_load(&S.http_launches),
		atomic_load(&S.kills), atomic_load(&S.status_errors), atomic_load(&S.hb_sent),
		atomic_load(&S.hb_errors), res->ss.opened, res->ss.refused, res->ss.closed,
		res->ss.errors, res->ss.batches, res->ss.acked);
	if (o->keep_logs) {
		char dst[256];

		snprintf(dst, sizeof(dst), "%s/master-%s-%ld-%ld.log", o->keep_logs, c->label,
			 c->agents, c->tasks);
		rename(log, dst);
	}
	remove_tree(dir);
	json_decref(resources);
	json_decref(m0);
	json_decref(m1);
	clear_sim();
}

/* ---- output ---- */

static void fmt_ms(char *out, size_t n, double v)
{
	if (v < 0)
		snprintf(out, n, "n/a");
	else
		snprintf(out, n, "%.1f", v);
}

static void print_usage_table(const struct result *r, int n)
{
	bool any = false;

	for (int i = 0; i < n; i++)
		any |= r[i].c.usage;
	if (!any)
		return;
	printf("\n| usage ingestion | agents N | tasks per agent | readings/s | batches ok | failed | "
	       "late | ack p50 ms | ack p99 ms | master CPU %% heartbeats only | master CPU %% with "
	       "usage | usage CPU %% of a core | master peak RSS MiB |\n");
	printf("|---|---|---|---|---|---|---|---|---|---|---|---|---|\n");
	for (int i = 0; i < n; i++) {
		const struct usage_load_result *u = &r[i].u;

		if (!r[i].c.usage)
			continue;
		printf("| 1 Hz, %s | %ld | %ld | %.0f | %ld | %ld | %ld | %.1f | %.1f | %.1f | %.1f | "
		       "**%.1f** | %.0f |%s%s\n", r[i].c.mode == USAGE_POST ? "POST" :
		       r[i].c.mode == USAGE_JSON ? "JSON stream" : "binary stream", r[i].c.agents, r[i].c.tasks,
		       u->window_s > 0 ? (double)u->readings / u->window_s : 0, u->batches_ok,
		       u->batches_failed, u->late, u->ack_p50_ms, u->ack_p99_ms, u->idle_cpu_pct,
		       u->load_cpu_pct, u->load_cpu_pct - u->idle_cpu_pct, r[i].hwm_kib / 1024.0,
		       r[i].ok ? "" : " FAILED: ", r[i].ok ? "" : r[i].why);
	}
}

/* How the row's launches reached the agents: "http" (the case asked for it), "stream",
 * or "stream, k% http" (some agents had no stream: a master without it answers 404). */
static void fmt_link(char *out, size_t n, const struct result *r)
{
	if (r->c.http)
		snprintf(out, n, "http");
	else if (!r->http_launches)
		snprintf(out, n, "stream");
	else
		snprintf(out, n, "stream, %.0f%% http", 100.0 * (double)r->http_launches /
			 (double)(r->launches ? r->launches : 1));
}

/* Same master, same N:M, stream and HTTP in this run: stream/HTTP ratios. */
static void print_link_ratios(const struct result *r, int n)
{
	for (int i = 0; i < n; i++) {
		for (int j = 0; j < n; j++) {
			const struct result *s = &r[i], *h = &r[j];

			if (s->c.usage || s->c.http || !h->c.http || strcmp(s->c.label, h->c.label) ||
			    s->c.agents != h->c.agents || s->c.tasks != h->c.tasks || h->rate <= 0)
				continue;
			printf("\nratio stream/http, %s at N=%ld M=%ld: placements/s x%.2f, master CPU s "
			       "x%.2f, generator CPU s x%.2f\n", s->c.label, s->c.agents, s->c.tasks,
			       s->rate / h->rate, h->cpu_s > 0 ? s->cpu_s / h->cpu_s : 0,
			       h->gen_cpu_s > 0 ? s->gen_cpu_s / h->gen_cpu_s : 0);
		}
	}
}

static void print_table(const struct result *r, int n)
{
	print_usage_table(r, n);
	printf("\n| master | agents' link | agents N | tasks M | placed | apps posted s | total s | "
	       "placements/s | cycle p50 ms | cycle p99 ms | cycles | master CPU s | "
	       "generator CPU s | master peak RSS MiB |\n");
	printf("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n");
	for (int i = 0; i < n; i++) {
		char p50[16], p99[16], link[32];

		if (r[i].c.usage)
			continue;

		fmt_ms(p50, sizeof(p50), r[i].cycle_p50_ms);
		fmt_ms(p99, sizeof(p99), r[i].cycle_p99_ms);
		fmt_link(link, sizeof(link), &r[i]);
		printf("| %s | %s | %ld | %ld | %ld | %.2f | %.2f | %.0f | %s | %s | %ld | %.2f | %.2f | "
		       "%.0f |%s%s\n", r[i].c.label, link, r[i].c.agents, r[i].c.tasks, r[i].placed,
		       r[i].apps_s, r[i].total_s, r[i].rate, p50, p99, r[i].cycles, r[i].cpu_s,
		       r[i].gen_cpu_s, r[i].hwm_kib / 1024.0, r[i].ok ? "" : " FAILED: ",
		       r[i].ok ? "" : r[i].why);
	}
	print_link_ratios(r, n);
	for (int i = 0; i < n; i++) {
		if (!r[i].c.usage && r[i].store_commits > 0)
			printf("\n(%s N=%ld M=%ld: the store writer made %ld commits of %ld writes, "
			       "%.0f writes per commit; allocation cycles held back by the agent "
			       "link %ld, status updates %ld, the store %ld)\n", r[i].c.label,
			       r[i].c.agents, r[i].c.tasks, r[i].store_commits, r[i].store_writes,
			       (double)r[i].store_writes / (double)r[i].store_commits, r[i].held[0],
			       r[i].held[1], r[i].held[2]);
	}
	for (int i = 0; i < n; i++) {
		if (r[i].constraint_fallback)
			printf("\n(%s N=%ld: %d apps were posted without constraints: the master "
			       "answered 422 to them)\n", r[i].c.label, r[i].c.agents,
			       r[i].constraint_fallback);
	}
	/* Ratios: each non-baseline row against the baseline row of the same size. */
	for (int i = 0; i < n; i++) {
		for (int j = 0; j < n; j++) {
			if (i == j || strcmp(r[j].c.label, "baseline") != 0 ||
			    strcmp(r[i].c.label, "pacer") != 0 || r[i].c.agents != r[j].c.agents ||
			    r[i].c.tasks != r[j].c.tasks || r[i].c.http != r[j].c.http ||
			    r[j].rate <= 0)
				continue;
			printf("\nratio %s/baseline at N=%ld M=%ld: placements/s x%.1f, master CPU s x%.2f\n",
			       r[i].c.label, r[i].c.agents, r[i].c.tasks, r[i].rate / r[j].rate,
			       r[j].cpu_s > 0 ? r[i].cpu_s / r[j].cpu_s : 0);
		}
	}
}

static void write_json(const char *path, const struct result *r, int n)
{
	json_t *a = json_array();

	for (int i = 0; i < n; i++)
		json_array_append_new(a, json_pack(
			"{s:s,s:I,s:I,s:I,s:b,s:f,s:f,s:f,s:f,s:f,s:f,s:I,s:f,s:I,s:s}",
			"master", r[i].c.label, "agents", (json_int_t)r[i].c.agents,
			"tasks", (json_int_t)r[i].c.tasks, "placed", (json_int_t)r[i].placed,
			"ok", r[i].ok, "register_s", r[i].register_s, "apps_posted_s", r[i].apps_s,
			"total_s", r[i].total_s, "placements_per_s", r[i].rate,
			"cycle_p50_ms", r[i].cycle_p50_ms, "cycle_p99_ms", r[i].cycle_p99_ms,
			"cycles", (json_int_t)r[i].cycles, "master_cpu_s", r[i].cpu_s,
			"master_hwm_kib", (json_int_t)r[i].hwm_kib, "error", r[i].why));
	for (int i = 0; i < n; i++) {
		const struct usage_load_result *u = &r[i].u;
		json_t *row = json_array_get(a, (size_t)i);

		if (!r[i].c.usage)
			continue;
		json_object_set_new(row, "usage", json_pack(
			"{s:s,s:I,s:I,s:I,s:I,s:f,s:f,s:f,s:f,s:f}", "mode", usage_mode_name(r[i].c.mode),
			"batches_ok", (json_int_t)u->batches_ok,
			"batches_failed", (json_int_t)u->batches_failed, "late", (json_int_t)u->late,
			"readings", (json_int_t)u->readings, "window_s", u->window_s,
			"ack_p50_ms", u->ack_p50_ms, "ack_p99_ms", u->ack_p99_ms,
			"idle_cpu_pct", u->idle_cpu_pct, "load_cpu_pct", u->load_cpu_pct));
	}
	for (int i = 0; i < n; i++) {
		char link[32];

		if (r[i].c.usage)
			continue;
		fmt_link(link, sizeof(link), &r[i]);
		json_object_update_new(json_array_get(a, (size_t)i), json_pack(
			"{s:s,s:b,s:f,s:I,s:I,s:{s:I,s:I,s:I,s:I,s:I,s:I}}", "agent_link", link,
			"agent_http", r[i].c.http, "generator_cpu_s", r[i].gen_cpu_s,
			"launches", (json_int_t)r[i].launches,
			"http_launches", (json_int_t)r[i].http_launches, "streams",
			"opened", (json_int_t)r[i].ss.opened, "refused", (json_int_t)r[i].ss.refused,
			"closed", (json_int_t)r[i].ss.closed, "errors", (json_int_t)r[i].ss.errors,
			"batches", (json_int_t)r[i].ss.batches, "acked", (json_int_t)r[i].ss.acked));
	}
	json_dump_file(a, path, JSON_INDENT(2));
	json_decref(a);
}

static const char usage[] =
	"Usage: placement --master BIN [--baseline BIN] --case N:M[:http] [--case ...]\n"
	"                 [--baseline-case N:M[:http] ...] [--ref-master BIN --ref-case N:M[:http] ...]\n"
	"                 [--agent-http] [--senders K] [--heartbeaters H]\n"
	"                 [--timeout S] [--allocation-interval S] [--no-constraints]\n"
	"                 [--json FILE] [--keep-logs DIR]\n"
	"       placement --master BIN --usage-case N:T [--usage-seconds S] [--usage-post]\n"
	"                 [--usage-json]\n"
	"Simulates N agents against a real pacer-master, creates apps totalling M instances\n"
	"and measures the time until all are TASK_RUNNING. Needs root (own network namespace).\n"
	"Each simulated agent opens its agent stream (pacer-agent/1) after it registers: the\n"
	"master's launch and kill calls and the agent's status updates go as frames on it (an\n"
	"agent whose stream the master refuses, 404, stays on HTTP). A case N:M:http, or every\n"
	"case with --agent-http, keeps the agents on HTTP (POST /v1/launch to them, POST\n"
	"/internal/v1/status from them): N:M and N:M:http in one run compare the two.\n"
	"--baseline: an older pacer-master (ratios are printed against it at equal N:M);\n"
	"--ref-master: bench/placement_master, the master core with a reference scheduler\n"
	"(tasks asked for with POST /bench/v1/want instead of /v2/apps).\n"
	"--usage-case: N agents each report usage for T tasks once a second (one connection\n"
	"per agent); master CPU with heartbeats only, then with the load for S seconds (20).\n"
	"The batches go as binary frames on usage streams (pacer-usage/2, as agents send them);\n"
	"--usage-post runs each usage case first with POST /internal/v1/usage per batch (the\n"
	"old way), --usage-json first with JSON frames (pacer-usage/1), then as binary frames.\n";

static int add_case(struct opts *o, const char *label, const char *bin, const char *spec,
		    bool ref, bool usage)
{
	long n, m;
	int used = 0;
	bool http = false;

	if (bin && sscanf(spec, "%ld:%ld%n", &n, &m, &used) == 2 && !usage &&
	    strcmp(spec + used, ":http") == 0) {
		http = true;
		used += 5;
	}
	if (!bin || sscanf(spec, "%ld:%ld", &n, &m) != 2 || spec[used] || n < 1 || m < 1 ||
	    n > 62500 || o->ncases >= MAX_CASES) {
		fprintf(stderr, "placement: bad case '%s' (N:M or N:M:http, N <= 62500, at most %d "
			"cases, master given first)\n", spec, MAX_CASES);
		return -1;
	}
	o->cases[o->ncases++] = (struct bcase){ .label = label, .bin = bin, .agents = n, .tasks = m,
						.ref = ref, .usage = usage, .http = http,
						.mode = USAGE_BINARY };
	return 0;
}

int main(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "master", required_argument, NULL, 'm' },
		{ "baseline", required_argument, NULL, 'b' },
		{ "case", required_argument, NULL, 'c' },
		{ "baseline-case", required_argument, NULL, 'C' },
		{ "ref-master", required_argument, NULL, 'r' },
		{ "ref-case", required_argument, NULL, 'R' },
		{ "senders", required_argument, NULL, 's' },
		{ "heartbeaters", required_argument, NULL, 'H' },
		{ "timeout", required_argument, NULL, 't' },
		{ "allocation-interval", required_argument, NULL, 'i' },
		{ "no-constraints", no_argument, NULL, 'n' },
		{ "json", required_argument, NULL, 'j' },
		{ "keep-logs", required_argument, NULL, 'k' },
		{ "usage-case", required_argument, NULL, 'u' },
		{ "usage-seconds", required_argument, NULL, 'U' },
		{ "usage-post", no_argument, NULL, 'P' },
		{ "usage-json", no_argument, NULL, 'J' },
		{ "agent-http", no_argument, NULL, 'A' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct opts o = { .senders = 64, .hb_threads = 4, .timeout = 300,
			  .alloc_interval = 0.1, .constraints = true, .usage_seconds = 20 };
	const char *master = NULL, *baseline = NULL, *ref = NULL;
	struct result res[MAX_CASES];
	int c, fails = 0;
	bool usage_post = false, usage_json = false, agent_http = false;

	while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
		switch (c) {
		case 'm': master = optarg; break;
		case 'b': baseline = optarg; break;
		case 'c': if (add_case(&o, "pacer", master, optarg, false, false)) return 2; break;
		case 'C': if (add_case(&o, "baseline", baseline, optarg, false, false)) return 2; break;
		case 'u': if (add_case(&o, "usage", master, optarg, false, true)) return 2; break;
		case 'U': o.usage_seconds = atof(optarg); break;
		case 'P': usage_post = true; break;
		case 'J': usage_json = true; break;
		case 'A': agent_http = true; break;
		case 'r': ref = optarg; break;
		case 'R': if (add_case(&o, "core+ref", ref, optarg, true, false)) return 2; break;
		case 's': o.senders = atoi(optarg); break;
		case 'H': o.hb_threads = atoi(optarg); break;
		case 't': o.timeout = atof(optarg); break;
		case 'i': o.alloc_interval = atof(optarg); break;
		case 'n': o.constraints = false; break;
		case 'j': o.json_out = optarg; break;
		case 'k': o.keep_logs = optarg; break;
		case 'h': fputs(usage, stdout); return 0;
		default: fputs(usage, stderr); return 2;
		}
	}
	/* --usage-post, --usage-json: each usage case first as POSTs, then as JSON frames,
	 * then as binary frames (same run, fresh masters). */
	for (int i = 0; (usage_post || usage_json) && i < o.ncases; i++) {
		int extra = usage_post + usage_json;

		if (!o.cases[i].usage || o.cases[i].mode != USAGE_BINARY)
			continue;
		if (o.ncases + extra > MAX_CASES) {
			fprintf(stderr, "placement: at most %d cases with --usage-post/--usage-json "
				"adding to them\n", MAX_CASES);
			return 2;
		}
		memmove(&o.cases[i + extra], &o.cases[i], (size_t)(o.ncases - i) * sizeof(o.cases[0]));
		o.ncases += extra;
		for (int k = 0; k < extra; k++)
			o.cases[i + k] = o.cases[i + extra];
		if (usage_post)
			o.cases[i].mode = USAGE_POST;
		if (usage_json)
			o.cases[i + usage_post].mode = USAGE_JSON;
		i += extra;
	}
	for (int i = 0; agent_http && i < o.ncases; i++)
		o.cases[i].http = true;
	if (!o.ncases || o.senders < 1 || o.senders > 512 || o.hb_threads < 1 ||
	    !(o.timeout > 0)) {
		fputs(usage, stderr);
		return 2;
	}
	/* One connection per simulated agent here and one thread per connection in the
	 * master (which inherits the limit). */
	struct rlimit nofile;

	if (getrlimit(RLIMIT_NOFILE, &nofile) == 0 && nofile.rlim_cur < nofile.rlim_max) {
		nofile.rlim_cur = nofile.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &nofile) < 0)
			fprintf(stderr, "placement: cannot raise the open-files limit: %s\n",
				strerror(errno));
	}
	if (unshare(CLONE_NEWNET) < 0 || lo_up() < 0) {
		fprintf(stderr, "placement: cannot make a private network namespace: %s (root?)\n",
			strerror(errno));
		return 1;
	}
	signal(SIGPIPE, SIG_IGN);
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	http_client_global_init();
	for (int i = 0; i < o.ncases && !interrupted; i++) {
		fprintf(stderr, "placement: %s%s N=%ld M=%ld ...\n", o.cases[i].label,
			o.cases[i].http ? " (http)" : "", o.cases[i].agents, o.cases[i].tasks);
		run_case(&o, &o.cases[i], &res[i]);
		if (!res[i].ok) {
			fails++;
			fprintf(stderr, "placement: %s N=%ld M=%ld failed: %s\n", o.cases[i].label,
				o.cases[i].agents, o.cases[i].tasks, res[i].why);
		}
	}
	if (interrupted) {
		fprintf(stderr, "placement: interrupted\n");
		return 1;
	}
	print_table(res, o.ncases);
	if (o.json_out)
		write_json(o.json_out, res, o.ncases);
	return fails ? 1 : 0;
}
