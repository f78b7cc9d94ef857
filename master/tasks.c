/* tasks.c - the master's task records: created from accepted launches, persisted (kind
 * "tasks"), loaded at start, queried and expunged by frameworks, killed. How status updates
 * change a record lives in status.c. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "lib/log.h"
#include "lib/util.h"
#include "master/master_internal.h"

struct task *tasks_find(struct master *m, const char *task_id)
{
	for (struct task *t = m->tasks; t; t = t->next)
		if (strcmp(t->rec.task_id, task_id) == 0)
			return t;
	return NULL;
}

static void task_free(struct task *t)
{
	resources_free(&t->rec.resources);
	json_decref(t->rec.extra);
	json_decref(t->rec.stats);
	json_decref(t->info);
	free(t);
}

static void task_append(struct master *m, struct task *t)
{
	struct task **pp = &m->tasks;

	while (*pp)
		pp = &(*pp)->next;
	*pp = t;
}

static json_t *ports_json(const uint32_t *ports, size_t n)
{
	json_t *a = json_array();

	for (size_t i = 0; i < n; i++)
		json_array_append_new(a, json_integer(ports[i]));
	return a;
}

static json_t *task_to_json(const struct task *t)
{
	const struct task_record *r = &t->rec;
	json_t *uuids = json_array();

	for (unsigned i = 0; i < TASK_UUID_MEMORY; i++)
		if (t->uuids[i][0])
			json_array_append_new(uuids, json_string(t->uuids[i]));
	return json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:o,s:o,s:f,s:f,s:f,s:s,s:O?,s:O?,s:b,s:f,s:o,s:i}",
			 "task_id", r->task_id, "framework_id", r->framework_id,
			 "agent_id", r->agent_id, "hostname", r->hostname, "app_id", r->app_id,
			 "state", task_state_name(r->state),
			 "resources", resources_to_json(&r->resources),
			 "ports", ports_json(r->ports, r->port_count),
			 "staged_at", r->staged_at, "started_at", r->started_at,
			 "updated_at", r->updated_at, "version", r->version,
			 "extra", r->extra, "info", t->info,
			 "kill_requested", t->kill_requested, "kill_grace", t->kill_grace,
			 "uuids", uuids, "uuid_next", (int)t->uuid_next);
}

int tasks_persist(struct master *m, struct task *t)
{
	json_t *j = task_to_json(t);
	int rc;

	if (!j)
		return -ENOMEM;
	rc = store_put(m->store, "tasks", t->rec.task_id, j);
	json_decref(j);
	if (rc < 0)
		log_error("event=task_persist_failed task=%s error=\"%s\"", t->rec.task_id,
			  strerror(-rc));
	return rc;
}

static void copy_str(char *dst, size_t len, json_t *obj, const char *key)
{
	const char *s = json_string_value(json_object_get(obj, key));

	snprintf(dst, len, "%s", s ? s : "");
}

static double num(json_t *obj, const char *key)
{
	return json_number_value(json_object_get(obj, key));
}

static struct task *task_from_json(const char *key, json_t *j)
{
	struct task *t = calloc(1, sizeof(*t));
	struct task_record *r;
	json_t *v;
	size_t i;
	int st;
	char err[128];

	if (!t)
		return NULL;
	r = &t->rec;
	resources_init(&r->resources);
	snprintf(r->task_id, sizeof(r->task_id), "%s", key);
	copy_str(r->framework_id, sizeof(r->framework_id), j, "framework_id");
	copy_str(r->agent_id, sizeof(r->agent_id), j, "agent_id");
	copy_str(r->hostname, sizeof(r->hostname), j, "hostname");
	copy_str(r->app_id, sizeof(r->app_id), j, "app_id");
	copy_str(r->version, sizeof(r->version), j, "version");
	st = task_state_parse(json_string_value(json_object_get(j, "state")) ?: "");
	r->state = st < 0 ? TASK_UNKNOWN : (enum task_state)st;
	if (resources_from_json(json_object_get(j, "resources"), &r->resources, err,
				sizeof(err)) < 0)
		log_warn("event=task_load_resources task=%s error=\"%s\"", key, err);
	json_array_foreach(json_object_get(j, "ports"), i, v) {
		if (r->port_count < ARRAY_SIZE(r->ports))
			r->ports[r->port_count++] = (uint32_t)json_integer_value(v);
	}
	r->staged_at = num(j, "staged_at");
	r->started_at = num(j, "started_at");
	r->updated_at = num(j, "updated_at");
	v = json_object_get(j, "extra");
	r->extra = json_is_null(v) ? NULL : json_incref(v);
	v = json_object_get(j, "info");
	t->info = json_is_null(v) ? NULL : json_incref(v);
	t->kill_requested = json_is_true(json_object_get(j, "kill_requested"));
	t->kill_grace = num(j, "kill_grace");
	json_array_foreach(json_object_get(j, "uuids"), i, v) {
		if (i < TASK_UUID_MEMORY)
			snprintf(t->uuids[i], sizeof(t->uuids[i]), "%s", json_string_value(v) ?: "");
	}
	t->uuid_next = (unsigned)json_integer_value(json_object_get(j, "uuid_next")) %
		       TASK_UUID_MEMORY;
	return t;
}

/* A task's resources count on its agent while it is not terminal, and for its framework's
 * DRF share while it is neither terminal nor unreachable (an unreachable agent is out of
 * the cluster totals, so its tasks are out of the shares too). */
