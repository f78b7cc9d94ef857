/* hashmap.c - the intrusive string-keyed hash table of hashmap.h: a seeded multiply-mix
 * hash over 8-byte words, linear probing on (hash, node) slots, at most half full,
 * backward-shift removal. */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include "lib/hashmap.h"
#include "lib/util.h"

#define HM_MIN_SLOTS 16

static uint64_t hash_seed;
static pthread_once_t seed_once = PTHREAD_ONCE_INIT;

static void seed_init(void)
{
	uint64_t s = 0;

	if (getrandom(&s, sizeof(s), GRND_NONBLOCK) != (ssize_t)sizeof(s)) {
		struct timespec ts;

		clock_gettime(CLOCK_MONOTONIC, &ts);     /* no entropy yet: still varies */
		s = (uint64_t)ts.tv_nsec * 0x9e3779b97f4a7c15ULL ^ (uint64_t)ts.tv_sec;
	}
	hash_seed = s | 1;
}

/* 64x64 -> 128-bit multiply, folded: every input bit reaches every output bit. */
static inline uint64_t mix(uint64_t a, uint64_t b)
{
	__uint128_t r = (__uint128_t)a * b;

	return (uint64_t)r ^ (uint64_t)(r >> 64);
}

uint64_t hm_hash(const char *key)
{
	const unsigned char *p = (const unsigned char *)key;
	size_t len = strlen(key);
	uint64_t h, w = 0;

	pthread_once(&seed_once, seed_init);
	h = hash_seed ^ (len * 0x9e3779b97f4a7c15ULL);
	for (; len >= 8; p += 8, len -= 8) {
		memcpy(&w, p, 8);
		h = mix(h ^ w, 0xbf58476d1ce4e5b9ULL);
	}
	w = 0;
	memcpy(&w, p, len);
	return mix(h ^ w ^ 0xff51afd7ed558ccdULL, 0x94d049bb133111ebULL);
}

/* Sets h's slots to n empty ones (h is unchanged on failure). */
static int alloc_slots(struct hashmap *h, size_t n)
{
	struct hm_slot *s = calloc_written(n, sizeof(*s));  /* probed before written */

	if (!s)
		return -ENOMEM;
	h->slots = s;
	h->mask = n - 1;
	return 0;
}

int hashmap_init(struct hashmap *h)
{
	h->count = 0;
	h->slots = NULL;
	h->mask = 0;
	return alloc_slots(h, HM_MIN_SLOTS);
}

void hashmap_destroy(struct hashmap *h)
{
	free(h->slots);
	h->slots = NULL;
	h->mask = 0;
	h->count = 0;
}

/* Re-slots every entry into twice as many slots, reading the old array only. */
static int grow(struct hashmap *h)
{
	struct hm_slot *old = h->slots;
	size_t old_n = h->mask + 1;

	if (alloc_slots(h, old_n * 2) < 0)
		return -ENOMEM;
	for (size_t i = 0; i < old_n; i++) {
		size_t j;

		if (!old[i].node)
			continue;
		for (j = old[i].hash & h->mask; h->slots[j].node; j = (j + 1) & h->mask)
			;
		h->slots[j] = old[i];
	}
	free(old);
	return 0;
}

/* The slot holding key, or the empty slot that ends its probe run. */
static size_t find(const struct hashmap *h, const char *key, uint64_t hash)
{
	size_t i = hash & h->mask;

	for (;; i = (i + 1) & h->mask) {
		const struct hm_slot *s = &h->slots[i];

		if (!s->node || (s->hash == hash && strcmp(s->node->key, key) == 0))
			return i;
	}
}

uint64_t hashmap_prefetch(const struct hashmap *h, const char *key)
{
	uint64_t hash = hm_hash(key);

	if (h->slots)
		__builtin_prefetch(&h->slots[hash & h->mask], 1);
	return hash;
}

int hashmap_put(struct hashmap *h, struct hm_node *node, const char *key)
{
	return hashmap_put_hashed(h, node, key, hm_hash(key));
}

int hashmap_put_hashed(struct hashmap *h, struct hm_node *node, const char *key,
		       uint64_t hash)
{
	size_t i;

	if (!h->slots && hashmap_init(h) < 0)
		return -ENOMEM;
	i = find(h, key, hash);
	if (h->slots[i].node)
		return -EEXIST;
	if ((h->count + 1) * 2 > h->mask + 1) {
		if (grow(h) < 0 && h->count + 1 > h->mask)
			return -ENOMEM;         /* keep one slot empty: probes must end */
		i = find(h, key, hash);
	}
	node->key = key;
	node->hash = hash;
	h->slots[i] = (struct hm_slot){ hash, node };
	h->count++;
	return 0;
}

struct hm_node *hashmap_get(const struct hashmap *h, const char *key)
{
	if (!h->slots || !h->count)
		return NULL;
	return h->slots[find(h, key, hm_hash(key))].node;
}

/* Empties slot i and pulls later entries of the run back over it, so every entry stays
 * reachable from its home slot without a gap. */
static void remove_at(struct hashmap *h, size_t i)
{
	size_t j = i;

	for (;;) {
		j = (j + 1) & h->mask;
		if (!h->slots[j].node)
			break;
		size_t home = h->slots[j].hash & h->mask;

		/* j's entry may move to i only if i lies on its path from home to j. */
		if (((j - home) & h->mask) >= ((j - i) & h->mask)) {
			h->slots[i] = h->slots[j];
			i = j;
		}
	}
	h->slots[i] = (struct hm_slot){ 0, NULL };
	h->count--;
}

struct hm_node *hashmap_remove(struct hashmap *h, const char *key)
{
	struct hm_node *node;
	size_t i;

	if (!h->slots || !h->count)
		return NULL;
	i = find(h, key, hm_hash(key));
	node = h->slots[i].node;
	if (node)
		remove_at(h, i);
	return node;
}

void hashmap_remove_node(struct hashmap *h, struct hm_node *node)
{
	if (!h->slots || !h->count)
		return;
	for (size_t i = node->hash & h->mask; h->slots[i].node; i = (i + 1) & h->mask) {
		if (h->slots[i].node == node) {
			remove_at(h, i);
			return;
		}
	}
}

struct hm_node *hashmap_next(const struct hashmap *h, size_t *pos)
{
	for (; h->slots && *pos <= h->mask; (*pos)++)
		if (h->slots[*pos].node)
			return h->slots[(*pos)++].node;
	return NULL;
}

void hashmap_clear(struct hashmap *h)
{
	if (h->slots && h->count)
		memset(h->slots, 0, (h->mask + 1) * sizeof(*h->slots));
	h->count = 0;
}
