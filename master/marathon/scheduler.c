/* scheduler.c - the app scheduler: a framework (master/framework.h) that keeps, for each
 * app, `instances` non-terminal tasks of the app's current configuration. It holds no task
 * table of its own: the master's task records are the truth (so a master restart rebuilds
 * its view for free); it only remembers which kills it asked for and which terminal
 * records still need expunging.
 *
 * Per app: tasks of the current config version are "new", others "old". Waiting
 * instances = wanted - new active. Old tasks are killed as new ones reach TASK_RUNNING
 * (Marathon's default upgradeStrategy: capacity never drops below `instances`).
 * Surplus tasks are killed newest first. TASK_UNREACHABLE tasks do not count (they are
 * replaced); if one comes back, the surplus is killed. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "lib/log.h"
#include "lib/util.h"
#include "master/marathon/app_id.h"
#include "master/marathon/marathon_internal.h"

#define REFUSE_IDLE_SECONDS 5.0
#define BACKOFF_SECONDS 1.0
#define BACKOFF_FACTOR 1.15
#define MAX_LAUNCH_DELAY_SECONDS 3600.0
#define RES_EPSILON 1e-6

/* Bounded copy that truncates silently (ids are validated to fit before they get here). */
static void scopy(char *dst, size_t n, const char *src)
{
	size_t l = strnlen(src, n - 1);

	memcpy(dst, src, l);
	dst[l] = '\0';
}

/* ---- kill and expunge bookkeeping ---- */

bool scheduler_kill_pending(struct marathon *mt, const char *task_id)
{
	for (struct kill_entry *k = mt->kills; k; k = k->next)
		if (strcmp(k->task_id, task_id) == 0)
			return true;
	return false;
}

static void kill_forget(struct marathon *mt, const char *task_id)
{
	for (struct kill_entry **pp = &mt->kills; *pp; pp = &(*pp)->next) {
		if (strcmp((*pp)->task_id, task_id) == 0) {
			struct kill_entry *k = *pp;

			*pp = k->next;
			free(k);
			return;
		}
	}
}

int scheduler_kill(struct marathon *mt, const char *task_id, double grace)
{
	struct kill_entry *k;
	int rc;

	rc = master_kill_task(mt->m, task_id, grace);
	if (rc)
		return rc;
	log_info("event=marathon_kill task=%s", task_id);
	if (scheduler_kill_pending(mt, task_id))
		return 0;
	k = calloc(1, sizeof(*k));
	if (!k)
		return 0;   /* the kill was sent; only the bookkeeping is lost */
	snprintf(k->task_id, sizeof(k->task_id), "%s", task_id);
	k->next = mt->kills;
	mt->kills = k;
	return 0;
}

static void expunge_later(struct marathon *mt, const char *task_id)
{
	struct expunge_entry *e = calloc(1, sizeof(*e));

	if (!e)
		return;
	snprintf(e->task_id, sizeof(e->task_id), "%s", task_id);
	e->next = mt->expunge;
	mt->expunge = e;
}

static void expunge_pending(struct marathon *mt)
{
	while (mt->expunge) {
		struct expunge_entry *e = mt->expunge;
		const struct task_record *t = master_find_task(mt->m, e->task_id);

		mt->expunge = e->next;
		if (t && task_state_is_terminal(t->state))
			master_expunge_task(mt->m, e->task_id);
		kill_forget(mt, e->task_id);
		free(e);
	}
}

/* ---- task views ---- */

struct task_list {
	const struct task_record **v;
	size_t n, cap;
	const char *app_id;             /* filter, or NULL */
	bool oom;
};

static void collect_task(const struct task_record *t, void *arg)
{
	struct task_list *l = arg;

	if (task_state_is_terminal(t->state))
		return;
	if (l->app_id && strcmp(t->app_id, l->app_id) != 0)
		return;
	if (l->n == l->cap) {
		size_t cap = l->cap ? l->cap * 2 : 16;
		const struct task_record **v = realloc(l->v, cap * sizeof(*v));

		if (!v) {
			l->oom = true;
			return;
		}
		l->v = v;
		l->cap = cap;
	}
	l->v[l->n++] = t;
}

static int by_staged_at(const void *a, const void *b)
{
	const struct task_record *x = *(const struct task_record *const *)a;
	const struct task_record *y = *(const struct task_record *const *)b;

	if (x->staged_at != y->staged_at)
		return x->staged_at < y->staged_at ? -1 : 1;
	return strcmp(x->task_id, y->task_id);
}

