/* The retry policy: every verdict per method (no blind re-POST of a create,
 * docs/lessons.md #3), 404-on-DELETE as its own verdict, and the backoff (full jitter
 * bounds, cap, Retry-After floor, total-wait and attempts budgets, docs/lessons.md #16). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "client/client_internal.h"

static const tlm_http_method idempotent[] = { TLM_HTTP_GET, TLM_HTTP_PUT, TLM_HTTP_DELETE,
					      TLM_HTTP_PATCH, TLM_HTTP_POST_ACTION };
#define N_IDEMPOTENT (sizeof(idempotent) / sizeof(idempotent[0]))

static const tlm_xfer not_sent[] = { TLM_XFER_CONNECT_REFUSED, TLM_XFER_CONNECT_TIMEOUT,
				     TLM_XFER_RESOLVE, TLM_XFER_TLS_HANDSHAKE };
static const tlm_xfer maybe_sent[] = { TLM_XFER_TIMEOUT, TLM_XFER_RESET, TLM_XFER_EMPTY_REPLY,
				       TLM_XFER_SEND_ERROR, TLM_XFER_OTHER };

static void test_success(void **state)
{
	size_t i;
	int s;
	(void)state;

	for (s = 200; s < 300; s++) {
		for (i = 0; i < N_IDEMPOTENT; i++)
			assert_int_equal(tlm_client__classify(idempotent[i], TLM_XFER_OK, s),
					 TLM_VERDICT_SUCCESS);
		assert_int_equal(tlm_client__classify(TLM_HTTP_POST_CREATE, TLM_XFER_OK, s),
				 TLM_VERDICT_SUCCESS);
	}
}

static void test_transport_failures(void **state)
{
	size_t i, j;
	(void)state;

	/* Not sent: retry, whatever the method, creates included. */
	for (j = 0; j < sizeof(not_sent) / sizeof(not_sent[0]); j++) {
		for (i = 0; i < N_IDEMPOTENT; i++)
			assert_int_equal(tlm_client__classify(idempotent[i], not_sent[j], 0),
					 TLM_VERDICT_RETRY);
		assert_int_equal(tlm_client__classify(TLM_HTTP_POST_CREATE, not_sent[j], 0),
				 TLM_VERDICT_RETRY);
	}
	/* Maybe sent: idempotent requests retry; a create's outcome is unknown
	 * and must be resolved by a name lookup, never by a second POST. */
	for (j = 0; j < sizeof(maybe_sent) / sizeof(maybe_sent[0]); j++) {
		for (i = 0; i < N_IDEMPOTENT; i++)
			assert_int_equal(tlm_client__classify(idempotent[i], maybe_sent[j], 0),
					 TLM_VERDICT_RETRY);
		assert_int_equal(tlm_client__classify(TLM_HTTP_POST_CREATE, maybe_sent[j], 0),
				 TLM_VERDICT_UNKNOWN);
	}
	/* A refused certificate: nothing was sent, and nothing will be. */
	for (i = 0; i < N_IDEMPOTENT; i++)
		assert_int_equal(tlm_client__classify(idempotent[i], TLM_XFER_TLS_REFUSED, 0),
				 TLM_VERDICT_PERMANENT);
	assert_int_equal(tlm_client__classify(TLM_HTTP_POST_CREATE, TLM_XFER_TLS_REFUSED, 0),
			 TLM_VERDICT_PERMANENT);
}

static void test_http_errors(void **state)
{
	size_t i;
	int s;
	(void)state;

	for (s = 500; s < 600; s++) {
		for (i = 0; i < N_IDEMPOTENT; i++)
			assert_int_equal(tlm_client__classify(idempotent[i], TLM_XFER_OK, s),
					 TLM_VERDICT_RETRY);
		assert_int_equal(tlm_client__classify(TLM_HTTP_POST_CREATE, TLM_XFER_OK, s),
				 TLM_VERDICT_UNKNOWN);
	}
	/* 429 and 408: the server did not act on the request, even for a create. */
	for (i = 0; i < N_IDEMPOTENT; i++) {
		assert_int_equal(tlm_client__classify(idempotent[i], TLM_XFER_OK, 429),
				 TLM_VERDICT_RETRY);
		assert_int_equal(tlm_client__classify(idempotent[i], TLM_XFER_OK, 408),
				 TLM_VERDICT_RETRY);
	}
	assert_int_equal(tlm_client__classify(TLM_HTTP_POST_CREATE, TLM_XFER_OK, 429),
			 TLM_VERDICT_RETRY);
	assert_int_equal(tlm_client__classify(TLM_HTTP_POST_CREATE, TLM_XFER_OK, 408),
			 TLM_VERDICT_RETRY);
	/* other 4xx: permanent, except 404 on DELETE (already gone) */
	for (s = 400; s < 500; s++) {
		if (s == 408 || s == 429)
			continue;
		for (i = 0; i < N_IDEMPOTENT; i++) {
			tlm_verdict want = (s == 404 && idempotent[i] == TLM_HTTP_DELETE)
						   ? TLM_VERDICT_GONE
						   : TLM_VERDICT_PERMANENT;

			assert_int_equal(tlm_client__classify(idempotent[i], TLM_XFER_OK, s), want);
		}
		assert_int_equal(tlm_client__classify(TLM_HTTP_POST_CREATE, TLM_XFER_OK, s),
				 TLM_VERDICT_PERMANENT);
	}
	/* statuses we never expect */
	assert_int_equal(tlm_client__classify(TLM_HTTP_GET, TLM_XFER_OK, 0), TLM_VERDICT_PERMANENT);
	assert_int_equal(tlm_client__classify(TLM_HTTP_GET, TLM_XFER_OK, 100),
			 TLM_VERDICT_PERMANENT);
	assert_int_equal(tlm_client__classify(TLM_HTTP_GET, TLM_XFER_OK, 302),
			 TLM_VERDICT_PERMANENT);
	assert_int_equal(tlm_client__classify(TLM_HTTP_POST_CREATE, TLM_XFER_OK, 600),
			 TLM_VERDICT_PERMANENT);
	assert_string_equal(tlm_client__verdict_name(TLM_VERDICT_UNKNOWN), "unknown-outcome");
	assert_string_equal(tlm_client__verdict_name(TLM_VERDICT_GONE), "gone");
}

