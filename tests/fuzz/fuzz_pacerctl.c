/* fuzz_pacerctl.c - libFuzzer target for pacerctl's handling of the master's answers: a
 * real pacerctl command (agents/apps/tasks/deployments, tables and --json) talks over
 * libcurl to an in-process HTTP server on 127.0.0.1 that answers with the fuzz input, so
 * the answer rendering (tables, Marathon error shapes with details and deployments) reads
 * any body with any status. Input: byte 0 picks the command, byte 1 the HTTP status, the
 * rest is the body. pacerctl's output goes to /dev/null. */
/* fuzz-links: tools/pacerctl/agents.c tools/pacerctl/apps.c tools/pacerctl/client.c tools/pacerctl/deployments.c tools/pacerctl/table.c tools/pacerctl/tasks.c */
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/http_server.h"
#include "lib/log.h"
#include "lib/util.h"
#include "tools/pacerctl/pacerctl.h"
#include "tests/fuzz/fuzz_common.h"

static struct http_server *srv;
static char master_url[64];
static int answer_status;
static char *answer_body;

static void answer(struct http_request *req, struct http_response *resp, void *ctx)
{
	(void)req;
	(void)ctx;
	http_respond_text(resp, answer_status, "application/json", answer_body);
}

static void stop(void)
{
	http_server_stop(srv);
}

static void start(void)
{
	char err[256];

	log_init("fuzz", LOG_LVL_ERROR + 1);
	srv = http_server_start("127.0.0.1", 0, err, sizeof(err));
	CHECK(srv);
	CHECK(http_server_route(srv, "*", "/v1*", answer, NULL) == 0);
	CHECK(http_server_route(srv, "*", "/v2*", answer, NULL) == 0);
	snprintf(master_url, sizeof(master_url), "http://127.0.0.1:%u", http_server_port(srv));
	atexit(stop);
	CHECK(freopen("/dev/null", "w", stdout));
}

struct command {
	int (*fn)(struct ctl *c);
	const char *verb;
	const char *arg;
};

static const struct command commands[] = {
	{ cmd_agents, "list", NULL }, { cmd_agents, "show", "agent-1" },
	{ cmd_apps, "list", NULL }, { cmd_apps, "show", "/team/web" },
	{ cmd_apps, "scale", "/team/web" }, { cmd_apps, "remove", "web" },
	{ cmd_apps, "restart", "web" }, { cmd_tasks, "list", NULL },
	{ cmd_tasks, "kill", "team_web.3f0c" }, { cmd_deployments, "list", NULL },
};

static const int statuses[] = { 200, 201, 202, 400, 404, 409, 422, 500, 503, 204 };

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const struct command *cmd;
	char *args[2] = { NULL, "3" };
	struct ctl c = { 0 };
	int saved_err, null_fd, rc;

	if (size < 2)
		return 0;
	if (!srv)
		start();
	cmd = &commands[(data[0] & 0x7f) % ARRAY_SIZE(commands)];
	answer_status = statuses[data[1] % ARRAY_SIZE(statuses)];
	answer_body = strndup((const char *)data + 2, size - 2);
	CHECK(answer_body);
	c.master = master_url;
	c.json = data[0] & 0x80;
	c.verb = cmd->verb;
	args[0] = (char *)cmd->arg;
	c.args = args;
	c.nargs = cmd->arg ? 1 : 0;
	if (cmd->fn == cmd_apps && !strcmp(cmd->verb, "scale"))
		c.nargs = 2;

	/* the messages pacerctl prints for bad answers are expected: keep them quiet
	 * (PACER_FUZZ_VERBOSE=1 shows them) */
	fflush(stderr);
	saved_err = dup(2);
	null_fd = open("/dev/null", O_WRONLY);
	CHECK(saved_err >= 0 && null_fd >= 0);
	if (!getenv("PACER_FUZZ_VERBOSE"))
		dup2(null_fd, 2);
	rc = cmd->fn(&c);
	fflush(stdout);
	fflush(stderr);
	dup2(saved_err, 2);
	close(saved_err);
	close(null_fd);
	CHECK(rc == CTL_OK || rc == CTL_FAILED);
	free(answer_body);
	return 0;
}