int scheduler_tasks(struct marathon *mt, const char *app_id, const struct task_record ***out)
{
	struct task_list l = { .app_id = app_id };

	master_for_each_task(mt->m, mt->fw.id, collect_task, &l);
	if (l.oom) {
		free(l.v);
		*out = NULL;
		return -ENOMEM;
	}
	if (l.n)
		qsort(l.v, l.n, sizeof(*l.v), by_staged_at);
	*out = l.v;
	return (int)l.n;
}

void scheduler_counts(struct marathon *mt, const char *app_id, struct app_counts *out)
{
	const struct task_record **v;
	int n = scheduler_tasks(mt, app_id, &v);

	memset(out, 0, sizeof(*out));
	for (int i = 0; i < n; i++) {
		if (v[i]->state == TASK_STAGING || v[i]->state == TASK_STARTING)
			out->staged++;
		else if (v[i]->state == TASK_RUNNING)
			out->running++;
	}
	free(v);
}

/* How an app's tasks stand against its definition. */
struct app_view {
	int active_new, running_new, active_old, killing;
	int wanted;
};

static bool counts_towards_app(struct marathon *mt, const struct task_record *t)
{
	return t->state != TASK_UNREACHABLE && t->state != TASK_UNKNOWN &&
	       t->state != TASK_KILLING && !scheduler_kill_pending(mt, t->task_id);
}

static bool is_new(const struct mt_app *ma, const struct task_record *t)
{
	return strcmp(t->version, ma->app.last_config_change_at) == 0;
}

static void view_app(struct marathon *mt, const struct mt_app *ma,
		     const struct task_record **v, int n, struct app_view *out)
{
	memset(out, 0, sizeof(*out));
	out->wanted = ma->deleting ? 0 : ma->app.instances;
	for (int i = 0; i < n; i++) {
		const struct task_record *t = v[i];

		if (!counts_towards_app(mt, t)) {
			if (t->state != TASK_UNREACHABLE)
				out->killing++;
			continue;
		}
		if (is_new(ma, t)) {
			out->active_new++;
			if (t->state == TASK_RUNNING)
				out->running_new++;
		} else {
			out->active_old++;
		}
	}
}

void scheduler_reset_backoff(struct mt_app *ma)
{
	ma->failures = 0;
	ma->launch_after = 0;
}

static bool in_backoff(const struct mt_app *ma)
{
	return ma->launch_after > 0 && now_mono() < ma->launch_after;
}

/* A task of the app ended without being asked to: delay the next launch. */
static void backoff(struct mt_app *ma)
{
	double delay = BACKOFF_SECONDS;

	for (int i = 0; i < ma->failures && delay < MAX_LAUNCH_DELAY_SECONDS; i++)
		delay *= BACKOFF_FACTOR;
	if (delay > MAX_LAUNCH_DELAY_SECONDS)
		delay = MAX_LAUNCH_DELAY_SECONDS;
	ma->failures++;
	ma->launch_after = now_mono() + delay;
	log_info("event=marathon_backoff app=%s failures=%d delay=%.2f", ma->app.id, ma->failures,
		 delay);
}

static int app_waiting(struct marathon *mt, const struct mt_app *ma)
{
	const struct task_record **v;
	struct app_view av;
	int n;

	if (in_backoff(ma))
		return 0;
	n = scheduler_tasks(mt, ma->app.id, &v);
	if (n < 0)
		return 0;
	view_app(mt, ma, v, n, &av);
	free(v);
	return av.wanted > av.active_new ? av.wanted - av.active_new : 0;
}

/* Kills up to count tasks (newest first) among v[] that count and match want_new.
 * Returns how many kills were sent. */
static int kill_newest(struct marathon *mt, const struct mt_app *ma,
		       const struct task_record **v, int n, bool want_new, int count)
{
	int killed = 0;

	for (int i = n - 1; i >= 0 && killed < count; i--) {
		if (!counts_towards_app(mt, v[i]) || is_new(ma, v[i]) != want_new)
			continue;
		if (scheduler_kill(mt, v[i]->task_id, app_kill_grace(&ma->app)) == 0)
			killed++;
	}
	return killed;
}

static void app_terminated(struct marathon *mt, struct mt_app *ma)
{
	char id[APP_ID_MAX + 1];

	snprintf(id, sizeof(id), "%s", ma->app.id);
	apps_unpersist(mt, id);
	apps_remove(mt, ma);
	log_info("event=app_terminated app=%s", id);
	events_publish(mt->events, "app_terminated_event", json_pack("{s:s}", "appId", id));
}

