/* constraints.c - Marathon's placement constraints (Constraints.scala semantics):
 *   UNIQUE      at most one task per value of the field
 *   CLUSTER     every task on the value given (no value: on the value of the tasks
 *               already placed)
 *   GROUP_BY    spread evenly: a value may take a task when it is new or holds the fewest
 *               tasks; with a count N, new values are preferred until N values are used
 *   LIKE/UNLIKE the value fully matches / does not match the regular expression (an agent
 *               without the attribute fails LIKE and passes UNLIKE)
 *   MAX_PER     at most N tasks per value
 * A missing attribute fails every operator but UNLIKE. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "master/marathon/app_validate.h"
#include "master/marathon/constraints.h"

static const char *const op_names[] = {
	[C_UNIQUE] = "UNIQUE", [C_CLUSTER] = "CLUSTER", [C_GROUP_BY] = "GROUP_BY",
	[C_LIKE] = "LIKE", [C_UNLIKE] = "UNLIKE", [C_MAX_PER] = "MAX_PER",
};

const char *constraint_op_name(enum constraint_op op)
{
	return op_names[op];
}

static int op_parse(const char *s)
{
	for (size_t i = 0; s && i < sizeof(op_names) / sizeof(op_names[0]); i++)
		if (strcmp(op_names[i], s) == 0)
			return (int)i;
	return -1;
}

/* A non-negative decimal integer that fits in an int. */
static bool parse_count(const char *s, long *out)
{
	char *end;
	long v;

	if (!s || !*s || *s == '-' || *s == '+' || *s == ' ')
		return false;
	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || *end || v < 0 || v > 1000000000)
		return false;
	*out = v;
	return true;
}

/* Marathon's LIKE/UNLIKE match the whole value. */
static int compile_full(const char *pattern, regex_t *re, char *err, size_t errlen)
{
	size_t n = strlen(pattern) + 5;
	char *anchored = malloc(n);
	int rc;

	if (!anchored)
		return -ENOMEM;
	snprintf(anchored, n, "^(%s)$", pattern);
	rc = regcomp(re, anchored, REG_EXTENDED | REG_NOSUB);
	free(anchored);
	if (rc) {
		if (err)
			regerror(rc, re, err, errlen);
		regfree(re);
		return -EINVAL;
	}
	return 0;
}

static void validate_one(json_t *c, size_t i, json_t *details)
{
	char path[48], err[128];
	const char *field, *value;
	int op;
	long n;
	regex_t re;

	snprintf(path, sizeof(path), "/constraints(%zu)", i);
	if (!json_is_array(c) || json_array_size(c) < 2 || json_array_size(c) > 3) {
		validation_add(details, path, "Each constraint must have either 2 or 3 fields");
		return;
	}
	for (size_t k = 0; k < json_array_size(c); k++) {
		if (!json_is_string(json_array_get(c, k))) {
			validation_add(details, path, "error.expected.jsstring");
			return;
		}
	}
	field = json_string_value(json_array_get(c, 0));
	op = op_parse(json_string_value(json_array_get(c, 1)));
	value = json_string_value(json_array_get(c, 2));
	if (!field[0])
		validation_add(details, path, "Missing field");
	if (op < 0) {
		validation_add(details, path,
			       "Constraint operator must be one of the following: "
			       "[UNIQUE, CLUSTER, GROUP_BY, LIKE, UNLIKE, MAX_PER]");
		return;
	}
	switch ((enum constraint_op)op) {
	case C_UNIQUE:
		if (value)
			validation_add(details, path, "Value specified but not used");
		break;
	case C_CLUSTER:
		if (value && !value[0])
			validation_add(details, path, "Missing value");
		break;
	case C_GROUP_BY:
		if (value && !parse_count(value, &n))
			validation_add(details, path, "Value was specified but is not a number");
		break;
	case C_MAX_PER:
		if (!value)
			validation_add(details, path, "Missing value");
		else if (!parse_count(value, &n))
			validation_add(details, path, "Value was specified but is not a number");
		break;
	case C_LIKE:
	case C_UNLIKE:
		if (!value) {
			validation_add(details, path, "A regular expression value must be provided");
			break;
		}
		if (compile_full(value, &re, err, sizeof(err)) == 0)
			regfree(&re);
		else
			validation_add(details, path, "'%s' is not a valid regular expression (%s)",
				       value, err);
		break;
	}
}

