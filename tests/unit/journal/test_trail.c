/* The journal's audit-log hook (src/journal/trail.c): each state-changing
 * call appends one record after its commit (run states, resources, task
 * attempts, takeovers, cancel requests, audit entries), with the run id and
 * the workflow; a failed append fails the call, naming the file; the
 * process-wide default is attached by every open. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness/harness.h"
#include "telemachy/auditlog.h"
#include "telemachy/journal.h"

#define SPEC "apiVersion: telemachy/v1\nmetadata:\n  name: demo\n"

static char *path_in(const char *dir, const char *name)
{
	size_t n = strlen(dir) + strlen(name) + 2;
	char *p = malloc(n);

	assert_non_null(p);
	snprintf(p, n, "%s/%s", dir, name);
	return p;
}

/* The whole file (small in these tests); caller frees. */
static char *slurp(const char *path)
{
	FILE *f = fopen(path, "r");
	char *buf = calloc(1, 1 << 16);
	size_t n;

	assert_non_null(f);
	assert_non_null(buf);
	n = fread(buf, 1, (1 << 16) - 1, f);
	buf[n] = '\0';
	fclose(f);
	return buf;
}

static long count_lines(const char *s)
{
	long n = 0;

	for (; *s; s++)
		n += *s == '\n';
	return n;
}

static void expect_intact(const char *path, long records)
{
	tlm_auditlog_report r;
	tlm_error err = TLM_ERROR_INIT;

	assert_int_equal(tlm_auditlog_verify(path, &r, &err), 0);
	assert_int_equal(r.flaw, TLM_AUDITLOG_INTACT);
	assert_int_equal(r.records, records);
}

static void test_every_change_recorded(void **state)
{
	char *tmp = tlm_h_tmpdir(), *log = path_in(tmp, "audit.jsonl"), *text;
	char id[TLM_JOURNAL_RUN_ID_LEN + 1];
	tlm_journal *j = NULL, *other = NULL;
	tlm_error err = TLM_ERROR_INIT;
	(void)state;

	assert_int_equal(tlm_journal_open(&j, tmp, &err), 0);
	assert_int_equal(tlm_journal_set_audit_log(j, log, &err), 0);
	assert_string_equal(tlm_journal_audit_log(j), log);
	assert_int_equal(tlm_journal_run_new(j, "demo", SPEC, id, &err), 0);
	assert_int_equal(tlm_journal_run_set_state(j, id, TLM_RUN_PROVISIONING, &err), 0);
	assert_int_equal(tlm_journal_intent(j, id, TLM_JOURNAL_AGENT, "tlm-a", &err), 0);
	assert_int_equal(tlm_journal_created(j, id, TLM_JOURNAL_AGENT, "tlm-a", "r-1", &err), 0);
	/* the same state again (a remote id, a retried write): no record */
	assert_int_equal(tlm_journal_created(j, id, TLM_JOURNAL_AGENT, "tlm-a", "r-1", &err), 0);
	assert_int_equal(tlm_journal_set_resource_state(j, id, TLM_JOURNAL_AGENT, "tlm-a",
							TLM_JOURNAL_STARTED, NULL, &err),
			 0);
	assert_int_equal(
		tlm_journal_task_record(j, id, "t", "s", 1, NULL, TLM_ATTEMPT_PENDING, &err), 0);
	assert_int_equal(
		tlm_journal_task_record(j, id, "t", "s", 1, "x-1", TLM_ATTEMPT_SUBMITTED, &err), 0);
	assert_int_equal(tlm_journal_run_request_cancel(j, id, &err), 0);
	assert_int_equal(tlm_journal_audit(j, id, "teardown", "asked by a test", &err), 0);
	/* another handle takes the run over: a takeover record */
	assert_int_equal(tlm_journal_open(&other, tmp, &err), 0);
	assert_int_equal(tlm_journal_set_audit_log(other, log, &err), 0);
	assert_int_equal(tlm_journal_run_claim(other, id, TLM_JOURNAL_CLAIM_FORCE, &err), 0);
	assert_int_equal(tlm_journal_set_resource_state(other, id, TLM_JOURNAL_AGENT, "tlm-a",
							TLM_JOURNAL_DELETED, NULL, &err),
			 0);
	text = slurp(log);
	assert_int_equal(count_lines(text), 11);
	expect_intact(log, 11);
	assert_non_null(strstr(text, "\"from\":null,"));
	assert_non_null(strstr(text, "\"to\":\"pending\""));
	assert_non_null(strstr(text, "\"from\":\"pending\""));
	assert_non_null(strstr(text, "\"to\":\"provisioning\""));
	assert_non_null(strstr(text, "\"kind\":\"agent\",\"name\":\"tlm-a\""));
	assert_non_null(strstr(text, "\"from\":\"created\""));
	assert_non_null(strstr(text, "\"to\":\"started\""));
	assert_non_null(strstr(text, "\"name\":\"t/s#1\""));
	assert_non_null(strstr(text, "\"to\":\"submitted\""));
	assert_non_null(strstr(text, "\"action\":\"cancel-request\""));
	assert_non_null(strstr(text, "\"action\":\"teardown\""));
	assert_non_null(strstr(text, "\"detail\":\"asked by a test\""));
	assert_non_null(strstr(text, "\"action\":\"takeover\""));
	assert_non_null(strstr(text, "epoch 1 -> 2"));
	assert_non_null(strstr(text, "\"to\":\"deleted\""));
	assert_non_null(strstr(text, "\"workflow\":\"demo\""));
	assert_null(strstr(text, "\"workflow\":null"));
	assert_null(strstr(text, "apiVersion")); /* the spec's hash, never its text */
	free(text);
	tlm_journal_close(other);
	tlm_journal_close(j);
	free(log);
	tlm_h_rmrf(tmp);
	free(tmp);
}

