/* The audit log file: records chained by hash, verify naming the first bad
 * line for each kind of tampering (an edited field, a deleted line, two
 * lines swapped, a truncated last line), appends refusing to chain onto a
 * damaged end, the file's safety checks, and two processes appending at
 * once without forking the chain. */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness/harness.h"
#include "telemachy/auditlog.h"

#define ZEROS  "0000000000000000000000000000000000000000000000000000000000000000"
#define NLINES 8

typedef struct lines {
	char *text[NLINES]; /* each with its newline */
	int n;
} lines;

static char *path_in(const char *dir, const char *name)
{
	size_t n = strlen(dir) + strlen(name) + 2;
	char *p = malloc(n);

	assert_non_null(p);
	snprintf(p, n, "%s/%s", dir, name);
	return p;
}

static void append(tlm_auditlog *a, const char *from, const char *to)
{
	tlm_auditlog_event ev = { "abcd1234", "demo", "run", "abcd1234",
				  from,       to,     NULL,  "a \"quoted\" détail" };
	tlm_error err = TLM_ERROR_INIT;

	assert_int_equal(tlm_auditlog_append(a, &ev, &err), 0);
}

/* A fresh log at path with three records: pending, provisioning, running. */
static void write_three(const char *path)
{
	tlm_auditlog *a = NULL;
	tlm_error err = TLM_ERROR_INIT;

	unlink(path);
	assert_int_equal(tlm_auditlog_open(&a, path, &err), 0);
	append(a, NULL, "pending");
	append(a, "pending", "provisioning");
	append(a, "provisioning", "running");
	tlm_auditlog_free(a);
}

static void read_lines(const char *path, lines *l)
{
	char buf[8192];
	FILE *f = fopen(path, "r");

	assert_non_null(f);
	memset(l, 0, sizeof(*l));
	while (l->n < NLINES && fgets(buf, sizeof(buf), f) != NULL)
		assert_non_null(l->text[l->n++] = strdup(buf));
	fclose(f);
}

static void write_lines(const char *path, const lines *l)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	for (int i = 0; i < l->n; i++)
		if (l->text[i] != NULL)
			fputs(l->text[i], f);
	fclose(f);
}

static void free_lines(lines *l)
{
	for (int i = 0; i < NLINES; i++)
		free(l->text[i]);
}

static void expect_flaw(const char *path, long line, tlm_auditlog_flaw flaw, const char *why)
{
	tlm_auditlog_report r;
	tlm_error err = TLM_ERROR_INIT;

	assert_int_equal(tlm_auditlog_verify(path, &r, &err), 0);
	assert_int_equal(r.flaw, flaw);
	assert_int_equal(r.line, line);
	assert_int_equal(r.records, line - 1);
	assert_non_null(strstr(r.why, why));
}

static void test_three_records_intact(void **state)
{
	char *tmp = tlm_h_tmpdir(), *path = path_in(tmp, "audit.jsonl");
	tlm_auditlog_report r;
	tlm_error err = TLM_ERROR_INIT;
	struct stat st;
	lines l;
	(void)state;

	write_three(path);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	assert_int_equal(tlm_auditlog_verify(path, &r, &err), 0);
	assert_int_equal(r.flaw, TLM_AUDITLOG_INTACT);
	assert_int_equal(r.records, 3);
	assert_int_equal(r.line, 0);
	read_lines(path, &l);
	assert_int_equal(l.n, 3);
	/* the first record's prev is zeros; each next prev the hash before */
	assert_non_null(strstr(l.text[0], "\"prev\":\"" ZEROS "\""));
	assert_non_null(strstr(l.text[2], r.last_hash));
	assert_non_null(strstr(l.text[0], "\"actor\":{\"host\":"));
	assert_non_null(strstr(l.text[0], "\"time\":\""));
	free_lines(&l);
	free(path);
	tlm_h_rmrf(tmp);
	free(tmp);
}

