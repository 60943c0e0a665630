/* The local agent runner with real processes: status changes, stdin, logs
 * and environment, exit codes and exec failures, one task at a time in
 * creation order, blockedBy, stops (also of programs that ignore SIGTERM or
 * leave processes behind), and nothing left alive after the runner is freed
 * or its process is SIGKILLed.  Every wait is bounded (10 s at most). */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness/harness.h"
#include "server/runner.h"
#include "server/store.h"

#define WAIT_MS 10000
#define TEAM    "team-1"

typedef struct fx {
	char *dir;
	char logs[512];
	tlm_store *st;
	tlm_runner *runner;
	_Atomic(tlm_runner *) wake; /* the runner, for the hook (its thread) */
	pthread_mutex_t mu;
	json_t *history; /* ["<task id> <status>", ...] in the order set */
} fx;

/* What the server does: patch the store, (publish), wake the runner.  The
 * history is written first, so it is complete once the store shows a
 * status. */
static int hook_set_status(void *ctx, const char *task_id, const char *status, const char *message,
			   const json_t *result)
{
	fx *f = ctx;
	json_t *patch = json_pack("{s:s,s:s?,s:O?}", "status", status, "statusMessage", message,
				  "result", result);
	char line[256];
	int rc;

	snprintf(line, sizeof(line), "%s %s", task_id, status);
	pthread_mutex_lock(&f->mu);
	json_array_append_new(f->history, json_string(line));
	pthread_mutex_unlock(&f->mu);
	rc = tlm_store_patch(f->st, TLM_STORE_TASKS, NULL, task_id, patch, NULL);
	json_decref(patch);
	tlm_runner_wake(atomic_load(&f->wake));
	return rc;
}

/* A copy of the history: asserting while holding f->mu would leave it
 * locked (cmocka longjmps), and the runner's next hook call would hang. */
static json_t *history(fx *f)
{
	json_t *copy;

	pthread_mutex_lock(&f->mu);
	copy = json_deep_copy(f->history);
	pthread_mutex_unlock(&f->mu);
	return copy;
}

/* A store and a runner; dir NULL: in a new temporary directory. */
static void fx_open(fx *f, const char *dir, const char *logs)
{
	tlm_runner_hooks hooks = { hook_set_status, f, 0 };
	tlm_error err = TLM_ERROR_INIT;

	memset(f, 0, sizeof(*f));
	f->dir = dir != NULL ? strdup(dir) : tlm_h_tmpdir();
	snprintf(f->logs, sizeof(f->logs), "%s/%s", f->dir, logs);
	assert_int_equal(mkdir(f->logs, 0700), 0);
	pthread_mutex_init(&f->mu, NULL);
	f->history = json_array();
	assert_int_equal(tlm_store_open(&f->st, NULL, 0, &err), 0);
	assert_int_equal(tlm_runner_new(&f->runner, f->st, f->logs, &hooks, NULL, &err), 0);
	atomic_store(&f->wake, f->runner);
}

static int setup(void **state)
{
	fx *f = malloc(sizeof(*f));

	assert_non_null(f);
	fx_open(f, NULL, "logs");
	*state = f;
	return 0;
}

static int teardown(void **state)
{
	fx *f = *state;

	tlm_runner_free(f->runner);
	tlm_store_close(f->st);
	json_decref(f->history);
	pthread_mutex_destroy(&f->mu);
	tlm_h_rmrf(f->dir);
	free(f->dir);
	free(f);
	return 0;
}

/* ---- documents ---------------------------------------------------------- */

/* A new agent; extra (stolen, may be NULL) is merged in.  Caller frees. */
static char *add_agent(fx *f, const char *name, const char *program, json_t *args, json_t *extra,
		       int online)
{
	json_t *doc =
		json_pack("{s:s,s:s,s:o,s:s,s:s}", "name", name, "program", program, "programArgs",
			  args != NULL ? args : json_array(), "workingDirectory", f->dir, "status",
			  online ? "online" : "offline");
	json_t *out = NULL;
	char *id;

	if (extra != NULL) {
		json_object_update(doc, extra);
		json_decref(extra);
	}
	assert_int_equal(tlm_store_insert(f->st, TLM_STORE_AGENTS, NULL, doc, &out), 0);
	id = strdup(json_string_value(json_object_get(out, "id")));
	json_decref(doc);
	json_decref(out);
	tlm_runner_wake(f->runner);
	return id;
}

static json_t *sh(const char *script)
{
	return json_pack("[s,s]", "-c", script);
}

/* A new pending task; blocked (stolen) may be NULL.  Caller frees. */
static char *add_task(fx *f, const char *agent_id, const char *subject, const char *description,
		      json_t *blocked)
{
	json_t *doc = json_pack("{s:s,s:s,s:s,s:o,s:s,s:s}", "subject", subject, "description",
				description, "assigneeAgentId", agent_id, "blockedBy",
				blocked != NULL ? blocked : json_array(), "status", "pending",
				"type", "general");
	json_t *out = NULL;
	char *id;

	assert_int_equal(tlm_store_insert(f->st, TLM_STORE_TASKS, TEAM, doc, &out), 0);
	id = strdup(json_string_value(json_object_get(out, "id")));
	json_decref(doc);
	json_decref(out);
	tlm_runner_wake(f->runner);
	return id;
}

