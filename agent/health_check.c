/* health_check.c - the health checker thread: runs the health checks of every TASK_RUNNING
 * task (TASKINFO "health_checks") and reports changes as TASK_RUNNING status updates with
 * "healthy" through the outbox (agent_task_health_update). One thread, nothing blocking:
 * HTTP and TCP probes are non-blocking sockets, COMMAND probes child processes inside the
 * task's container (containerizer_exec) watched through pidfds and reaped with WNOHANG;
 * everything waits in one poll() with the nearest deadline (at most 100 ms, so a stop is
 * seen quickly). agent->lock is taken only to list the tasks and to queue an update.
 *
 * HTTP and TCP connect to the agent's --ip (127.0.0.1 when it is a wildcard): tasks share
 * the agent's network namespace and listen on their host ports. A task's checks start
 * when the thread first sees it running (after an agent restart: when it is recovered). */
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "agent/agent.h"
#include "lib/log.h"
#include "lib/util.h"

#define MAX_WAIT_MS 100

enum phase { P_IDLE, P_CONNECT, P_SEND, P_READ, P_COMMAND };

struct probe {
	enum phase phase;
	int fd;                         /* socket, or the command's pidfd (-1: none) */
	pid_t pid;                      /* COMMAND */
	double deadline;                /* monotonic */
	char req[HC_PATH_MAX + 256];
	size_t req_len, sent;
	char resp[512];
	size_t resp_len;
};

struct checked {
	struct checked *next;
	char id[TASK_ID_MAX + 1];
	json_t *info;                   /* reference: the defs borrow its strings */
	struct task_info ti;            /* parsed info: checks, ports, env */
	char **envp;                    /* COMMAND: the task's environment */
	char sandbox[4096];
	struct hc_state *st;            /* one per check */
	struct probe *pr;               /* one per check */
	bool seen;
};

struct checker {
	struct agent *a;
	struct checked *tasks;
	pid_t *zombies;                 /* killed COMMAND probes not reaped yet */
	size_t nzombies, zcap;
	struct sockaddr_storage addr;   /* port 0; set per probe */
	socklen_t addrlen;
	char host[80];                  /* the Host header's address part */
};

/* ---- the address probes connect to ---- */

static void resolve_address(struct checker *c)
{
	struct addrinfo hints = { .ai_flags = AI_NUMERICHOST, .ai_socktype = SOCK_STREAM };
	struct addrinfo *res = NULL;
	const char *ip = c->a->cfg.ip;
	bool any = !ip || !ip[0] || strcmp(ip, "0.0.0.0") == 0 || strcmp(ip, "::") == 0;

	if (any || getaddrinfo(ip, NULL, &hints, &res) != 0 || !res) {
		struct sockaddr_in *in = (struct sockaddr_in *)&c->addr;

		memset(&c->addr, 0, sizeof(c->addr));
		in->sin_family = AF_INET;
		in->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		c->addrlen = sizeof(*in);
		snprintf(c->host, sizeof(c->host), "127.0.0.1");
		if (res)
			freeaddrinfo(res);
		return;
	}
	memcpy(&c->addr, res->ai_addr, res->ai_addrlen);
	c->addrlen = res->ai_addrlen;
	snprintf(c->host, sizeof(c->host), res->ai_family == AF_INET6 ? "[%s]" : "%s", ip);
	freeaddrinfo(res);
}

static void set_port(struct sockaddr_storage *ss, uint32_t port)
{
	if (ss->ss_family == AF_INET6)
		((struct sockaddr_in6 *)ss)->sin6_port = htons((uint16_t)port);
	else
		((struct sockaddr_in *)ss)->sin_port = htons((uint16_t)port);
}

/* ---- probes ---- */

static void zombie_add(struct checker *c, pid_t pid)
{
	if (c->nzombies == c->zcap) {
		size_t cap = c->zcap ? c->zcap * 2 : 8;
		pid_t *z = realloc(c->zombies, cap * sizeof(*z));

		if (!z) {
			waitpid(pid, NULL, 0);  /* SIGKILLed: does not take long */
			return;
		}
		c->zombies = z;
		c->zcap = cap;
	}
	c->zombies[c->nzombies++] = pid;
}