/* A record that cannot be appended is the call's error, naming the file:
 * the run must fail, not go on unaudited. */
static void test_failed_append_fails_the_call(void **state)
{
	char *tmp = tlm_h_tmpdir(), *log = path_in(tmp, "audit.jsonl");
	char id[TLM_JOURNAL_RUN_ID_LEN + 1];
	tlm_journal *j = NULL;
	tlm_error err = TLM_ERROR_INIT;
	FILE *f;
	(void)state;

	assert_int_equal(tlm_journal_open(&j, tmp, &err), 0);
	assert_int_equal(tlm_journal_set_audit_log(j, log, &err), 0);
	assert_int_equal(tlm_journal_run_new(j, "demo", SPEC, id, &err), 0);
	assert_non_null(f = fopen(log, "a"));
	fputs("not a record\n", f);
	fclose(f);
	assert_int_equal(tlm_journal_run_set_state(j, id, TLM_RUN_PROVISIONING, &err),
			 TLM_EINVALID);
	assert_non_null(strstr(err.message, log));
	assert_non_null(strstr(err.message, "last line is not a record"));
	/* detached: journal writes go on without records */
	assert_int_equal(tlm_journal_set_audit_log(j, NULL, &err), 0);
	assert_null(tlm_journal_audit_log(j));
	assert_int_equal(tlm_journal_run_set_state(j, id, TLM_RUN_RUNNING, &err), 0);
	tlm_journal_close(j);
	free(log);
	tlm_h_rmrf(tmp);
	free(tmp);
}

static void test_default_attached_by_open(void **state)
{
	char *tmp = tlm_h_tmpdir(), *log = path_in(tmp, "audit.jsonl");
	tlm_journal *j = NULL;
	tlm_error err = TLM_ERROR_INIT;
	(void)state;

	tlm_journal_set_default_audit_log(log);
	assert_int_equal(tlm_journal_open(&j, tmp, &err), 0);
	assert_string_equal(tlm_journal_audit_log(j), log);
	tlm_journal_close(j);
	/* a default that cannot be opened fails the open, naming it */
	tlm_journal_set_default_audit_log(tmp);
	assert_int_not_equal(tlm_journal_open(&j, tmp, &err), 0);
	assert_null(j);
	assert_non_null(strstr(err.message, tmp));
	tlm_journal_set_default_audit_log(NULL);
	assert_int_equal(tlm_journal_open(&j, tmp, &err), 0);
	assert_null(tlm_journal_audit_log(j));
	tlm_journal_close(j);
	free(log);
	tlm_h_rmrf(tmp);
	free(tmp);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_every_change_recorded),
		cmocka_unit_test(test_failed_append_fails_the_call),
		cmocka_unit_test(test_default_attached_by_open),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
