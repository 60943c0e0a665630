/* The arena and the string map under the spec loader. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <cmocka.h>

#include "util/arena.h"
#include "util/strmap.h"

static void test_arena_alignment_and_zeroing(void **state)
{
	tlm_arena *a = tlm_arena_new();
	size_t i;
	(void)state;

	assert_non_null(a);
	for (i = 0; i < 10000; i++) {
		char *s = tlm_arena_strndup(a, "abc", (size_t)(i % 3));
		uint64_t *p = tlm_arena_alloc(a, sizeof(uint64_t) * 3);

		assert_non_null(s);
		assert_int_equal(strlen(s), i % 3);
		assert_non_null(p);
		assert_int_equal((uintptr_t)p % sizeof(void *), 0);
		assert_int_equal(p[0] | p[1] | p[2], 0);
		p[0] = p[1] = p[2] = UINT64_MAX;
	}
	tlm_arena_free(a);
	tlm_arena_free(NULL);
}

static void test_arena_large_blocks(void **state)
{
	tlm_arena *a = tlm_arena_new();
	char *small1, *big, *small2;
	(void)state;

	small1 = tlm_arena_alloc(a, 16);
	big = tlm_arena_alloc(a, 1 << 20);
	small2 = tlm_arena_alloc(a, 16);
	assert_non_null(big);
	memset(big, 7, 1 << 20);
	/* The big block sits behind the current one: small allocations keep
	 * filling the current block. */
	assert_true(small2 > small1 && small2 - small1 < 1024);
	assert_int_equal(small2[0], 0);
	assert_null(tlm_arena_calloc(a, SIZE_MAX / 2, 4));
	assert_true(tlm_arena_used(a) >= (1 << 20) + 32);
	tlm_arena_free(a);
}

static void test_strmap(void **state)
{
	tlm_strmap m = TLM_STRMAP_INIT;
	char keys[5000][16];
	size_t i, v;
	(void)state;

	assert_int_equal(tlm_strmap_get(&m, "x", &v), -1);
	for (i = 0; i < 5000; i++) {
		snprintf(keys[i], sizeof(keys[i]), "k%zu", i);
		assert_int_equal(tlm_strmap_put(&m, keys[i], i, NULL), 0);
	}
	assert_int_equal(m.count, 5000);
	for (i = 0; i < 5000; i++) {
		assert_int_equal(tlm_strmap_get(&m, keys[i], &v), 0);
		assert_int_equal(v, i);
	}
	assert_int_equal(tlm_strmap_put(&m, "k42", 99, &v), 1);
	assert_int_equal(v, 42);
	assert_int_equal(tlm_strmap_get(&m, "k5000", &v), -1);
	tlm_strmap_clear(&m);
	assert_int_equal(m.count, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_arena_alignment_and_zeroing),
		cmocka_unit_test(test_arena_large_blocks),
		cmocka_unit_test(test_strmap),
	};

	return cmocka_run_group_tests_name("util.containers", tests, NULL, NULL);
}
