/* resources.c - cpus/mem/disk/port-range arithmetic and the text and JSON forms of
 * resources (see resources.h). Port range sets are kept sorted and merged, so every
 * operation is a linear walk. */
#include "lib/resources.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SCALAR_EPSILON 1e-6

void port_ranges_init(struct port_ranges *p)
{
	p->ranges = NULL;
	p->count = 0;
}

void port_ranges_free(struct port_ranges *p)
{
	free(p->ranges);
	port_ranges_init(p);
}

int port_ranges_copy(struct port_ranges *dst, const struct port_ranges *src)
{
	struct port_range *r = NULL;

	if (src->count) {
		r = malloc(src->count * sizeof(*r));
		if (!r)
			return -ENOMEM;
		memcpy(r, src->ranges, src->count * sizeof(*r));
	}
	free(dst->ranges);
	dst->ranges = r;
	dst->count = src->count;
	return 0;
}

/* Sorts and merges overlapping or adjacent ranges in place. */
static int range_cmp(const void *a, const void *b)
{
	const struct port_range *x = a, *y = b;

	return x->begin < y->begin ? -1 : x->begin > y->begin;
}

static void normalize(struct port_ranges *p)
{
	size_t out = 0;

	if (p->count < 2)
		return;
	qsort(p->ranges, p->count, sizeof(p->ranges[0]), range_cmp);
	for (size_t i = 1; i < p->count; i++) {
		struct port_range *last = &p->ranges[out];

		if ((uint64_t)p->ranges[i].begin <= (uint64_t)last->end + 1) {
			if (p->ranges[i].end > last->end)
				last->end = p->ranges[i].end;
		} else {
			p->ranges[++out] = p->ranges[i];
		}
	}
	p->count = out + 1;
}

int port_ranges_add_range(struct port_ranges *p, uint32_t begin, uint32_t end)
{
	struct port_range *grown;

	if (begin > end || end > 65535)
		return -EINVAL;
	grown = realloc(p->ranges, (p->count + 1) * sizeof(*grown));
	if (!grown)
		return -ENOMEM;
	p->ranges = grown;
	p->ranges[p->count].begin = begin;
	p->ranges[p->count].end = end;
	p->count++;
	normalize(p);
	return 0;
}

int port_ranges_add(struct port_ranges *p, const struct port_ranges *other)
{
	for (size_t i = 0; i < other->count; i++) {
		int rc = port_ranges_add_range(p, other->ranges[i].begin, other->ranges[i].end);

		if (rc < 0)
			return rc;
	}
	return 0;
}

int port_ranges_subtract(struct port_ranges *p, const struct port_ranges *other)
{
	struct port_ranges out;

	port_ranges_init(&out);
	for (size_t i = 0; i < p->count; i++) {
		uint64_t begin = p->ranges[i].begin, end = p->ranges[i].end;

		for (size_t j = 0; j < other->count && begin <= end; j++) {
			const struct port_range *o = &other->ranges[j];

			if (o->end < begin || o->begin > end)
				continue;
			if (o->begin > begin) {
				int rc = port_ranges_add_range(&out, (uint32_t)begin, o->begin - 1);

				if (rc < 0) {
					port_ranges_free(&out);
					return rc;
				}
			}
			begin = (uint64_t)o->end + 1;
		}
		if (begin <= end) {
			int rc = port_ranges_add_range(&out, (uint32_t)begin, (uint32_t)end);

			if (rc < 0) {
				port_ranges_free(&out);
				return rc;
			}
		}
	}
	port_ranges_free(p);
	*p = out;
	return 0;
}

bool port_ranges_contains_port(const struct port_ranges *p, uint32_t port)
{
	for (size_t i = 0; i < p->count; i++)
		if (port >= p->ranges[i].begin && port <= p->ranges[i].end)
			return true;
	return false;
}

bool port_ranges_contains(const struct port_ranges *p, const struct port_ranges *other)
{
	for (size_t j = 0; j < other->count; j++) {
		bool inside = false;

		for (size_t i = 0; i < p->count && !inside; i++)
			inside = other->ranges[j].begin >= p->ranges[i].begin &&
				 other->ranges[j].end <= p->ranges[i].end;
		if (!inside)
			return false;
	}
	return true;
}

uint64_t port_ranges_count(const struct port_ranges *p)
{
	uint64_t n = 0;

	for (size_t i = 0; i < p->count; i++)
		n += (uint64_t)p->ranges[i].end - p->ranges[i].begin + 1;
	return n;
}