static void patch(fx *f, tlm_store_kind kind, const char *id, json_t *p)
{
	assert_int_equal(tlm_store_patch(f->st, kind, NULL, id, p, NULL), 0);
	json_decref(p);
	tlm_runner_wake(f->runner);
}

static json_t *get_task(fx *f, const char *id)
{
	json_t *doc = NULL;

	assert_int_equal(tlm_store_get(f->st, TLM_STORE_TASKS, NULL, id, &doc), 0);
	return doc;
}

static int has_status(fx *f, const char *id, const char *status)
{
	json_t *doc = get_task(f, id);
	int yes = strcmp(json_string_value(json_object_get(doc, "status")), status) == 0;

	json_decref(doc);
	return yes;
}

/* Waits until the task has status, then checks its statusMessage (NULL:
 * none) and returns it (caller frees) for further checks. */
static char *wait_status(fx *f, const char *id, const char *status, const char *message)
{
	int64_t end = tlm_h_now_ms() + WAIT_MS;
	json_t *doc;
	const char *got;
	char *msg;

	while (!has_status(f, id, status)) {
		if (tlm_h_now_ms() > end) {
			doc = get_task(f, id);
			fail_msg("task %s: status %s (%s), expected %s", id,
				 json_string_value(json_object_get(doc, "status")),
				 json_string_value(json_object_get(doc, "statusMessage")), status);
		}
		tlm_h_sleep_ms(10);
	}
	doc = get_task(f, id);
	got = json_string_value(json_object_get(doc, "statusMessage"));
	if (message != NULL) {
		assert_non_null(got);
		assert_string_equal(got, message);
	}
	msg = got != NULL ? strdup(got) : NULL;
	json_decref(doc);
	return msg;
}

/* ---- files and processes ------------------------------------------------ */

static char *slurp(const char *path)
{
	FILE *fp = fopen(path, "r");
	char *buf = calloc(1, 65536);
	size_t n;

	assert_non_null(buf);
	if (fp == NULL)
		return buf;
	n = fread(buf, 1, 65535, fp);
	buf[n] = '\0';
	fclose(fp);
	return buf;
}

static char *log_of(fx *f, const char *task_id, const char *ext)
{
	char path[1024];

	snprintf(path, sizeof(path), "%s/%s.%s", f->logs, task_id, ext);
	return slurp(path);
}

/* Waits for a file holding a pid and a newline; returns the pid. */
static pid_t wait_pidfile(const char *path)
{
	int64_t end = tlm_h_now_ms() + WAIT_MS;
	char *text;
	pid_t pid = 0;

	for (;;) {
		text = slurp(path);
		if (strchr(text, '\n') != NULL)
			pid = (pid_t)atol(text);
		free(text);
		if (pid > 0)
			return pid;
		assert_true(tlm_h_now_ms() < end);
		tlm_h_sleep_ms(10);
	}
}

/* Waits until pid is gone (not even a zombie of ours); returns the ms waited. */
static int64_t wait_gone(pid_t pid, int64_t limit_ms)
{
	int64_t start = tlm_h_now_ms();

	while (kill(pid, 0) == 0) {
		waitpid(pid, NULL, WNOHANG); /* an orphan of ours, as subreaper */
		if (tlm_h_now_ms() - start > limit_ms)
			fail_msg("process %d still alive after %lld ms", (int)pid,
				 (long long)limit_ms);
		tlm_h_sleep_ms(5);
	}
	assert_int_equal(errno, ESRCH);
	return tlm_h_now_ms() - start;
}

static void path_in(fx *f, const char *name, char *buf, size_t size)
{
	snprintf(buf, size, "%s/%s", f->dir, name);
}

/* ---- tests -------------------------------------------------------------- */

static void test_none_completes(void **state)
{
	fx *f = *state;
	char *agent = add_agent(f, "a", "none", NULL, NULL, 1);
	char *task = add_task(f, agent, "s", "d", NULL);
	char want[2][128];
	json_t *hist;

	free(wait_status(f, task, "completed", NULL));
	snprintf(want[0], sizeof(want[0]), "%s running", task);
	snprintf(want[1], sizeof(want[1]), "%s completed", task);
	hist = history(f);
	assert_int_equal(json_array_size(hist), 2);
	assert_string_equal(json_string_value(json_array_get(hist, 0)), want[0]);
	assert_string_equal(json_string_value(json_array_get(hist, 1)), want[1]);
	json_decref(hist);
	free(task);
	free(agent);
}

/* stdin, both logs, cwd, the TLM_* variables (which the agent's env cannot
 * override), the agent's env, and no fd of the server leaked. */