static void test_edited_field(void **state)
{
	char *tmp = tlm_h_tmpdir(), *path = path_in(tmp, "audit.jsonl"), *p;
	lines l;
	(void)state;

	write_three(path);
	read_lines(path, &l);
	p = strstr(l.text[1], "\"to\":\"provisioning\"");
	assert_non_null(p);
	memcpy(p + 6, "PROVISIONING", 12);
	write_lines(path, &l);
	expect_flaw(path, 2, TLM_AUDITLOG_BAD_HASH, "hash does not match its record (edited?)");
	free_lines(&l);
	free(path);
	tlm_h_rmrf(tmp);
	free(tmp);
}

static void test_deleted_line(void **state)
{
	char *tmp = tlm_h_tmpdir(), *path = path_in(tmp, "audit.jsonl");
	lines l;
	(void)state;

	write_three(path);
	read_lines(path, &l);
	free(l.text[1]);
	l.text[1] = NULL;
	write_lines(path, &l);
	expect_flaw(path, 2, TLM_AUDITLOG_BAD_PREV,
		    "prev does not match line 1's hash (a line deleted or reordered?)");
	/* the first line deleted: its successor's prev is not zeros */
	write_three(path);
	free_lines(&l);
	read_lines(path, &l);
	free(l.text[0]);
	l.text[0] = NULL;
	write_lines(path, &l);
	expect_flaw(path, 1, TLM_AUDITLOG_BAD_PREV, "not 64 zeros");
	free_lines(&l);
	free(path);
	tlm_h_rmrf(tmp);
	free(tmp);
}

static void test_swapped_lines(void **state)
{
	char *tmp = tlm_h_tmpdir(), *path = path_in(tmp, "audit.jsonl"), *t;
	lines l;
	(void)state;

	write_three(path);
	read_lines(path, &l);
	t = l.text[1];
	l.text[1] = l.text[2];
	l.text[2] = t;
	write_lines(path, &l);
	expect_flaw(path, 2, TLM_AUDITLOG_BAD_PREV, "prev does not match line 1's hash");
	free_lines(&l);
	free(path);
	tlm_h_rmrf(tmp);
	free(tmp);
}

static void test_truncated_last_line(void **state)
{
	char *tmp = tlm_h_tmpdir(), *path = path_in(tmp, "audit.jsonl");
	tlm_auditlog *a = NULL;
	tlm_auditlog_event ev = { NULL, NULL, "action", NULL, NULL, NULL, "x", NULL };
	tlm_error err = TLM_ERROR_INIT;
	struct stat st;
	(void)state;

	write_three(path);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(truncate(path, st.st_size - 20), 0);
	expect_flaw(path, 3, TLM_AUDITLOG_NOT_RECORD, "not a JSON record");
	/* nothing may chain onto it: refused at open already */
	assert_int_equal(tlm_auditlog_open(&a, path, &err), TLM_EINVALID);
	assert_null(a);
	assert_non_null(strstr(err.message, "the audit log's last line is not a record"));
	assert_non_null(strstr(err.message, "telemachy audit verify"));
	assert_non_null(strstr(err.message, path));
	/* and by an append, when the damage came after the open */
	write_three(path);
	assert_int_equal(tlm_auditlog_open(&a, path, &err), 0);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(truncate(path, st.st_size - 20), 0);
	assert_int_equal(tlm_auditlog_append(a, &ev, &err), TLM_EINVALID);
	assert_non_null(strstr(err.message, "the audit log's last line is not a record"));
	tlm_auditlog_free(a);
	/* only the newline cut: a torn write */
	write_three(path);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(truncate(path, st.st_size - 1), 0);
	expect_flaw(path, 3, TLM_AUDITLOG_TORN, "no newline at the end");
	free(path);
	tlm_h_rmrf(tmp);
	free(tmp);
}

