/* store.h - the master's durable state, one interface for every backend (SQLite now,
 * ZooKeeper for HA later). A document store: (kind, key) -> JSON object.
 * Every call is synchronous and durable when it returns 0. Errors are -errno style. */
#ifndef PACER_MASTER_STORE_H
#define PACER_MASTER_STORE_H

#include <jansson.h>

struct store;

struct store_ops {
	int (*put)(struct store *s, const char *kind, const char *key, json_t *value);
	int (*del)(struct store *s, const char *kind, const char *key);
	/* *out is a new reference, or NULL with return -ENOENT. */
	int (*get)(struct store *s, const char *kind, const char *key, json_t **out);
	/* Calls fn for every object of kind, in key order; stops early if fn returns non-zero
	 * (and returns that value). value is borrowed: json_incref it to keep it. */
	int (*scan)(struct store *s, const char *kind,
		    int (*fn)(const char *key, json_t *value, void *arg), void *arg);
	/* Group several writes into one durable step (nesting is not supported). */
	int (*begin)(struct store *s);
	int (*commit)(struct store *s);
	void (*close)(struct store *s);
};

struct store {
	const struct store_ops *ops;
};

/* Opens (creating if needed) <dir>/master.db. */
int store_sqlite_open(const char *dir, struct store **out, char *err, size_t errlen);

static inline int store_put(struct store *s, const char *k, const char *key, json_t *v)
{ return s->ops->put(s, k, key, v); }
static inline int store_del(struct store *s, const char *k, const char *key)
{ return s->ops->del(s, k, key); }
static inline int store_get(struct store *s, const char *k, const char *key, json_t **out)
{ return s->ops->get(s, k, key, out); }
static inline int store_scan(struct store *s, const char *k,
			     int (*fn)(const char *, json_t *, void *), void *arg)
{ return s->ops->scan(s, k, fn, arg); }
static inline int store_begin(struct store *s) { return s->ops->begin(s); }
static inline int store_commit(struct store *s) { return s->ops->commit(s); }
static inline void store_close(struct store *s) { if (s) s->ops->close(s); }

#endif
