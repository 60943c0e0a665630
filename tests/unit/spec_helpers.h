/* Helpers for tests that parse small YAML specs and check diagnostics. */
#ifndef TLM_TEST_SPEC_HELPERS_H
#define TLM_TEST_SPEC_HELPERS_H

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "telemachy/spec.h"

/* Parses yaml; returns the load status.  *spec is set on success. */
static inline int parse_yaml(const char *yaml, tlm_spec **spec, tlm_diags *diags)
{
	tlm_error err = TLM_ERROR_INIT;

	return tlm_spec_parse(spec, "t.yaml", yaml, strlen(yaml), diags, &err);
}

/* Prints the diagnostics, to make a failing assertion readable. */
static inline void dump_diags(const tlm_diags *d)
{
	size_t i;

	for (i = 0; i < d->count; i++)
		print_message("  %u:%u [%s] %s\n", d->items[i].pos.line, d->items[i].pos.col,
			      d->items[i].rule, d->items[i].message);
}

/* Asserts that a diagnostic with rule at line:col exists whose message
 * contains `text`. */
static inline void assert_diag(const tlm_diags *d, unsigned line, unsigned col, const char *rule,
			       const char *text)
{
	size_t i;

	for (i = 0; i < d->count; i++) {
		const tlm_diag *g = &d->items[i];

		if (g->pos.line == line && g->pos.col == col && strcmp(g->rule, rule) == 0 &&
		    strstr(g->message, text) != NULL)
			return;
	}
	print_message("expected %u:%u [%s] containing \"%s\"; got:\n", line, col, rule, text);
	dump_diags(d);
	fail();
}

/* Parses yaml expecting exactly `count` errors, returning the diagnostics
 * (caller clears them). */
static inline void expect_errors(const char *yaml, size_t count, tlm_diags *d)
{
	tlm_spec *spec = NULL;
	int rc = parse_yaml(yaml, &spec, d);

	if (rc != TLM_EINVALID || d->count != count) {
		print_message("rc=%d, %zu errors (expected %zu):\n", rc, d->count, count);
		dump_diags(d);
		fail();
	}
	assert_null(spec);
}

/* The header of a valid spec, to which tests append agents/teams. */
#define SPEC_HEAD "apiVersion: telemachy/v1\nmetadata:\n  name: wf\n"

#endif