/* A scripted random source: returns values[i++ % n]. */
typedef struct script {
	const uint64_t *values;
	size_t n, i;
} script;

static uint64_t scripted(void *ctx)
{
	script *s = ctx;

	return s->values[s->i++ % s->n];
}

static void test_jitter_bounds(void **state)
{
	static const uint64_t lo[] = { 0 };
	static const uint64_t hi[] = { UINT64_MAX };
	tlm_backoff_opts o = { 100, 1000, 1000000, 100 };
	script s;
	tlm_backoff b;
	uint64_t d, want;
	unsigned k;
	(void)state;

	/* The smallest draw gives 0 every time: full jitter reaches zero. */
	s = (script){ lo, 1, 0 };
	tlm_client__backoff_init(&b, &o, scripted, &s);
	for (k = 0; k < 10; k++) {
		assert_int_equal(tlm_client__backoff_next(&b, -1, &d, NULL), 0);
		assert_int_equal(d, 0);
	}
	/* The largest draw stays within min(cap, base * 2^(k-1)): 100, 200, 400,
	 * 800, then 1000 (capped) forever. UINT64_MAX % (c + 1) is c only when c
	 * + 1 divides 2^64, so use draws of exactly c instead. */
	for (k = 1; k <= 10; k++) {
		uint64_t v;

		want = (uint64_t)100 << (k - 1);
		if (want > 1000)
			want = 1000;
		v = want;
		s = (script){ &v, 1, 0 };
		tlm_client__backoff_init(&b, &o, scripted, &s);
		b.attempts = k - 1;
		assert_int_equal(tlm_client__backoff_next(&b, -1, &d, NULL), 0);
		assert_int_equal(d, want);
		/* one more than the ceiling wraps to 0 */
		v = want + 1;
		s.i = 0;
		b.attempts = k - 1;
		assert_int_equal(tlm_client__backoff_next(&b, -1, &d, NULL), 0);
		assert_int_equal(d, 0);
	}
	/* Any draw, even the largest, stays within the ceiling. */
	s = (script){ hi, 1, 0 };
	tlm_client__backoff_init(&b, &o, scripted, &s);
	for (k = 1; k < 50; k++) {
		assert_int_equal(tlm_client__backoff_next(&b, -1, &d, NULL), 0);
		want = k <= 4 ? (uint64_t)100 << (k - 1) : 1000;
		assert_true(d <= want);
	}
}

static void test_default_random(void **state)
{
	tlm_backoff_opts o = { 1000, 1000, UINT64_MAX, 1000 };
	tlm_backoff b;
	uint64_t d, min = UINT64_MAX, max = 0;
	int k;
	(void)state;

	/* The internal source spreads over [0, ceiling]. */
	tlm_client__backoff_init(&b, &o, NULL, NULL);
	for (k = 0; k < 500; k++) {
		assert_int_equal(tlm_client__backoff_next(&b, -1, &d, NULL), 0);
		assert_true(d <= 1000);
		if (d < min)
			min = d;
		if (d > max)
			max = d;
	}
	assert_true(min < 100);
	assert_true(max > 900);
	/* defaults */
	tlm_client__backoff_init(&b, NULL, NULL, NULL);
	assert_int_equal(b.opts.base_ms, 200);
	assert_int_equal(b.opts.max_attempts, 8);
}