static void test_stdin_logs_env(void **state)
{
	fx *f = *state;
	json_t *env =
		json_pack("{s:{s:s,s:s,s:i}}", "env", "X", "y", "TLM_TASK_ID", "spoofed", "N", 7);
	char *agent =
		add_agent(f, "worker-1", "/bin/sh",
			  sh("cat; echo out; echo err >&2; pwd;"
			     "echo \"$TLM_TASK_ID|$TLM_TASK_SUBJECT|$TLM_TEAM_ID|$TLM_AGENT_NAME\";"
			     "echo \"X=$X N=$N\";"
			     "for fd in 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20; do"
			     "  [ -e /proc/$$/fd/$fd ] && echo \"fd $fd open\"; done; true"),
			  env, 1);
	char *task = add_task(f, agent, "the subject", "line one\nline two\n", NULL);
	char want[2048], *out, *err;

	free(wait_status(f, task, "completed", NULL));
	out = log_of(f, task, "out");
	err = log_of(f, task, "err");
	snprintf(want, sizeof(want),
		 "line one\nline two\nout\n%s\n%s|the subject|" TEAM "|worker-1\nX=y N=7\n", f->dir,
		 task);
	assert_string_equal(out, want); /* and no "fd N open" */
	assert_string_equal(err, "err\n");
	free(out);
	free(err);
	free(task);
	free(agent);
}

static void test_exit_status(void **state)
{
	fx *f = *state;
	char *a = add_agent(f, "a", "/bin/sh", sh("exit 3"), NULL, 1);
	char *b = add_agent(f, "b", "sh", sh("kill -9 $$"), NULL, 1); /* PATH lookup */
	char *t1 = add_task(f, a, "s", "d", NULL), *t2 = add_task(f, b, "s", "d", NULL);

	free(wait_status(f, t1, "failed", "exited with status 3"));
	free(wait_status(f, t2, "failed", "killed by signal 9 (SIGKILL)"));
	free(t1);
	free(t2);
	free(a);
	free(b);
}

/* A task's result: how it ended, and the last 4 KiB of its stdout and of
 * its stderr (cut at a line, bytes that are not UTF-8 as '?'). */
static void test_result_tails(void **state)
{
	fx *f = *state;
	char *a = add_agent(f, "a", "/bin/sh",
			    sh("i=0; while [ $i -lt 2000 ]; do echo line$i; i=$((i+1)); done; "
			       "printf 'bad \\377 byte\\nlast words\\n' >&2; exit 4"),
			    NULL, 1);
	char *b = add_agent(f, "b", "sh", sh("kill -9 $$"), NULL, 1);
	char *t1 = add_task(f, a, "s", "d", NULL), *t2 = add_task(f, b, "s", "d", NULL);
	json_t *doc, *r;
	const char *out, *err;

	free(wait_status(f, t1, "failed", "exited with status 4"));
	doc = get_task(f, t1);
	r = json_object_get(doc, "result");
	assert_int_equal(json_integer_value(json_object_get(r, "exitCode")), 4);
	out = json_string_value(json_object_get(r, "stdout"));
	err = json_string_value(json_object_get(r, "stderr"));
	assert_non_null(out);
	assert_true(strlen(out) <= TLM_RUNNER_TAIL && strlen(out) > TLM_RUNNER_TAIL - 16);
	assert_true(strncmp(out, "line", 4) == 0); /* a whole line first */
	assert_non_null(strstr(out, "line1999\n"));
	assert_string_equal(err, "bad ? byte\nlast words\n");
	json_decref(doc);
	free(wait_status(f, t2, "failed", NULL));
	doc = get_task(f, t2);
	r = json_object_get(doc, "result");
	assert_int_equal(json_integer_value(json_object_get(r, "signal")), 9);
	assert_null(json_object_get(r, "exitCode"));
	json_decref(doc);
	free(t1);
	free(t2);
	free(a);
	free(b);
}

static void test_cannot_execute(void **state)
{
	fx *f = *state;
	char notexec[600], nodir[600], msg[1400];
	json_t *cwd;
	char *a, *b, *c, *t1, *t2, *t3;
	FILE *fp;

	path_in(f, "not-executable", notexec, sizeof(notexec));
	path_in(f, "no-such-dir", nodir, sizeof(nodir));
	fp = fopen(notexec, "w");
	assert_non_null(fp);
	fclose(fp);
	a = add_agent(f, "a", "tlm-no-such-program", NULL, NULL, 1);
	b = add_agent(f, "b", notexec, NULL, NULL, 1);
	cwd = json_pack("{s:s}", "workingDirectory", nodir);
	c = add_agent(f, "c", "/bin/true", NULL, cwd, 1);
	t1 = add_task(f, a, "s", "d", NULL);
	t2 = add_task(f, b, "s", "d", NULL);
	t3 = add_task(f, c, "s", "d", NULL);
	free(wait_status(f, t1, "failed",
			 "cannot execute \"tlm-no-such-program\": No such file or directory"));
	snprintf(msg, sizeof(msg), "cannot execute \"%s\": Permission denied", notexec);
	free(wait_status(f, t2, "failed", msg));
	snprintf(msg, sizeof(msg),
		 "cannot change to working directory \"%s\": No such file or directory", nodir);
	free(wait_status(f, t3, "failed", msg));
	free(t1);
	free(t2);
	free(t3);
	free(a);
	free(b);
	free(c);
}