static void reap_zombies(struct checker *c)
{
	for (size_t i = 0; i < c->nzombies;) {
		if (waitpid(c->zombies[i], NULL, WNOHANG) == 0) {
			i++;
			continue;
		}
		c->zombies[i] = c->zombies[--c->nzombies];
	}
}

/* Ends a probe: closes its socket or pidfd; a command still running is killed (with
 * everything it started) and reaped later. */
static void probe_stop(struct checker *c, struct probe *p)
{
	if (p->fd >= 0)
		close(p->fd);
	p->fd = -1;
	if (p->phase == P_COMMAND && p->pid > 0) {
		kill(-p->pid, SIGKILL);
		kill(p->pid, SIGKILL);
		zombie_add(c, p->pid);
	}
	p->pid = 0;
	p->phase = P_IDLE;
}

/* Queues the task's health with the lock held (only while it is running and not killed). */
static void report(struct checker *c, struct checked *ct, const char *cause)
{
	enum hc_health h = hc_aggregate(ct->st, ct->ti.nchecks);
	json_t *checks = json_array();
	char msg[HC_CAUSE_MAX + 64];
	struct task *t;

	if (h == HC_UNKNOWN || !checks) {
		json_decref(checks);
		return;
	}
	for (size_t i = 0; i < ct->ti.nchecks; i++)
		json_array_append_new(checks, hc_state_json(&ct->st[i]));
	if (h == HC_HEALTHY)
		snprintf(msg, sizeof(msg), "Task is healthy");
	else
		snprintf(msg, sizeof(msg), "Task is unhealthy: %s", cause ? cause : "");
	pthread_mutex_lock(&c->a->lock);
	t = agent_task_find(c->a, ct->id);
	if (t && t->state == TASK_RUNNING && !t->kill_requested)
		agent_task_health_update(c->a, t, h == HC_HEALTHY, json_incref(checks), msg);
	pthread_mutex_unlock(&c->a->lock);
	json_decref(checks);
}

static void finish(struct checker *c, struct checked *ct, size_t i, bool ok, const char *cause)
{
	double now = now_mono();

	probe_stop(c, &ct->pr[i]);
	log_debug("event=health_check task_id=%s check=%zu ok=%d cause=\"%s\"", ct->id, i, ok,
		  cause ? cause : "");
	if (hc_state_result(&ct->st[i], &ct->ti.checks[i], ok, cause, now, now_wall()))
		report(c, ct, cause);
}

static void skip(struct checker *c, struct checked *ct, size_t i)
{
	probe_stop(c, &ct->pr[i]);
	hc_state_skip(&ct->st[i], &ct->ti.checks[i], now_mono());
}

static void start_socket(struct checker *c, struct checked *ct, size_t i)
{
	const struct hc_def *d = &ct->ti.checks[i];
	struct probe *p = &ct->pr[i];
	struct sockaddr_storage ss = c->addr;
	char cause[HC_CAUSE_MAX];

	set_port(&ss, d->port);
	p->fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (p->fd < 0) {
		snprintf(cause, sizeof(cause), "socket: %s", strerror(errno));
		finish(c, ct, i, false, cause);
		return;
	}
	if (d->protocol == HC_HTTP)
		p->req_len = (size_t)snprintf(p->req, sizeof(p->req),
					      "GET %s HTTP/1.1\r\nHost: %s:%u\r\n"
					      "User-Agent: pacer-health-check\r\nAccept: */*\r\n"
					      "Connection: close\r\n\r\n", d->path, c->host, d->port);
	p->sent = p->resp_len = 0;
	p->phase = P_CONNECT;
	if (connect(p->fd, (struct sockaddr *)&ss, c->addrlen) < 0 && errno != EINPROGRESS) {
		snprintf(cause, sizeof(cause), "connect to port %u: %s", d->port, strerror(errno));
		finish(c, ct, i, false, cause);
	}
	/* Connected at once or in progress: poll says which (POLLOUT, then SO_ERROR). */
}