/* Returns true if the app was removed (deleted and all its tasks gone). */
static bool reconcile_app(struct marathon *mt, struct mt_app *ma)
{
	struct deployment *d = deployment_for_app(mt, ma->app.id);
	const struct task_record **v;
	struct app_view av;
	int n = scheduler_tasks(mt, ma->app.id, &v);

	if (n < 0)
		return false;
	view_app(mt, ma, v, n, &av);
	if (av.active_new > av.wanted) {
		int k = kill_newest(mt, ma, v, n, true, av.active_new - av.wanted);

		av.active_new -= k;
		av.killing += k;
		if (av.running_new > av.active_new)
			av.running_new = av.active_new;
	}
	if (av.active_old > 0) {
		int keep = av.wanted - av.running_new;

		if (keep < 0)
			keep = 0;
		if (av.active_old > keep) {
			int k = kill_newest(mt, ma, v, n, false, av.active_old - keep);

			av.active_old -= k;
			av.killing += k;
		}
	}
	free(v);
	if (av.wanted > av.active_new && !in_backoff(ma))
		mt->waiting = true;

	if (ma->deleting) {
		/* Gone means no task that could still run, unreachable ones aside. */
		if (av.active_new + av.active_old + av.killing > 0)
			return false;
		if (d)
			deployment_finish(mt, d, true);
		app_terminated(mt, ma);
		return true;
	}
	if (d && av.active_old == 0 && av.killing == 0 && av.active_new == av.wanted &&
	    av.running_new == av.wanted)
		deployment_finish(mt, d, true);
	return false;
}

/* Tasks of this framework whose app no longer exists are killed; unreachable ones are
 * forgotten (safe context only): a deleted app leaves nothing listed behind, and if the
 * agent comes back the master kills what it no longer knows. */
static void kill_orphans(struct marathon *mt, bool safe)
{
	const struct task_record **v;
	int n = scheduler_tasks(mt, NULL, &v);
	char (*forget)[160] = n > 0 ? calloc((size_t)n, sizeof(*forget)) : NULL;
	int nforget = 0;

	for (int i = 0; i < n; i++) {
		if (apps_find(mt, v[i]->app_id))
			continue;
		if (v[i]->state == TASK_UNREACHABLE) {
			if (safe && forget)
				scopy(forget[nforget++], sizeof(forget[0]), v[i]->task_id);
			continue;
		}
		if (!counts_towards_app(mt, v[i]))
			continue;
		log_warn("event=marathon_orphan_task task=%s app=%s", v[i]->task_id, v[i]->app_id);
		scheduler_kill(mt, v[i]->task_id, APP_DEFAULT_KILL_GRACE);
	}
	free(v);
	/* Expunge after the walk: the records v[] pointed to are freed by it. */
	for (int i = 0; i < nforget; i++) {
		log_info("event=marathon_forget_unreachable task=%s", forget[i]);
		master_expunge_task(mt->m, forget[i]);
		kill_forget(mt, forget[i]);
	}
	free(forget);
}

void scheduler_reconcile(struct marathon *mt, bool safe)
{
	struct mt_app *ma, *next;

	if (!mt->registered)
		return;
	if (safe)
		expunge_pending(mt);
	mt->waiting = false;
	for (ma = mt->apps; ma; ma = next) {
		next = ma->next;
		reconcile_app(mt, ma);
	}
	kill_orphans(mt, safe);
	if (mt->waiting && mt->fw.suppressed)
		master_revive_offers(mt->m, &mt->fw);
	else if (!mt->waiting && !mt->fw.suppressed)
		master_suppress_offers(mt->m, &mt->fw);
}

/* ---- offers ---- */

struct pending_app {
	struct mt_app *ma;
	int waiting;
	int per_offer;      /* spread: at most this many instances of the app per offer */
	int on_this_offer;  /* launched on the offer being used */
};

/* Removes one port from a set. */
static int take_port(struct port_ranges *set, uint32_t port)
{
	struct port_ranges one;
	int rc;

	port_ranges_init(&one);
	rc = port_ranges_add_range(&one, port, port);
	if (!rc)
		rc = port_ranges_subtract(set, &one);
	port_ranges_free(&one);
	return rc;
}

/* Chooses the app's host ports from free_ports (chosen ones are removed): fixed ports
 * first, then the lowest free port for each "port 0". */
