/* The recovery commands (issue 6) through the real binary against the real
 * `telemachy serve`: `cancel` of a live run and of one whose owner died,
 * `teardown` refused while the owner lives and idempotent after a crash,
 * `resume` of a crashed run (also on the in-process control plane) and its
 * refusals, `reconcile` (orphans, runs kept by policy, live and stranded
 * runs, --older-than, usage errors) and `abandon`.  Crashed runs are made
 * deterministically with TLM_CRASH_AT (src/util/crashpoint.h): one run
 * counts the crash points (TLM_CRASH_LOG), the next is SIGKILLed at the
 * chosen one.  After every test the server holds no `tlm-` resource the
 * test did not expect. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness/harness.h"
#include "harness/run.h"
#include "harness/serve.h"

#define RUN_MS 60000
#define CMD_MS 30000

static tlm_h_serve srv;
static tlm_h_run run;
static char *dir;

/* s1 then s2, both on agents that complete at once. */
static const char two_tasks[] = "apiVersion: telemachy/v1\n"
				"metadata: {name: rec}\n"
				"agents:\n"
				"  - {name: a, program: none}\n"
				"  - {name: b, program: none}\n"
				"teams:\n"
				"  - name: t\n"
				"    agents: [a, b]\n"
				"    tasks:\n"
				"      - {subject: s1, description: d, assign_to: a}\n"
				"      - {subject: s2, description: d, assign_to: b,\n"
				"         blocked_by: [s1]}\n";

/* One agent and one team, kept after the run by policy. */
static const char kept[] = "apiVersion: telemachy/v1\n"
			   "metadata: {name: kept}\n"
			   "teardown: never\n"
			   "agents: [{name: a, program: none}]\n"
			   "teams:\n"
			   "  - {name: t, agents: [a], tasks: [{subject: s, description: d}]}\n";

static int setup(void **state)
{
	(void)state;
	memset(&srv, 0, sizeof(srv));
	memset(&run, 0, sizeof(run));
	dir = tlm_h_tmpdir();
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	tlm_h_run_clear(&run);
	if (srv.pid != 0)
		tlm_h_serve_stop(&srv);
	tlm_h_rmrf(dir);
	free(dir);
	return 0;
}

/* ---- helpers ------------------------------------------------------------ */

/* Runs `telemachy SUB --state-dir STATE ARGS...` (args NULL-terminated, may
 * be NULL), AGAMEMNON_URL = url when url is not NULL.  Bounded by timeout_ms
 * (then a test failure). */
static void cmd(const char *url, const char *state, const char *sub, const char *const *args,
		int timeout_ms, tlm_h_cmd *c)
{
	char urlenv[200];
	const char *env[] = { urlenv, NULL }, *argv[32];
	size_t n = 0, i;

	snprintf(urlenv, sizeof(urlenv), "AGAMEMNON_URL=%s", url != NULL ? url : "");
	argv[n++] = sub;
	argv[n++] = "--state-dir";
	argv[n++] = state;
	for (i = 0; args != NULL && args[i] != NULL && n < 31; i++)
		argv[n++] = args[i];
	argv[n] = NULL;
	tlm_h_cmd_run(c, dir, url != NULL ? env : NULL, argv, timeout_ms);
	if (c->exit_code < 0)
		fail_msg("telemachy %s did not end within %d ms\nstdout:\n%s\nstderr:\n%s", sub,
			 timeout_ms, c->out, c->err);
	if (getenv("TLM_TEST_VERBOSE") != NULL)
		print_message("telemachy %s: exit %d in %lld ms\nstdout:\n%s\nstderr:\n%s", sub,
			      c->exit_code, (long long)c->ms, c->out, c->err);
}

static char *state_dir(const tlm_h_run *r)
{
	static char path[4096];

	snprintf(path, sizeof(path), "%s/state", r->dir);
	return path;
}

/* Runs a command on run's state dir against srv and checks its exit code. */
static void rcmd(const char *url, const char *sub, const char *const *args, int want, tlm_h_cmd *c)
{
	cmd(url, state_dir(&run), sub, args, CMD_MS, c);
	if (c->exit_code != want)
		fail_msg("telemachy %s: exit %d, want %d\nstdout:\n%s\nstderr:\n%s", sub,
			 c->exit_code, want, c->out, c->err);
}

/* The run id from "run ID of workflow" on the run's stderr. */
static void run_id_of(tlm_h_run *r, char *id, size_t size)
{
	char path[4096], *err, *p;
	size_t n = 0;

	snprintf(path, sizeof(path), "%s/stderr", r->dir);
	err = tlm_h_slurp(path);
	p = strstr(err, "] run ");
	if (p == NULL)
		fail_msg("no run id on stderr:\n%s", err);
	p += strlen("] run ");
	while (p[n] != '\0' && p[n] != ' ' && n + 1 < size) {
		id[n] = p[n];
		n++;
	}
	id[n] = '\0';
	free(err);
	assert_true(n > 0);
}