void constraints_validate(json_t *v, json_t *details)
{
	size_t i;
	json_t *c;

	if (!json_is_array(v)) {
		validation_add(details, "/constraints", "error.expected.jsarray");
		return;
	}
	json_array_foreach(v, i, c)
		validate_one(c, i, details);
}

void constraints_free(struct constraint_set *cs)
{
	for (size_t i = 0; i < cs->n; i++) {
		free(cs->v[i].field);
		free(cs->v[i].value);
		if (cs->v[i].has_re)
			regfree(&cs->v[i].re);
	}
	free(cs->v);
	cs->v = NULL;
	cs->n = 0;
}

int constraints_compile(json_t *arr, struct constraint_set *out)
{
	size_t i;
	json_t *c;
	int rc = 0;

	out->v = NULL;
	out->n = 0;
	if (!json_is_array(arr) || json_array_size(arr) == 0)
		return 0;
	out->v = calloc(json_array_size(arr), sizeof(*out->v));
	if (!out->v)
		return -ENOMEM;
	json_array_foreach(arr, i, c) {
		struct constraint *k = &out->v[out->n];
		const char *value = json_string_value(json_array_get(c, 2));
		int op = op_parse(json_string_value(json_array_get(c, 1)));

		if (op < 0 || !json_is_string(json_array_get(c, 0))) {
			rc = -EINVAL;
			break;
		}
		out->n++;
		k->op = (enum constraint_op)op;
		k->field = strdup(json_string_value(json_array_get(c, 0)));
		k->value = value ? strdup(value) : NULL;
		if (!k->field || (value && !k->value)) {
			rc = -ENOMEM;
			break;
		}
		if ((k->op == C_GROUP_BY || k->op == C_MAX_PER) && value &&
		    !parse_count(value, &k->number)) {
			rc = -EINVAL;
			break;
		}
		if (k->op == C_LIKE || k->op == C_UNLIKE) {
			rc = value ? compile_full(value, &k->re, NULL, 0) : -EINVAL;
			if (rc)
				break;
			k->has_re = true;
		}
	}
	if (rc)
		constraints_free(out);
	return rc;
}

const char *constraint_agent_value(const char *field, const char *hostname, json_t *attributes,
				   char *buf, size_t buflen)
{
	json_t *v;

	if (strcmp(field, "hostname") == 0)
		return hostname;
	v = json_object_get(attributes, field);
	if (json_is_string(v))
		return json_string_value(v);
	if (json_is_integer(v)) {
		snprintf(buf, buflen, "%lld", (long long)json_integer_value(v));
		return buf;
	}
	if (json_is_real(v)) {
		snprintf(buf, buflen, "%g", json_real_value(v));
		return buf;
	}
	return NULL;
}

int constraint_counts_init(struct constraint_counts *cc, const struct constraint_set *cs)
{
	cc->n = 0;
	cc->placed = 0;
	cc->by_value = cs->n ? calloc(cs->n, sizeof(*cc->by_value)) : NULL;
	cc->sum = cs->n ? calloc(cs->n, sizeof(*cc->sum)) : NULL;
	if (cs->n && (!cc->by_value || !cc->sum)) {
		free(cc->by_value);
		free(cc->sum);
		cc->by_value = NULL;
		cc->sum = NULL;
		return -ENOMEM;
	}
	for (; cc->n < cs->n; cc->n++) {
		cc->by_value[cc->n] = json_object();
		if (!cc->by_value[cc->n]) {
			constraint_counts_free(cc);
			return -ENOMEM;
		}
	}
	return 0;
}

void constraint_counts_free(struct constraint_counts *cc)
{
	for (size_t i = 0; i < cc->n; i++)
		json_decref(cc->by_value[i]);
	free(cc->by_value);
	free(cc->sum);
	cc->by_value = NULL;
	cc->sum = NULL;
	cc->n = 0;
	cc->placed = 0;
}

