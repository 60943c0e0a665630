/* Typed field readers: one place that turns YAML nodes into values and says
 * precisely what is wrong with a value, where. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "spec/spec_internal.h"

void tlm_spec__report(tlm_spec_ctx *ctx, const tlm_node *at, const char *rule, const char *fmt, ...)
{
	char msg[TLM_ERROR_MSG_MAX];
	va_list ap;

	if (tlm_diags__full(ctx->diags)) {
		/* Only counted: formatting it could read a long string again
		 * for each of millions of errors. */
		ctx->diags->dropped++;
		return;
	}
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (tlm_diags__add(ctx->diags, tlm_node__pos(at), rule, "%s", msg) != 0)
		ctx->oom = 1;
}

int tlm_field__is_map(tlm_spec_ctx *ctx, const tlm_node *n, const char *what)
{
	if (n->kind == TLM_NODE_MAP)
		return 1;
	tlm_spec__report(ctx, n, "type", "%s must be a map, got %s", what, tlm_node__kind_name(n));
	return 0;
}

int tlm_field__is_seq(tlm_spec_ctx *ctx, const tlm_node *n, const char *what)
{
	if (n->kind == TLM_NODE_SEQ)
		return 1;
	tlm_spec__report(ctx, n, "type", "%s must be a list, got %s", what, tlm_node__kind_name(n));
	return 0;
}

int tlm_field__string(tlm_spec_ctx *ctx, const tlm_node *map, const char *key, const char *what,
		      int required, const char **out)
{
	const tlm_node *v = tlm_node__get(map, key);

	if (v == NULL) {
		if (required)
			tlm_spec__report(ctx, map, "required", "%s is missing required key \"%s\"",
					 what, key);
		return required ? -1 : 1;
	}
	if (v->kind != TLM_NODE_SCALAR || v->type != TLM_SCALAR_STR) {
		const char *hint = v->kind == TLM_NODE_SCALAR && v->type != TLM_SCALAR_NULL
					   ? "; quote it to make it a string"
					   : "";
		tlm_spec__report(ctx, v, "type", "\"%s\" of %s must be a string, got %s%s", key,
				 what, tlm_node__kind_name(v), hint);
		return -1;
	}
	if (v->u.str[strspn(v->u.str, " \t\r\n")] == '\0') {
		/* The control plane rejects blank names and subjects too. */
		tlm_spec__report(ctx, v, "empty", "\"%s\" of %s must not be empty or blank", key,
				 what);
		return -1;
	}
	*out = v->u.str;
	return 0;
}

static int parse_int(const char *s, long *out)
{
	int base = 10;
	char *end;
	long long v;

	if (strncmp(s, "0x", 2) == 0) {
		s += 2;
		base = 16;
	} else if (strncmp(s, "0o", 2) == 0) {
		s += 2;
		base = 8;
	}
	errno = 0;
	v = strtoll(s, &end, base);
	if (errno != 0 || *end != '\0' || v < -(1LL << 52) || v > (1LL << 52))
		return -1;
	*out = (long)v;
	return 0;
}

int tlm_field__int(tlm_spec_ctx *ctx, const tlm_node *map, const char *key, const char *what,
		   long min, long max, long *out)
{
	const tlm_node *v = tlm_node__get(map, key);
	long n;

	if (v == NULL)
		return 1;
	if (v->kind != TLM_NODE_SCALAR || v->type != TLM_SCALAR_INT) {
		const char *hint = v->kind == TLM_NODE_SCALAR && v->type == TLM_SCALAR_STR
					   ? "; remove the quotes"
					   : "";
		tlm_spec__report(ctx, v, "type", "\"%s\" of %s must be an integer, got %s%s", key,
				 what, tlm_node__kind_name(v), hint);
		return -1;
	}
	if (parse_int(v->u.str, &n) != 0 || n < min || n > max) {
		tlm_spec__report(ctx, v, "range",
				 "\"%s\" of %s must be between %ld and %ld, got %s", key, what, min,
				 max, v->u.str);
		return -1;
	}
	*out = n;
	return 0;
}

int tlm_field__enum(tlm_spec_ctx *ctx, const tlm_node *map, const char *key, const char *what,
		    const char *const *names, int *out)
{
	const char *s = NULL;
	char list[256] = "";
	int i, rc = tlm_field__string(ctx, map, key, what, 0, &s);

	if (rc != 0)
		return rc;
	for (i = 0; names[i]; i++) {
		if (strcmp(s, names[i]) == 0) {
			*out = i;
			return 0;
		}
		snprintf(list + strlen(list), sizeof(list) - strlen(list), "%s%s", i ? ", " : "",
			 names[i]);
	}
	tlm_spec__report(ctx, tlm_node__get(map, key), "enum",
			 "\"%s\" of %s must be one of %s, got \"%s\"", key, what, list, s);
	return -1;
}