/* Two tasks of one agent never overlap and run in creation order. */
static void test_one_at_a_time_in_order(void **state)
{
	fx *f = *state;
	char shared[600], *agent, *t1, *t2, *text;
	json_t *env;

	path_in(f, "shared", shared, sizeof(shared));
	env = json_pack("{s:{s:s}}", "env", "SHARED", shared);
	agent = add_agent(f, "a", "/bin/sh",
			  sh("echo start $TLM_TASK_SUBJECT >> \"$SHARED\"; sleep 0.3;"
			     "echo end $TLM_TASK_SUBJECT >> \"$SHARED\""),
			  env, 0);
	t1 = add_task(f, agent, "first", "d", NULL);
	t2 = add_task(f, agent, "second", "d", NULL);
	patch(f, TLM_STORE_AGENTS, agent, json_pack("{s:s}", "status", "online"));
	free(wait_status(f, t2, "completed", NULL));
	free(wait_status(f, t1, "completed", NULL));
	text = slurp(shared);
	assert_string_equal(text, "start first\nend first\nstart second\nend second\n");
	free(text);
	free(t1);
	free(t2);
	free(agent);
}

/* A task starts only once its blocker (on another agent) completed. */
static void test_blocked_waits(void **state)
{
	fx *f = *state;
	char shared[600], *a, *b, *ta, *tb, *text;
	json_t *env;

	path_in(f, "shared", shared, sizeof(shared));
	env = json_pack("{s:{s:s}}", "env", "SHARED", shared);
	a = add_agent(f, "a", "/bin/sh", sh("sleep 0.4; echo a >> \"$SHARED\""),
		      json_deep_copy(env), 0);
	b = add_agent(f, "b", "/bin/sh", sh("echo b >> \"$SHARED\""), env, 0);
	ta = add_task(f, a, "a", "d", NULL);
	tb = add_task(f, b, "b", "d", json_pack("[s]", ta));
	patch(f, TLM_STORE_AGENTS, b, json_pack("{s:s}", "status", "online"));
	tlm_h_sleep_ms(600); /* b is online, its task must still wait */
	assert_true(has_status(f, tb, "pending"));
	patch(f, TLM_STORE_AGENTS, a, json_pack("{s:s}", "status", "online"));
	free(wait_status(f, tb, "completed", NULL));
	text = slurp(shared);
	assert_string_equal(text, "a\nb\n");
	free(text);
	free(ta);
	free(tb);
	free(a);
	free(b);
}

static void test_blocker_failed_or_unknown(void **state)
{
	fx *f = *state;
	char *a = add_agent(f, "a", "/bin/false", NULL, NULL, 1);
	char *b = add_agent(f, "b", "none", NULL, NULL, 0);
	char *ta = add_task(f, a, "a", "d", NULL), msg[256];
	char *tb = add_task(f, b, "b", "d", json_pack("[s]", ta));
	char *tc = add_task(f, b, "c", "d", json_pack("[s,s]", "no-such-task", ta));

	free(wait_status(f, ta, "failed", "exited with status 1"));
	patch(f, TLM_STORE_AGENTS, b, json_pack("{s:s}", "status", "online"));
	snprintf(msg, sizeof(msg), "blocked by failed task %s", ta);
	free(wait_status(f, tb, "failed", msg));
	free(wait_status(f, tc, "failed", "blocked by unknown task no-such-task"));
	free(ta);
	free(tb);
	free(tc);
	free(a);
	free(b);
}

/* x1 waits for y1, which waits for x2, created after x1 on x's agent: x
 * must skip x1 and run x2, or both agents wait forever. */
static void test_waiting_task_is_skipped(void **state)
{
	fx *f = *state;
	char *x = add_agent(f, "x", "none", NULL, NULL, 0);
	char *y = add_agent(f, "y", "none", NULL, NULL, 0);
	char *x1 = add_task(f, x, "x1", "d", NULL), *x2 = add_task(f, x, "x2", "d", NULL);
	char *y1 = add_task(f, y, "y1", "d", json_pack("[s]", x2));

	patch(f, TLM_STORE_TASKS, x1, json_pack("{s:[s]}", "blockedBy", y1));
	patch(f, TLM_STORE_AGENTS, x, json_pack("{s:s}", "status", "online"));
	patch(f, TLM_STORE_AGENTS, y, json_pack("{s:s}", "status", "online"));
	free(wait_status(f, x1, "completed", NULL));
	free(wait_status(f, y1, "completed", NULL));
	free(wait_status(f, x2, "completed", NULL));
	free(x1);
	free(x2);
	free(y1);
	free(x);
	free(y);
}

