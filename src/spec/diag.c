/* Diagnostics: every problem in a file, collected in one pass and sorted by
 * position, so users fix them all at once. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "spec/spec_internal.h"

int tlm_diags__add(tlm_diags *d, tlm_pos pos, const char *rule, const char *fmt, ...)
{
	char buf[TLM_ERROR_MSG_MAX], *msg;
	va_list ap;

	if (d->count >= TLM_SPEC_MAX_DIAGS) {
		d->dropped++;
		return 0;
	}
	if (d->count == d->capacity) {
		size_t ncap = d->capacity ? d->capacity * 2 : 16;
		tlm_diag *items = realloc(d->items, ncap * sizeof(*items));

		if (items == NULL)
			return -1;
		d->items = items;
		d->capacity = ncap;
	}
	/* Capped like every error message: a value of megabytes quoted in a
	 * message must not make the diagnostics as big as the file. */
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if ((msg = strdup(buf)) == NULL)
		return -1;
	d->items[d->count].pos = pos;
	d->items[d->count].rule = rule;
	d->items[d->count].message = msg;
	d->count++;
	return 0;
}

static int by_pos(const void *a, const void *b)
{
	const tlm_diag *x = a, *y = b;

	if (x->pos.line != y->pos.line)
		return x->pos.line < y->pos.line ? -1 : 1;
	if (x->pos.col != y->pos.col)
		return x->pos.col < y->pos.col ? -1 : 1;
	return 0;
}

/* qsort is not stable: errors at one position keep their discovery order
 * through an insertion sort, which is linear on the nearly sorted input the
 * validator produces (it walks the document in order). */
void tlm_diags__sort(tlm_diags *d)
{
	size_t i, j;

	for (i = 1; i < d->count; i++) {
		tlm_diag tmp = d->items[i];

		for (j = i; j > 0 && by_pos(&d->items[j - 1], &tmp) > 0; j--)
			d->items[j] = d->items[j - 1];
		d->items[j] = tmp;
	}
}

void tlm_diags_clear(tlm_diags *d)
{
	size_t i;

	if (d == NULL)
		return;
	for (i = 0; i < d->count; i++)
		free(d->items[i].message);
	free(d->items);
	d->items = NULL;
	d->count = d->capacity = d->dropped = 0;
}
