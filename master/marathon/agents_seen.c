/* agents_seen.c - what the app scheduler learns of agents from their offers: the address
 * (task JSON's ipAddresses) and the hostname and attributes (constraints count the tasks on
 * agents that are full, so never offered, after a master restart). One store record per
 * agent (kind marathon_agents), written once per offer round for the agents that changed:
 * 10,000 agents registering cost 10,000 small rows in a few transactions, not 10,000
 * rewrites of one document holding them all. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "lib/log.h"
#include "master/marathon/marathon_internal.h"

#define KIND_AGENTS_SEEN "marathon_agents"
/* The single documents of earlier versions, read at start. */
#define META_AGENT_IPS_KEY "marathon_agent_ips"
#define META_AGENT_INFO_KEY "marathon_agent_info"

static void ip_of(const char *address, char *out, size_t outlen)
{
	char *colon;

	snprintf(out, outlen, "%s", address ? address : "");
	colon = strrchr(out, ':');
	if (colon)
		*colon = '\0';
}

/* Updates the in-memory maps; true if anything changed. */
static bool learn(struct marathon *mt, const struct offer *o)
{
	json_t *known = json_object_get(mt->agent_info, o->agent_id);
	json_t *attrs = o->attributes ? json_incref(o->attributes) : json_object();
	const char *known_ip = json_string_value(json_object_get(mt->agent_ips, o->agent_id));
	bool changed = false;
	char ip[128];

	ip_of(o->agent_address, ip, sizeof(ip));
	if (ip[0] && (!known_ip || strcmp(known_ip, ip) != 0)) {
		json_object_set_new(mt->agent_ips, o->agent_id, json_string(ip));
		changed = true;
	}
	if (!known || !json_equal(json_object_get(known, "attributes"), attrs) ||
	    strcmp(json_string_value(json_object_get(known, "hostname")) ?: "", o->hostname) != 0) {
		json_object_set_new(mt->agent_info, o->agent_id,
				    json_pack("{s:s, s:O}", "hostname", o->hostname, "attributes", attrs));
		/* Constraint counts made with the old info (or without any) are stale. */
		if (known || mt->counted_unknown_agent) {
			mt->agent_info_gen++;
			mt->counted_unknown_agent = false;
		}
		changed = true;
	}
	json_decref(attrs);
	return changed;
}

/* Queued for the master's store writer, not written here: this runs inside an allocation
 * cycle, which must not wait for the store's transaction (or its fsync). The record is
 * only a cache of what offers say: a crash before it is durable loses nothing. */
static void store_agent(struct marathon *mt, const char *agent_id)
{
	json_t *info = json_object_get(mt->agent_info, agent_id);
	json_t *rec = json_pack("{s:O?, s:O?, s:O?}", "ip", json_object_get(mt->agent_ips, agent_id),
				"hostname", json_object_get(info, "hostname"),
				"attributes", json_object_get(info, "attributes"));

	if (!rec) {
		log_warn("event=marathon_agent_not_stored agent=%s error=\"out of memory\"", agent_id);
		return;
	}
	master_store_put(mt->m, KIND_AGENTS_SEEN, agent_id, rec);
	json_decref(rec);
}

void agents_seen_offers(struct marathon *mt, struct offer **offers, size_t count)
{
	for (size_t i = 0; i < count; i++)
		if (learn(mt, offers[i]))
			store_agent(mt, offers[i]->agent_id);
}

static int load_one(const char *key, json_t *rec, void *arg)
{
	struct marathon *mt = arg;
	json_t *ip = json_object_get(rec, "ip"), *host = json_object_get(rec, "hostname");
	json_t *attrs = json_object_get(rec, "attributes");

	if (json_is_string(ip))
		json_object_set(mt->agent_ips, key, ip);
	if (json_is_string(host))
		json_object_set_new(mt->agent_info, key,
				    json_pack("{s:O, s:o}", "hostname", host, "attributes",
					      json_is_object(attrs) ? json_incref(attrs) : json_object()));
	return 0;
}

int agents_seen_load(struct marathon *mt)
{
	json_t *old = NULL;

	mt->agent_ips = json_object();
	mt->agent_info = json_object();
	if (!mt->agent_ips || !mt->agent_info)
		return -ENOMEM;
	if (store_get(mt->store, KIND_META, META_AGENT_IPS_KEY, &old) == 0 && json_is_object(old))
		json_object_update(mt->agent_ips, old);
	json_decref(old);
	old = NULL;
	if (store_get(mt->store, KIND_META, META_AGENT_INFO_KEY, &old) == 0 && json_is_object(old))
		json_object_update(mt->agent_info, old);
	json_decref(old);
	return store_scan(mt->store, KIND_AGENTS_SEEN, load_one, mt);
}