static void test_offline_runs_nothing(void **state)
{
	fx *f = *state;
	char *agent = add_agent(f, "a", "none", NULL, NULL, 0);
	char *task = add_task(f, agent, "s", "d", NULL);
	json_t *hist;

	tlm_h_sleep_ms(700); /* more than two rescans */
	assert_true(has_status(f, task, "pending"));
	hist = history(f);
	assert_int_equal(json_array_size(hist), 0);
	json_decref(hist);
	patch(f, TLM_STORE_AGENTS, agent, json_pack("{s:s}", "status", "online"));
	free(wait_status(f, task, "completed", NULL));
	free(task);
	free(agent);
}

/* As the server stops an agent: offline in the store, then stop_agent. */
static void stop_agent(fx *f, const char *agent)
{
	patch(f, TLM_STORE_AGENTS, agent, json_pack("{s:s}", "status", "offline"));
	tlm_runner_stop_agent(f->runner, agent);
}

/* SIGTERM is ignored (also by sleep, which inherits the SIG_IGN): only the
 * SIGKILL after the 2 s grace period ends it. */
static void test_stop_ignores_sigterm(void **state)
{
	fx *f = *state;
	char pidfile[600], script[4096], *agent, *task;
	int64_t start, took;
	pid_t pid;

	path_in(f, "pid", pidfile, sizeof(pidfile));
	snprintf(script, sizeof(script), "trap '' TERM; echo $$ > '%s'; sleep 60", pidfile);
	agent = add_agent(f, "a", "/bin/sh", sh(script), NULL, 1);
	task = add_task(f, agent, "s", "d", NULL);
	pid = wait_pidfile(pidfile);
	free(wait_status(f, task, "running", NULL));
	start = tlm_h_now_ms();
	stop_agent(f, agent);
	free(wait_status(f, task, "failed", "agent stopped"));
	took = tlm_h_now_ms() - start;
	print_message("stop latency, SIGTERM ignored: %lld ms\n", (long long)took);
	assert_true(took >= 1900 && took < 4000);
	wait_gone(pid, 100);
	free(task);
	free(agent);
}

/* A grandchild in the background is killed with its parent, at once. */
static void test_stop_kills_grandchild(void **state)
{
	fx *f = *state;
	char pidfile[600], script[4096], *agent, *task;
	int64_t start, took;
	pid_t pid;

	path_in(f, "pid", pidfile, sizeof(pidfile));
	snprintf(script, sizeof(script), "sleep 60 & echo $! > '%s'; wait", pidfile);
	agent = add_agent(f, "a", "/bin/sh", sh(script), NULL, 1);
	task = add_task(f, agent, "s", "d", NULL);
	pid = wait_pidfile(pidfile);
	start = tlm_h_now_ms();
	stop_agent(f, agent);
	free(wait_status(f, task, "failed", "agent stopped"));
	took = tlm_h_now_ms() - start;
	print_message("stop latency, grandchild: %lld ms\n", (long long)took);
	assert_true(took < 1000);
	wait_gone(pid, 100);
	free(task);
	free(agent);
}

/* A program that exits 0 leaving a process in a new session behind (out of
 * its group, reparented to the supervisor): completed, and the process is
 * gone when the task is reported. */
static void test_leftover_killed_after_exit(void **state)
{
	fx *f = *state;
	char pidfile[600], script[4096], *agent, *task;
	pid_t pid;

	path_in(f, "pid", pidfile, sizeof(pidfile));
	snprintf(script, sizeof(script), "setsid sleep 60 & echo $! > '%s'", pidfile);
	agent = add_agent(f, "a", "/bin/sh", sh(script), NULL, 1);
	task = add_task(f, agent, "s", "d", NULL);
	free(wait_status(f, task, "completed", NULL));
	pid = wait_pidfile(pidfile);
	wait_gone(pid, 100);
	free(task);
	free(agent);
}

/* Set offline without stop_agent: the rescan notices.  And a task completed
 * through the API while it runs: its process is stopped, the status kept. */
static void test_rescan_stops(void **state)
{
	fx *f = *state;
	char *a = add_agent(f, "a", "/bin/sh", sh("sleep 60"), NULL, 1);
	char *b = add_agent(f, "b", "/bin/sh", sh("sleep 60"), NULL, 1);
	char *ta = add_task(f, a, "s", "d", NULL), *tb = add_task(f, b, "s", "d", NULL);
	char *tb2 = add_task(f, b, "s2", "d", NULL);

	free(wait_status(f, ta, "running", NULL));
	free(wait_status(f, tb, "running", NULL));
	patch(f, TLM_STORE_AGENTS, a, json_pack("{s:s}", "status", "offline"));
	free(wait_status(f, ta, "failed", "agent stopped"));
	patch(f, TLM_STORE_TASKS, tb, json_pack("{s:s}", "status", "completed"));
	free(wait_status(f, tb2, "running", NULL)); /* b is free again */
	assert_true(has_status(f, tb, "completed"));
	free(ta);
	free(tb);
	free(tb2);
	free(a);
	free(b);
}

