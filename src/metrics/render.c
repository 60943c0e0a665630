/* The text exposition format 0.0.4: for each family its HELP and TYPE lines,
 * then its series; a histogram's buckets cumulative, ending with le="+Inf",
 * then _sum (seconds) and _count
 * (https://prometheus.io/docs/instrumenting/exposition_formats/, cited in
 * docs/metrics.md). */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "metrics/metrics_internal.h"

static pthread_mutex_t collector_lock = PTHREAD_MUTEX_INITIALIZER;
static tlm_metrics_collector collector;
static void *collector_ctx;

void tlm_metrics_set_collector(tlm_metrics_collector fn, void *ctx)
{
	pthread_mutex_lock(&collector_lock);
	collector = fn;
	collector_ctx = ctx;
	pthread_mutex_unlock(&collector_lock);
}

/* Under the lock, so that the collector's owner can remove it and free its
 * context without racing a scrape. */
void tlm_metrics__collect(tlm_metrics_buf *b)
{
	pthread_mutex_lock(&collector_lock);
	if (collector != NULL)
		collector(collector_ctx, b);
	pthread_mutex_unlock(&collector_lock);
}

static int reserve(tlm_metrics_buf *b, size_t more)
{
	size_t cap = b->cap != 0 ? b->cap : 4096;
	char *np;

	if (b->failed)
		return -1;
	if (b->len + more + 1 <= b->cap)
		return 0;
	if (b->len + more + 1 > TLM_METRICS_TEXT_MAX) {
		b->failed = b->too_big = 1;
		return -1;
	}
	while (cap < b->len + more + 1)
		cap *= 2;
	if (cap > TLM_METRICS_TEXT_MAX)
		cap = TLM_METRICS_TEXT_MAX;
	if ((np = realloc(b->p, cap)) == NULL) {
		b->failed = 1;
		return -1;
	}
	b->p = np;
	b->cap = cap;
	return 0;
}

void tlm_metrics__vappend(tlm_metrics_buf *b, const char *fmt, va_list ap)
{
	va_list aq;
	int n;

	va_copy(aq, ap);
	n = vsnprintf(NULL, 0, fmt, aq);
	va_end(aq);
	if (n < 0 || reserve(b, (size_t)n) != 0)
		return;
	vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
	b->len += (size_t)n;
}

void tlm_metrics_append(tlm_metrics_buf *b, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	tlm_metrics__vappend(b, fmt, ap);
	va_end(ap);
}

static void append_escaped(tlm_metrics_buf *b, const char *v, int quote)
{
	for (; *v != '\0'; v++) {
		if (*v == '\\')
			tlm_metrics_append(b, "\\\\");
		else if (*v == '\n')
			tlm_metrics_append(b, "\\n");
		else if (*v == '"' && quote)
			tlm_metrics_append(b, "\\\"");
		else
			tlm_metrics_append(b, "%c", *v);
	}
}

void tlm_metrics__append_label_value(tlm_metrics_buf *b, const char *v)
{
	append_escaped(b, v, 1);
}

void tlm_metrics__append_help(tlm_metrics_buf *b, const char *v)
{
	append_escaped(b, v, 0);
}

/* The labels of series s (its index: the last label varies fastest), and
 * an le label for a bucket (NULL: none), in braces; nothing without any. */
static void labels(tlm_metrics_buf *b, const tlm_metrics_family *f, size_t s, const char *le)
{
	size_t idx[TLM_METRICS_DIMS], i;

	if (f->nd == 0 && le == NULL)
		return;
	for (i = f->nd; i-- > 0;) {
		idx[i] = s % f->d[i].n;
		s /= f->d[i].n;
	}
	tlm_metrics_append(b, "{");
	for (i = 0; i < f->nd; i++) {
		tlm_metrics_append(b, "%s%s=\"", i > 0 ? "," : "", f->d[i].name);
		tlm_metrics__append_label_value(b, f->d[i].values[idx[i]]);
		tlm_metrics_append(b, "\"");
	}
	if (le != NULL)
		tlm_metrics_append(b, "%sle=\"%s\"", f->nd > 0 ? "," : "", le);
	tlm_metrics_append(b, "}");
}

