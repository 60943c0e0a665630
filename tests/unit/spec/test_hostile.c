/* Hostile and malformed YAML: rejected with a clear error, never a crash or
 * unbounded memory. */
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

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
}

static void on_alarm(int sig)
{
	(void)sig;
	/* A read that blocks is the bug: fail loudly rather than hang. */
	fprintf(stderr, "spec.hostile: the loader blocked on a FIFO\n");
	_exit(1);
}

/* Only regular files are read: a FIFO with no writer used to block forever,
 * a device could stream without end. */
static void test_not_a_file(void **state)
{
	char dir[] = "/tmp/tlm-spec-XXXXXX", fifo[64];
	tlm_diags d = TLM_DIAGS_INIT;
	tlm_error err = TLM_ERROR_INIT;
	tlm_spec *spec = NULL;
	char *text = NULL;
	size_t len;
	(void)state;

	assert_non_null(mkdtemp(dir));
	snprintf(fifo, sizeof(fifo), "%s/w.yaml", dir);
	assert_int_equal(mkfifo(fifo, 0600), 0);
	signal(SIGALRM, on_alarm);
	alarm(10);
	assert_int_equal(tlm_spec_load(&spec, fifo, &d, &err), TLM_ERROR);
	assert_non_null(strstr(err.message, "w.yaml: is a FIFO, not a regular file"));
	assert_int_equal(tlm_spec_read(&text, &len, fifo, &err), TLM_ERROR);
	assert_null(text);
	alarm(0);
	assert_int_equal(tlm_spec_load(&spec, "/", &d, &err), TLM_ERROR);
	assert_non_null(strstr(err.message, "/: is a directory, not a regular file"));
	assert_int_equal(tlm_spec_load(&spec, "/dev/null", &d, &err), TLM_ERROR);
	assert_non_null(strstr(err.message, "is a character device"));
	assert_null(spec);
	assert_int_equal(d.count, 0);
	unlink(fifo);
	rmdir(dir);
}

/* The size comes from fstat: a file over the cap is refused unread. */
static void test_too_big_file(void **state)
{
	char path[] = "/tmp/tlm-spec-XXXXXX";
	tlm_error err = TLM_ERROR_INIT;
	char *text = NULL;
	size_t len;
	int fd = mkstemp(path);
	(void)state;

	assert_true(fd >= 0);
	assert_int_equal(ftruncate(fd, (off_t)TLM_SPEC_MAX_BYTES + 1), 0); /* sparse */
	close(fd);
	assert_int_equal(tlm_spec_read(&text, &len, path, &err), TLM_ETOOBIG);
	assert_non_null(strstr(err.message, "larger than the 64 MiB limit"));
	assert_null(text);
	unlink(path);
}

static void test_read_text(void **state)
{
	char path[] = "/tmp/tlm-spec-XXXXXX";
	tlm_error err = TLM_ERROR_INIT;
	char *text = NULL;
	size_t len = 0;
	int fd = mkstemp(path);
	(void)state;

	assert_true(fd >= 0);
	assert_int_equal(write(fd, SPEC_HEAD, strlen(SPEC_HEAD)), (ssize_t)strlen(SPEC_HEAD));
	close(fd);
	assert_int_equal(tlm_spec_read(&text, &len, path, &err), 0);
	assert_int_equal(len, strlen(SPEC_HEAD));
	assert_string_equal(text, SPEC_HEAD); /* NUL-terminated */
	free(text);
	unlink(path);
}

/* Appends character c as a width-byte unit, little or big endian. */
static size_t put_unit(char *out, size_t n, unsigned c, int width, int big)
{
	int i;

	for (i = 0; i < width; i++)
		out[n + (size_t)(big ? width - 1 - i : i)] = (char)((c >> (8 * i)) & 0xFF);
	return n + (size_t)width;
}

/* SPEC_HEAD in UTF-16 or UTF-32 (width 2 or 4), little or big endian, with
 * or without a byte order mark, into out; returns its length. */