/* The supervisor SIGKILLed from outside (no report): the program dies by
 * its parent-death signal, the rest of its group is killed by the runner. */
static void test_supervisor_killed(void **state)
{
	fx *f = *state;
	char supfile[600], pidfile[600], script[4096], *agent, *task;
	pid_t sup, pid;

	path_in(f, "sup", supfile, sizeof(supfile));
	path_in(f, "pid", pidfile, sizeof(pidfile));
	snprintf(script, sizeof(script), "echo $PPID > '%s'; sleep 60 & echo $! > '%s'; wait",
		 supfile, pidfile);
	/* Orphans come to us (not to an init that may not reap them). */
	assert_int_equal(prctl(PR_SET_CHILD_SUBREAPER, 1), 0);
	agent = add_agent(f, "a", "/bin/sh", sh(script), NULL, 1);
	task = add_task(f, agent, "s", "d", NULL);
	sup = wait_pidfile(supfile);
	pid = wait_pidfile(pidfile);
	assert_int_equal(kill(sup, SIGKILL), 0);
	free(wait_status(f, task, "failed", "the task's supervisor was killed by signal 9"));
	wait_gone(pid, 1000);
	prctl(PR_SET_CHILD_SUBREAPER, 0);
	free(task);
	free(agent);
}

/* A docker agent: the command line, seen by a fake docker first in PATH. */
static void test_docker_command(void **state)
{
	fx *f = *state;
	char bin[600], fake[700], want[1024], *agent, *task, *out;
	json_t *extra;
	FILE *fp;

	path_in(f, "bin", bin, sizeof(bin));
	snprintf(fake, sizeof(fake), "%s/docker", bin);
	assert_int_equal(mkdir(bin, 0700), 0);
	fp = fopen(fake, "w");
	assert_non_null(fp);
	fputs("#!/bin/sh\necho \"$*\"\n", fp);
	fclose(fp);
	assert_int_equal(chmod(fake, 0700), 0);
	extra = json_pack("{s:s,s:s,s:i,s:s,s:{s:s}}", "host", "docker", "image", "alpine:3",
			  "cpus", 1, "memory", "256m", "env", "PATH", bin);
	agent = add_agent(f, "d", "echo", json_pack("[s,s]", "hi", "there"), extra, 1);
	task = add_task(f, agent, "s", "d", NULL);
	free(wait_status(f, task, "completed", NULL));
	out = log_of(f, task, "out");
	/* The working directory is the container's (-w), not a host path. */
	snprintf(want, sizeof(want),
		 "run --rm -i --cpus 1 --memory 256m -w %s -e TLM_TASK_ID -e TLM_TASK_SUBJECT "
		 "-e TLM_TEAM_ID -e TLM_AGENT_NAME -e PATH alpine:3 echo hi there\n",
		 f->dir);
	assert_string_equal(out, want);
	free(out);
	free(task);
	free(agent);
}

/* No docker engine (DOCKER_HOST points nowhere, whatever the machine has):
 * the task fails, saying why. */
static void test_docker_no_engine(void **state)
{
	fx *f = *state;
	char host[700];
	json_t *extra;
	char *agent, *task, *msg;

	snprintf(host, sizeof(host), "unix://%s/no-docker.sock", f->dir);
	extra = json_pack("{s:s,s:s,s:{s:s}}", "host", "docker", "image", "alpine:3", "env",
			  "DOCKER_HOST", host);
	agent = add_agent(f, "d", "echo", json_pack("[s]", "hi"), extra, 1);
	task = add_task(f, agent, "s", "d", NULL);
	msg = wait_status(f, task, "failed", NULL);
	print_message("docker without an engine: %s\n", msg);
	assert_non_null(msg);
	/* "docker run failed (exited with status 125): ..." or, without a
	 * docker client, "cannot execute \"docker\": ..." */
	assert_int_equal(strncmp(msg, "docker agent: ", 14), 0);
	assert_true(strstr(msg, "status 125") != NULL || strstr(msg, "cannot execute") != NULL);
	free(msg);
	free(task);
	free(agent);
}

/* Does text have a line starting with prefix? */
static int has_line(const char *text, const char *prefix)
{
	const char *p = text;
	size_t n = strlen(prefix);

	for (; p != NULL; p = strchr(p, '\n') != NULL ? strchr(p, '\n') + 1 : NULL) {
		if (strncmp(p, prefix, n) == 0)
			return 1;
	}
	return 0;
}

/* The server's variables a program gets: the allow-list, the pass_env
 * names and prefixes, DOCKER_* for a docker client only; never the rest
 * (credentials), and as they were when the runner started. */