static void wait_err(const char *text, int ms)
{
	if (tlm_h_run_wait_for(&run, text, ms) != 0) {
		tlm_h_run_wait(&run, 100);
		fail_msg("no \"%s\" on stderr within %d ms; stderr:\n%s", text, ms, run.err);
	}
}

/* `status RUN --output json` of run's journal (the caller decrefs). */
static json_t *status_of(const char *id)
{
	const char *args[] = { "--output", "json", id, NULL };
	tlm_h_cmd c;
	json_t *j;

	rcmd(NULL, "status", args, 0, &c);
	if (c.json == NULL)
		fail_msg("status: not JSON:\n%s", c.out);
	j = json_incref(c.json);
	tlm_h_cmd_free(&c);
	return j;
}

static const char *run_state(const json_t *st)
{
	return tlm_h_str(json_object_get(st, "run"), "state");
}

/* The audit entry with action, or NULL. */
static json_t *audit_entry(const json_t *st, const char *action)
{
	return tlm_h_find(st, "audit", "action", action);
}

/* The journal resource named name, or NULL. */
static json_t *resource(const json_t *st, const char *name)
{
	return tlm_h_find(st, "resources", "name", name);
}

/* Crashes file's run (against url, or on the in-process control plane when
 * url is NULL) at the nth crash point whose name starts with prefix
 * (TLM_CRASH_ON: by name, because the order of concurrent points varies
 * between runs); it must die of SIGKILL there.  Its id goes into id. */
static void crash_run(const char *file, const char *url, const char *prefix, int nth, char *id,
		      size_t idsize)
{
	char logenv[4200], onenv[600], nthenv[64], urlenv[200], logpath[4096], line[512], cur[512],
		*sp;
	const char *env[5];
	size_t n = 0;
	FILE *f;

	snprintf(urlenv, sizeof(urlenv), "AGAMEMNON_URL=%s", url != NULL ? url : "");
	snprintf(logpath, sizeof(logpath), "%s/crash.log", dir);
	snprintf(logenv, sizeof(logenv), "TLM_CRASH_LOG=%s", logpath);
	snprintf(onenv, sizeof(onenv), "TLM_CRASH_ON=%s", prefix);
	snprintf(nthenv, sizeof(nthenv), "TLM_CRASH_ON_NTH=%d", nth);
	if (url != NULL)
		env[n++] = urlenv;
	env[n++] = logenv;
	env[n++] = onenv;
	env[n++] = nthenv;
	env[n] = NULL;
	tlm_h_run_wf(&run, env, NULL, file, RUN_MS);
	if (run.exit_code != 128 + SIGKILL)
		fail_msg("run with TLM_CRASH_ON=%s #%d: exit %d, want 137\nstderr:\n%s", prefix,
			 nth, run.exit_code, run.err);
	/* it died where meant: the last point logged is named prefix */
	f = fopen(logpath, "r");
	assert_non_null(f);
	line[0] = '\0';
	while (fgets(cur, sizeof(cur), f) != NULL)
		memcpy(line, cur, sizeof(line));
	fclose(f);
	sp = strchr(line, ' ');
	if (sp == NULL || strncmp(sp + 1, prefix, strlen(prefix)) != 0)
		fail_msg("crashed at \"%s\", want a point \"%s...\"", line, prefix);
	run_id_of(&run, id, idsize);
}

static size_t tlm_count(void)
{
	return tlm_h_count_prefixed(&srv, "agents", "tlm-") +
	       tlm_h_count_prefixed(&srv, "teams", "tlm-");
}

/* The orphans of a reconcile JSON report belonging to run id ("" for none). */
static size_t orphans_of(const json_t *rep, const char *id)
{
	json_t *o;
	size_t i, n = 0;

	json_array_foreach(json_object_get(rep, "orphans"), i, o)
	{
		json_t *rid = json_object_get(o, "run_id");
		const char *r = json_is_string(rid) ? json_string_value(rid) : "";

		if (strcmp(r, id) == 0)
			n++;
	}
	return n;
}

/* ---- 1, 2, 3: cancel and teardown --------------------------------------- */

/* 1. A live run is cancelled through the journal: cancel returns once the
 * run has ended, which exits 130 and leaves nothing. */
