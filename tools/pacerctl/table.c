/* table.c - aligned text tables for people: one header row, columns padded to their
 * widest cell and separated by two spaces; the last column is not padded. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "tools/pacerctl/pacerctl.h"

struct table {
	size_t ncols;
	size_t nrows;        /* including the header row */
	char **cells;        /* nrows * ncols */
};

struct table *table_new(const char *const *headers, size_t ncols)
{
	struct table *t = calloc(1, sizeof(*t));

	if (!t)
		return NULL;
	t->ncols = ncols;
	if (table_add_row(t, headers) < 0) {
		free(t);
		return NULL;
	}
	return t;
}

int table_add_row(struct table *t, const char *const *cells)
{
	char **grown = realloc(t->cells, (t->nrows + 1) * t->ncols * sizeof(char *));
	size_t i;

	if (!grown)
		return -ENOMEM;
	t->cells = grown;
	for (i = 0; i < t->ncols; i++) {
		char *copy = strdup(cells[i] ? cells[i] : "-");

		if (!copy) {
			while (i--)
				free(t->cells[t->nrows * t->ncols + i]);
			return -ENOMEM;
		}
		t->cells[t->nrows * t->ncols + i] = copy;
	}
	t->nrows++;
	return 0;
}

void table_print(const struct table *t, FILE *out)
{
	size_t *width = calloc(t->ncols ? t->ncols : 1, sizeof(size_t));
	size_t r, col;

	if (!width)
		return;
	for (r = 0; r < t->nrows; r++)
		for (col = 0; col < t->ncols; col++) {
			size_t len = strlen(t->cells[r * t->ncols + col]);

			if (len > width[col])
				width[col] = len;
		}
	for (r = 0; r < t->nrows; r++) {
		for (col = 0; col < t->ncols; col++) {
			const char *cell = t->cells[r * t->ncols + col];

			if (col + 1 == t->ncols)
				fprintf(out, "%s\n", cell);
			else
				fprintf(out, "%-*s  ", (int)width[col], cell);
		}
	}
	free(width);
}

void table_free(struct table *t)
{
	size_t i;

	if (!t)
		return;
	for (i = 0; i < t->nrows * t->ncols; i++)
		free(t->cells[i]);
	free(t->cells);
	free(t);
}

int ctl_print_table(const char *const *headers, size_t ncols, json_t *rows,
		    int (*add_row)(struct table *t, json_t *row))
{
	struct table *t = table_new(headers, ncols);
	json_t *row;
	size_t i;

	if (!t)
		return ctl_fail("out of memory");
	json_array_foreach(rows, i, row) {
		if (add_row(t, row) < 0) {
			table_free(t);
			return ctl_fail("out of memory");
		}
	}
	table_print(t, stdout);
	table_free(t);
	return CTL_OK;
}