int port_ranges_pick(const struct port_ranges *p, size_t n, uint32_t *out)
{
	size_t got = 0;

	for (size_t i = 0; i < p->count && got < n; i++)
		for (uint64_t port = p->ranges[i].begin; port <= p->ranges[i].end && got < n; port++)
			out[got++] = (uint32_t)port;
	return got == n ? 0 : -ENOSPC;
}

static const char *skip_space(const char *s)
{
	while (isspace((unsigned char)*s))
		s++;
	return s;
}

static int parse_port(const char **s, uint32_t *out)
{
	char *end;
	unsigned long v;

	*s = skip_space(*s);
	if (!isdigit((unsigned char)**s))
		return -EINVAL;
	errno = 0;
	v = strtoul(*s, &end, 10);
	if (errno || v > 65535)
		return -EINVAL;
	*out = (uint32_t)v;
	*s = skip_space(end);
	return 0;
}

int port_ranges_parse(const char *text, struct port_ranges *out)
{
	const char *s = skip_space(text);
	struct port_ranges r;

	port_ranges_init(&r);
	if (*s++ != '[')
		return -EINVAL;
	s = skip_space(s);
	if (*s == ']')
		goto done;
	for (;;) {
		uint32_t begin, end;

		if (parse_port(&s, &begin) < 0)
			goto bad;
		end = begin;
		if (*s == '-') {
			s++;
			if (parse_port(&s, &end) < 0)
				goto bad;
		}
		if (port_ranges_add_range(&r, begin, end) < 0)
			goto bad;
		if (*s == ',') {
			s++;
			continue;
		}
		if (*s == ']')
			break;
		goto bad;
	}
done:
	if (*skip_space(s + 1) != '\0')
		goto bad;
	port_ranges_free(out);
	*out = r;
	return 0;
bad:
	port_ranges_free(&r);
	return -EINVAL;
}

int port_ranges_format(const struct port_ranges *p, char *out, size_t outlen)
{
	size_t used = 0;
	int n = snprintf(out, outlen, "[");

	if (n < 0 || (size_t)n >= outlen)
		return -ENOSPC;
	used = (size_t)n;
	for (size_t i = 0; i < p->count; i++) {
		n = snprintf(out + used, outlen - used, "%s%u-%u", i ? "," : "",
			     p->ranges[i].begin, p->ranges[i].end);
		if (n < 0 || (size_t)n >= outlen - used)
			return -ENOSPC;
		used += (size_t)n;
	}
	n = snprintf(out + used, outlen - used, "]");
	return n < 0 || (size_t)n >= outlen - used ? -ENOSPC : 0;
}

void resources_init(struct resources *r)
{
	r->cpus = r->mem = r->disk = 0;
	port_ranges_init(&r->ports);
}

void resources_free(struct resources *r)
{
	port_ranges_free(&r->ports);
	r->cpus = r->mem = r->disk = 0;
}

int resources_copy(struct resources *dst, const struct resources *src)
{
	int rc = port_ranges_copy(&dst->ports, &src->ports);

	if (rc < 0)
		return rc;
	dst->cpus = src->cpus;
	dst->mem = src->mem;
	dst->disk = src->disk;
	return 0;
}

int resources_add(struct resources *r, const struct resources *other)
{
	r->cpus += other->cpus;
	r->mem += other->mem;
	r->disk += other->disk;
	return port_ranges_add(&r->ports, &other->ports);
}

static double clamp_sub(double a, double b)
{
	double v = a - b;

	return v < SCALAR_EPSILON ? 0 : v;
}

int resources_subtract(struct resources *r, const struct resources *other)
{
	r->cpus = clamp_sub(r->cpus, other->cpus);
	r->mem = clamp_sub(r->mem, other->mem);
	r->disk = clamp_sub(r->disk, other->disk);
	return port_ranges_subtract(&r->ports, &other->ports);
}

bool resources_contains(const struct resources *have, const struct resources *need)
{
	return need->cpus <= have->cpus + SCALAR_EPSILON &&
	       need->mem <= have->mem + SCALAR_EPSILON &&
	       need->disk <= have->disk + SCALAR_EPSILON &&
	       port_ranges_contains(&have->ports, &need->ports);
}

bool resources_is_empty(const struct resources *r)
{
	return r->cpus < SCALAR_EPSILON && r->mem < SCALAR_EPSILON &&
	       r->disk < SCALAR_EPSILON && r->ports.count == 0;
}

static int parse_scalar(const char *name, const char *value, double *out, char *err,
			size_t errlen)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(value, &end);
	if (errno || end == value || *skip_space(end) != '\0' || v < 0 || v != v) {
		snprintf(err, errlen, "resource '%s': '%s' is not a non-negative number", name,
			 value);
		return -EINVAL;
	}
	*out = v;
	return 0;
}

