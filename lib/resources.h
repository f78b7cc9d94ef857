/* resources.h - cpus/mem/disk/ports arithmetic, shared by agent (what it has), master
 * (what is free, offered, used) and the scheduler (what a task needs).
 *
 * Text form (agent flag):  cpus:2;mem:4096;disk:20000;ports:[31000-32000,33000-33010]
 * JSON form (protocol):    {"cpus":2,"mem":4096,"disk":20000,"ports":[[31000,32000],[33000,33010]]}
 * mem and disk are MiB. Port ranges are inclusive, kept sorted, merged and non-overlapping. */
#ifndef PACER_RESOURCES_H
#define PACER_RESOURCES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <jansson.h>

struct port_range { uint32_t begin, end; };

struct port_ranges {
	struct port_range *ranges;
	size_t count;
};

struct resources {
	double cpus;
	double mem;
	double disk;
	struct port_ranges ports;
};

/* Port range sets. All return 0 or -ENOMEM/-EINVAL. */
void port_ranges_init(struct port_ranges *p);
void port_ranges_free(struct port_ranges *p);
int port_ranges_copy(struct port_ranges *dst, const struct port_ranges *src);
int port_ranges_add_range(struct port_ranges *p, uint32_t begin, uint32_t end);
int port_ranges_add(struct port_ranges *p, const struct port_ranges *other);
int port_ranges_subtract(struct port_ranges *p, const struct port_ranges *other);
bool port_ranges_contains(const struct port_ranges *p, const struct port_ranges *other);
bool port_ranges_contains_port(const struct port_ranges *p, uint32_t port);
uint64_t port_ranges_count(const struct port_ranges *p);
/* Picks n ports (lowest first) from p into out[]; -ENOSPC if p has fewer than n. */
int port_ranges_pick(const struct port_ranges *p, size_t n, uint32_t *out);
/* "[31000-32000,33000-33010]" */
int port_ranges_parse(const char *text, struct port_ranges *out);
int port_ranges_format(const struct port_ranges *p, char *out, size_t outlen);

void resources_init(struct resources *r);
void resources_free(struct resources *r);
int resources_copy(struct resources *dst, const struct resources *src);
int resources_add(struct resources *r, const struct resources *other);
/* r -= other; scalars clamp at 0. */
int resources_subtract(struct resources *r, const struct resources *other);
/* Every scalar of need <= have (with a small epsilon) and every port of need is in have. */
bool resources_contains(const struct resources *have, const struct resources *need);
bool resources_is_empty(const struct resources *r);

/* Parses the text form. On error returns -EINVAL and writes a message naming the bad part. */
int resources_parse(const char *text, struct resources *out, char *err, size_t errlen);
json_t *resources_to_json(const struct resources *r);
int resources_from_json(json_t *j, struct resources *out, char *err, size_t errlen);

/* Attributes text form "rack:a;zone:1" -> JSON object {"rack":"a","zone":"1"}. */
json_t *attributes_parse(const char *text, char *err, size_t errlen);

#endif