static size_t encode(char *out, int width, int big, int bom)
{
	const char *s;
	size_t n = 0;

	if (bom)
		n = put_unit(out, n, 0xFEFF, width, big);
	for (s = SPEC_HEAD; *s; s++)
		n = put_unit(out, n, (unsigned char)*s, width, big);
	return n;
}

/* Not UTF-8: refused with one clear error, never read through libyaml's own
 * UTF-16 decoding (which used to accept a UTF-16 file with a BOM). */
static void test_encodings(void **state)
{
	static const struct {
		int width, big, bom;
		const char *name;
	} cases[] = {
		{ 2, 0, 1, "UTF-16LE (its byte order mark" }, { 2, 1, 1, "UTF-16BE (its byte" },
		{ 4, 0, 1, "UTF-32LE (its byte order mark" }, { 4, 1, 1, "UTF-32BE (its byte" },
		{ 2, 0, 0, "UTF-16LE (it starts with NUL" },  { 2, 1, 0, "UTF-16BE (it starts" },
		{ 4, 0, 0, "UTF-32LE (it starts with NUL" },  { 4, 1, 0, "UTF-32BE (it starts" },
	};
	char buf[512];
	size_t i, n;
	(void)state;

	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		tlm_diags d = TLM_DIAGS_INIT;
		tlm_error err = TLM_ERROR_INIT;
		tlm_spec *spec = NULL;

		n = encode(buf, cases[i].width, cases[i].big, cases[i].bom);
		assert_int_equal(tlm_spec_parse(&spec, "w.yaml", buf, n, &d, &err), TLM_EINVALID);
		assert_null(spec);
		assert_int_equal(d.count, 1);
		assert_diag(&d, 0, 0, "yaml-encoding", cases[i].name);
		assert_diag(&d, 0, 0, "yaml-encoding", "a workflow must be UTF-8");
		tlm_diags_clear(&d);
	}
	/* UTF-8 with a byte order mark is UTF-8. */
	{
		tlm_diags d = TLM_DIAGS_INIT;
		tlm_spec *spec = NULL;

		assert_int_equal(parse_yaml("\xEF\xBB\xBF" SPEC_HEAD, &spec, &d), 0);
		assert_string_equal(spec->name, "wf");
		tlm_spec_free(spec);
	}
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

/* FNV-1a, the hash strmap used to have, on the low `bits` bits only: they
 * depend on nothing else, which is what makes collisions cheap to craft. */
#define FLOOD_BITS 20
#define FLOOD_MASK ((1u << FLOOD_BITS) - 1)
#define FNV_PRIME  1099511628211ull

static const char flood_chars[] = "abcdefghijklmnopqrstuvwxyz0123456789";

static uint32_t fnv_step(uint32_t h, char c)
{
	return (uint32_t)(((uint64_t)(h ^ (unsigned char)c) * FNV_PRIME) & FLOOD_MASK);
}

/* n distinct agent names whose FNV-1a hashes share their low 20 bits, so
 * they all land in one run of a table of up to 2^20 slots: two free
 * characters reach one of the states from which two more characters reach
 * hash 0.  Writes "  - {name: ...}\n" lines to out. */
