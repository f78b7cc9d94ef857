/* json_text.h - writing JSON text directly into a growing buffer, for records written often
 * (the master's task records): cheaper than building a jansson tree and printing it, and
 * the text is a fraction of the tree's memory while it waits to be stored.
 *
 * The caller writes the structure ("{", "}", "[", "]" with jt_raw); jt_key puts the comma
 * before a member when one is needed. Strings are escaped and always valid UTF-8 (a byte
 * that is not part of a valid sequence becomes '?'). Errors (out of memory) are sticky:
 * jt_take then returns NULL. */
#ifndef PACER_JSON_TEXT_H
#define PACER_JSON_TEXT_H

#include <stdbool.h>
#include <stddef.h>
#include <jansson.h>

struct jtext {
	char *s;
	size_t len, cap;
	bool failed;
};

void jt_init(struct jtext *b);
/* Makes room for n bytes up front (a record of known typical size: one allocation). */
void jt_reserve(struct jtext *b, size_t n);
/* Appends s as it is (structure, or JSON text made elsewhere). */
void jt_raw(struct jtext *b, const char *s);
/* n bytes of text as they are (JSON the caller wrote). */
void jt_raw_n(struct jtext *b, const char *s, size_t n);
/* A literal's bytes, its length known at compile time: JT_LIT(b, ",\"state\":") writes
 * a separator and a key with one copy (records written per task). */
#define JT_LIT(b, lit) jt_raw_n((b), "" lit, sizeof(lit) - 1)     /* "" lit: literals only */
/* Appends ',' unless at the start of an object or array, then "key": (key is escaped). */
void jt_key(struct jtext *b, const char *key);
/* Appends ',' unless at the start of an object or array (between array elements). */
void jt_sep(struct jtext *b);
/* Appends s as a JSON string (NULL: null). */
void jt_str(struct jtext *b, const char *s);
/* Appends a number that reads back as the same double (not finite: 0). */
void jt_num(struct jtext *b, double v);
void jt_int(struct jtext *b, long long v);
void jt_bool(struct jtext *b, bool v);
/* The text (the caller frees it), or NULL if a step failed; b is empty afterwards. */
char *jt_take(struct jtext *b);
void jt_free(struct jtext *b);

/* A jansson value as compact JSON text in one allocation of its exact size (json_dumps
 * grows its buffer by doubling; at large sizes each step shows in profiles). NULL on
 * failure; *len is the text's length. */
char *json_dump_exact(const json_t *value, size_t *len);

#endif
