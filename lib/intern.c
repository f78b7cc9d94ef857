/* intern.c - the shared string table of intern.h: one hashmap node per distinct string,
 * the string stored in the node's own allocation, found again from the string pointer. */
#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include "lib/intern.h"

struct intern_entry {
	struct hm_node node;            /* keyed by s */
	size_t refs;
	json_t *json;                   /* parsed s, once asked for */
	bool parsed;
	char s[];
};

static struct intern_entry *entry_of(const char *s)
{
	return (struct intern_entry *)(s - offsetof(struct intern_entry, s));
}

int intern_init(struct intern *t)
{
	return hashmap_init(&t->map);
}

void intern_destroy(struct intern *t)
{
	hashmap_destroy(&t->map);
}

const char *intern_get(struct intern *t, const char *s)
{
	struct hm_node *n = hashmap_get(&t->map, s);
	struct intern_entry *e;
	size_t len;

	if (n) {
		e = hm_entry(n, struct intern_entry, node);
		e->refs++;
		return e->s;
	}
	len = strlen(s);
	e = calloc(1, sizeof(*e) + len + 1);
	if (!e)
		return NULL;
	memcpy(e->s, s, len + 1);
	e->refs = 1;
	if (hashmap_put(&t->map, &e->node, e->s) < 0) {
		free(e);
		return NULL;
	}
	return e->s;
}

const char *intern_ref(const char *s)
{
	entry_of(s)->refs++;
	return s;
}

void intern_put(struct intern *t, const char *s)
{
	struct intern_entry *e;

	if (!s)
		return;
	e = entry_of(s);
	if (--e->refs > 0)
		return;
	hashmap_remove_node(&t->map, &e->node);
	json_decref(e->json);
	free(e);
}

size_t intern_count(const struct intern *t)
{
	return hashmap_count(&t->map);
}

json_t *intern_json(const char *s)
{
	struct intern_entry *e;

	if (!s)
		return NULL;
	e = entry_of(s);
	if (!e->parsed) {
		e->json = json_loads(s, JSON_DECODE_ANY, NULL);
		e->parsed = true;
	}
	return e->json;
}