static bool counts_for_agent(enum task_state s)
{
	return !task_state_is_terminal(s);
}

static bool counts_for_framework(enum task_state s)
{
	return !task_state_is_terminal(s) && s != TASK_UNREACHABLE;
}

static void account_agent(struct master *m, struct task *t, int sign)
{
	struct agent *a = agents_find(m, t->rec.agent_id);

	if (!a)
		return;
	if (sign > 0)
		resources_add(&a->used, &t->rec.resources);
	else
		resources_subtract(&a->used, &t->rec.resources);
}

static void account_framework(struct framework *fw, const struct task *t, int sign)
{
	if (!fw)
		return;
	fw->allocated.cpus += sign * t->rec.resources.cpus;
	fw->allocated.mem += sign * t->rec.resources.mem;
	fw->allocated.disk += sign * t->rec.resources.disk;
	if (fw->allocated.cpus < 1e-9)
		fw->allocated.cpus = 0;
	if (fw->allocated.mem < 1e-9)
		fw->allocated.mem = 0;
	if (fw->allocated.disk < 1e-9)
		fw->allocated.disk = 0;
}

void tasks_account(struct master *m, struct task *t, enum task_state from, enum task_state to)
{
	struct framework *fw = frameworks_find(m, t->rec.framework_id);

	if (counts_for_agent(from) != counts_for_agent(to))
		account_agent(m, t, counts_for_agent(to) ? +1 : -1);
	if (counts_for_framework(from) != counts_for_framework(to))
		account_framework(fw, t, counts_for_framework(to) ? +1 : -1);
}

static int load_one(const char *key, json_t *value, void *arg)
{
	struct master *m = arg;
	struct task *t = task_from_json(key, value);

	if (!t)
		return -ENOMEM;
	task_append(m, t);
	if (counts_for_agent(t->rec.state))
		account_agent(m, t, +1);
	return 0;
}

int tasks_load(struct master *m)
{
	size_t n = 0;
	int rc = store_scan(m->store, "tasks", load_one, m);

	for (struct task *t = m->tasks; t; t = t->next)
		n++;
	log_info("event=tasks_loaded count=%zu", n);
	return rc;
}

void tasks_attach_framework(struct master *m, struct framework *fw)
{
	for (struct task *t = m->tasks; t; t = t->next)
		if (counts_for_framework(t->rec.state) && strcmp(t->rec.framework_id, fw->id) == 0)
			account_framework(fw, t, +1);
}

static json_t *task_info(const struct task_launch *l, const struct resources *res)
{
	json_t *env = l->env ? json_deep_copy(l->env) : json_object();
	json_t *labels = l->labels ? json_deep_copy(l->labels) : json_object();

	return json_pack("{s:s,s:s,s:s,s:O,s:o,s:o,s:o,s:s?,s:f,s:o}",
			 "task_id", l->task_id, "name", l->name[0] ? l->name : l->task_id,
			 "app_id", l->app_id, "command", l->command, "env", env,
			 "resources", resources_to_json(res),
			 "ports", ports_json(l->ports, l->port_count), "user", l->user,
			 "kill_grace_period_seconds", l->kill_grace_period_seconds,
			 "labels", labels);
}