static void test_env_allow_list(void **state)
{
	static const char *const set[][2] = { { "AGAMEMNON_API_KEY", "k-secret" },
					      { "NATS_CREDS", "/c/creds" },
					      { "SECRET_X", "x-secret" },
					      { "TERM", "xterm" },
					      { "LANG", "C.UTF-8" },
					      { "LC_TIME", "C" },
					      { "TZ", "UTC" },
					      { "DOCKER_HOST", "unix:///nowhere.sock" },
					      { "PASSED_A", "pa" },
					      { "PASSED_PRE_1", "pp" },
					      { "PASSED_AB", "no" } };
	static const char *const pass[] = { "PASSED_A", "PASSED_PRE_*", NULL };
	tlm_runner_hooks hooks = { hook_set_status, *state, 0 };
	fx *f = *state;
	char bin[600], fake[700], *local, *docker, *t1, *t2, *out;
	json_t *extra;
	FILE *fp;
	size_t i;

	for (i = 0; i < sizeof(set) / sizeof(set[0]); i++)
		setenv(set[i][0], set[i][1], 1);
	tlm_runner_free(f->runner);
	f->runner = NULL;
	atomic_store(&f->wake, NULL);
	assert_int_equal(tlm_runner_new(&f->runner, f->st, f->logs, &hooks, pass, NULL), 0);
	atomic_store(&f->wake, f->runner);
	/* Read at start: a change afterwards reaches no program. */
	setenv("LANG", "changed", 1);
	for (i = 0; i < sizeof(set) / sizeof(set[0]); i++)
		unsetenv(set[i][0]);

	path_in(f, "bin", bin, sizeof(bin));
	snprintf(fake, sizeof(fake), "%s/docker", bin);
	assert_int_equal(mkdir(bin, 0700), 0);
	fp = fopen(fake, "w");
	assert_non_null(fp);
	fputs("#!/bin/sh\nenv | sort\n", fp);
	fclose(fp);
	assert_int_equal(chmod(fake, 0700), 0);
	local = add_agent(f, "l", "/bin/sh", sh("env | sort"), NULL, 1);
	snprintf(fake, sizeof(fake), "%s:/usr/bin:/bin", bin); /* the fake docker first */
	extra = json_pack("{s:s,s:s,s:{s:s}}", "host", "docker", "image", "alpine:3", "env", "PATH",
			  fake);
	docker = add_agent(f, "d", "echo", NULL, extra, 1);
	t1 = add_task(f, local, "s", "d", NULL);
	t2 = add_task(f, docker, "s", "d", NULL);
	free(wait_status(f, t1, "completed", NULL));
	free(wait_status(f, t2, "completed", NULL));

	out = log_of(f, t1, "out");
	assert_null(strstr(out, "secret"));
	assert_false(has_line(out, "AGAMEMNON_API_KEY="));
	assert_false(has_line(out, "NATS_CREDS="));
	assert_false(has_line(out, "TERM="));
	assert_false(has_line(out, "DOCKER_HOST="));
	assert_false(has_line(out, "PASSED_AB="));
	assert_true(has_line(out, "LANG=C.UTF-8\n"));
	assert_true(has_line(out, "LC_TIME=C\n"));
	assert_true(has_line(out, "TZ=UTC\n"));
	assert_true(has_line(out, "PASSED_A=pa\n"));
	assert_true(has_line(out, "PASSED_PRE_1=pp\n"));
	assert_true(has_line(out, "PATH="));
	assert_true(has_line(out, "TLM_TASK_ID="));
	free(out);
	out = log_of(f, t2, "out");
	assert_null(strstr(out, "secret"));
	assert_true(has_line(out, "DOCKER_HOST=unix:///nowhere.sock\n"));
	assert_true(has_line(out, "LANG=C.UTF-8\n"));
	free(out);
	free(t1);
	free(t2);
	free(local);
	free(docker);
}

/* A task "running" when the runner starts ran under a previous server (a
 * store kept on disk): it can never finish, so it fails. */
static void test_restart_fails_running(void **state)
{
	fx *f = *state;
	tlm_runner_hooks hooks = { hook_set_status, f, 0 };
	char *agent, *task, *next;

	tlm_runner_free(f->runner);
	f->runner = NULL;
	atomic_store(&f->wake, NULL);
	agent = add_agent(f, "a", "none", NULL, NULL, 1);
	task = add_task(f, agent, "s", "d", NULL);
	next = add_task(f, agent, "s2", "d", NULL);
	patch(f, TLM_STORE_TASKS, task, json_pack("{s:s}", "status", "running"));
	assert_int_equal(tlm_runner_new(&f->runner, f->st, f->logs, &hooks, NULL, NULL), 0);
	atomic_store(&f->wake, f->runner);
	free(wait_status(f, task, "failed", "interrupted: the server restarted"));
	free(wait_status(f, next, "completed", NULL));
	free(task);
	free(next);
	free(agent);
}

