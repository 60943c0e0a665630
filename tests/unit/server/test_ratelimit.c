/* The per-client token bucket: burst, refill, Retry-After, separate and shared
 * buckets, the client cap with LRU eviction, and threads. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>

#include "harness/harness.h"

#include "server/ratelimit.h"

#define MAX_CLIENTS 4096 /* the cap documented in ratelimit.h */

static void test_new_rejects_bad_rates(void **state)
{
	tlm_ratelimit *rl;
	(void)state;

	assert_null(tlm_ratelimit_new(0, 10));
	assert_null(tlm_ratelimit_new(-1, 10));
	assert_null(tlm_ratelimit_new(NAN, 10));
	assert_null(tlm_ratelimit_new(INFINITY, 10));
	/* burst 0 is taken as 1: one call passes, not none. */
	rl = tlm_ratelimit_new(0.001, 0);
	assert_non_null(rl);
	assert_int_equal(tlm_ratelimit_take(rl, "10.0.0.1"), 0);
	assert_int_not_equal(tlm_ratelimit_take(rl, "10.0.0.1"), 0);
	tlm_ratelimit_free(rl);
	tlm_ratelimit_free(NULL);
}

static void test_burst_then_limited(void **state)
{
	tlm_ratelimit *rl = tlm_ratelimit_new(0.5, 3);
	int i;
	(void)state;

	for (i = 0; i < 3; i++)
		assert_int_equal(tlm_ratelimit_take(rl, "10.0.0.1"), 0);
	/* One token takes 2 s at 0.5 rps; refused calls take no token, so the
	 * answer stays 2 (not 4, 6, ...). */
	for (i = 0; i < 5; i++)
		assert_int_equal(tlm_ratelimit_take(rl, "10.0.0.1"), 2);
	tlm_ratelimit_free(rl);
}

static void test_retry_after_at_least_one(void **state)
{
	tlm_ratelimit *rl = tlm_ratelimit_new(1000, 1);
	unsigned wait = 0;
	int i;
	(void)state;

	/* At 1000 rps a token is back within 1 ms: Retry-After rounds up to 1. */
	for (i = 0; i < 100000 && wait == 0; i++)
		wait = tlm_ratelimit_take(rl, "10.0.0.1");
	assert_int_equal(wait, 1);
	tlm_ratelimit_free(rl);
	/* A very slow rate caps at a day. */
	rl = tlm_ratelimit_new(1e-9, 1);
	assert_int_equal(tlm_ratelimit_take(rl, "10.0.0.1"), 0);
	assert_int_equal(tlm_ratelimit_take(rl, "10.0.0.1"), 86400);
	tlm_ratelimit_free(rl);
	/* 3 rps: a third of a second, rounded up. */
	rl = tlm_ratelimit_new(3, 1);
	assert_int_equal(tlm_ratelimit_take(rl, "10.0.0.1"), 0);
	assert_int_equal(tlm_ratelimit_take(rl, "10.0.0.1"), 1);
	tlm_ratelimit_free(rl);
}

static void test_refill(void **state)
{
	tlm_ratelimit *rl = tlm_ratelimit_new(20, 2);
	(void)state;

	assert_int_equal(tlm_ratelimit_take(rl, "10.0.0.1"), 0);
	assert_int_equal(tlm_ratelimit_take(rl, "10.0.0.1"), 0);
	assert_int_not_equal(tlm_ratelimit_take(rl, "10.0.0.1"), 0);
	tlm_h_sleep_ms(150); /* 3 tokens' worth at 20 rps */
	assert_int_equal(tlm_ratelimit_take(rl, "10.0.0.1"), 0);
	/* Refill stops at burst, however long the client was away. */
	tlm_h_sleep_ms(300);
	assert_int_equal(tlm_ratelimit_take(rl, "10.0.0.1"), 0);
	assert_int_equal(tlm_ratelimit_take(rl, "10.0.0.1"), 0);
	assert_int_not_equal(tlm_ratelimit_take(rl, "10.0.0.1"), 0);
	tlm_ratelimit_free(rl);
}

static void test_separate_and_shared_buckets(void **state)
{
	tlm_ratelimit *rl = tlm_ratelimit_new(0.01, 1);
	(void)state;

	assert_int_equal(tlm_ratelimit_take(rl, "10.0.0.1"), 0);
	assert_int_not_equal(tlm_ratelimit_take(rl, "10.0.0.1"), 0);
	assert_int_equal(tlm_ratelimit_take(rl, "10.0.0.2"), 0);
	assert_int_equal(tlm_ratelimit_take(rl, "2001:db8::1"), 0);
	assert_int_not_equal(tlm_ratelimit_take(rl, "2001:db8::1"), 0);
	/* Every loopback address and notation is one client (docs/contract.md §3). */
	assert_int_equal(tlm_ratelimit_take(rl, "127.0.0.1"), 0);
	assert_int_not_equal(tlm_ratelimit_take(rl, "::1"), 0);
	assert_int_not_equal(tlm_ratelimit_take(rl, "127.0.0.2"), 0);
	assert_int_not_equal(tlm_ratelimit_take(rl, "::ffff:127.0.0.1"), 0);
	/* Odd input is a client like any other. */
	assert_int_equal(tlm_ratelimit_take(rl, NULL), 0);
	assert_int_not_equal(tlm_ratelimit_take(rl, ""), 0);
	tlm_ratelimit_free(rl);
}

