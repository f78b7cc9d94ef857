/* hashmap.c - the intrusive string-keyed hash table of hashmap.h: FNV-1a hashes, chained
 * buckets, doubling at load factor 1. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include "lib/hashmap.h"

#define HM_MIN_BUCKETS 16

uint64_t hm_hash(const char *key)
{
	uint64_t h = 0xcbf29ce484222325ULL;

	for (const unsigned char *p = (const unsigned char *)key; *p; p++) {
		h ^= *p;
		h *= 0x100000001b3ULL;
	}
	return h ^ (h >> 29);
}

int hashmap_init(struct hashmap *h)
{
	h->buckets = calloc(HM_MIN_BUCKETS, sizeof(*h->buckets));
	h->mask = HM_MIN_BUCKETS - 1;
	h->count = 0;
	return h->buckets ? 0 : -ENOMEM;
}

void hashmap_destroy(struct hashmap *h)
{
	free(h->buckets);
	h->buckets = NULL;
	h->mask = 0;
	h->count = 0;
}

static int grow(struct hashmap *h)
{
	size_t n = (h->mask + 1) * 2;
	struct hm_node **b = calloc(n, sizeof(*b));

	if (!b)
		return -ENOMEM;
	for (size_t i = 0; i <= h->mask; i++) {
		struct hm_node *node = h->buckets[i], *next;

		for (; node; node = next) {
			next = node->next;
			node->next = b[node->hash & (n - 1)];
			b[node->hash & (n - 1)] = node;
		}
	}
	free(h->buckets);
	h->buckets = b;
	h->mask = n - 1;
	return 0;
}

static struct hm_node **slot(const struct hashmap *h, const char *key, uint64_t hash)
{
	struct hm_node **pp = &h->buckets[hash & h->mask];

	while (*pp && ((*pp)->hash != hash || strcmp((*pp)->key, key) != 0))
		pp = &(*pp)->next;
	return pp;
}

int hashmap_put(struct hashmap *h, struct hm_node *node, const char *key)
{
	uint64_t hash = hm_hash(key);
	struct hm_node **pp;
	int rc = 0;

	if (!h->buckets && hashmap_init(h) < 0)
		return -ENOMEM;
	pp = slot(h, key, hash);
	if (*pp)
		return -EEXIST;
	node->key = key;
	node->hash = hash;
	node->next = NULL;
	*pp = node;
	h->count++;
	if (h->count > h->mask + 1)
		rc = grow(h);
	return rc;
}

struct hm_node *hashmap_get(const struct hashmap *h, const char *key)
{
	if (!h->buckets)
		return NULL;
	return *slot(h, key, hm_hash(key));
}

struct hm_node *hashmap_remove(struct hashmap *h, const char *key)
{
	struct hm_node **pp, *node;

	if (!h->buckets)
		return NULL;
	pp = slot(h, key, hm_hash(key));
	node = *pp;
	if (node) {
		*pp = node->next;
		node->next = NULL;
		h->count--;
	}
	return node;
}

void hashmap_remove_node(struct hashmap *h, struct hm_node *node)
{
	struct hm_node **pp;

	if (!h->buckets)
		return;
	pp = &h->buckets[node->hash & h->mask];
	while (*pp && *pp != node)
		pp = &(*pp)->next;
	if (*pp) {
		*pp = node->next;
		node->next = NULL;
		h->count--;
	}
}