static void test_cancel_live(void **state)
{
	char *file = tlm_h_sh_workflow(dir, "cancel", "sleep 30");
	char id[64], *idp = id;
	const char *args[] = { "--wait", "20", idp, NULL };
	tlm_h_cmd c;
	json_t *st;

	(void)state;
	tlm_h_serve_start(&srv, NULL);
	tlm_h_run_on(&run, &srv, file, NULL, NULL);
	wait_err("submitted", 20000);
	run_id_of(&run, id, sizeof(id));
	rcmd(srv.url, "cancel", args, 0, &c);
	print_message("cancel of a live run took %lld ms\n", (long long)c.ms);
	assert_true(c.ms < 10000);
	tlm_h_cmd_free(&c);
	assert_int_equal(tlm_h_run_finish(&run, 10000), 130);
	assert_string_equal(tlm_h_str(run.result, "outcome"), "cancelled");
	tlm_h_assert_no_tlm(&srv);
	st = status_of(id);
	assert_string_equal(run_state(st), "cancelled");
	if (audit_entry(st, "cancel") == NULL)
		fail_msg("no cancel audit entry: %s", tlm_h_dump(st));
	json_decref(st);
	free(file);
}

/* 2. A run whose owner died is torn down by cancel itself. */
static void test_cancel_dead(void **state)
{
	char *file = tlm_h_write_file(dir, "w.yaml", two_tasks);
	char id[64], *idp = id;
	const char *largs[] = { "--output", "json", NULL };
	const char *args[] = { idp, NULL };
	tlm_h_cmd c;
	json_t *runs, *r, *st;

	(void)state;
	tlm_h_serve_start(&srv, NULL);
	crash_run(file, srv.url, "reply POST /v1/teams/", 1, id, sizeof(id));
	assert_true(tlm_count() > 0);
	rcmd(NULL, "list", largs, 0, &c);
	runs = json_object_get(c.json, "runs");
	assert_int_equal(json_array_size(runs), 1);
	r = json_array_get(runs, 0);
	assert_string_equal(tlm_h_str(r, "id"), id);
	assert_string_equal(tlm_h_str(json_object_get(r, "owner"), "state"), "dead");
	tlm_h_cmd_free(&c);
	rcmd(srv.url, "cancel", args, 0, &c);
	tlm_h_cmd_free(&c);
	tlm_h_assert_no_tlm(&srv);
	st = status_of(id);
	assert_string_equal(run_state(st), "cancelled");
	assert_int_equal(tlm_h_int(st, "leftovers"), 0);
	json_decref(st);
	free(file);
}

/* 3. teardown refuses a run whose owner is alive; the run goes on. */
static void test_teardown_live_refused(void **state)
{
	char *file = tlm_h_sh_workflow(dir, "tdlive", "sleep 2");
	char id[64], *idp = id;
	const char *args[] = { idp, NULL };
	tlm_h_cmd c;

	(void)state;
	tlm_h_serve_start(&srv, NULL);
	tlm_h_run_on(&run, &srv, file, NULL, NULL);
	wait_err("submitted", 20000);
	run_id_of(&run, id, sizeof(id));
	rcmd(srv.url, "teardown", args, 2, &c);
	tlm_h_cmd_free(&c);
	assert_int_equal(tlm_h_count_prefixed(&srv, "agents", "tlm-"), 1);
	assert_int_equal(tlm_h_run_finish(&run, RUN_MS), 0);
	assert_string_equal(tlm_h_str(run.result, "outcome"), "completed");
	tlm_h_assert_all_completed(&run);
	tlm_h_assert_no_tlm(&srv);
	free(file);
}

/* ---- 4, 5: resume -------------------------------------------------------- */

/* 4a. Crashed as s2 is submitted (s1 completed): resume completes s2 and
 * keeps s1 (one attempt, same remote task). */