static int pick_ports(const struct app *a, struct port_ranges *free_ports, uint32_t *out)
{
	int rc;

	for (size_t i = 0; i < a->port_count; i++) {
		uint32_t p = a->ports[i].port;

		if (p == 0)
			continue;
		if (!port_ranges_contains_port(free_ports, p))
			return -ENOSPC;
		out[i] = p;
		rc = take_port(free_ports, p);
		if (rc)
			return rc;
	}
	for (size_t i = 0; i < a->port_count; i++) {
		if (a->ports[i].port != 0)
			continue;
		rc = port_ranges_pick(free_ports, 1, &out[i]);
		if (!rc)
			rc = take_port(free_ports, out[i]);
		if (rc)
			return rc;
	}
	return 0;
}

/* If the app fits in remaining, fills l (resources and ports) and takes them from
 * remaining. Returns 0 or -ENOSPC. */
static int fit_task(const struct app *a, struct resources *remaining, struct task_launch *l)
{
	struct port_ranges free_ports;
	int rc;

	if (a->cpus > remaining->cpus + RES_EPSILON || a->mem > remaining->mem + RES_EPSILON ||
	    a->disk > remaining->disk + RES_EPSILON)
		return -ENOSPC;
	port_ranges_init(&free_ports);
	rc = port_ranges_copy(&free_ports, &remaining->ports);
	if (rc)
		goto out;
	rc = pick_ports(a, &free_ports, l->ports);
	if (rc)
		goto out;
	resources_init(&l->resources);
	l->resources.cpus = a->cpus;
	l->resources.mem = a->mem;
	l->resources.disk = a->disk;
	l->port_count = a->port_count;
	for (size_t i = 0; i < a->port_count && !rc; i++)
		rc = port_ranges_add_range(&l->resources.ports, l->ports[i], l->ports[i]);
	if (!rc)
		rc = resources_subtract(remaining, &l->resources);
	if (rc)
		resources_free(&l->resources);
out:
	port_ranges_free(&free_ports);
	return rc;
}

static void fill_launch(const struct app *a, struct task_launch *l)
{
	char prefix[160], uuid[37];

	app_id_task_prefix(a->id, prefix, sizeof(prefix));
	uuid_v4(uuid);
	scopy(l->task_id, sizeof(l->task_id) - sizeof(uuid), prefix);
	strcat(l->task_id, ".");
	strcat(l->task_id, uuid);
	scopy(l->name, sizeof(l->name), prefix);
	scopy(l->app_id, sizeof(l->app_id), a->id);
	l->command = app_task_command(a);
	l->env = a->env;
	l->labels = a->labels;
	l->extra = json_pack("{s:s, s:s}", "version", a->last_config_change_at, "appVersion",
			     a->version);
	l->user = a->user;
	l->kill_grace_period_seconds = app_kill_grace(a);
}

static void free_launches(struct task_launch *ls, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		json_decref(ls[i].command);
		json_decref(ls[i].extra);
		resources_free(&ls[i].resources);
	}
}

#define META_AGENT_IPS_KEY "marathon_agent_ips"

/* Agent id -> ip, from offers; stored so that task JSON keeps its ipAddresses across a
 * master restart (before the first offers arrive). */
static void remember_agent_ip(struct marathon *mt, const struct offer *o)
{
	char ip[128];
	char *colon;
	const char *known;

	snprintf(ip, sizeof(ip), "%s", o->agent_address);
	colon = strrchr(ip, ':');
	if (colon)
		*colon = '\0';
	known = json_string_value(json_object_get(mt->agent_ips, o->agent_id));
	if (!ip[0] || (known && strcmp(known, ip) == 0))
		return;
	json_object_set_new(mt->agent_ips, o->agent_id, json_string(ip));
	if (store_put(mt->store, KIND_META, META_AGENT_IPS_KEY, mt->agent_ips))
		log_warn("event=marathon_agent_ips_not_stored agent=%s", o->agent_id);
}