static void start_command(struct checker *c, struct checked *ct, size_t i)
{
	const struct hc_def *d = &ct->ti.checks[i];
	struct probe *p = &ct->pr[i];
	struct container_exec x = { .command = d->command, .envp = (const char *const *)ct->envp,
				    .cwd = ct->sandbox, .user = ct->ti.user };
	char err[256], cause[HC_CAUSE_MAX];
	int rc = agent_cz_exec(c->a, ct->id, &x, &p->pid, err, sizeof(err));

	if (rc == -ESRCH) {             /* the container is ending: nothing to check */
		skip(c, ct, i);
		return;
	}
	if (rc) {
		snprintf(cause, sizeof(cause), "cannot run the command: %.100s", err);
		finish(c, ct, i, false, cause);
		return;
	}
	p->phase = P_COMMAND;
	p->fd = (int)syscall(SYS_pidfd_open, p->pid, 0);   /* -1: polled every round */
}

static void probe_start(struct checker *c, struct checked *ct, size_t i)
{
	struct probe *p = &ct->pr[i];

	p->deadline = now_mono() + ct->ti.checks[i].timeout;
	p->fd = -1;
	p->pid = 0;
	if (ct->ti.checks[i].protocol == HC_COMMAND)
		start_command(c, ct, i);
	else
		start_socket(c, ct, i);
}

/* The status line of an HTTP response: 200-399 pass, 1xx is discarded when asked. */
static void http_status(struct checker *c, struct checked *ct, size_t i)
{
	struct probe *p = &ct->pr[i];
	char cause[HC_CAUSE_MAX];
	int code = 0;

	p->resp[p->resp_len] = '\0';
	if (sscanf(p->resp, "HTTP/%*d.%*d %3d", &code) != 1 || code < 100 || code > 599) {
		finish(c, ct, i, false, "not an HTTP response");
		return;
	}
	if (code >= 200 && code <= 399) {
		finish(c, ct, i, true, NULL);
		return;
	}
	if (code < 200 && ct->ti.checks[i].ignore_1xx) {
		skip(c, ct, i);
		return;
	}
	snprintf(cause, sizeof(cause), "HTTP %d from %s", code, ct->ti.checks[i].path);
	finish(c, ct, i, false, cause);
}

/* Moves a socket probe on after poll said it is ready. */
static void socket_ready(struct checker *c, struct checked *ct, size_t i, short revents)
{
	struct probe *p = &ct->pr[i];
	const struct hc_def *d = &ct->ti.checks[i];
	char cause[HC_CAUSE_MAX];
	int soerr = 0;
	socklen_t len = sizeof(soerr);
	ssize_t n;

	if (p->phase == P_CONNECT) {
		if (getsockopt(p->fd, SOL_SOCKET, SO_ERROR, &soerr, &len) < 0)
			soerr = errno;
		if (soerr) {
			snprintf(cause, sizeof(cause), "connect to port %u: %s", d->port, strerror(soerr));
			finish(c, ct, i, false, cause);
			return;
		}
		if (d->protocol == HC_TCP) {
			finish(c, ct, i, true, NULL);
			return;
		}
		p->phase = P_SEND;
	}
	if (p->phase == P_SEND) {
		n = send(p->fd, p->req + p->sent, p->req_len - p->sent, MSG_NOSIGNAL);
		if (n < 0 && errno != EAGAIN && errno != EINTR) {
			snprintf(cause, sizeof(cause), "sending the request: %s", strerror(errno));
			finish(c, ct, i, false, cause);
			return;
		}
		if (n > 0)
			p->sent += (size_t)n;
		if (p->sent == p->req_len)
			p->phase = P_READ;
		return;
	}
	if (p->phase != P_READ || !(revents & (POLLIN | POLLHUP | POLLERR)))
		return;
	n = recv(p->fd, p->resp + p->resp_len, sizeof(p->resp) - 1 - p->resp_len, 0);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return;
	if (n < 0) {
		snprintf(cause, sizeof(cause), "reading the response: %s", strerror(errno));
		finish(c, ct, i, false, cause);
		return;
	}
	p->resp_len += (size_t)n;
	p->resp[p->resp_len] = '\0';
	if (strchr(p->resp, '\n') || p->resp_len == sizeof(p->resp) - 1 || n == 0) {
		if (n == 0 && p->resp_len == 0)
			finish(c, ct, i, false, "connection closed without a response");
		else
			http_status(c, ct, i);
	}
}

