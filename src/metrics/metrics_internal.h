/* The metrics registry's pieces shared by its files (docs/internals/metrics.md). */
#ifndef TLM_METRICS_INTERNAL_H
#define TLM_METRICS_INTERNAL_H

#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include "telemachy/metrics.h"

/* The rendered text never grows past this: the registry is bounded
 * (docs/metrics.md, "Cardinality"), so reaching it is a bug or a runaway
 * collector, answered TLM_ETOOBIG rather than with more memory. */
#define TLM_METRICS_TEXT_MAX (1u << 20)

struct tlm_metrics_buf {
	char *p;
	size_t len, cap;
	int failed; /* out of memory or over TLM_METRICS_TEXT_MAX */
	int too_big;
};

/* One label: its name and every value it can take. */
typedef struct tlm_metrics_dim {
	const char *name;
	const char *const *values;
	size_t n;
} tlm_metrics_dim;

#define TLM_METRICS_DIMS 3

/* A family: a counter (one cell per series) or a histogram (per series,
 * one cell per bucket — not cumulative; the last is +Inf — then the sum in
 * microseconds).  sparse: only series observed at least once are shown
 * (those with many label combinations, most never used). */
typedef struct tlm_metrics_family {
	const char *name, *help;
	int histogram, sparse;
	tlm_metrics_dim d[TLM_METRICS_DIMS];
	size_t nd;
	const double *bounds; /* histogram upper bounds, seconds, ascending */
	size_t nb;
	atomic_uint_least64_t *cells;
} tlm_metrics_family;

/* The registry's families, in render order. */
extern const tlm_metrics_family *const tlm_metrics__families[];
extern const size_t tlm_metrics__nfamilies;

/* Series in f (the product of its label value counts). */
size_t tlm_metrics__series(const tlm_metrics_family *f);

/* The collector of tlm_metrics_set_collector, called by render. */
void tlm_metrics__collect(tlm_metrics_buf *b);

void tlm_metrics__vappend(tlm_metrics_buf *b, const char *fmt, va_list ap)
	__attribute__((format(printf, 2, 0)));

/* A label value as the format wants it: \ " and newline escaped. */
void tlm_metrics__append_label_value(tlm_metrics_buf *b, const char *v);

/* HELP text: \ and newline escaped. */
void tlm_metrics__append_help(tlm_metrics_buf *b, const char *v);

#endif
