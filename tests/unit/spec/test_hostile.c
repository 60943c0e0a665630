/* Hostile and malformed YAML: rejected with a clear error, never a crash or
 * unbounded memory. */
#include <stdlib.h>

#include "unit/spec_helpers.h"

static void test_alias_refused(void **state)
{
	tlm_diags d = TLM_DIAGS_INIT;
	(void)state;

	expect_errors(SPEC_HEAD "agents:\n  - &a {name: x}\n  - *a\n", 1, &d);
	assert_diag(&d, 6, 5, "yaml-alias", "YAML aliases (*a) are not supported");
	tlm_diags_clear(&d);
}

/* The classic "billion laughs": refused at the first alias, so memory stays
 * proportional to the input. */
static void test_billion_laughs(void **state)
{
	tlm_diags d = TLM_DIAGS_INIT;
	const char *yaml =
		"a: &a [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n"
		"b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]\n"
		"c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]\n"
		"d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]\n"
		"e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]\n"
		"f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]\n"
		"g: &g [*f,*f,*f,*f,*f,*f,*f,*f,*f]\n"
		"h: &h [*g,*g,*g,*g,*g,*g,*g,*g,*g]\n"
		"i: &i [*h,*h,*h,*h,*h,*h,*h,*h,*h]\n";
	(void)state;

	expect_errors(yaml, 1, &d);
	assert_diag(&d, 2, 8, "yaml-alias", "aliases (*a)");
	tlm_diags_clear(&d);
}

static void test_depth_capped(void **state)
{
	tlm_diags d = TLM_DIAGS_INIT;
	char yaml[512];
	int i, n = 0;
	(void)state;

	for (i = 0; i < 100; i++)
		yaml[n++] = '[';
	for (i = 0; i < 100; i++)
		yaml[n++] = ']';
	yaml[n] = '\0';
	expect_errors(yaml, 1, &d);
	assert_diag(&d, 1, TLM_SPEC_MAX_DEPTH + 1, "yaml-depth", "nested more than 64 deep");
	tlm_diags_clear(&d);
}

static void test_multiple_documents(void **state)
{
	tlm_diags d = TLM_DIAGS_INIT;
	(void)state;

	expect_errors(SPEC_HEAD "---\n" SPEC_HEAD, 1, &d);
	assert_diag(&d, 4, 1, "yaml-multiple-documents", "one YAML document");
	tlm_diags_clear(&d);
}

static void test_invalid_utf8(void **state)
{
	tlm_diags d = TLM_DIAGS_INIT;
	(void)state;

	expect_errors(SPEC_HEAD "  description: \"caf\xc3\x28\"\n", 1, &d);
	assert_diag(&d, 4, 21, "yaml-syntax", "invalid trailing UTF-8 octet");
	tlm_diags_clear(&d);
}

static void test_syntax_error(void **state)
{
	tlm_diags d = TLM_DIAGS_INIT;
	(void)state;

	expect_errors(SPEC_HEAD "agents: [unclosed\n", 1, &d);
	assert_diag(&d, 5, 1, "yaml-syntax", "flow sequence");
	tlm_diags_clear(&d);
	expect_errors("a: b: c\n", 1, &d);
	assert_diag(&d, 1, 5, "yaml-syntax", "mapping values are not allowed");
	tlm_diags_clear(&d);
}

static void test_empty_and_null(void **state)
{
	tlm_diags d = TLM_DIAGS_INIT;
	(void)state;

	expect_errors("", 1, &d);
	assert_diag(&d, 0, 0, "required", "the file is empty");
	tlm_diags_clear(&d);
	expect_errors("~\n", 1, &d);
	assert_diag(&d, 1, 1, "required", "the file is empty");
	tlm_diags_clear(&d);
	expect_errors("# only a comment\n", 1, &d);
	tlm_diags_clear(&d);
	/* An empty first collection (found by fuzzing: UB on a NULL stack). */
	expect_errors("{}", 2, &d);
	assert_diag(&d, 1, 1, "required", "missing required key \"apiVersion\"");
	tlm_diags_clear(&d);
	expect_errors("[]", 1, &d);
	assert_diag(&d, 1, 1, "type", "the workflow must be a map, got a list");
	tlm_diags_clear(&d);
}

static void test_embedded_nul(void **state)
{
	tlm_diags d = TLM_DIAGS_INIT;
	(void)state;

	expect_errors(SPEC_HEAD "  description: \"a\\0b\"\n", 1, &d);
	assert_diag(&d, 4, 16, "yaml-syntax", "NUL character");
	tlm_diags_clear(&d);
}

static void test_too_big(void **state)
{
	tlm_diags d = TLM_DIAGS_INIT;
	tlm_error err = TLM_ERROR_INIT;
	tlm_spec *spec = NULL;
	(void)state;

	/* The cap is checked before parsing: no buffer of that size is needed. */
	assert_int_equal(tlm_spec_parse(&spec, "big.yaml", "", TLM_SPEC_MAX_BYTES + 1, &d, &err),
			 TLM_ETOOBIG);
	assert_non_null(strstr(err.message, "larger than the 64 MiB limit"));
	assert_null(spec);
}

static void test_missing_file(void **state)
{
	tlm_diags d = TLM_DIAGS_INIT;
	tlm_error err = TLM_ERROR_INIT;
	tlm_spec *spec = NULL;
	(void)state;

	assert_int_equal(tlm_spec_load(&spec, "/nonexistent/x.yaml", &d, &err), TLM_ENOTFOUND);
	assert_non_null(strstr(err.message, "/nonexistent/x.yaml: cannot open"));
	assert_int_equal(tlm_spec_load(&spec, "/", &d, &err), TLM_ERROR);
	assert_non_null(strstr(err.message, "Is a directory"));
}

/* Random bytes: whatever the loader says, it must say it cleanly. */
static void test_garbage(void **state)
{
	char buf[4096];
	unsigned seed = 12345;
	int round;
	(void)state;

	for (round = 0; round < 200; round++) {
		tlm_diags d = TLM_DIAGS_INIT;
		tlm_spec *spec = NULL;
		size_t i, n = (size_t)(round * 20);

		for (i = 0; i < n; i++) {
			seed = seed * 1103515245u + 12345u;
			buf[i] = "ab: -[]{}&*!|>'\"%@`#,?\n\t\x01\xc3\xa9"[(seed >> 16) % 28];
		}
		buf[n] = '\0';
		(void)parse_yaml(buf, &spec, &d);
		tlm_spec_free(spec);
		tlm_diags_clear(&d);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_alias_refused),  cmocka_unit_test(test_billion_laughs),
		cmocka_unit_test(test_depth_capped),   cmocka_unit_test(test_multiple_documents),
		cmocka_unit_test(test_invalid_utf8),   cmocka_unit_test(test_syntax_error),
		cmocka_unit_test(test_empty_and_null), cmocka_unit_test(test_embedded_nul),
		cmocka_unit_test(test_too_big),        cmocka_unit_test(test_missing_file),
		cmocka_unit_test(test_garbage),
	};

	return cmocka_run_group_tests_name("spec.hostile", tests, NULL, NULL);
}