static void test_resume_crashed(void **state)
{
	char *file = tlm_h_write_file(dir, "w.yaml", two_tasks);
	char id[64], s1_id[128], *idp = id;
	const char *args[] = { "--output", "json", idp, NULL };
	tlm_h_cmd c;
	json_t *st, *t;
	size_t i, s1_rows = 0;

	(void)state;
	tlm_h_serve_start(&srv, NULL);
	crash_run(file, srv.url, "send POST /v1/teams/", 2, id, sizeof(id));
	st = status_of(id);
	s1_id[0] = '\0';
	json_array_foreach(json_object_get(st, "tasks"), i, t)
	{
		if (strcmp(tlm_h_str(t, "subject"), "s1") == 0) {
			assert_string_equal(tlm_h_str(t, "status"), "completed");
			snprintf(s1_id, sizeof(s1_id), "%s", tlm_h_str(t, "remote_id"));
		}
	}
	assert_true(s1_id[0] != '\0');
	json_decref(st);

	rcmd(srv.url, "resume", args, 0, &c);
	if (c.json == NULL)
		fail_msg("resume: no JSON summary\n%s\n%s", c.out, c.err);
	assert_string_equal(tlm_h_str(c.json, "outcome"), "completed");
	json_array_foreach(json_object_get(c.json, "tasks"), i, t)
	{
		if (strcmp(tlm_h_str(t, "status"), "completed") != 0)
			fail_msg("task %s is %s\n%s", tlm_h_str(t, "subject"),
				 tlm_h_str(t, "status"), c.out);
	}
	assert_int_equal(json_array_size(json_object_get(c.json, "tasks")), 2);
	tlm_h_cmd_free(&c);
	tlm_h_assert_no_tlm(&srv);

	st = status_of(id);
	assert_string_equal(run_state(st), "completed");
	assert_int_equal(tlm_h_int(st, "leftovers"), 0);
	json_array_foreach(json_object_get(st, "tasks"), i, t)
	{
		const char *subj = tlm_h_str(t, "subject");

		if (strcmp(subj, "s1") == 0) {
			s1_rows++;
			assert_int_equal(tlm_h_int(t, "attempt"), 1);
			assert_string_equal(tlm_h_str(t, "remote_id"), s1_id);
		}
		print_message("task %s attempt %lld: %s\n", subj,
			      (long long)tlm_h_int(t, "attempt"), tlm_h_str(t, "status"));
	}
	assert_int_equal(s1_rows, 1);
	/* the server saw s1 once (a deleted team's tasks stay listed) */
	{
		const char *team_id = NULL;
		json_t *r, *j = NULL;
		char path[256];
		size_t n1 = 0, n2 = 0;

		json_array_foreach(json_object_get(st, "resources"), i, r)
		{
			if (strcmp(tlm_h_str(r, "kind"), "team") == 0)
				team_id = tlm_h_str(r, "remote_id");
		}
		assert_non_null(team_id);
		snprintf(path, sizeof(path), "/v1/teams/%s/tasks?limit=1000", team_id);
		assert_int_equal(tlm_h_req(&srv, "GET", path, NULL, &j), 200);
		json_array_foreach(json_object_get(j, "tasks"), i, t)
		{
			const char *subj = tlm_h_str(t, "subject");

			n1 += strcmp(subj, "s1") == 0;
			n2 += strcmp(subj, "s2") == 0;
		}
		if (n1 != 1 || n2 != 1)
			fail_msg("server tasks: s1 x%zu, s2 x%zu, want 1 each: %s", n1, n2,
				 tlm_h_dump(j));
		json_decref(j);
	}
	json_decref(st);
	free(file);
}

/* 4d. Team and subject at the longest the spec allows (63 + 512 bytes): a
 * resumed run still knows which task completed (its journal key once did
 * not fit a buffer, and the task ran again). */
static void test_resume_long_names(void **state)
{
	char team[64], subject[513], text[2048], id[64], *file, *idp = id;
	const char *args[] = { "--output", "json", idp, NULL };
	json_t *st, *t;
	tlm_h_cmd c;
	size_t i, rows = 0;

	(void)state;
	memset(team, 't', sizeof(team) - 1);
	team[sizeof(team) - 1] = '\0';
	memset(subject, 's', sizeof(subject) - 1);
	subject[sizeof(subject) - 1] = '\0';
	snprintf(text, sizeof(text),
		 "apiVersion: telemachy/v1\n"
		 "metadata: {name: long}\n"
		 "agents: [{name: a, program: none}]\n"
		 "teams:\n"
		 "  - name: %s\n"
		 "    agents: [a]\n"
		 "    tasks:\n"
		 "      - {subject: %s, description: d}\n"
		 "      - {subject: second, description: d, blocked_by: [%s]}\n",
		 team, subject, subject);
	file = tlm_h_write_file(dir, "long.yaml", text);
	tlm_h_serve_start(&srv, NULL);
	crash_run(file, srv.url, "send POST /v1/teams/", 2, id, sizeof(id));
	rcmd(srv.url, "resume", args, 0, &c);
	tlm_h_cmd_free(&c);
	st = status_of(id);
	json_array_foreach(json_object_get(st, "resources"), i, t)
	{
		if (strcmp(tlm_h_str(t, "kind"), "team") == 0)
			snprintf(text, sizeof(text), "/v1/teams/%s/tasks?limit=1000",
				 tlm_h_str(t, "remote_id"));
	}
	json_decref(st);
	/* The server saw the long task once: it was not submitted again. */
	assert_int_equal(tlm_h_req(&srv, "GET", text, NULL, &st), 200);
	json_array_foreach(json_object_get(st, "tasks"), i, t) rows +=
		strcmp(tlm_h_str(t, "subject"), subject) == 0;
	if (rows != 1)
		fail_msg("the long task was submitted %zu times", rows);
	json_decref(st);
	tlm_h_assert_no_tlm(&srv);
	free(file);
}