/* A value's count went from k to k + 1. When the last value at the minimum moves up, the
 * minimum is k + 1 and the values there are counted (once per level: O(1) amortized). */
static void summary_add(struct value_summary *s, const json_t *by_value, json_int_t k)
{
	const char *key;
	json_t *v;

	if (k == 0) {
		s->groups++;
		s->at_min = s->min == 1 ? s->at_min + 1 : 1;
		s->min = 1;
		return;
	}
	if (k != s->min || --s->at_min > 0)
		return;
	s->min = k + 1;
	json_object_foreach((json_t *)by_value, key, v)
		if (json_integer_value(v) == k + 1)
			s->at_min++;
}

void constraint_counts_add(struct constraint_counts *cc, const struct constraint_set *cs,
			   const char *hostname, json_t *attributes)
{
	char buf[64];

	cc->placed++;
	for (size_t i = 0; i < cc->n && i < cs->n; i++) {
		const char *v = constraint_agent_value(cs->v[i].field, hostname, attributes, buf,
						       sizeof(buf));
		json_int_t k;
		json_t *cur;

		if (!v)
			continue;
		cur = json_object_get(cc->by_value[i], v);
		k = json_integer_value(cur);
		if (cur)
			json_integer_set(cur, k + 1);   /* (the counts' own integers) */
		else if (json_object_set_new(cc->by_value[i], v, json_integer(1)) < 0)
			continue;
		summary_add(&cc->sum[i], cc->by_value[i], k);
	}
}

static json_int_t count_of(const json_t *by_value, const char *value)
{
	return json_integer_value(json_object_get((json_t *)by_value, value));
}

/* Marathon's checkGroupBy: a new value is always fine; a known one when it holds the
 * fewest tasks and at least `number` values are in use. */
static bool group_by_allows(const struct constraint *c, const json_t *by_value,
			    const struct value_summary *sum, const char *value)
{
	json_int_t mine = count_of(by_value, value);

	if (mine == 0)
		return true;
	return (long)sum->groups >= c->number && mine == sum->min;
}

/* CLUSTER without a value: on the value the app's tasks already use. */
static bool cluster_allows(const struct constraint *c, const json_t *by_value, int placed,
			   const char *value)
{
	if (c->value)
		return strcmp(c->value, value) == 0;
	if (placed == 0 || json_object_size((json_t *)by_value) == 0)
		return true;
	return count_of(by_value, value) > 0;
}

/* May one more task go on an agent whose value for c's field is agent_value? */
static bool constraint_allows(const struct constraint *c, const json_t *by_value,
			      const struct value_summary *sum, int placed, const char *agent_value)
{
	if (!agent_value)
		return c->op == C_UNLIKE;
	switch (c->op) {
	case C_UNIQUE:
		return count_of(by_value, agent_value) == 0;
	case C_CLUSTER:
		return cluster_allows(c, by_value, placed, agent_value);
	case C_GROUP_BY:
		return group_by_allows(c, by_value, sum, agent_value);
	case C_LIKE:
		return regexec(&c->re, agent_value, 0, NULL, 0) == 0;
	case C_UNLIKE:
		return regexec(&c->re, agent_value, 0, NULL, 0) != 0;
	case C_MAX_PER:
		return count_of(by_value, agent_value) < c->number;
	}
	return false;
}

bool constraints_allow(const struct constraint_set *cs, const struct constraint_counts *cc,
		       const char *hostname, json_t *attributes, size_t *failed)
{
	char buf[64];

	for (size_t i = 0; i < cs->n; i++) {
		const char *v = constraint_agent_value(cs->v[i].field, hostname, attributes, buf,
						       sizeof(buf));
		const json_t *by = i < cc->n ? cc->by_value[i] : NULL;
		static const struct value_summary none;

		if (!constraint_allows(&cs->v[i], by, i < cc->n ? &cc->sum[i] : &none, cc->placed,
				       v)) {
			if (failed)
				*failed = i;
			return false;
		}
	}
	return true;
}