static uint64_t get(const atomic_uint_least64_t *cell)
{
	return atomic_load_explicit(cell, memory_order_relaxed);
}

static void render_counter(tlm_metrics_buf *b, const tlm_metrics_family *f)
{
	size_t s, n = tlm_metrics__series(f);

	for (s = 0; s < n; s++) {
		uint64_t v = get(&f->cells[s]);

		if (v == 0 && f->sparse)
			continue;
		tlm_metrics_append(b, "%s", f->name);
		labels(b, f, s, NULL);
		tlm_metrics_append(b, " %llu\n", (unsigned long long)v);
	}
}

/* Buckets are read once each and summed here, so +Inf and _count always
 * agree with them even while they are being updated. */
static void render_series(tlm_metrics_buf *b, const tlm_metrics_family *f, size_t s,
			  const atomic_uint_least64_t *h)
{
	uint64_t cum = 0, sum_us = get(&h[f->nb + 1]);
	char le[32];
	size_t i;

	for (i = 0; i <= f->nb; i++) {
		cum += get(&h[i]);
		if (i < f->nb)
			snprintf(le, sizeof(le), "%g", f->bounds[i]);
		else
			snprintf(le, sizeof(le), "+Inf");
		tlm_metrics_append(b, "%s_bucket", f->name);
		labels(b, f, s, le);
		tlm_metrics_append(b, " %llu\n", (unsigned long long)cum);
	}
	tlm_metrics_append(b, "%s_sum", f->name);
	labels(b, f, s, NULL);
	tlm_metrics_append(b, " %llu.%06llu\n", (unsigned long long)(sum_us / 1000000u),
			   (unsigned long long)(sum_us % 1000000u));
	tlm_metrics_append(b, "%s_count", f->name);
	labels(b, f, s, NULL);
	tlm_metrics_append(b, " %llu\n", (unsigned long long)cum);
}

static void render_histogram(tlm_metrics_buf *b, const tlm_metrics_family *f)
{
	size_t s, i, n = tlm_metrics__series(f);

	for (s = 0; s < n; s++) {
		const atomic_uint_least64_t *h = &f->cells[s * (f->nb + 2)];
		uint64_t count = 0;

		for (i = 0; i <= f->nb; i++)
			count += get(&h[i]);
		if (count == 0 && f->sparse)
			continue;
		render_series(b, f, s, h);
	}
}

int tlm_metrics_render(char **out, size_t *len, tlm_error *err)
{
	tlm_metrics_buf b = { NULL, 0, 0, 0, 0 };
	size_t i;

	*out = NULL;
	for (i = 0; i < tlm_metrics__nfamilies; i++) {
		const tlm_metrics_family *f = tlm_metrics__families[i];

		tlm_metrics_append(&b, "# HELP %s ", f->name);
		tlm_metrics__append_help(&b, f->help);
		tlm_metrics_append(&b, "\n# TYPE %s %s\n", f->name,
				   f->histogram ? "histogram" : "counter");
		if (f->histogram)
			render_histogram(&b, f);
		else
			render_counter(&b, f);
	}
	tlm_metrics__collect(&b);
	if (b.failed || reserve(&b, 0) != 0) {
		int too_big = b.too_big;

		free(b.p);
		return too_big ? tlm_error_set(err, TLM_ETOOBIG, "metrics: over %u bytes of text",
					       TLM_METRICS_TEXT_MAX)
			       : tlm_error_set(err, TLM_ERROR, "metrics: out of memory");
	}
	b.p[b.len] = '\0';
	*out = b.p;
	if (len != NULL)
		*len = b.len;
	return 0;
}