static size_t colliding_agents(char *out, size_t n)
{
	uint64_t inv = FNV_PRIME;
	uint16_t *last = malloc(sizeof(uint16_t) << FLOOD_BITS); /* state -> c3,c4 + 1 */
	size_t len = 0, made = 0, i, j, k;
	int round;

	assert_non_null(last);
	memset(last, 0, sizeof(uint16_t) << FLOOD_BITS);
	for (round = 0; round < 6; round++) /* Newton: inv = FNV_PRIME^-1 mod 2^64 */
		inv *= 2 - FNV_PRIME * inv;
	/* step(x, c4) == 0 iff x == c4, and step(s, c3) == c4 iff
	 * s == (c4 * FNV_PRIME^-1) ^ c3. */
	for (j = 0; j < 36; j++)
		for (k = 0; k < 36; k++) {
			uint32_t s =
				(uint32_t)(((unsigned char)flood_chars[k] * inv) & FLOOD_MASK) ^
				(unsigned char)flood_chars[j];

			last[s] = (uint16_t)(j * 36 + k + 1);
		}
	for (i = 0; made < n; i++) {
		char prefix[16];
		uint32_t h = (uint32_t)(1469598103934665603ull & FLOOD_MASK), h1;
		int plen = snprintf(prefix, sizeof(prefix), "n%zx", i), p;

		for (p = 0; p < plen; p++)
			h = fnv_step(h, prefix[p]);
		for (j = 0; j < 36 * 36; j++) {
			h1 = fnv_step(fnv_step(h, flood_chars[j / 36]), flood_chars[j % 36]);
			if (last[h1] != 0)
				break;
		}
		if (j == 36 * 36)
			continue;
		k = last[h1] - 1u;
		len += (size_t)sprintf(out + len, "  - {name: %s%c%c%c%c}\n", prefix,
				       flood_chars[j / 36], flood_chars[j % 36],
				       flood_chars[k / 36], flood_chars[k % 36]);
		made++;
	}
	free(last);
	return len;
}

static double parse_seconds(const char *yaml, size_t nagents)
{
	tlm_diags d = TLM_DIAGS_INIT;
	tlm_spec *spec = NULL;
	struct timespec t0, t1;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t0);
	assert_int_equal(parse_yaml(yaml, &spec, &d), 0);
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t1);
	assert_int_equal(spec->nagents, nagents);
	tlm_spec_free(spec);
	tlm_diags_clear(&d);
	return (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
}

/* Names crafted to collide in a fixed hash made each insertion walk one long
 * run of the table: quadratic, a hang for a big file.  Under a keyed hash
 * they cost what ordinary names do.  Times are compared, not measured
 * against a clock, so the test holds under valgrind and the sanitizers. */
static void test_hash_flood(void **state)
{
	const size_t n = 20000;
	char *crafted = malloc(64 + n * 40), *plain = malloc(64 + n * 40);
	const char *name, *p;
	size_t len, i;
	double t_crafted, t_plain;
	uint32_t h;
	(void)state;

	assert_non_null(crafted);
	assert_non_null(plain);
	len = (size_t)sprintf(crafted, SPEC_HEAD "agents:\n");
	colliding_agents(crafted + len, n);
	/* The generator is right: every name hashes to 0 in the low bits. */
	for (i = 0, name = crafted; i < 3; i++) {
		name = strstr(name, "{name: ") + 7;
		for (h = (uint32_t)(1469598103934665603ull & FLOOD_MASK), p = name; *p != '}'; p++)
			h = fnv_step(h, *p);
		assert_int_equal(h, 0);
	}
	len = (size_t)sprintf(plain, SPEC_HEAD "agents:\n");
	for (i = 0; i < n; i++)
		len += (size_t)sprintf(plain + len, "  - {name: n%zxaaaa}\n", i);
	t_plain = parse_seconds(plain, n);
	t_crafted = parse_seconds(crafted, n);
	if (t_crafted > 5 * t_plain + 0.05) {
		print_message("crafted names: %.3f s, plain names: %.3f s\n", t_crafted, t_plain);
		fail();
	}
	free(crafted);
	free(plain);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_alias_refused),  cmocka_unit_test(test_billion_laughs),
		cmocka_unit_test(test_depth_capped),   cmocka_unit_test(test_multiple_documents),
		cmocka_unit_test(test_invalid_utf8),   cmocka_unit_test(test_syntax_error),
		cmocka_unit_test(test_empty_and_null), cmocka_unit_test(test_embedded_nul),
		cmocka_unit_test(test_too_big),        cmocka_unit_test(test_missing_file),
		cmocka_unit_test(test_garbage),        cmocka_unit_test(test_hash_flood),
		cmocka_unit_test(test_not_a_file),     cmocka_unit_test(test_too_big_file),
		cmocka_unit_test(test_read_text),      cmocka_unit_test(test_encodings),
	};

	return cmocka_run_group_tests_name("spec.hostile", tests, NULL, NULL);
}