int resources_parse(const char *text, struct resources *out, char *err, size_t errlen)
{
	char *copy = strdup(text), *save = NULL, *item;
	struct resources r;
	int rc = 0;

	if (!copy)
		return -ENOMEM;
	resources_init(&r);
	for (item = strtok_r(copy, ";", &save); item; item = strtok_r(NULL, ";", &save)) {
		char *colon = strchr(item, ':');
		char *name = (char *)skip_space(item), *value;

		if (*name == '\0')
			continue;
		if (!colon) {
			snprintf(err, errlen, "resource '%s': expected name:value", name);
			rc = -EINVAL;
			break;
		}
		*colon = '\0';
		value = colon + 1;
		for (char *e = colon - 1; e >= name && isspace((unsigned char)*e); e--)
			*e = '\0';
		if (strcmp(name, "cpus") == 0)
			rc = parse_scalar(name, value, &r.cpus, err, errlen);
		else if (strcmp(name, "mem") == 0)
			rc = parse_scalar(name, value, &r.mem, err, errlen);
		else if (strcmp(name, "disk") == 0)
			rc = parse_scalar(name, value, &r.disk, err, errlen);
		else if (strcmp(name, "ports") == 0) {
			rc = port_ranges_parse(value, &r.ports);
			if (rc < 0)
				snprintf(err, errlen,
					 "resource 'ports': '%s' is not a list of ranges like [31000-32000]",
					 value);
		} else {
			snprintf(err, errlen, "unknown resource '%s' (known: cpus, mem, disk, ports)",
				 name);
			rc = -EINVAL;
		}
		if (rc < 0)
			break;
	}
	free(copy);
	if (rc < 0) {
		resources_free(&r);
		return rc;
	}
	resources_free(out);
	*out = r;
	return 0;
}

json_t *resources_to_json(const struct resources *r)
{
	json_t *ports = json_array();

	for (size_t i = 0; i < r->ports.count; i++)
		json_array_append_new(ports, json_pack("[II]", (json_int_t)r->ports.ranges[i].begin,
							(json_int_t)r->ports.ranges[i].end));
	return json_pack("{s:f,s:f,s:f,s:o}", "cpus", r->cpus, "mem", r->mem, "disk", r->disk,
			 "ports", ports);
}

static int json_scalar(json_t *j, const char *name, double *out, char *err, size_t errlen)
{
	json_t *v = json_object_get(j, name);

	if (!v) {
		*out = 0;
		return 0;
	}
	if (!json_is_number(v) || json_number_value(v) < 0) {
		snprintf(err, errlen, "resources.%s must be a non-negative number", name);
		return -EINVAL;
	}
	*out = json_number_value(v);
	return 0;
}

int resources_from_json(json_t *j, struct resources *out, char *err, size_t errlen)
{
	struct resources r;
	json_t *ports, *range;
	size_t i;

	if (!json_is_object(j)) {
		snprintf(err, errlen, "resources must be an object");
		return -EINVAL;
	}
	resources_init(&r);
	if (json_scalar(j, "cpus", &r.cpus, err, errlen) < 0 ||
	    json_scalar(j, "mem", &r.mem, err, errlen) < 0 ||
	    json_scalar(j, "disk", &r.disk, err, errlen) < 0)
		return -EINVAL;
	ports = json_object_get(j, "ports");
	if (ports && !json_is_array(ports))
		goto bad_ports;
	json_array_foreach(ports, i, range) {
		json_int_t b, e;

		if (json_unpack(range, "[II]", &b, &e) < 0 || b < 0 || e < b || e > 65535)
			goto bad_ports;
		if (port_ranges_add_range(&r.ports, (uint32_t)b, (uint32_t)e) < 0)
			goto bad_ports;
	}
	resources_free(out);
	*out = r;
	return 0;
bad_ports:
	snprintf(err, errlen, "resources.ports must be a list of [begin,end] pairs within 0-65535");
	resources_free(&r);
	return -EINVAL;
}

json_t *attributes_parse(const char *text, char *err, size_t errlen)
{
	char *copy = strdup(text), *save = NULL, *item;
	json_t *attrs = json_object();

	if (!copy || !attrs)
		goto fail;
	for (item = strtok_r(copy, ";", &save); item; item = strtok_r(NULL, ";", &save)) {
		char *colon = strchr(item, ':');

		if (*skip_space(item) == '\0')
			continue;
		if (!colon || colon == item || colon[1] == '\0') {
			snprintf(err, errlen, "attribute '%s': expected name:value", item);
			goto fail;
		}
		*colon = '\0';
		json_object_set_new(attrs, item, json_string(colon + 1));
	}
	free(copy);
	return attrs;
fail:
	free(copy);
	json_decref(attrs);
	return NULL;
}
