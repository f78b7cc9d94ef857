/* constraints.h - Marathon placement constraints: [[field, operator, value?]] on "hostname"
 * or an agent attribute, with UNIQUE, CLUSTER, GROUP_BY, LIKE, UNLIKE and MAX_PER.
 *
 * Checking an offer needs the app's placed tasks counted per value of each constraint's
 * field (struct constraint_counts): the scheduler builds them from the app's own tasks
 * and adds each launch as it makes it, so no check scans tasks. */
#ifndef PACER_MARATHON_CONSTRAINTS_H
#define PACER_MARATHON_CONSTRAINTS_H

#include <regex.h>
#include <stdbool.h>
#include <stddef.h>
#include <jansson.h>

enum constraint_op { C_UNIQUE, C_CLUSTER, C_GROUP_BY, C_LIKE, C_UNLIKE, C_MAX_PER };

struct constraint {
	char *field;
	enum constraint_op op;
	char *value;                    /* NULL when not given */
	long number;                    /* GROUP_BY count / MAX_PER limit */
	regex_t re;                     /* LIKE/UNLIKE: ^(value)$ */
	bool has_re;
};

struct constraint_set {
	struct constraint *v;
	size_t n;
};

/* Checks a "constraints" value the way Marathon does; problems are added to details
 * under /constraints(i). */
void constraints_validate(json_t *v, json_t *details);
/* Compiles a validated array (NULL or [] gives an empty set). Returns 0, -EINVAL, -ENOMEM. */
int constraints_compile(json_t *arr, struct constraint_set *out);
void constraints_free(struct constraint_set *cs);
const char *constraint_op_name(enum constraint_op op);

/* The value an agent has for field: its hostname, or the attribute (numbers as text).
 * NULL when the agent lacks the attribute. buf holds a converted number. */
const char *constraint_agent_value(const char *field, const char *hostname, json_t *attributes,
				   char *buf, size_t buflen);

/* Over the values of one constraint's field in use (count > 0): how many, the smallest
 * count and how many values hold it. Kept as tasks are counted, so GROUP_BY asks it in
 * O(1) instead of visiting every value for every agent it considers. */
struct value_summary {
	json_int_t min;
	size_t groups, at_min;
};

/* Per constraint, how many of the app's tasks are placed on each value of its field. */
struct constraint_counts {
	json_t **by_value;              /* [cs->n] objects value -> integer */
	struct value_summary *sum;      /* [cs->n] */
	size_t n;
	int placed;                     /* tasks counted */
};

int constraint_counts_init(struct constraint_counts *cc, const struct constraint_set *cs);
void constraint_counts_free(struct constraint_counts *cc);
/* Counts one task placed on an agent with this hostname and attributes. */
void constraint_counts_add(struct constraint_counts *cc, const struct constraint_set *cs,
			   const char *hostname, json_t *attributes);

/* All constraints (may one more task go on an agent with this hostname and attributes?); on failure *failed is the index of the first one that refused. */
bool constraints_allow(const struct constraint_set *cs, const struct constraint_counts *cc,
		       const char *hostname, json_t *attributes, size_t *failed);

#endif