/* Launches what fits of the pending apps on one offer; returns launches made. */
static size_t use_offer(struct marathon *mt, struct offer *o, struct pending_app *pend,
			size_t npend, bool *still_waiting)
{
	struct task_launch *ls = NULL;
	size_t n = 0, cap = 0, launched = 0;
	struct resources remaining;
	bool progress = true;
	const char *ids[1] = { o->id };
	char err[256], agent_id[64], offer_id[48];
	int rc;

	for (size_t i = 0; i < npend; i++)
		pend[i].on_this_offer = 0;
	resources_init(&remaining);
	if (resources_copy(&remaining, &o->resources)) {
		resources_free(&remaining);
		return 0;
	}
	/* Round robin: one instance per app per pass, so one big app does not starve others. */
	while (progress) {
		progress = false;
		for (size_t i = 0; i < npend; i++) {
			struct task_launch l;

			if (pend[i].waiting <= 0 || pend[i].on_this_offer >= pend[i].per_offer)
				continue;
			memset(&l, 0, sizeof(l));
			if (fit_task(&pend[i].ma->app, &remaining, &l))
				continue;
			if (n == cap) {
				size_t nc = cap ? cap * 2 : 8;
				struct task_launch *nl = realloc(ls, nc * sizeof(*nl));

				if (!nl) {
					resources_free(&l.resources);
					progress = false;
					break;
				}
				ls = nl;
				cap = nc;
			}
			fill_launch(&pend[i].ma->app, &l);
			ls[n++] = l;
			pend[i].waiting--;
			pend[i].on_this_offer++;
			progress = true;
		}
	}
	resources_free(&remaining);
	*still_waiting = false;
	for (size_t i = 0; i < npend; i++)
		*still_waiting = *still_waiting || pend[i].waiting > 0;
	if (n == 0) {
		master_decline(mt->m, &mt->fw, o->id, *still_waiting ? 0 : REFUSE_IDLE_SECONDS);
		goto out;
	}
	/* The offer is gone once accepted: keep what the log needs. */
	scopy(agent_id, sizeof(agent_id), o->agent_id);
	scopy(offer_id, sizeof(offer_id), o->id);
	rc = master_accept(mt->m, &mt->fw, ids, 1, ls, n, *still_waiting ? 0 : REFUSE_IDLE_SECONDS,
			   err, sizeof(err));
	if (rc) {
		log_error("event=marathon_accept_failed offer=%s error=\"%s\"", offer_id, err);
		master_decline(mt->m, &mt->fw, offer_id, 0);   /* harmless if already gone */
		goto out;
	}
	launched = n;
	for (size_t i = 0; i < n; i++)
		log_info("event=marathon_launch task=%s app=%s agent=%s", ls[i].task_id,
			 ls[i].app_id, agent_id);
out:
	free_launches(ls, n);
	free(ls);
	return launched;
}

static void on_offers(struct framework *fw, struct offer **offers, size_t count)
{
	struct marathon *mt = fw->ctx;
	struct pending_app *pend = NULL;
	size_t npend = 0, napps = 0;
	bool waiting = false;

	for (struct mt_app *ma = mt->apps; ma; ma = ma->next)
		napps++;
	if (napps)
		pend = calloc(napps, sizeof(*pend));
	for (struct mt_app *ma = mt->apps; pend && ma; ma = ma->next) {
		int w = app_waiting(mt, ma);

		if (w > 0) {
			pend[npend].ma = ma;
			pend[npend].waiting = w;
			npend++;
		}
	}
	/* Spread each app over the agents offered together: an even share per offer now;
	 * what did not fit waits for the next cycle (which a revive starts at once). */
	for (size_t i = 0; i < npend; i++)
		pend[i].per_offer = count ? (int)((pend[i].waiting + count - 1) / count) : 0;
	for (size_t i = 0; i < count; i++) {
		remember_agent_ip(mt, offers[i]);
		use_offer(mt, offers[i], pend, npend, &waiting);
	}
	free(pend);
	scheduler_reconcile(mt, false);
}

static void on_rescinded(struct framework *fw, const char *offer_id)
{
	(void)fw;
	(void)offer_id;     /* offers are answered at once; nothing is held */
}

static json_t *ip_addresses(struct marathon *mt, const char *agent_id, const char *host)
{
	const char *ip = json_string_value(json_object_get(mt->agent_ips, agent_id ? agent_id : ""));

	if (!ip)
		ip = host;
	if (!ip || !ip[0])
		return json_array();
	return json_pack("[{s:s, s:s}]", "ipAddress", ip, "protocol",
			 strchr(ip, ':') ? "IPv6" : "IPv4");
}