/* 4b, 4c. A completed run and an unknown one cannot be resumed. */
static void test_resume_refused(void **state)
{
	char *file = tlm_h_write_file(dir, "w.yaml", two_tasks);
	char id[64], *idp = id;
	const char *args[] = { idp, NULL };
	const char *unknown[] = { "zzzzzzzz", NULL };
	tlm_h_cmd c;

	(void)state;
	tlm_h_serve_start(&srv, NULL);
	tlm_h_run_on(&run, &srv, file, NULL, NULL);
	assert_int_equal(tlm_h_run_finish(&run, RUN_MS), 0);
	snprintf(id, sizeof(id), "%s", tlm_h_str(run.result, "run_id"));
	rcmd(srv.url, "resume", args, 2, &c);
	tlm_h_cmd_free(&c);
	rcmd(srv.url, "resume", unknown, 2, &c);
	tlm_h_cmd_free(&c);
	tlm_h_assert_no_tlm(&srv);
	free(file);
}

/* 4d. resume refuses a run whose owner is alive and names its pid. */
static void test_resume_live_refused(void **state)
{
	char *file = tlm_h_sh_workflow(dir, "rslive", "sleep 5");
	char id[64], pid[32], *idp = id;
	const char *args[] = { idp, NULL };
	tlm_h_cmd c;

	(void)state;
	tlm_h_serve_start(&srv, NULL);
	tlm_h_run_on(&run, &srv, file, NULL, NULL);
	wait_err("submitted", 20000);
	run_id_of(&run, id, sizeof(id));
	rcmd(srv.url, "resume", args, 2, &c);
	snprintf(pid, sizeof(pid), "%ld", (long)run.pid);
	if (strstr(c.err, pid) == NULL)
		fail_msg("resume's refusal does not name pid %s:\n%s", pid, c.err);
	tlm_h_cmd_free(&c);
	/* the owner is unharmed: cancel it to save the wait */
	rcmd(srv.url, "cancel", args, 0, &c);
	tlm_h_cmd_free(&c);
	assert_int_equal(tlm_h_run_finish(&run, 10000), 130);
	tlm_h_assert_no_tlm(&srv);
	free(file);
}

/* 5. No AGAMEMNON_URL: the in-process control plane died with the run, so
 * resume (also without one) makes everything again and completes. */
static void test_resume_in_process(void **state)
{
	char *file = tlm_h_write_file(dir, "w.yaml", two_tasks);
	char id[64], *idp = id;
	const char *args[] = { "--output", "json", idp, NULL };
	tlm_h_cmd c;
	json_t *st, *t;
	size_t i;

	(void)state;
	crash_run(file, NULL, "send POST /v1/teams/", 2, id, sizeof(id));
	rcmd(NULL, "resume", args, 0, &c);
	if (c.json == NULL)
		fail_msg("resume: no JSON summary\n%s\n%s", c.out, c.err);
	assert_string_equal(tlm_h_str(c.json, "outcome"), "completed");
	assert_int_equal(json_array_size(json_object_get(c.json, "tasks")), 2);
	json_array_foreach(json_object_get(c.json, "tasks"), i, t)
	{
		if (strcmp(tlm_h_str(t, "status"), "completed") != 0)
			fail_msg("task %s is %s\n%s\n%s", tlm_h_str(t, "subject"),
				 tlm_h_str(t, "status"), c.out, c.err);
	}
	tlm_h_cmd_free(&c);
	st = status_of(id);
	assert_string_equal(run_state(st), "completed");
	assert_int_equal(tlm_h_int(st, "leftovers"), 0);
	json_decref(st);
	free(file);
}

/* ---- 6: teardown of a crashed run --------------------------------------- */

static void test_teardown_crashed(void **state)
{
	char *file = tlm_h_write_file(dir, "w.yaml", two_tasks);
	char id[64], *idp = id;
	const char *args[] = { idp, NULL };
	tlm_h_cmd c;
	json_t *st, *r;
	size_t i;

	(void)state;
	tlm_h_serve_start(&srv, NULL);
	crash_run(file, srv.url, "reply POST /v1/teams/", 1, id, sizeof(id));
	assert_true(tlm_count() > 0);
	rcmd(srv.url, "teardown", args, 0, &c);
	tlm_h_cmd_free(&c);
	tlm_h_assert_no_tlm(&srv);
	st = status_of(id);
	assert_int_equal(tlm_h_int(st, "leftovers"), 0);
	assert_true(json_array_size(json_object_get(st, "resources")) >= 3);
	json_array_foreach(json_object_get(st, "resources"), i, r)
	{
		const char *s = tlm_h_str(r, "state");

		if (strcmp(s, "deleted") != 0 && strcmp(s, "absent") != 0)
			fail_msg("resource %s is %s after teardown", tlm_h_str(r, "name"), s);
	}
	json_decref(st);
	rcmd(srv.url, "teardown", args, 0, &c);
	tlm_h_cmd_free(&c);
	tlm_h_assert_no_tlm(&srv);
	free(file);
}

