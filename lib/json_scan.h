/* json_scan.h - the core of the master's streaming JSON readers (master/usage_wire.c,
 * master/status_wire.c): one pass of recursive descent over a body, no JSON tree. A reader
 * walks the document with js_object/js_array and a callback per member or element, reads
 * the values it wants with js_value and skips the rest of any shape.
 *
 * Strict RFC 8259 as jansson's json_loadb checks it: strings must be valid UTF-8 with valid
 * escapes (no \u0000, surrogates in pairs), an integer (no fraction, no exponent) must fit
 * in int64, a real must not overflow to infinity. Two differences, left to the reader to
 * document: nesting deeper than the scanner's max_depth is refused (jansson allows 2048),
 * and repeated keys are the reader's to refuse (only it knows which keys it reads).
 *
 * Errors: the first one wins; it is a message and a position (js_where: "... at line L
 * column C"). Running out of memory is an error of its own (js_nomem). */
#ifndef PACER_JSON_SCAN_H
#define PACER_JSON_SCAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Object keys are decoded into a buffer of this size: a longer key (in its decoded form)
 * reaches the member callback as NULL, unknown to any reader. */
#define JS_KEY_MAX 32

enum js_type { JS_STRING, JS_INT, JS_REAL, JS_TRUE, JS_FALSE, JS_NULL, JS_OBJECT, JS_ARRAY };

struct js_value {
	enum js_type type;
	int64_t i;                  /* JS_INT */
	double d;                   /* JS_INT (converted) and JS_REAL */
	const char *s;              /* JS_STRING, when kept: NUL-terminated, in the arena */
	size_t slen;
};

struct js_scan {
	const char *start, *p, *end;
	char *arena;                /* len + 1 bytes: room for every string of the body decoded */
	size_t used;
	int depth, max_depth;
	bool nomem;
	const char *err;            /* the first error, and where */
	const char *err_at;
};

/* member() is called with js->p at the member's value and must consume it (js_value,
 * js_object, js_array or js_skip). key is NULL when longer than JS_KEY_MAX - 1 bytes. */
typedef int (*js_member_fn)(struct js_scan *js, const char *key, size_t klen, void *arg);
/* element() is called with js->p at the element and must consume it. */
typedef int (*js_element_fn)(struct js_scan *js, size_t idx, void *arg);

/* Starts a scan of body[0..len). arena: len + 1 bytes, or NULL if no string is kept. */
void js_init(struct js_scan *js, const char *body, size_t len, char *arena, int max_depth);
/* Records an error at js->p (unless one was recorded already); returns -EINVAL. */
int js_fail(struct js_scan *js, const char *what);
/* Records running out of memory; returns -ENOMEM. */
int js_nomem(struct js_scan *js);
/* Skips JSON whitespace. */
void js_ws(struct js_scan *js);
/* True when the next byte (after whitespace) is c. */
bool js_at(struct js_scan *js, char c);

/* Any value (after whitespace) into v; keep: a string is decoded into the arena, else it
 * is only validated. An object or array is skipped (v->type says which it was). */
int js_value(struct js_scan *js, struct js_value *v, bool keep);
/* Skips any value. */
int js_skip(struct js_scan *js);
/* An object at js->p ('{'): member() for each member, in order. */
int js_object(struct js_scan *js, js_member_fn member, void *arg);
/* An array at js->p ('['): element() for each element, in order. */
int js_array(struct js_scan *js, js_element_fn element, void *arg);

/* The top level of a body: whitespace, then (with js->p at the first byte) top(), then
 * nothing but whitespace. 0, or -EINVAL/-ENOMEM as recorded. An empty body is an error
 * of its own: -ENODATA (nothing recorded). */
int js_document(struct js_scan *js, int (*top)(struct js_scan *js, void *arg), void *arg);
/* The recorded error as "<what> at line L column C". */
void js_where(const struct js_scan *js, char *err, size_t errlen);

/* A reader's own keys: the index of key in keys[0..n), -1 if absent (or key NULL). */
struct js_key {
	const char *name;
	size_t len;
};
#define JS_KEY(s) { s, sizeof(s) - 1 }
int js_key_index(const struct js_key *keys, int n, const char *key, size_t klen);

/* A whole request body whose document must be an object, as the agent routes read one:
 * member() for each of its members (strings decoded into arena, len + 1 bytes). 0: it was
 * an object. -EINVAL: *syntax true when it is not JSON (err: "... at line L column C", or
 * that the body is empty), false when it is JSON but not an object (err says so; an array
 * is read through first). -ENOMEM. */
int js_object_body(const char *body, size_t len, char *arena, int max_depth,
		   js_member_fn member, void *arg, bool *syntax, char *err, size_t errlen);

#endif
