/* tlm_utc_now: the one time format of logs, audit records and journal rows. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <cmocka.h>

#include "util/clock.h"

/* "YYYY-MM-DDTHH:MM:SS.mmmZ", and within a second of the clock. */
static void check_shape(const char *s)
{
	struct tm tm;
	time_t t, now = time(NULL);
	const char *rest;
	size_t i;

	assert_int_equal(strlen(s), 24);
	for (i = 0; i < 24; i++) {
		const char *sep = strchr("--T::.", s[i]);

		if (i == 4 || i == 7 || i == 10 || i == 13 || i == 16 || i == 19)
			assert_true(sep != NULL && s[i] != '\0');
		else if (i == 23)
			assert_int_equal(s[i], 'Z');
		else
			assert_true(s[i] >= '0' && s[i] <= '9');
	}
	memset(&tm, 0, sizeof(tm));
	rest = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
	assert_non_null(rest);
	assert_int_equal(*rest, '.');
	t = timegm(&tm);
	assert_true(t >= now - 2 && t <= now + 2);
}

static void test_format(void **state)
{
	char a[TLM_UTC_NOW_MAX], b[TLM_UTC_NOW_MAX], last[TLM_UTC_NOW_MAX] = "";
	struct timespec pause = { 0, 3 * 1000 * 1000 };
	int i;
	(void)state;

	/* Many calls across more than one second: each well formed, never
	 * going back (the kept seconds are renewed when the second changes). */
	for (i = 0; i < 400; i++) {
		tlm_utc_now(a, sizeof(a));
		check_shape(a);
		assert_true(strcmp(a, last) >= 0);
		memcpy(last, a, sizeof(last));
		nanosleep(&pause, NULL);
	}
	/* A short buffer gets a cut, terminated string. */
	tlm_utc_now(b, 11);
	assert_int_equal(strlen(b), 10);
	assert_memory_equal(b, last, 4);
	tlm_utc_now(b, 1);
	assert_string_equal(b, "");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_format),
	};

	return cmocka_run_group_tests_name("util.clock", tests, NULL, NULL);
}