static void command_check(struct checker *c, struct checked *ct, size_t i)
{
	struct probe *p = &ct->pr[i];
	char cause[HC_CAUSE_MAX];
	int status;
	pid_t w = waitpid(p->pid, &status, WNOHANG);

	if (w == 0)
		return;
	p->pid = 0;             /* reaped (or lost): nothing to kill */
	if (w < 0) {
		finish(c, ct, i, false, "the command's status was lost");
		return;
	}
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0) {
		finish(c, ct, i, true, NULL);
		return;
	}
	if (WIFEXITED(status))
		snprintf(cause, sizeof(cause), "command exited with status %d", WEXITSTATUS(status));
	else
		snprintf(cause, sizeof(cause), "command terminated by signal %d", WTERMSIG(status));
	finish(c, ct, i, false, cause);
}

/* ---- the task list ---- */

static void checked_free(struct checker *c, struct checked *ct)
{
	for (size_t i = 0; i < ct->ti.nchecks; i++)
		probe_stop(c, &ct->pr[i]);
	strv_free(ct->envp);
	task_info_free(&ct->ti);
	json_decref(ct->info);
	free(ct->st);
	free(ct->pr);
	free(ct);
}

static struct checked *checked_new(struct checker *c, const char *id, json_t *info)
{
	struct checked *ct = calloc(1, sizeof(*ct));
	char err[512];
	double now = now_mono();

	if (!ct)
		return NULL;
	snprintf(ct->id, sizeof(ct->id), "%s", id);
	ct->info = json_incref(info);
	/* A task whose checks cannot run stays listed with none, so it is not retried. */
	if (task_info_parse(info, &ct->ti, err, sizeof(err))) {
		log_warn("event=health_check_bad_definition task_id=%s error=\"%s\"", id, err);
		ct->ti.nchecks = 0;
		return ct;
	}
	checkpoint_sandbox_dir(c->a->cfg.work_dir, id, ct->sandbox, sizeof(ct->sandbox));
	ct->envp = task_env_build(&ct->ti, c->a->cfg.ip, ct->sandbox);
	ct->st = calloc(ct->ti.nchecks, sizeof(*ct->st));
	ct->pr = calloc(ct->ti.nchecks, sizeof(*ct->pr));
	if (!ct->envp || !ct->st || !ct->pr) {
		log_warn("event=health_checks_not_started task_id=%s error=\"out of memory\"", id);
		ct->ti.nchecks = 0;
		return ct;
	}
	for (size_t i = 0; i < ct->ti.nchecks; i++) {
		hc_state_init(&ct->st[i], &ct->ti.checks[i], now);
		ct->pr[i].fd = -1;
	}
	log_info("event=health_checks_started task_id=%s checks=%zu", id, ct->ti.nchecks);
	return ct;
}

static struct checked *checked_find(struct checker *c, const char *id)
{
	for (struct checked *ct = c->tasks; ct; ct = ct->next)
		if (strcmp(ct->id, id) == 0)
			return ct;
	return NULL;
}

/* Adds the running tasks with checks that are new, drops those no longer running.
 * Returns false when the agent is stopping. */
static bool refresh(struct checker *c)
{
	struct { char id[TASK_ID_MAX + 1]; json_t *info; } *fresh = NULL;
	size_t nfresh = 0, cap = 0;
	bool stopping;

	for (struct checked *ct = c->tasks; ct; ct = ct->next)
		ct->seen = false;
	pthread_mutex_lock(&c->a->lock);
	stopping = c->a->stopping;
	for (struct task *t = c->a->tasks; t && !stopping; t = t->next) {
		struct checked *ct;

		if (t->state != TASK_RUNNING || t->kill_requested || t->orphan ||
		    json_array_size(json_object_get(t->info, "health_checks")) == 0)
			continue;
		ct = checked_find(c, t->id);
		if (ct) {
			ct->seen = true;
			continue;
		}
		if (nfresh == cap) {
			size_t nc = cap ? cap * 2 : 8;
			void *n = realloc(fresh, nc * sizeof(*fresh));

			if (!n)
				break;
			fresh = n;
			cap = nc;
		}
		snprintf(fresh[nfresh].id, sizeof(fresh[nfresh].id), "%s", t->id);
		fresh[nfresh++].info = json_incref(t->info);
	}
	pthread_mutex_unlock(&c->a->lock);

	for (struct checked **pp = &c->tasks; *pp;) {
		struct checked *ct = *pp;

		if (ct->seen && !stopping) {
			pp = &ct->next;
			continue;
		}
		*pp = ct->next;
		log_info("event=health_checks_stopped task_id=%s", ct->id);
		checked_free(c, ct);
	}
	for (size_t i = 0; i < nfresh; i++) {
		struct checked *ct = stopping ? NULL : checked_new(c, fresh[i].id, fresh[i].info);

		if (ct) {
			ct->seen = true;
			ct->next = c->tasks;
			c->tasks = ct;
		}
		json_decref(fresh[i].info);
	}
	free(fresh);
	return !stopping;
}