/* The number after the first "text" on err, or -1. */
static double number_after(const char *err, const char *text)
{
	const char *p = strstr(err, text);

	return p != NULL ? strtod(p + strlen(text), NULL) : -1;
}

/* The timestamp ("[  1.23s]") of the first line of err holding text, or -1. */
static double stamp_of(const char *err, const char *text)
{
	const char *p = strstr(err, text);

	while (p != NULL && p > err && p[-1] != '\n')
		p--;
	return p != NULL && *p == '[' ? strtod(p + 1, NULL) : -1;
}

/* 6b. Killed just before its team create was sent: the team's outcome is
 * open.  teardown deletes the agents it knows at once and waits for the
 * team only as long as a create the dead owner sent could still land —
 * one request timeout after the owner's last heartbeat (read before the
 * claim replaced it), not a full timeout from now. */
static void test_teardown_waits_from_heartbeat(void **state)
{
	char *file = tlm_h_write_file(dir, "w.yaml", two_tasks);
	char id[64], *idp = id;
	const char *args[] = { "--request-timeout", "6", idp, NULL };
	double age, wait, looked, deleted;
	tlm_h_cmd c;

	(void)state;
	tlm_h_serve_start(&srv, NULL);
	crash_run(file, srv.url, "send POST /v1/teams", 1, id, sizeof(id));
	assert_int_equal(tlm_h_count_prefixed(&srv, "agents", "tlm-"), 2);
	assert_int_equal(tlm_h_count_prefixed(&srv, "teams", "tlm-"), 0);
	tlm_h_sleep_ms(2000);
	rcmd(srv.url, "teardown", args, 0, &c);
	tlm_h_assert_no_tlm(&srv);
	age = number_after(c.err, "was last alive ");
	wait = number_after(c.err, "looking again in ");
	looked = stamp_of(c.err, "looking again in ");
	deleted = stamp_of(c.err, "-a-a deleted");
	if (age < 2.0 || wait < 0 || wait > 6.0 - 2.0 + 0.5 || deleted < 0 ||
	    deleted > looked + 1.0)
		fail_msg("last alive %.1f s ago, waited %.1f s, agent deleted at %.2f s "
			 "(the wait began at %.2f s):\n%s",
			 age, wait, deleted, looked, c.err);
	tlm_h_cmd_free(&c);
	free(file);
}

/* ---- 7: reconcile -------------------------------------------------------- */

/* reconcile --output json on run's journal (or dir/state without a run). */
static void reconcile(const char *const *extra, int want, tlm_h_cmd *c)
{
	char sd[4096];
	const char *args[8];
	size_t n = 0, i;

	args[n++] = "--output";
	args[n++] = "json";
	for (i = 0; extra != NULL && extra[i] != NULL && n < 7; i++)
		args[n++] = extra[i];
	args[n] = NULL;
	if (run.dir != NULL)
		snprintf(sd, sizeof(sd), "%s/state", run.dir);
	else
		snprintf(sd, sizeof(sd), "%s/state", dir);
	cmd(srv.url, sd, "reconcile", args, CMD_MS, c);
	if (c->exit_code != want)
		fail_msg("reconcile: exit %d, want %d\n%s\n%s", c->exit_code, want, c->out, c->err);
	if (want == 0 && c->json == NULL)
		fail_msg("reconcile: not JSON:\n%s\n%s", c->out, c->err);
}

/* 7a. An agent no run made is an orphan, deletable, and --delete deletes it. */
static void test_reconcile_stray(void **state)
{
	const char *del[] = { "--delete", NULL };
	json_t *j = NULL, *o;
	tlm_h_cmd c;

	(void)state;
	tlm_h_serve_start(&srv, NULL);
	assert_int_equal(tlm_h_req(&srv, "POST", "/v1/agents",
				   "{\"name\":\"tlm-zzzzzzzz-a-stray\",\"program\":\"none\"}", &j),
			 201);
	json_decref(j);
	reconcile(NULL, 0, &c);
	assert_int_equal(tlm_h_int(c.json, "scanned"), 1);
	assert_int_equal(json_array_size(json_object_get(c.json, "orphans")), 1);
	o = json_array_get(json_object_get(c.json, "orphans"), 0);
	assert_string_equal(tlm_h_str(o, "name"), "tlm-zzzzzzzz-a-stray");
	assert_string_equal(tlm_h_str(o, "kind"), "agent");
	if (strstr(tlm_h_str(o, "why"), "no run of this journal made it") == NULL)
		fail_msg("why: %s", tlm_h_str(o, "why"));
	assert_true(json_is_true(json_object_get(o, "deletable")));
	assert_true(json_is_false(json_object_get(o, "deleted")));
	assert_int_equal(tlm_count(), 1); /* a plan only */
	tlm_h_cmd_free(&c);
	reconcile(del, 0, &c);
	o = json_array_get(json_object_get(c.json, "orphans"), 0);
	assert_true(json_is_true(json_object_get(c.json, "deleting")));
	assert_true(json_is_true(json_object_get(o, "deleted")));
	tlm_h_cmd_free(&c);
	tlm_h_assert_no_tlm(&srv);
}

