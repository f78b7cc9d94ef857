/* intern.h - a table of shared, reference-counted, immutable strings: records that repeat
 * the same text (a task's agent hostname, the framework data of every task of one app
 * version) point at one copy instead of carrying their own. Strings that hold JSON can also
 * give their parsed value, parsed once and shared the same way.
 *
 * Not thread-safe: the owner's lock guards the table and every string taken from it. */
#ifndef PACER_INTERN_H
#define PACER_INTERN_H

#include <stddef.h>
#include <jansson.h>
#include "lib/hashmap.h"

struct intern {
	struct hashmap map;
};

/* An empty table; 0 or -ENOMEM. */
int intern_init(struct intern *t);
/* Frees the table; every string must have been put back (intern_put) by then. */
void intern_destroy(struct intern *t);
/* The shared copy of s with one more reference, or NULL when out of memory. */
const char *intern_get(struct intern *t, const char *s);
/* One more reference to s, a string intern_get returned (no hashing, no lookup). */
const char *intern_ref(const char *s);
/* Drops a reference taken with intern_get (NULL: nothing); the last one frees the copy. */
void intern_put(struct intern *t, const char *s);
/* Number of distinct strings held. */
size_t intern_count(const struct intern *t);
/* The JSON value of an interned string (parsed on the first call, kept with the string):
 * borrowed and read-only, valid while the string is referenced. NULL if s is not JSON. */
json_t *intern_json(const char *s);

#endif
