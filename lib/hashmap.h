/* hashmap.h - a small intrusive hash table keyed by NUL-terminated strings, for the
 * master's indexes (tasks, agents, offers by id). The caller embeds a struct hm_node in its
 * record and points the node at a key that lives in the same record, so the table never
 * allocates per entry and never copies keys: lookups cost one hash and a short chain walk.
 *
 * Chained buckets, a power-of-two bucket count that doubles when the table is fuller than
 * one entry per bucket (rehashing moves nodes, never frees them). Not thread-safe: the
 * owner's lock guards it. */
#ifndef PACER_HASHMAP_H
#define PACER_HASHMAP_H

#include <stddef.h>
#include <stdint.h>

struct hm_node {
	struct hm_node *next;
	const char *key;        /* borrowed: must stay valid and unchanged while linked */
	uint64_t hash;
};

struct hashmap {
	struct hm_node **buckets;
	size_t mask;            /* bucket count - 1 */
	size_t count;
};

#define hm_entry(node, type, member) \
	((type *)((char *)(node) - offsetof(type, member)))

uint64_t hm_hash(const char *key);
/* An empty table; returns 0 or -ENOMEM. */
int hashmap_init(struct hashmap *h);
/* Frees the bucket array (not the entries). */
void hashmap_destroy(struct hashmap *h);
/* Links node under key. -EEXIST if the key is present (nothing changes); -ENOMEM only when
 * growing failed, and then the node is linked anyway (the table just stays fuller). */
int hashmap_put(struct hashmap *h, struct hm_node *node, const char *key);
struct hm_node *hashmap_get(const struct hashmap *h, const char *key);
/* Unlinks and returns the node of key, or NULL. */
struct hm_node *hashmap_remove(struct hashmap *h, const char *key);
/* Unlinks this node (it must be linked in h). */
void hashmap_remove_node(struct hashmap *h, struct hm_node *node);
static inline size_t hashmap_count(const struct hashmap *h) { return h->count; }

#endif