/* 7b. What a completed run kept by policy is an orphan of that run. */
static void test_reconcile_kept(void **state)
{
	char *file = tlm_h_write_file(dir, "w.yaml", kept);
	const char *del[] = { "--delete", NULL };
	char why[256];
	json_t *o;
	size_t i;
	tlm_h_cmd c;

	(void)state;
	tlm_h_serve_start(&srv, NULL);
	tlm_h_run_on(&run, &srv, file, NULL, NULL);
	assert_int_equal(tlm_h_run_finish(&run, RUN_MS), 0);
	assert_int_equal(tlm_count(), 2);
	snprintf(why, sizeof(why), "left by run %s, which ended completed",
		 tlm_h_str(run.result, "run_id"));
	reconcile(NULL, 0, &c);
	assert_int_equal(json_array_size(json_object_get(c.json, "orphans")), 2);
	json_array_foreach(json_object_get(c.json, "orphans"), i, o)
	{
		if (strstr(tlm_h_str(o, "why"), why) == NULL)
			fail_msg("why: %s, want \"%s\"", tlm_h_str(o, "why"), why);
		assert_true(json_is_true(json_object_get(o, "deletable")));
	}
	tlm_h_cmd_free(&c);
	reconcile(del, 0, &c);
	tlm_h_cmd_free(&c);
	tlm_h_assert_no_tlm(&srv);
	free(file);
}

/* 7c. A live run's resources are left alone (counted as live). */
static void test_reconcile_live(void **state)
{
	char *file = tlm_h_sh_workflow(dir, "rclive", "sleep 5");
	const char *del[] = { "--delete", NULL };
	char id[64], *idp = id;
	const char *args[] = { idp, NULL };
	tlm_h_cmd c;

	(void)state;
	tlm_h_serve_start(&srv, NULL);
	tlm_h_run_on(&run, &srv, file, NULL, NULL);
	wait_err("submitted", 20000);
	run_id_of(&run, id, sizeof(id));
	reconcile(del, 0, &c);
	assert_int_equal(tlm_h_int(c.json, "live"), 2);
	assert_int_equal(json_array_size(json_object_get(c.json, "orphans")), 0);
	tlm_h_cmd_free(&c);
	assert_int_equal(tlm_count(), 2);
	rcmd(srv.url, "cancel", args, 0, &c);
	tlm_h_cmd_free(&c);
	assert_int_equal(tlm_h_run_finish(&run, 10000), 130);
	tlm_h_assert_no_tlm(&srv);
	free(file);
}

/* 7d. A crashed run's resources are stranded: listed, not deletable, kept. */
static void test_reconcile_stranded(void **state)
{
	char *file = tlm_h_write_file(dir, "w.yaml", two_tasks);
	const char *del[] = { "--delete", NULL };
	char id[64], *idp = id;
	const char *args[] = { idp, NULL };
	json_t *o;
	size_t i, before;
	tlm_h_cmd c;

	(void)state;
	tlm_h_serve_start(&srv, NULL);
	crash_run(file, srv.url, "reply POST /v1/teams/", 1, id, sizeof(id));
	before = tlm_count();
	assert_int_equal(before, 3);
	reconcile(NULL, 0, &c);
	assert_int_equal(orphans_of(c.json, id), before);
	json_array_foreach(json_object_get(c.json, "orphans"), i, o)
	{
		if (strstr(tlm_h_str(o, "why"), "stranded") == NULL)
			fail_msg("why: %s", tlm_h_str(o, "why"));
		assert_true(json_is_false(json_object_get(o, "deletable")));
	}
	tlm_h_cmd_free(&c);
	reconcile(del, 0, &c);
	json_array_foreach(json_object_get(c.json, "orphans"), i, o)
	{
		assert_true(json_is_false(json_object_get(o, "deleted")));
	}
	tlm_h_cmd_free(&c);
	assert_int_equal(tlm_count(), before);
	rcmd(srv.url, "teardown", args, 0, &c);
	tlm_h_cmd_free(&c);
	tlm_h_assert_no_tlm(&srv);
	free(file);
}