/* Freeing the runner kills every task at once and reports them failed. */
static void test_free_kills_everything(void **state)
{
	fx *f = *state;
	char pidfile[2][600], script[4096], name[8], *agents[2], *tasks[2];
	pid_t pids[2];
	int64_t start;
	int i;

	for (i = 0; i < 2; i++) {
		snprintf(name, sizeof(name), "pid%d", i);
		path_in(f, name, pidfile[i], sizeof(pidfile[i]));
		snprintf(script, sizeof(script), "sleep 60 & echo $! > '%s'; wait", pidfile[i]);
		agents[i] = add_agent(f, name, "/bin/sh", sh(script), NULL, 1);
		tasks[i] = add_task(f, agents[i], "s", "d", NULL);
	}
	for (i = 0; i < 2; i++)
		pids[i] = wait_pidfile(pidfile[i]);
	start = tlm_h_now_ms();
	tlm_runner_free(f->runner);
	f->runner = NULL;
	print_message("runner free with 2 tasks: %lld ms\n", (long long)(tlm_h_now_ms() - start));
	assert_true(tlm_h_now_ms() - start < 3000);
	for (i = 0; i < 2; i++) {
		wait_gone(pids[i], 100);
		free(wait_status(f, tasks[i], "failed", "server stopped"));
		free(tasks[i]);
		free(agents[i]);
	}
}

/* The "server" is a child process of the test with a runner of its own;
 * SIGKILLing it must take the task's grandchild with it. */
static void fake_server(const char *dir, const char *pidfile)
{
	fx f;
	char script[4096], *agent;

	/* Dies with the test even when the test fails before killing it. */
	if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() == 1)
		_exit(1);
	memset(&f, 0, sizeof(f));
	fx_open(&f, dir, "server-logs");
	snprintf(script, sizeof(script), "sleep 60 & echo $! > '%s'; wait", pidfile);
	agent = add_agent(&f, "a", "/bin/sh", sh(script), NULL, 1);
	free(add_task(&f, agent, "s", "d", NULL));
	free(agent);
	for (;;)
		pause();
}

static void test_server_sigkilled(void **state)
{
	fx *f = *state;
	char pidfile[600];
	pid_t server, pid;
	int status;
	int64_t took, end;

	path_in(f, "pid", pidfile, sizeof(pidfile));
	/* Single-threaded at the fork: no lock copied while held. */
	tlm_runner_free(f->runner);
	f->runner = NULL;
	/* The orphaned supervisor comes to us, not to an init that may never
	 * reap it, and we can check that it exits too. */
	assert_int_equal(prctl(PR_SET_CHILD_SUBREAPER, 1), 0);
	server = fork();
	assert_true(server >= 0);
	if (server == 0)
		fake_server(f->dir, pidfile);
	pid = wait_pidfile(pidfile);
	assert_int_equal(kill(server, SIGKILL), 0);
	assert_int_equal(waitpid(server, &status, 0), server);
	took = wait_gone(pid, 5000);
	print_message("grandchild gone %lld ms after the server's SIGKILL\n", (long long)took);
	end = tlm_h_now_ms() + WAIT_MS;
	while (waitpid(-1, &status, WNOHANG) >= 0) {
		assert_true(tlm_h_now_ms() < end);
		tlm_h_sleep_ms(5);
	}
	assert_int_equal(errno, ECHILD);
	prctl(PR_SET_CHILD_SUBREAPER, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_none_completes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stdin_logs_env, setup, teardown),
		cmocka_unit_test_setup_teardown(test_result_tails, setup, teardown),
		cmocka_unit_test_setup_teardown(test_exit_status, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cannot_execute, setup, teardown),
		cmocka_unit_test_setup_teardown(test_one_at_a_time_in_order, setup, teardown),
		cmocka_unit_test_setup_teardown(test_blocked_waits, setup, teardown),
		cmocka_unit_test_setup_teardown(test_blocker_failed_or_unknown, setup, teardown),
		cmocka_unit_test_setup_teardown(test_waiting_task_is_skipped, setup, teardown),
		cmocka_unit_test_setup_teardown(test_offline_runs_nothing, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stop_ignores_sigterm, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stop_kills_grandchild, setup, teardown),
		cmocka_unit_test_setup_teardown(test_leftover_killed_after_exit, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rescan_stops, setup, teardown),
		cmocka_unit_test_setup_teardown(test_supervisor_killed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_docker_command, setup, teardown),
		cmocka_unit_test_setup_teardown(test_docker_no_engine, setup, teardown),
		cmocka_unit_test_setup_teardown(test_env_allow_list, setup, teardown),
		cmocka_unit_test_setup_teardown(test_restart_fails_running, setup, teardown),
		cmocka_unit_test_setup_teardown(test_free_kills_everything, setup, teardown),
		cmocka_unit_test_setup_teardown(test_server_sigkilled, setup, teardown),
	};

	return cmocka_run_group_tests_name("server.runner", tests, NULL, NULL);
}
