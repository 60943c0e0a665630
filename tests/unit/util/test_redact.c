/* URLs are printed without their credentials (src/util/redact.c). */
#include <string.h>

#include "harness/harness.h"
#include "util/redact.h"

static void check(const char *url, const char *want)
{
	char out[256];

	tlm_redact_url(out, sizeof(out), url);
	if (strcmp(out, want) != 0)
		fail_msg("%s -> %s, want %s", url, out, want);
}

static void test_redact(void **state)
{
	char small[8];

	(void)state;
	check("http://127.0.0.1:8080", "http://127.0.0.1:8080");
	check("https://user:pa55@cp.example.org/base", "https://***@cp.example.org/base");
	check("https://token@cp.example.org", "https://***@cp.example.org");
	check("http://h/?key=s3cret&x=1", "http://h/?key=***&x=***");
	check("http://h/?flag&key=s3cret#frag", "http://h/?flag&key=***");
	check("http://u:p@h:1/p?k=v", "http://***@h:1/p?k=***");
	check("user:pw@host", "***@host"); /* no scheme: still hidden */
	check("", "");
	tlm_redact_url(small, sizeof(small), "http://user:pass@host");
	assert_int_equal(strlen(small), 7);
	assert_null(strstr(small, "pass"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_redact),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