int tasks_create(struct master *m, struct framework *fw, struct agent *a,
		 const struct task_launch *l, const struct resources *res, struct task **out)
{
	struct task *t = calloc(1, sizeof(*t));
	struct task_record *r;
	const char *version;
	json_t *body;
	int rc;

	if (!t)
		return -ENOMEM;
	r = &t->rec;
	resources_init(&r->resources);
	if (resources_copy(&r->resources, res) < 0) {
		free(t);
		return -ENOMEM;
	}
	snprintf(r->task_id, sizeof(r->task_id), "%s", l->task_id);
	snprintf(r->framework_id, sizeof(r->framework_id), "%s", fw->id);
	snprintf(r->agent_id, sizeof(r->agent_id), "%s", a->id);
	snprintf(r->hostname, sizeof(r->hostname), "%s", a->hostname);
	snprintf(r->app_id, sizeof(r->app_id), "%s", l->app_id);
	r->state = TASK_STAGING;
	memcpy(r->ports, l->ports, l->port_count * sizeof(l->ports[0]));
	r->port_count = l->port_count;
	r->staged_at = r->updated_at = m->clock_wall();
	r->extra = l->extra ? json_deep_copy(l->extra) : NULL;
	version = json_string_value(json_object_get(r->extra, "version"));
	snprintf(r->version, sizeof(r->version), "%s", version ? version : "");
	t->kill_grace = l->kill_grace_period_seconds;
	t->info = task_info(l, res);
	if (!t->info) {
		task_free(t);
		return -EINVAL;
	}
	rc = tasks_persist(m, t);
	if (rc < 0) {
		task_free(t);
		return rc;
	}
	task_append(m, t);
	account_agent(m, t, +1);
	account_framework(fw, t, +1);
	body = json_pack("{s:s,s:O}", "framework_id", fw->id, "task", t->info);
	agent_link_launch(m, t, body);
	log_info("event=task_launching task=%s framework=%s agent=%s cpus=%g mem=%g",
		 r->task_id, fw->id, a->id, res->cpus, res->mem);
	if (out)
		*out = t;
	return 0;
}

const struct task_record *master_find_task(struct master *m, const char *task_id)
{
	struct task *t = tasks_find(m, task_id);

	return t ? &t->rec : NULL;
}

void master_for_each_task(struct master *m, const char *framework_id,
			  void (*fn)(const struct task_record *t, void *arg), void *arg)
{
	struct task *t = m->tasks, *next;

	while (t) {
		next = t->next;
		if (!framework_id || strcmp(t->rec.framework_id, framework_id) == 0)
			fn(&t->rec, arg);
		t = next;
	}
}

void master_expunge_task(struct master *m, const char *task_id)
{
	struct task **pp = &m->tasks, *t;

	while (*pp && strcmp((*pp)->rec.task_id, task_id) != 0)
		pp = &(*pp)->next;
	t = *pp;
	if (!t)
		return;
	*pp = t->next;
	/* A non-terminal task forgotten here is killed by the next reconciliation. */
	tasks_account(m, t, t->rec.state, TASK_GONE);
	store_del(m->store, "tasks", task_id);
	task_free(t);
}

int master_kill_task(struct master *m, const char *task_id, double grace_period_seconds)
{
	struct task *t = tasks_find(m, task_id);
	struct agent *a;

	if (!t || task_state_is_terminal(t->rec.state))
		return -ENOENT;
	t->kill_requested = true;
	t->kill_grace = grace_period_seconds;
	if (t->rec.state != TASK_UNREACHABLE)
		t->rec.state = TASK_KILLING;
	t->rec.updated_at = m->clock_wall();
	tasks_persist(m, t);
	a = agents_find(m, t->rec.agent_id);
	if (a && a->state == AGENT_ACTIVE)
		agent_link_kill(m, t, grace_period_seconds);
	log_info("event=task_kill task=%s agent=%s grace=%g", task_id, t->rec.agent_id,
		 grace_period_seconds);
	return 0;
}

void tasks_free(struct master *m)
{
	while (m->tasks) {
		struct task *t = m->tasks;

		m->tasks = t->next;
		task_free(t);
	}
}