static void test_not_json_and_too_long(void **state)
{
	char *tmp = tlm_h_tmpdir(), *path = path_in(tmp, "audit.jsonl");
	tlm_auditlog *a = NULL;
	tlm_error err = TLM_ERROR_INIT;
	FILE *f;
	(void)state;

	write_three(path);
	assert_non_null(f = fopen(path, "a"));
	fputs("{\"prev\":\"nope\"}\n", f);
	fclose(f);
	expect_flaw(path, 4, TLM_AUDITLOG_NOT_RECORD, "no well-formed prev and hash");
	write_three(path);
	assert_non_null(f = fopen(path, "a"));
	for (int i = 0; i < TLM_AUDITLOG_LINE_MAX + 10; i++)
		fputc('x', f);
	fputc('\n', f);
	fclose(f);
	expect_flaw(path, 4, TLM_AUDITLOG_TOO_LONG, "longer than 64 KiB");
	assert_int_equal(tlm_auditlog_open(&a, path, &err), TLM_EINVALID);
	assert_non_null(strstr(err.message, "longer than 64 KiB"));
	free(path);
	tlm_h_rmrf(tmp);
	free(tmp);
}

static void test_open_refuses_symlink_and_dir(void **state)
{
	char *tmp = tlm_h_tmpdir(), *path = path_in(tmp, "audit.jsonl"),
	     *link = path_in(tmp, "link");
	tlm_auditlog *a = NULL;
	tlm_auditlog_report r;
	tlm_error err = TLM_ERROR_INIT;
	(void)state;

	write_three(path);
	assert_int_equal(symlink(path, link), 0);
	assert_int_equal(tlm_auditlog_open(&a, link, &err), TLM_EINVALID);
	assert_null(a);
	assert_non_null(strstr(err.message, link));
	assert_non_null(strstr(err.message, "symlink"));
	assert_int_equal(tlm_auditlog_open(&a, tmp, &err), TLM_EINVALID);
	assert_non_null(strstr(err.message, tmp));
	assert_int_equal(tlm_auditlog_open(&a, "", &err), TLM_EINVALID);
	free(link);
	link = path_in(tmp, "missing");
	assert_int_equal(tlm_auditlog_verify(link, &r, &err), TLM_ENOTFOUND);
	free(link);
	free(path);
	tlm_h_rmrf(tmp);
	free(tmp);
}

#define PER_WRITER 100

/* Two processes, each with its own handle, appending at once: the lock
 * keeps the chain one line after another, never forked or interleaved. */
static void test_two_writers(void **state)
{
	char *tmp = tlm_h_tmpdir(), *path = path_in(tmp, "audit.jsonl");
	tlm_auditlog_report r;
	tlm_error err = TLM_ERROR_INIT;
	pid_t kids[2];
	(void)state;

	for (int k = 0; k < 2; k++) {
		kids[k] = fork();
		assert_true(kids[k] >= 0);
		if (kids[k] == 0) {
			tlm_auditlog *a = NULL;
			int bad = tlm_auditlog_open(&a, path, &err) != 0;

			for (int i = 0; i < PER_WRITER && !bad; i++) {
				tlm_auditlog_event ev = { NULL, NULL, "action",      NULL,
							  NULL, NULL, k ? "b" : "a", NULL };

				bad = tlm_auditlog_append(a, &ev, &err) != 0;
			}
			tlm_auditlog_free(a);
			/* The child's copies: valgrind checks its leaks too. */
			free(path);
			free(tmp);
			_exit(bad);
		}
	}
	for (int k = 0; k < 2; k++) {
		int status = 0;

		assert_int_equal(waitpid(kids[k], &status, 0), kids[k]);
		assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	}
	assert_int_equal(tlm_auditlog_verify(path, &r, &err), 0);
	assert_int_equal(r.flaw, TLM_AUDITLOG_INTACT);
	assert_int_equal(r.records, 2 * PER_WRITER);
	free(path);
	tlm_h_rmrf(tmp);
	free(tmp);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_three_records_intact),
		cmocka_unit_test(test_edited_field),
		cmocka_unit_test(test_deleted_line),
		cmocka_unit_test(test_swapped_lines),
		cmocka_unit_test(test_truncated_last_line),
		cmocka_unit_test(test_not_json_and_too_long),
		cmocka_unit_test(test_open_refuses_symlink_and_dir),
		cmocka_unit_test(test_two_writers),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