static void test_retry_after_floor(void **state)
{
	static const uint64_t zero[] = { 0 };
	static const uint64_t big[] = { 999 };
	tlm_backoff_opts o = { 100, 1000, 60000, 10 };
	script s = { zero, 1, 0 };
	tlm_backoff b;
	tlm_error err = TLM_ERROR_INIT;
	uint64_t d;
	(void)state;

	tlm_client__backoff_init(&b, &o, scripted, &s);
	/* the floor raises a small draw, and may exceed cap */
	assert_int_equal(tlm_client__backoff_next(&b, 2, &d, &err), 0);
	assert_int_equal(d, 2000);
	assert_int_equal(tlm_client__backoff_next(&b, 5, &d, &err), 0);
	assert_int_equal(d, 5000);
	/* absent or zero: no floor */
	assert_int_equal(tlm_client__backoff_next(&b, 0, &d, &err), 0);
	assert_int_equal(d, 0);
	assert_int_equal(tlm_client__backoff_next(&b, -1, &d, &err), 0);
	assert_int_equal(d, 0);
	/* a draw above the floor is kept */
	s = (script){ big, 1, 0 };
	tlm_client__backoff_init(&b, &o, scripted, &s);
	b.attempts = 5; /* ceiling 1000 */
	assert_int_equal(tlm_client__backoff_next(&b, 0, &d, &err), 0);
	assert_int_equal(d, 999);
	/* a floor beyond the total budget cannot be honoured: give up */
	tlm_client__backoff_init(&b, &o, scripted, &s);
	assert_int_equal(tlm_client__backoff_next(&b, 61, &d, &err), TLM_ERATELIMIT);
	assert_non_null(strstr(err.message, "61"));
	assert_int_equal(d, 0);
}

static void test_total_budget(void **state)
{
	static const uint64_t hi[] = { 1000 };
	tlm_backoff_opts o = { 1000, 1000, 2500, 100 };
	script s = { hi, 1, 0 };
	tlm_backoff b;
	tlm_error err = TLM_ERROR_INIT;
	uint64_t d;
	(void)state;

	tlm_client__backoff_init(&b, &o, scripted, &s);
	assert_int_equal(tlm_client__backoff_next(&b, -1, &d, &err), 0);
	assert_int_equal(d, 1000);
	assert_int_equal(tlm_client__backoff_next(&b, -1, &d, &err), 0);
	assert_int_equal(d, 1000);
	/* the jittered delay is trimmed to what is left of the budget */
	assert_int_equal(tlm_client__backoff_next(&b, -1, &d, &err), 0);
	assert_int_equal(d, 500);
	assert_int_equal(b.waited_ms, 2500);
	assert_int_equal(tlm_client__backoff_next(&b, -1, &d, &err), TLM_ETIMEOUT);
	assert_int_equal(d, 0);
	/* a Retry-After that fits exactly is honoured */
	tlm_client__backoff_init(&b, &o, scripted, &s);
	assert_int_equal(tlm_client__backoff_next(&b, 2, &d, &err), 0);
	assert_int_equal(d, 2000);
	assert_int_equal(tlm_client__backoff_next(&b, 1, &d, &err), TLM_ERATELIMIT);
}

static void test_attempts_budget(void **state)
{
	static const uint64_t zero[] = { 0 };
	tlm_backoff_opts o = { 10, 10, 1000000, 3 };
	script s = { zero, 1, 0 };
	tlm_backoff b;
	tlm_error err = TLM_ERROR_INIT;
	uint64_t d;
	(void)state;

	/* 3 attempts in all: two delays, then give up after the third fails. */
	tlm_client__backoff_init(&b, &o, scripted, &s);
	assert_int_equal(tlm_client__backoff_next(&b, -1, &d, &err), 0);
	assert_int_equal(tlm_client__backoff_next(&b, -1, &d, &err), 0);
	assert_int_equal(tlm_client__backoff_next(&b, -1, &d, &err), TLM_ETIMEOUT);
	assert_non_null(strstr(err.message, "3 attempts"));
	/* 1 attempt: no retry at all; 0 behaves the same */
	o.max_attempts = 1;
	tlm_client__backoff_init(&b, &o, scripted, &s);
	assert_int_equal(tlm_client__backoff_next(&b, -1, &d, &err), TLM_ETIMEOUT);
	o.max_attempts = 0;
	tlm_client__backoff_init(&b, &o, scripted, &s);
	assert_int_equal(tlm_client__backoff_next(&b, -1, &d, &err), TLM_ETIMEOUT);
}

static void test_no_overflow(void **state)
{
	static const uint64_t hi[] = { UINT64_MAX };
	tlm_backoff_opts o = { UINT32_MAX, UINT32_MAX, UINT64_MAX, UINT32_MAX };
	script s = { hi, 1, 0 };
	tlm_backoff b;
	uint64_t d;
	(void)state;

	/* huge settings and attempt counts: the ceiling saturates at cap */
	tlm_client__backoff_init(&b, &o, scripted, &s);
	b.attempts = 1000;
	assert_int_equal(tlm_client__backoff_next(&b, -1, &d, NULL), 0);
	assert_true(d <= UINT32_MAX);
	assert_int_equal(tlm_client__backoff_next(&b, 86400, &d, NULL), 0);
	assert_true(d >= 86400000ULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_success),        cmocka_unit_test(test_transport_failures),
		cmocka_unit_test(test_http_errors),    cmocka_unit_test(test_jitter_bounds),
		cmocka_unit_test(test_default_random), cmocka_unit_test(test_retry_after_floor),
		cmocka_unit_test(test_total_budget),   cmocka_unit_test(test_attempts_budget),
		cmocka_unit_test(test_no_overflow),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