static void test_long_client_strings(void **state)
{
	tlm_ratelimit *rl = tlm_ratelimit_new(0.01, 1);
	char a[200], b[200];
	(void)state;

	/* Truncated to 63 characters: two strings alike that far share a bucket. */
	memset(a, 'a', sizeof(a) - 1);
	a[sizeof(a) - 1] = '\0';
	memcpy(b, a, sizeof(b));
	b[150] = 'b';
	assert_int_equal(tlm_ratelimit_take(rl, a), 0);
	assert_int_not_equal(tlm_ratelimit_take(rl, b), 0);
	b[10] = 'b';
	assert_int_equal(tlm_ratelimit_take(rl, b), 0);
	tlm_ratelimit_free(rl);
}

static void client_name(char *buf, size_t size, int i)
{
	snprintf(buf, size, "10.%d.%d.%d", (i >> 16) & 255, (i >> 8) & 255, i & 255);
}

static void test_client_cap_evicts_least_recent(void **state)
{
	tlm_ratelimit *rl = tlm_ratelimit_new(0.001, 1);
	char name[32];
	int i;
	(void)state;

	for (i = 0; i < MAX_CLIENTS; i++) {
		client_name(name, sizeof(name), i);
		assert_int_equal(tlm_ratelimit_take(rl, name), 0);
	}
	/* Client 0 is still known (limited), and now the most recent. */
	client_name(name, sizeof(name), 0);
	assert_int_not_equal(tlm_ratelimit_take(rl, name), 0);
	/* One more client evicts the least recently seen: client 1. */
	client_name(name, sizeof(name), MAX_CLIENTS);
	assert_int_equal(tlm_ratelimit_take(rl, name), 0);
	client_name(name, sizeof(name), 1);
	assert_int_equal(tlm_ratelimit_take(rl, name), 0); /* a fresh bucket; evicts 2 */
	client_name(name, sizeof(name), 0);
	assert_int_not_equal(tlm_ratelimit_take(rl, name), 0);
	client_name(name, sizeof(name), MAX_CLIENTS);
	assert_int_not_equal(tlm_ratelimit_take(rl, name), 0);
	client_name(name, sizeof(name), 3);
	assert_int_not_equal(tlm_ratelimit_take(rl, name), 0); /* still known */
	client_name(name, sizeof(name), 2);
	assert_int_equal(tlm_ratelimit_take(rl, name), 0);
	/* Many times the cap cycles through the table without trouble. */
	for (i = 0; i < 10 * MAX_CLIENTS; i++) {
		client_name(name, sizeof(name), 100000 + i);
		assert_int_equal(tlm_ratelimit_take(rl, name), 0);
	}
	client_name(name, sizeof(name), 100000 + 10 * MAX_CLIENTS - 1);
	assert_int_not_equal(tlm_ratelimit_take(rl, name), 0);
	tlm_ratelimit_free(rl);
}

#define NTHREADS 4
#define NTAKES   10000

struct worker {
	tlm_ratelimit *rl;
	int id;
	long allowed;
};

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	char name[32];
	int i;

	for (i = 0; i < NTAKES; i++) {
		if (tlm_ratelimit_take(w->rl, "10.9.9.9") == 0)
			w->allowed++;
		/* Other clients, enough to evict, churn the table meanwhile. */
		client_name(name, sizeof(name), w->id * NTAKES + i);
		(void)tlm_ratelimit_take(w->rl, name);
	}
	return NULL;
}

static void test_threads(void **state)
{
	/* Refill is ~0 for the length of the test: exactly burst calls pass. */
	tlm_ratelimit *rl = tlm_ratelimit_new(1e-6, 1000);
	struct worker w[NTHREADS];
	pthread_t th[NTHREADS];
	long allowed = 0;
	int i;
	(void)state;

	for (i = 0; i < NTHREADS; i++) {
		w[i].rl = rl;
		w[i].id = i + 1;
		w[i].allowed = 0;
		assert_int_equal(pthread_create(&th[i], NULL, worker_main, &w[i]), 0);
	}
	for (i = 0; i < NTHREADS; i++) {
		assert_int_equal(pthread_join(th[i], NULL), 0);
		allowed += w[i].allowed;
	}
	assert_int_equal(allowed, 1000);
	tlm_ratelimit_free(rl);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_new_rejects_bad_rates),
		cmocka_unit_test(test_burst_then_limited),
		cmocka_unit_test(test_retry_after_at_least_one),
		cmocka_unit_test(test_refill),
		cmocka_unit_test(test_separate_and_shared_buckets),
		cmocka_unit_test(test_long_client_strings),
		cmocka_unit_test(test_client_cap_evicts_least_recent),
		cmocka_unit_test(test_threads),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
