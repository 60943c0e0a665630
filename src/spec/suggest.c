/* "Did you mean ...?" for unknown keys and references. */
#include <ctype.h>
#include <string.h>

#include "spec/spec_internal.h"

#define SUGGEST_MAX_LEN        64   /* longer words get no suggestion */
#define SUGGEST_MAX_CANDIDATES 2000 /* bounds the cost per error */

static int same(char a, char b)
{
	return tolower((unsigned char)a) == tolower((unsigned char)b);
}

/* Case-insensitive edit distance where swapping two neighbours counts as one
 * edit (optimal string alignment): "dve" is one typo away from "dev". */
static size_t distance(const char *a, size_t la, const char *b, size_t lb)
{
	size_t rows[3][SUGGEST_MAX_LEN + 1];
	size_t *prev2 = rows[0], *prev = rows[1], *cur = rows[2];
	size_t i, j;

	for (j = 0; j <= lb; j++)
		prev[j] = j;
	for (i = 1; i <= la; i++) {
		size_t *tmp;

		cur[0] = i;
		for (j = 1; j <= lb; j++) {
			size_t best = prev[j - 1] + !same(a[i - 1], b[j - 1]);

			if (prev[j] + 1 < best)
				best = prev[j] + 1;
			if (cur[j - 1] + 1 < best)
				best = cur[j - 1] + 1;
			if (i > 1 && j > 1 && same(a[i - 1], b[j - 2]) &&
			    same(a[i - 2], b[j - 1]) && prev2[j - 2] + 1 < best)
				best = prev2[j - 2] + 1;
			cur[j] = best;
		}
		tmp = prev2;
		prev2 = prev;
		prev = cur;
		cur = tmp;
	}
	return prev[lb];
}

const char *tlm_spec__suggest(const char *word, const char *const *candidates, size_t n,
			      size_t *budget)
{
	size_t lw = strnlen(word, SUGGEST_MAX_LEN + 1), i, best_d = (size_t)-1;
	size_t limit = lw < 4 ? 1 : lw / 3 + 1;
	const char *best = NULL;

	if (lw == 0 || lw > SUGGEST_MAX_LEN || n > SUGGEST_MAX_CANDIDATES)
		return NULL;
	for (i = 0; i < n; i++) {
		size_t lc = strnlen(candidates[i], SUGGEST_MAX_LEN + 1), d;

		if (lc > SUGGEST_MAX_LEN || (lc > lw ? lc - lw : lw - lc) > limit)
			continue;
		/* Out of budget: no suggestion rather than a partial one, so
		 * the answer does not depend on the order of candidates. */
		if (*budget < lw * lc)
			return NULL;
		*budget -= lw * lc;
		d = distance(word, lw, candidates[i], lc);
		if (d < best_d) {
			best_d = d;
			best = candidates[i];
		}
	}
	return best_d <= limit ? best : NULL;
}