int tlm_field__scalar(tlm_spec_ctx *ctx, const tlm_node *v, const char *what, const char **out)
{
	if (v->kind != TLM_NODE_SCALAR || v->type == TLM_SCALAR_NULL) {
		tlm_spec__report(ctx, v, "type", "%s must be a string, number or boolean, got %s",
				 what, tlm_node__kind_name(v));
		return -1;
	}
	*out = v->u.str;
	return 0;
}

#define SMALL_MAP 16 /* keys compared pairwise; every map a workflow has */

static void report_duplicate(tlm_spec_ctx *ctx, const tlm_node *k, const tlm_node *first,
			     const char *what)
{
	tlm_spec__report(ctx, k, "duplicate-key",
			 "duplicate key \"%s\" in %s (first at line %u); remove one", k->u.str,
			 what, first->line);
}

/* By text, then by place: the node array is in document order, so in a run
 * of equal keys the one written first comes first. */
static int by_key(const void *a, const void *b)
{
	const tlm_node *x = *(const tlm_node *const *)a, *y = *(const tlm_node *const *)b;
	int c = strcmp(x->u.str, y->u.str);

	return c != 0 ? c : (x > y) - (x < y);
}

/* A big map (labels, env) is sorted rather than hashed: 8 bytes per key
 * where a hash set took 32 to 96 (docs/internals/spec.md), and no crafted
 * keys can make it quadratic. */
static void check_duplicates(tlm_spec_ctx *ctx, const tlm_node *map, const char *what)
{
	const tlm_node **keys, *k, *j;
	size_t n = 0, i, r;
	uint32_t p;

	if (map->n <= SMALL_MAP) {
		for (p = 0, k = tlm_node__first(map); p < map->n;
		     p++, k = tlm_node__next(tlm_node__next(k))) {
			if (k->kind != TLM_NODE_SCALAR)
				continue;
			for (j = tlm_node__first(map); j != k;
			     j = tlm_node__next(tlm_node__next(j)))
				if (j->kind == TLM_NODE_SCALAR && strcmp(j->u.str, k->u.str) == 0) {
					report_duplicate(ctx, k, j, what);
					break;
				}
		}
		return;
	}
	if ((keys = malloc(map->n * sizeof(*keys))) == NULL) {
		ctx->oom = 1;
		return;
	}
	for (p = 0, k = tlm_node__first(map); p < map->n;
	     p++, k = tlm_node__next(tlm_node__next(k)))
		if (k->kind == TLM_NODE_SCALAR)
			keys[n++] = k;
	qsort(keys, n, sizeof(*keys), by_key);
	for (i = 0; i < n; i = r)
		for (r = i + 1; r < n && strcmp(keys[r]->u.str, keys[i]->u.str) == 0; r++)
			report_duplicate(ctx, keys[r], keys[i], what);
	free(keys);
}

void tlm_field__keys(tlm_spec_ctx *ctx, const tlm_node *map, const char *what,
		     const char *const *allowed)
{
	const tlm_node *k;
	size_t nallowed = 0;
	uint32_t i;

	while (allowed != NULL && allowed[nallowed])
		nallowed++;
	for (i = 0, k = tlm_node__first(map); i < map->n;
	     i++, k = tlm_node__next(tlm_node__next(k))) {
		const char *hint;
		size_t j;

		if (k->kind != TLM_NODE_SCALAR || k->type == TLM_SCALAR_NULL) {
			tlm_spec__report(ctx, k, "type", "keys of %s must be strings, got %s", what,
					 tlm_node__kind_name(k));
			continue;
		}
		if (allowed == NULL)
			continue; /* any key will do (metadata labels) */
		for (j = 0; j < nallowed && strcmp(k->u.str, allowed[j]) != 0; j++)
			;
		if (j < nallowed)
			continue;
		hint = tlm_diags__full(ctx->diags) ? NULL
						   : tlm_spec__suggest(k->u.str, allowed, nallowed,
								       &ctx->suggest_budget);
		if (hint)
			tlm_spec__report(ctx, k, "unknown-key",
					 "unknown key \"%s\" in %s (did you mean \"%s\"?)",
					 k->u.str, what, hint);
		else
			tlm_spec__report(ctx, k, "unknown-key", "unknown key \"%s\" in %s",
					 k->u.str, what);
	}
	check_duplicates(ctx, map, what);
}
