/* Escaping for terminals (src/util/esc.h): what a hostile control plane or
 * spec could put in a name, an id or a message comes out inert, and valid
 * printable UTF-8 comes out as it went in. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "util/esc.h"

/* s through tlm_esc_fputs (into a memory stream); *width its return. */
static char *esc_file(const char *s, size_t max, size_t *width)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&buf, &len);

	assert_non_null(f);
	*width = max == SIZE_MAX ? tlm_esc_fputs(f, s) : tlm_esc_fputs_max(f, s, max);
	assert_int_equal(fclose(f), 0);
	return buf;
}

static void check(const char *in, const char *want, size_t want_width)
{
	char buf[256];
	size_t w;
	char *out = esc_file(in, SIZE_MAX, &w);

	assert_string_equal(out, want);
	assert_int_equal(w, want_width);
	assert_int_equal(tlm_esc_fputs(NULL, in), want_width);
	assert_int_equal(tlm_esc_str(buf, sizeof(buf), in, NULL), strlen(want));
	assert_string_equal(buf, want);
	free(out);
}

static void test_plain_and_utf8_kept(void **state)
{
	(void)state;
	check("tlm-ab12cd34-a-x", "tlm-ab12cd34-a-x", 16);
	check("", "", 0);
	check(NULL, "-", 1);
	check("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80",
	      "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", 8);
	check("back\\slash \"quoted\"", "back\\slash \"quoted\"", 19);
}

static void test_controls_escaped(void **state)
{
	(void)state;
	check("a\nrun x: completed\n", "a\\nrun x: completed\\n", 21);
	check("\t\r\b\x7f", "\\t\\x0d\\x08\\x7f", 14);
	check("\x1b[2J\x1b]0;owned\x07", "\\x1b[2J\\x1b]0;owned\\x07", 23);
	/* C1 controls, as UTF-8 (U+009B CSI) and as bare bytes */
	check("\xc2\x9b"
	      "31m",
	      "\\xc2\\x9b31m", 11);
	check("\x9b\x9d", "\\x9b\\x9d", 8);
	/* bidirectional override and line separator */
	check("\xe2\x80\xae"
	      "abc\xe2\x80\xa8",
	      "\\xe2\\x80\\xaeabc\\xe2\\x80\\xa8", 27);
}

static void test_invalid_utf8_escaped(void **state)
{
	(void)state;
	check("\xc3", "\\xc3", 4);                             /* cut short */
	check("\xc0\xaf", "\\xc0\\xaf", 8);                    /* overlong "/" */
	check("\xe0\x80\xaf", "\\xe0\\x80\\xaf", 12);          /* overlong */
	check("\xed\xa0\x80", "\\xed\\xa0\\x80", 12);          /* a surrogate */
	check("\xf4\x90\x80\x80", "\\xf4\\x90\\x80\\x80", 16); /* past U+10FFFF */
	check("\xff"
	      "a",
	      "\\xffa", 5);
}

static void test_cuts_never_split(void **state)
{
	char buf[8];
	size_t w;
	char *out;
	int cut = 0;

	(void)state;
	out = esc_file("ab\x1b"
		       "cd",
		       4, &w);
	assert_string_equal(out, "ab"); /* the escape (4 columns) does not fit */
	assert_int_equal(w, 2);
	free(out);
	out = esc_file("\xc3\xa9\xc3\xa9\xc3\xa9", 2, &w);
	assert_string_equal(out, "\xc3\xa9\xc3\xa9");
	assert_int_equal(w, 2);
	free(out);

	assert_int_equal(tlm_esc_str(buf, sizeof(buf), "abcd\x1b", &cut), 4);
	assert_true(cut);
	assert_string_equal(buf, "abcd");
	assert_int_equal(tlm_esc_str(buf, sizeof(buf), "abcdef\xc3\xa9", &cut), 6);
	assert_true(cut);
	assert_string_equal(buf, "abcdef");
	assert_int_equal(tlm_esc_str(buf, 1, "abc", &cut), 0);
	assert_string_equal(buf, "");
	assert_int_equal(tlm_esc_str(buf, sizeof(buf), "abc", &cut), 3);
	assert_false(cut);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_plain_and_utf8_kept),
		cmocka_unit_test(test_controls_escaped),
		cmocka_unit_test(test_invalid_utf8_escaped),
		cmocka_unit_test(test_cuts_never_split),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
