/* frameworks.c - registered frameworks (schedulers): registration with ids that stay the
 * same across master restarts (kind "frameworks" in the store), suppress and revive.
 * The master keeps pointers to the callers' struct framework; it never frees them. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "lib/log.h"
#include "lib/util.h"
#include "master/master_internal.h"

struct framework *frameworks_find(struct master *m, const char *id)
{
	for (struct framework_entry *e = m->frameworks; e; e = e->next)
		if (strcmp(e->fw->id, id) == 0)
			return e->fw;
	return NULL;
}

struct name_lookup {
	const char *name;
	char *id_out;
	size_t id_len;
};

static int match_name(const char *key, json_t *value, void *arg)
{
	struct name_lookup *nl = arg;
	const char *name = json_string_value(json_object_get(value, "name"));

	if (!name || strcmp(name, nl->name) != 0)
		return 0;
	snprintf(nl->id_out, nl->id_len, "%s", key);
	return 1;
}

/* A framework registering without an id gets the stored id of the same name, or a new one. */
static void assign_id(struct master *m, struct framework *fw)
{
	struct name_lookup nl = { fw->name, fw->id, sizeof(fw->id) };
	char uuid[37];

	if (store_scan(m->store, "frameworks", match_name, &nl) == 1)
		return;
	uuid_v4(uuid);
	snprintf(fw->id, sizeof(fw->id), "fw-%s", uuid);
}

int master_register_framework(struct master *m, struct framework *fw)
{
	struct framework_entry *e;
	json_t *rec;
	int rc;

	if (!fw || !fw->ops)
		return -EINVAL;
	if (fw->id[0] == '\0')
		assign_id(m, fw);
	if (frameworks_find(m, fw->id))
		return -EEXIST;
	if (fw->role[0] == '\0')
		snprintf(fw->role, sizeof(fw->role), "*");
	if (!(fw->weight > 0))
		fw->weight = 1;
	e = calloc(1, sizeof(*e));
	if (!e)
		return -ENOMEM;
	rec = json_pack("{s:s,s:s,s:s,s:f}", "id", fw->id, "name", fw->name, "role", fw->role,
			"weight", fw->weight);
	rc = rec ? store_put(m->store, "frameworks", fw->id, rec) : -ENOMEM;
	json_decref(rec);
	if (rc < 0) {
		free(e);
		log_error("event=framework_register_failed id=%s error=\"%s\"", fw->id,
			  strerror(-rc));
		return rc;
	}
	/* Only scalars are tracked in fw->allocated (DRF needs cpus and mem), so the
	 * master never owns memory inside the caller's struct. */
	resources_init(&fw->allocated);
	e->fw = fw;
	/* Append: registration order breaks DRF ties. */
	struct framework_entry **pp = &m->frameworks;
	while (*pp)
		pp = &(*pp)->next;
	*pp = e;
	tasks_attach_framework(m, fw);
	log_info("event=framework_registered id=%s name=\"%s\" role=%s weight=%g", fw->id,
		 fw->name, fw->role, fw->weight);
	master_wake_allocator(m);
	return 0;
}

void master_revive_offers(struct master *m, struct framework *fw)
{
	struct refuse_filter **pp = &m->filters;

	fw->suppressed = false;
	/* As in Mesos, reviving clears the framework's refuse filters. */
	while (*pp) {
		struct refuse_filter *f = *pp;

		if (strcmp(f->framework_id, fw->id) == 0) {
			*pp = f->next;
			hashmap_remove_node(&m->filter_index, &f->by_key);
			free(f);
		} else {
			pp = &f->next;
		}
	}
	master_wake_allocator(m);
}

void master_suppress_offers(struct master *m, struct framework *fw)
{
	(void)m;
	fw->suppressed = true;
}

void frameworks_free(struct master *m)
{
	while (m->frameworks) {
		struct framework_entry *e = m->frameworks;

		m->frameworks = e->next;
		free(e);
	}
}