/* ---- one round: start what is due, time out what is late, wait, move on ---- */

static int round_wait_ms(struct checker *c, double now)
{
	double wait = MAX_WAIT_MS / 1000.0;

	for (struct checked *ct = c->tasks; ct; ct = ct->next) {
		for (size_t i = 0; i < ct->ti.nchecks; i++) {
			double at = ct->pr[i].phase == P_IDLE ? ct->st[i].next_due : ct->pr[i].deadline;

			if (ct->pr[i].phase == P_COMMAND && ct->pr[i].fd < 0)
				at = now + 0.01;
			if (at - now < wait)
				wait = at - now;
		}
	}
	return wait > 0 ? (int)(wait * 1000) + 1 : 0;
}

static void start_and_expire(struct checker *c)
{
	double now = now_mono();
	char cause[HC_CAUSE_MAX];

	for (struct checked *ct = c->tasks; ct; ct = ct->next) {
		for (size_t i = 0; i < ct->ti.nchecks; i++) {
			struct probe *p = &ct->pr[i];

			if (p->phase == P_COMMAND)
				command_check(c, ct, i);
			if (p->phase == P_IDLE && now >= ct->st[i].next_due) {
				probe_start(c, ct, i);
			} else if (p->phase != P_IDLE && now >= p->deadline) {
				snprintf(cause, sizeof(cause), "timed out after %gs",
					 ct->ti.checks[i].timeout);
				finish(c, ct, i, false, cause);
			}
		}
	}
}

static void wait_and_handle(struct checker *c)
{
	struct pollfd *fds = NULL;
	struct { struct checked *ct; size_t i; } *who = NULL;
	size_t n = 0, cap = 0;
	int ms = round_wait_ms(c, now_mono());

	for (struct checked *ct = c->tasks; ct; ct = ct->next)
		cap += ct->ti.nchecks;
	if (cap) {
		fds = calloc(cap, sizeof(*fds));
		who = calloc(cap, sizeof(*who));
	}
	for (struct checked *ct = c->tasks; fds && who && ct; ct = ct->next) {
		for (size_t i = 0; i < ct->ti.nchecks; i++) {
			struct probe *p = &ct->pr[i];

			if (p->phase == P_IDLE || p->fd < 0)
				continue;
			fds[n].fd = p->fd;
			fds[n].events = p->phase == P_CONNECT || p->phase == P_SEND ? POLLOUT : POLLIN;
			who[n].ct = ct;
			who[n].i = i;
			n++;
		}
	}
	if (poll(fds, n, ms) > 0) {
		for (size_t k = 0; k < n; k++) {
			struct probe *p = &who[k].ct->pr[who[k].i];

			if (!fds[k].revents || p->fd != fds[k].fd)
				continue;
			if (p->phase == P_COMMAND)
				command_check(c, who[k].ct, who[k].i);
			else
				socket_ready(c, who[k].ct, who[k].i, fds[k].revents);
		}
	}
	free(fds);
	free(who);
}

void *agent_health_main(void *arg)
{
	struct checker c = { .a = arg };

	resolve_address(&c);
	while (refresh(&c)) {
		start_and_expire(&c);
		wait_and_handle(&c);
		reap_zombies(&c);
	}
	while (c.tasks) {
		struct checked *ct = c.tasks;

		c.tasks = ct->next;
		checked_free(&c, ct);
	}
	for (size_t i = 0; i < c.nzombies; i++)
		waitpid(c.zombies[i], NULL, 0);
	free(c.zombies);
	return NULL;
}
