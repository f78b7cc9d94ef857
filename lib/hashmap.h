/* hashmap.h - a small intrusive hash table keyed by NUL-terminated strings, for the
 * master's indexes (tasks, agents, offers by id). The caller embeds a struct hm_node in its
 * record and points the node at a key that lives in the same record, so the table never
 * allocates per entry and never copies keys.
 *
 * Open addressing with linear probing: the slot array holds each entry's hash beside its
 * node pointer, so a probe reads the array only and touches a node (one cache miss into the
 * record) just when the full 64-bit hash matches. Inserting a new key, the commonest call
 * at a million tasks, never reads another record; growing re-slots from the array alone.
 * The slot count is a power of two and doubles when more than half full; removal shifts
 * the probe run back (no tombstones). Hashes are seeded per process, so ids chosen by a
 * tenant cannot be made to collide. Not thread-safe: the owner's lock guards it. */
#ifndef PACER_HASHMAP_H
#define PACER_HASHMAP_H

#include <stddef.h>
#include <stdint.h>

struct hm_node {
	const char *key;        /* borrowed: must stay valid and unchanged while linked */
	uint64_t hash;
};

struct hm_slot {
	uint64_t hash;
	struct hm_node *node;   /* NULL: empty */
};

struct hashmap {
	struct hm_slot *slots;
	size_t mask;            /* slot count - 1 */
	size_t count;
};

#define hm_entry(node, type, member) \
	((type *)((char *)(node) - offsetof(type, member)))

/* The table's hash of key (seeded once per process). */
uint64_t hm_hash(const char *key);
/* An empty table; returns 0 or -ENOMEM. */
int hashmap_init(struct hashmap *h);
/* Frees the slot array (not the entries). */
void hashmap_destroy(struct hashmap *h);
/* Links node under key. -EEXIST if the key is present (nothing changes); -ENOMEM when the
 * table is full and could not grow (nothing changes). */
int hashmap_put(struct hashmap *h, struct hm_node *node, const char *key);
struct hm_node *hashmap_get(const struct hashmap *h, const char *key);
/* Starts loading the slot where key's probe begins and returns key's hash: called well
 * before hashmap_put_hashed, the cache miss of a big table overlaps the work between. */
uint64_t hashmap_prefetch(const struct hashmap *h, const char *key);
/* hashmap_put with key's hash already computed (hm_hash, or hashmap_prefetch). */
int hashmap_put_hashed(struct hashmap *h, struct hm_node *node, const char *key,
		       uint64_t hash);
/* Unlinks and returns the node of key, or NULL. */
struct hm_node *hashmap_remove(struct hashmap *h, const char *key);
/* Unlinks this node (it must be linked in h). */
void hashmap_remove_node(struct hashmap *h, struct hm_node *node);
/* Unlinks every entry, keeping the slot array (for a table refilled over and over). */
void hashmap_clear(struct hashmap *h);
/* Iteration: start with *pos = 0; returns the next node, or NULL at the end. The table must
 * not change during a walk (freeing the entries themselves is fine). */
struct hm_node *hashmap_next(const struct hashmap *h, size_t *pos);
static inline size_t hashmap_count(const struct hashmap *h) { return h->count; }

#endif