/* 7e, 7f. --older-than spares what is younger; usage errors exit 2. */
static void test_reconcile_older_than_and_usage(void **state)
{
	char *file = tlm_h_write_file(dir, "w.yaml", kept);
	const char *old[] = { "--older-than", "1h", "--delete", NULL };
	const char *bad[] = { "--older-than", "x", NULL };
	const char *plain[] = { "--output", "json", NULL };
	tlm_h_cmd c;

	(void)state;
	tlm_h_serve_start(&srv, NULL);
	tlm_h_run_on(&run, &srv, file, NULL, NULL);
	assert_int_equal(tlm_h_run_finish(&run, RUN_MS), 0);
	assert_int_equal(tlm_count(), 2);
	reconcile(old, 0, &c);
	assert_int_equal(json_array_size(json_object_get(c.json, "orphans")), 0);
	assert_int_equal(tlm_h_int(c.json, "too_young"), 2);
	tlm_h_cmd_free(&c);
	assert_int_equal(tlm_count(), 2);
	reconcile(bad, 2, &c);
	tlm_h_cmd_free(&c);
	/* no AGAMEMNON_URL and no --control-plane */
	cmd(NULL, state_dir(&run), "reconcile", plain, CMD_MS, &c);
	if (c.exit_code != 2)
		fail_msg("reconcile without a control plane: exit %d, want 2\n%s", c.exit_code,
			 c.err);
	tlm_h_cmd_free(&c);
	reconcile((const char *const[]){ "--delete", NULL }, 0, &c);
	tlm_h_cmd_free(&c);
	tlm_h_assert_no_tlm(&srv);
	free(file);
}

/* ---- 8: abandon ---------------------------------------------------------- */

/* An abandoned agent is marked so with an audit entry; teardown leaves it
 * alone (abandon --help: "teardown and resume leave it alone", "The resource
 * is NOT deleted"). */
static void test_abandon(void **state)
{
	char *file = tlm_h_write_file(dir, "w.yaml", two_tasks);
	char id[64], name[128], *idp = id;
	const char *args[] = { "--reason", "stuck", idp, "agent/a", NULL };
	const char *td[] = { idp, NULL };
	json_t *st, *r, *a;
	tlm_h_cmd c;

	(void)state;
	tlm_h_serve_start(&srv, NULL);
	crash_run(file, srv.url, "reply POST /v1/teams/", 1, id, sizeof(id));
	snprintf(name, sizeof(name), "tlm-%s-a-a", id);
	rcmd(NULL, "abandon", args, 0, &c);
	tlm_h_cmd_free(&c);
	st = status_of(id);
	r = resource(st, name);
	if (r == NULL)
		fail_msg("no resource %s: %s", name, tlm_h_dump(st));
	assert_string_equal(tlm_h_str(r, "state"), "abandoned");
	assert_string_equal(tlm_h_str(r, "last_error"), "stuck");
	a = audit_entry(st, "abandon");
	if (a == NULL)
		fail_msg("no abandon audit entry: %s", tlm_h_dump(st));
	assert_non_null(strstr(tlm_h_str(a, "detail"), "stuck"));
	json_decref(st);

	rcmd(srv.url, "teardown", td, 0, &c);
	print_message("teardown after abandon: stderr:\n%s", c.err);
	tlm_h_cmd_free(&c);
	st = status_of(id);
	assert_string_equal(tlm_h_str(resource(st, name), "state"), "abandoned");
	json_decref(st);
	/* everything else of the run is gone; the abandoned agent is left alone */
	assert_int_equal(tlm_h_count_prefixed(&srv, "teams", "tlm-"), 0);
	if (tlm_h_count_prefixed(&srv, "agents", name) != 1)
		fail_msg("teardown deleted the abandoned agent %s", name);
	assert_int_equal(tlm_h_count_prefixed(&srv, "agents", "tlm-"), 1);
	free(file);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_cancel_live, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cancel_dead, setup, teardown),
		cmocka_unit_test_setup_teardown(test_teardown_live_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_resume_crashed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_resume_long_names, setup, teardown),
		cmocka_unit_test_setup_teardown(test_resume_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_resume_live_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_resume_in_process, setup, teardown),
		cmocka_unit_test_setup_teardown(test_teardown_crashed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reconcile_stray, setup, teardown),
		cmocka_unit_test_setup_teardown(test_teardown_waits_from_heartbeat, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_reconcile_kept, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reconcile_live, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reconcile_stranded, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reconcile_older_than_and_usage, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_abandon, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