static void publish_status(struct marathon *mt, const struct task_status *st,
			   const struct task_record *t)
{
	char app_id[APP_ID_MAX + 1] = "";
	json_t *ports = json_array();
	char ts[32];

	if (t)
		scopy(app_id, sizeof(app_id), t->app_id);
	else
		app_id_from_task_id(st->task_id, app_id, sizeof(app_id));
	for (size_t i = 0; t && i < t->port_count; i++)
		json_array_append_new(ports, json_integer(t->ports[i]));
	format_iso8601(st->timestamp > 0 ? st->timestamp : now_wall(), ts);
	events_publish(mt->events, "status_update_event",
		       json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:o, s:o, s:s, s:s, s:s}",
				 "slaveId", st->agent_id ? st->agent_id : "",
				 "agentId", st->agent_id ? st->agent_id : "",
				 "taskId", st->task_id,
				 "taskStatus", task_state_name(st->state),
				 "message", st->message ? st->message : "",
				 "appId", app_id,
				 "ports", ports,
				 "ipAddresses", ip_addresses(mt, st->agent_id, t ? t->hostname : NULL),
				 "host", t ? t->hostname : "",
				 "version", t ? t->version : "", "timestamp", ts));
}

static void on_status(struct framework *fw, const struct task_status *st)
{
	struct marathon *mt = fw->ctx;
	const struct task_record *t = master_find_task(mt->m, st->task_id);

	struct mt_app *ma = t ? apps_find(mt, t->app_id) : NULL;

	publish_status(mt, st, t);
	log_info("event=marathon_status task=%s state=%s", st->task_id, task_state_name(st->state));
	if (ma && st->state == TASK_RUNNING)
		scheduler_reset_backoff(ma);
	if (task_state_is_terminal(st->state)) {
		if (ma && !ma->deleting && !scheduler_kill_pending(mt, st->task_id))
			backoff(ma);
		expunge_later(mt, st->task_id);
	}
	scheduler_reconcile(mt, false);
}

static void on_tick(struct framework *fw, double now)
{
	(void)now;
	scheduler_reconcile(fw->ctx, true);
}

static const struct framework_ops app_scheduler_ops = {
	.resource_offers = on_offers,
	.offer_rescinded = on_rescinded,
	.status_update = on_status,
	.tick = on_tick,
};

/* The framework id survives restarts, so the master reattaches our running tasks. */
static int framework_id(struct marathon *mt, char *out, size_t outlen)
{
	json_t *j = NULL;
	char uuid[37];
	int rc;

	if (store_get(mt->store, KIND_META, META_FRAMEWORK_KEY, &j) == 0) {
		const char *id = json_string_value(json_object_get(j, "id"));

		if (id && id[0]) {
			snprintf(out, outlen, "%s", id);
			json_decref(j);
			return 0;
		}
		json_decref(j);
	}
	uuid_v4(uuid);
	snprintf(out, outlen, "marathon-%s", uuid);
	j = json_pack("{s:s}", "id", out);
	rc = j ? store_put(mt->store, KIND_META, META_FRAMEWORK_KEY, j) : -ENOMEM;
	json_decref(j);
	return rc;
}

int scheduler_start(struct marathon *mt, char *err, size_t errlen)
{
	int rc;

	if (store_get(mt->store, KIND_META, META_AGENT_IPS_KEY, &mt->agent_ips) || !json_is_object(mt->agent_ips)) {
		json_decref(mt->agent_ips);
		mt->agent_ips = json_object();
	}
	if (!mt->agent_ips)
		return -ENOMEM;
	rc = framework_id(mt, mt->fw.id, sizeof(mt->fw.id));
	if (rc) {
		snprintf(err, errlen, "cannot store the app scheduler's framework id: %s",
			 strerror(-rc));
		return rc;
	}
	snprintf(mt->fw.name, sizeof(mt->fw.name), "marathon");
	snprintf(mt->fw.role, sizeof(mt->fw.role), "*");
	mt->fw.weight = 1.0;
	mt->fw.ops = &app_scheduler_ops;
	mt->fw.ctx = mt;
	rc = master_register_framework(mt->m, &mt->fw);
	if (rc) {
		snprintf(err, errlen, "cannot register the app scheduler: %s", strerror(-rc));
		return rc;
	}
	mt->registered = true;
	log_info("event=marathon_registered framework_id=%s", mt->fw.id);
	scheduler_reconcile(mt, true);
	return 0;
}

void scheduler_free(struct marathon *mt)
{
	while (mt->kills) {
		struct kill_entry *k = mt->kills;

		mt->kills = k->next;
		free(k);
	}
	while (mt->expunge) {
		struct expunge_entry *e = mt->expunge;

		mt->expunge = e->next;
		free(e);
	}
	json_decref(mt->agent_ips);
	mt->agent_ips = NULL;
}
