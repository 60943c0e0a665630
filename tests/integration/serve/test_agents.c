/* Local agents of the real `telemachy serve`, driven over REST only: tasks
 * of a "none" agent complete; a real program gets its description on stdin,
 * the TLM_* variables and per-task logs; exit codes; one task at a time in
 * creation order; blockedBy enforced; an offline agent runs nothing; stop
 * and delete kill everything the task started (also a program that ignores
 * SIGTERM and a grandchild in a session of its own); nothing survives a
 * SIGKILLed server; --state keeps agents across a restart.
 *
 * Each test has a server and a work directory of its own, both removed in
 * the teardown (also after a failure).  Every wait polls with a deadline of
 * at most 10 s. */
#include <errno.h>
#include <signal.h>
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
#include "harness/serve.h"

#define WAIT_MS  10000 /* the longest any wait may take */
#define POLL_MS  20
#define MAX_PIDS 16

static tlm_h_serve srv;
static char *dir;               /* the test's work directory: pid files, cwd, state */
static pid_t watched[MAX_PIDS]; /* killed in the teardown if still alive */
static size_t nwatched;

/* ---- time and processes ------------------------------------------------- */

/* A zombie has ended too: it only waits for its parent (init, or us as
 * subreaper) to collect it. */
static int is_zombie(pid_t pid)
{
	char path[64], buf[512], *p;
	FILE *f;
	size_t n;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	f = fopen(path, "r");
	if (f == NULL)
		return 0;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	p = strrchr(buf, ')'); /* "pid (comm) S ..." */
	return p != NULL && p[1] == ' ' && p[2] == 'Z';
}

/* strict: reaped as well, kill(pid, 0) fails. */
static int pid_gone(pid_t pid, int strict)
{
	(void)waitpid(pid, NULL, WNOHANG); /* ours when we are the subreaper */
	return (kill(pid, 0) == -1 && errno == ESRCH) || (!strict && is_zombie(pid));
}

/* Waits until pid is gone; returns how long that took (ms). */
static int64_t wait_gone(pid_t pid, int strict, int64_t limit_ms)
{
	int64_t start = tlm_h_now_ms();

	while (!pid_gone(pid, strict)) {
		if (tlm_h_now_ms() - start > limit_ms)
			fail_msg("process %d still alive after %lld ms", (int)pid,
				 (long long)limit_ms);
		tlm_h_sleep_ms(POLL_MS);
	}
	return tlm_h_now_ms() - start;
}

/* ---- files -------------------------------------------------------------- */

static void path_in(const char *name, char *buf, size_t size)
{
	snprintf(buf, size, "%s/%s", dir, name);
}

/* The whole file, or NULL when it does not exist (caller frees). */
static char *slurp(const char *path)
{
	FILE *f = fopen(path, "r");
	char *text;
	long n;

	if (f == NULL)
		return NULL;
	assert_int_equal(fseek(f, 0, SEEK_END), 0);
	n = ftell(f);
	assert_true(n >= 0);
	rewind(f);
	text = malloc((size_t)n + 1);
	assert_non_null(text);
	text[fread(text, 1, (size_t)n, f)] = '\0';
	fclose(f);
	return text;
}

static void watch(pid_t pid)
{
	if (nwatched < MAX_PIDS)
		watched[nwatched++] = pid;
}

/* Waits for a file holding a whole line, returns its first number (a pid
 * the test must see die: it is also killed in the teardown). */
static pid_t wait_pidfile(const char *path)
{
	int64_t end = tlm_h_now_ms() + WAIT_MS;
	char *text;
	long pid;

	for (;;) {
		text = slurp(path);
		if (text != NULL && strchr(text, '\n') != NULL)
			break;
		free(text);
		if (tlm_h_now_ms() > end)
			fail_msg("no pid in %s after %d ms", path, WAIT_MS);
		tlm_h_sleep_ms(POLL_MS);
	}
	pid = strtol(text, NULL, 10);
	free(text);
	assert_true(pid > 1);
	watch((pid_t)pid);
	return (pid_t)pid;
}

/* ---- fixtures ----------------------------------------------------------- */

static int setup(void **state)
{
	(void)state;
	dir = tlm_h_tmpdir();
	nwatched = 0;
	tlm_h_serve_start(&srv, NULL);
	return 0;
}

/* Kills what a failed test may have left (only processes that still run
 * `sleep`: a pid is never reused within a test, but be careful anyway). */
static void kill_watched(void)
{
	char path[64], comm[64];
	size_t i;
	FILE *f;

	for (i = 0; i < nwatched; i++) {
		snprintf(path, sizeof(path), "/proc/%d/comm", (int)watched[i]);
		f = fopen(path, "r");
		if (f == NULL)
			continue;
		if (fgets(comm, sizeof(comm), f) != NULL &&
		    (strcmp(comm, "sleep\n") == 0 || strcmp(comm, "sh\n") == 0))
			kill(watched[i], SIGKILL);
		fclose(f);
	}
	nwatched = 0;
}

static int teardown(void **state)
{
	(void)state;
	if (srv.pid > 0 || srv.state_dir != NULL)
		tlm_h_serve_stop(&srv);
	kill_watched();
	prctl(PR_SET_CHILD_SUBREAPER, 0);
	tlm_h_rmrf(dir);
	free(dir);
	dir = NULL;
	return 0;
}

/* ---- REST helpers ------------------------------------------------------- */

/* A request with a JSON body (stolen; NULL: none) that must answer want;
 * returns the answer (caller decrefs; NULL when empty). */
static json_t *call(const char *method, const char *path, json_t *body, long want)
{
	char *text = body != NULL ? json_dumps(body, JSON_COMPACT) : NULL;
	json_t *j = NULL;
	long got;

	json_decref(body);
	got = tlm_h_req(&srv, method, path, text, &j);
	if (got != want) {
		char *dump = j != NULL ? json_dumps(j, 0) : NULL;

		fail_msg("%s %s: %ld, expected %ld: %s", method, path, got, want,
			 dump != NULL ? dump : "(no JSON)");
	}
	free(text);
	return j;
}

/* An agent running /bin/sh -c script in the work directory; caller frees. */
static char *sh_agent(const char *name, const char *script)
{
	json_t *j = call("POST", "/v1/agents",
			 json_pack("{s:s,s:s,s:[s,s],s:s}", "name", name, "program", "/bin/sh",
				   "programArgs", "-c", script, "workingDirectory", dir),
			 201);
	char *id = strdup(tlm_h_str(j, "id"));

	assert_string_equal(tlm_h_str(json_object_get(j, "agent"), "status"), "offline");
	json_decref(j);
	return id;
}

static char *none_agent(const char *name)
{
	json_t *j = call("POST", "/v1/agents",
			 json_pack("{s:s,s:s}", "name", name, "program", "none"), 201);
	char *id = strdup(tlm_h_str(j, "id"));

	json_decref(j);
	return id;
}

/* A team of the given agents (NULL-terminated); caller frees. */
static char *make_team(const char *name, const char *const *agents)
{
	json_t *ids = json_array(), *j;
	char *id;

	for (; *agents != NULL; agents++)
		json_array_append_new(ids, json_string(*agents));
	j = call("POST", "/v1/teams", json_pack("{s:s,s:o}", "name", name, "agentIds", ids), 201);
	id = strdup(tlm_h_str(json_object_get(j, "team"), "id"));
	json_decref(j);
	return id;
}

/* A task for agent in team; blocked_by (stolen) may be NULL. */
static char *make_task(const char *team, const char *agent, const char *subject,
		       const char *description, json_t *blocked_by)
{
	char path[256], *id;
	json_t *j, *t;

	snprintf(path, sizeof(path), "/v1/teams/%s/tasks", team);
	j = call("POST", path,
		 json_pack("{s:s,s:s,s:s,s:o}", "subject", subject, "description", description,
			   "assigneeAgentId", agent, "blockedBy",
			   blocked_by != NULL ? blocked_by : json_array()),
		 201);
	t = json_object_get(j, "task");
	assert_string_equal(tlm_h_str(t, "status"), "pending");
	id = strdup(tlm_h_str(t, "id"));
	json_decref(j);
	return id;
}

/* POST /v1/agents/{id}/start or /stop. */
static void agent_do(const char *agent, const char *action)
{
	char path[256];
	json_t *j;

	snprintf(path, sizeof(path), "/v1/agents/%s/%s", agent, action);
	j = call("POST", path, NULL, 200);
	assert_string_equal(tlm_h_str(j, "status"),
			    strcmp(action, "start") == 0 ? "online" : "offline");
	json_decref(j);
}

static json_t *get_task(const char *team, const char *task)
{
	char path[256];
	json_t *j, *t;

	snprintf(path, sizeof(path), "/v1/teams/%s/tasks/%s", team, task);
	j = call("GET", path, NULL, 200);
	t = json_incref(json_object_get(j, "task"));
	json_decref(j);
	assert_non_null(t);
	return t;
}

static const char *status_of(const json_t *task)
{
	return tlm_h_str(task, "status");
}

static int terminal(const char *status)
{
	return strcmp(status, "completed") == 0 || strcmp(status, "failed") == 0;
}

/* Polls the task until it has status (and, when msg is not NULL, a
 * statusMessage containing msg); fails at once when it reached another
 * final status.  Returns the task (caller decrefs). */
static json_t *wait_task(const char *team, const char *task, const char *status, const char *msg)
{
	int64_t end = tlm_h_now_ms() + WAIT_MS;
	json_t *t;

	for (;;) {
		const char *st, *m;

		t = get_task(team, task);
		st = status_of(t);
		m = json_string_value(json_object_get(t, "statusMessage"));
		if (strcmp(st, status) == 0) {
			if (msg == NULL)
				return t;
			if (m != NULL && strstr(m, msg) != NULL)
				return t;
		}
		if ((terminal(st) && strcmp(st, status) != 0) || tlm_h_now_ms() > end) {
			char *dump = json_dumps(t, 0);

			fail_msg("task %s: wanted \"%s\"%s%s, got %s", task, status,
				 msg ? " with message containing " : "", msg ? msg : "", dump);
		}
		json_decref(t);
		tlm_h_sleep_ms(POLL_MS);
	}
}

/* The task must still be pending (it must not have run). */
static void assert_pending(const char *team, const char *task)
{
	json_t *t = get_task(team, task);

	assert_string_equal(status_of(t), "pending");
	json_decref(t);
}

/* ---- tests -------------------------------------------------------------- */

/* program "none": tasks created before and after the start complete. */
static void test_none_completes(void **state)
{
	char *agent = none_agent("tlm-it-none"), *team, *t1, *t2, *t3;
	const char *members[] = { agent, NULL };
	json_t *t;
	(void)state;

	team = make_team("tlm-it-none-team", members);
	t1 = make_task(team, agent, "first", "d1", NULL);
	t2 = make_task(team, agent, "second", "d2", NULL);
	agent_do(agent, "start");
	t = wait_task(team, t1, "completed", NULL);
	assert_non_null(json_string_value(json_object_get(t, "completedAt")));
	assert_null(json_object_get(t, "statusMessage"));
	json_decref(t);
	json_decref(wait_task(team, t2, "completed", NULL));
	/* Created while the agent is online: the runner is woken. */
	t3 = make_task(team, agent, "third", "d3", NULL);
	json_decref(wait_task(team, t3, "completed", NULL));
	free(t1);
	free(t2);
	free(t3);
	free(team);
	free(agent);
}

/* A real program: stdin, environment, working directory, logs, exit 0. */
static void test_program_runs(void **state)
{
	const char *script = "cat > \"$TLM_TASK_SUBJECT.in\"; echo ok;"
			     " echo \"id=$TLM_TASK_ID\"; echo \"subject=$TLM_TASK_SUBJECT\";"
			     " echo \"team=$TLM_TEAM_ID\"; echo \"agent=$TLM_AGENT_NAME\";"
			     " echo \"cwd=$(pwd)\"; echo to-stderr >&2";
	char *agent = sh_agent("tlm-it-prog", script), *team, *task;
	const char *members[] = { agent, NULL };
	char path[1024], want[2048], *text;
	json_t *t;
	(void)state;

	team = make_team("tlm-it-prog-team", members);
	task = make_task(team, agent, "greet", "line one\nline \"two\" $HOME\n", NULL);
	agent_do(agent, "start");
	t = wait_task(team, task, "completed", NULL);
	assert_non_null(json_string_value(json_object_get(t, "completedAt")));
	json_decref(t);

	path_in("greet.in", path, sizeof(path)); /* relative to workingDirectory */
	text = slurp(path);
	assert_non_null(text);
	assert_string_equal(text, "line one\nline \"two\" $HOME\n");
	free(text);

	snprintf(path, sizeof(path), "%s/logs/%s.out", srv.state_dir, task);
	text = slurp(path);
	if (text == NULL)
		fail_msg("no stdout log %s", path);
	snprintf(want, sizeof(want),
		 "ok\nid=%s\nsubject=greet\nteam=%s\nagent=tlm-it-prog\ncwd=%s\n", task, team, dir);
	assert_string_equal(text, want);
	free(text);
	snprintf(path, sizeof(path), "%s/logs/%s.err", srv.state_dir, task);
	text = slurp(path);
	if (text == NULL)
		fail_msg("no stderr log %s", path);
	assert_string_equal(text, "to-stderr\n");
	free(text);
	free(task);
	free(team);
	free(agent);
}

/* exit 3 -> failed with a message; the next task still runs. */
static void test_program_fails(void **state)
{
	char *agent = sh_agent("tlm-it-fail",
			       "case \"$TLM_TASK_SUBJECT\" in bad) echo boom >&2; exit 3;; esac");
	const char *members[] = { agent, NULL };
	char *team = make_team("tlm-it-fail-team", members), *bad, *good, path[1024], *text;
	json_t *t;
	(void)state;

	bad = make_task(team, agent, "bad", "", NULL);
	good = make_task(team, agent, "good", "", NULL);
	agent_do(agent, "start");
	t = wait_task(team, bad, "failed", NULL);
	assert_string_equal(tlm_h_str(t, "statusMessage"), "exited with status 3");
	assert_true(json_is_null(json_object_get(t, "completedAt")));
	json_decref(t);
	json_decref(wait_task(team, good, "completed", NULL));
	snprintf(path, sizeof(path), "%s/logs/%s.err", srv.state_dir, bad);
	text = slurp(path);
	assert_non_null(text);
	assert_string_equal(text, "boom\n");
	free(text);
	free(bad);
	free(good);
	free(team);
	free(agent);
}

/* A program that cannot be executed fails with the reason. */
static void test_program_missing(void **state)
{
	json_t *j = call("POST", "/v1/agents",
			 json_pack("{s:s,s:s}", "name", "tlm-it-missing", "program",
				   "/nonexistent/tlm-no-such-program"),
			 201);
	char *agent = strdup(tlm_h_str(j, "id")), *team, *task;
	const char *members[] = { agent, NULL };
	(void)state;

	json_decref(j);
	team = make_team("tlm-it-missing-team", members);
	task = make_task(team, agent, "x", "", NULL);
	agent_do(agent, "start");
	json_decref(wait_task(team, task, "failed", "cannot execute"));
	free(task);
	free(team);
	free(agent);
}

/* One task at a time, in creation order (not in id or subject order). */
static void test_one_at_a_time_in_order(void **state)
{
	static const char *const subjects[] = { "w4", "w2", "w3", "w1" };
	char shared[1024], script[4096], want[256] = "", *agent, *team, *tasks[4], *text;
	const char *members[2] = { NULL, NULL };
	size_t i;
	(void)state;

	path_in("order", shared, sizeof(shared));
	snprintf(script, sizeof(script),
		 "echo \"start $TLM_TASK_SUBJECT\" >> '%s'; sleep 0.2;"
		 " echo \"end $TLM_TASK_SUBJECT\" >> '%s'",
		 shared, shared);
	agent = sh_agent("tlm-it-order", script);
	members[0] = agent;
	team = make_team("tlm-it-order-team", members);
	for (i = 0; i < 4; i++) {
		tasks[i] = make_task(team, agent, subjects[i], "", NULL);
		snprintf(want + strlen(want), sizeof(want) - strlen(want), "start %s\nend %s\n",
			 subjects[i], subjects[i]);
	}
	agent_do(agent, "start");
	for (i = 0; i < 4; i++)
		json_decref(wait_task(team, tasks[i], "completed", NULL));
	text = slurp(shared);
	assert_non_null(text);
	assert_string_equal(text, want);
	free(text);
	for (i = 0; i < 4; i++)
		free(tasks[i]);
	free(team);
	free(agent);
}

/* blockedBy across agents: B waits for A; a failed or unknown blocker
 * fails the task without running it, naming the blocker. */
static void test_blocked_by(void **state)
{
	char shared[512], gate[512], script[4096], *a, *b, *team, *ta, *tb, *tfail, *tc, *td, *text;
	const char *members[3] = { NULL, NULL, NULL };
	FILE *f;
	json_t *t;
	(void)state;

	path_in("blocked", shared, sizeof(shared));
	path_in("gate", gate, sizeof(gate));
	/* A's tasks wait (at most 10 s) until the test opens the gate. */
	snprintf(script, sizeof(script),
		 "case \"$TLM_TASK_SUBJECT\" in fail*) exit 3;; esac; i=0;"
		 " while [ ! -e '%s' ] && [ $i -lt 200 ]; do sleep 0.05; i=$((i+1)); done;"
		 " echo \"$TLM_TASK_SUBJECT\" >> '%s'",
		 gate, shared);
	a = sh_agent("tlm-it-blocker", script);
	snprintf(script, sizeof(script), "echo \"$TLM_TASK_SUBJECT\" >> '%s'", shared);
	b = sh_agent("tlm-it-blocked", script);
	members[0] = a;
	members[1] = b;
	team = make_team("tlm-it-blocked-team", members);
	ta = make_task(team, a, "a", "", NULL);
	tb = make_task(team, b, "b", "", json_pack("[s]", ta));
	agent_do(b, "start");
	agent_do(a, "start");
	json_decref(wait_task(team, ta, "running", NULL));
	/* B is free and its task is first in line, but its blocker runs: it
	 * must wait (1 s: four rescans of the runner). */
	tlm_h_sleep_ms(1000);
	assert_pending(team, tb);
	assert_null(slurp(shared));
	f = fopen(gate, "w");
	assert_non_null(f);
	fclose(f);
	json_decref(wait_task(team, tb, "completed", NULL));
	t = get_task(team, ta);
	assert_string_equal(status_of(t), "completed");
	json_decref(t);
	text = slurp(shared);
	assert_non_null(text);
	assert_string_equal(text, "a\nb\n"); /* B ran after A had finished */
	free(text);

	/* A failed blocker fails the blocked task, which never runs. */
	tfail = make_task(team, a, "fail-1", "", NULL);
	tc = make_task(team, b, "c", "", json_pack("[s]", tfail));
	json_decref(wait_task(team, tfail, "failed", "exited with status 3"));
	t = wait_task(team, tc, "failed", tfail);
	assert_non_null(strstr(tlm_h_str(t, "statusMessage"), "blocked by"));
	json_decref(t);
	/* An unknown blocker too. */
	td = make_task(team, b, "d", "", json_pack("[s]", "tlm-no-such-task"));
	json_decref(wait_task(team, td, "failed", "tlm-no-such-task"));
	text = slurp(shared);
	assert_string_equal(text, "a\nb\n"); /* neither c nor d ran */
	free(text);
	free(ta);
	free(tb);
	free(tfail);
	free(tc);
	free(td);
	free(team);
	free(a);
	free(b);
}

/* An offline agent runs nothing: not before its start, not after its stop. */
static void test_offline_runs_nothing(void **state)
{
	char marker[1024], script[4096], *agent, *team, *t1, *t2, *text;
	const char *members[2] = { NULL, NULL };
	(void)state;

	path_in("ran", marker, sizeof(marker));
	snprintf(script, sizeof(script), "echo \"$TLM_TASK_SUBJECT\" >> '%s'", marker);
	agent = sh_agent("tlm-it-offline", script);
	members[0] = agent;
	team = make_team("tlm-it-offline-team", members);
	t1 = make_task(team, agent, "one", "", NULL);
	/* The runner rescans every 250 ms: 1 s is four chances to misbehave. */
	tlm_h_sleep_ms(1000);
	assert_pending(team, t1);
	assert_null(slurp(marker));

	agent_do(agent, "start");
	json_decref(wait_task(team, t1, "completed", NULL));
	agent_do(agent, "stop");
	t2 = make_task(team, agent, "two", "", NULL);
	tlm_h_sleep_ms(1000);
	assert_pending(team, t2);
	text = slurp(marker);
	assert_string_equal(text, "one\n");
	free(text);

	/* Started again, it picks up where it stopped. */
	agent_do(agent, "start");
	json_decref(wait_task(team, t2, "completed", NULL));
	free(t1);
	free(t2);
	free(team);
	free(agent);
}

/* Stop while the program (and its child) ignore SIGTERM: SIGKILL after the
 * grace period; the processes are gone and the task failed. */
static void test_stop_ignores_sigterm(void **state)
{
	char pidfile[1024], script[4096], *agent, *team, *task, *text;
	const char *members[2] = { NULL, NULL };
	pid_t sh, child;
	int64_t start, took;
	(void)state;

	path_in("pids", pidfile, sizeof(pidfile));
	snprintf(script, sizeof(script), "trap '' TERM; sleep 60 & echo $$ $! > '%s'; wait",
		 pidfile);
	agent = sh_agent("tlm-it-stubborn", script);
	members[0] = agent;
	team = make_team("tlm-it-stubborn-team", members);
	task = make_task(team, agent, "stubborn", "", NULL);
	agent_do(agent, "start");
	sh = wait_pidfile(pidfile);
	text = slurp(pidfile);
	child = (pid_t)strtol(strchr(text, ' ') + 1, NULL, 10);
	free(text);
	assert_true(child > 1);
	watch(child);
	json_decref(wait_task(team, task, "running", NULL));

	start = tlm_h_now_ms();
	agent_do(agent, "stop");
	json_decref(wait_task(team, task, "failed", "agent stopped"));
	wait_gone(sh, 1, 5000);
	wait_gone(child, 1, 5000);
	took = tlm_h_now_ms() - start;
	print_message("program ignoring SIGTERM gone %lld ms after the stop\n", (long long)took);
	assert_true(took < 5000);
	free(task);
	free(team);
	free(agent);
}

/* A program whose grandchild left its process group (a session of its
 * own): after DELETE of the agent, the grandchild is dead. */
static void test_delete_kills_grandchild(void **state)
{
	char pidfile[1024], script[4096], path[256], *agent, *team, *task;
	const char *members[2] = { NULL, NULL };
	int64_t took;
	pid_t gc;
	json_t *j;
	(void)state;

	path_in("grandchild", pidfile, sizeof(pidfile));
	snprintf(script, sizeof(script), "setsid sh -c 'echo $$ > \"%s\"; exec sleep 60' & wait",
		 pidfile);
	agent = sh_agent("tlm-it-forker", script);
	members[0] = agent;
	team = make_team("tlm-it-forker-team", members);
	task = make_task(team, agent, "fork", "", NULL);
	agent_do(agent, "start");
	gc = wait_pidfile(pidfile);
	assert_int_equal(kill(gc, 0), 0);

	snprintf(path, sizeof(path), "/v1/agents/%s", agent);
	j = call("DELETE", path, NULL, 200);
	assert_string_equal(tlm_h_str(j, "deleted"), agent);
	json_decref(j);
	/* The server lives: the task's supervisor reaps the grandchild. */
	took = wait_gone(gc, 1, 5000);
	print_message("grandchild gone %lld ms after the agent's DELETE\n", (long long)took);
	assert_int_equal(kill(gc, 0), -1);
	json_decref(wait_task(team, task, "failed", NULL));
	json_decref(call("GET", path, NULL, 404));
	free(task);
	free(team);
	free(agent);
}

/* SIGKILL of the whole server while a task with a grandchild (in a session
 * of its own) runs: the program and the grandchild die within seconds, and
 * so does the task's supervisor. */
static void test_server_sigkilled(void **state)
{
	char pidfile[1024], gcfile[1024], script[4096], *agent, *team, *task;
	const char *members[2] = { NULL, NULL };
	int64_t start, end;
	pid_t prog, gc;
	int status;
	(void)state;

	path_in("program", pidfile, sizeof(pidfile));
	path_in("grandchild", gcfile, sizeof(gcfile));
	snprintf(script, sizeof(script),
		 "echo $$ > '%s'; setsid sh -c 'echo $$ > \"%s\"; exec sleep 60' & wait", pidfile,
		 gcfile);
	agent = sh_agent("tlm-it-orphan", script);
	members[0] = agent;
	team = make_team("tlm-it-orphan-team", members);
	task = make_task(team, agent, "orphan", "", NULL);
	agent_do(agent, "start");
	prog = wait_pidfile(pidfile);
	gc = wait_pidfile(gcfile);

	/* Orphans of the dead server come to us, not to an init that may not
	 * reap them: then we can see the supervisor exit too. */
	assert_int_equal(prctl(PR_SET_CHILD_SUBREAPER, 1), 0);
	start = tlm_h_now_ms();
	assert_int_equal(kill(srv.pid, SIGKILL), 0);
	assert_int_equal(waitpid(srv.pid, &status, 0), srv.pid);
	assert_true(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
	srv.pid = 0; /* the teardown only removes its state dir */
	wait_gone(prog, 0, 5000);
	wait_gone(gc, 0, 5000);
	print_message("program and grandchild gone %lld ms after the server's SIGKILL\n",
		      (long long)(tlm_h_now_ms() - start));
	/* Whatever else came to us (the task's supervisor) exits as well. */
	end = tlm_h_now_ms() + WAIT_MS;
	while (waitpid(-1, &status, WNOHANG) >= 0) {
		if (tlm_h_now_ms() > end)
			fail_msg("a process of the killed server is still alive");
		tlm_h_sleep_ms(POLL_MS);
	}
	assert_int_equal(errno, ECHILD);
	assert_int_equal(kill(prog, 0), -1);
	assert_int_equal(kill(gc, 0), -1);
	assert_int_equal(prctl(PR_SET_CHILD_SUBREAPER, 0), 0);
	free(task);
	free(team);
	free(agent);
}

/* --state FILE: a restarted server still knows its agents, teams and
 * tasks; a task that was running when the server was killed is failed. */
static void test_state_survives_restart(void **state)
{
	char file[1024], pidfile[1024], script[4096], path[512], *agent, *sleeper, *team, *done,
		*running;
	const char *members[3] = { NULL, NULL, NULL };
	const char *args[] = { "--state", file, NULL };
	int64_t end;
	json_t *j, *t;
	int status;
	pid_t pid;
	(void)state;

	path_in("state.db", file, sizeof(file));
	path_in("sleeper", pidfile, sizeof(pidfile));
	tlm_h_serve_stop(&srv);
	tlm_h_serve_start(&srv, args);
	agent = none_agent("tlm-it-persist");
	snprintf(script, sizeof(script), "echo $$ > '%s'; exec sleep 60", pidfile);
	sleeper = sh_agent("tlm-it-sleeper", script);
	members[0] = agent;
	members[1] = sleeper;
	team = make_team("tlm-it-persist-team", members);
	done = make_task(team, agent, "done", "", NULL);
	running = make_task(team, sleeper, "running", "", NULL);
	agent_do(agent, "start");
	agent_do(sleeper, "start");
	json_decref(wait_task(team, done, "completed", NULL));
	json_decref(wait_task(team, running, "running", NULL));
	pid = wait_pidfile(pidfile);

	/* No clean shutdown: SIGKILL, as a crash would. */
	assert_int_equal(prctl(PR_SET_CHILD_SUBREAPER, 1), 0);
	assert_int_equal(kill(srv.pid, SIGKILL), 0);
	assert_int_equal(waitpid(srv.pid, &status, 0), srv.pid);
	srv.pid = 0;
	tlm_h_serve_stop(&srv); /* removes the old state dir, not the file */
	wait_gone(pid, 0, 5000);
	end = tlm_h_now_ms() + WAIT_MS;
	while (waitpid(-1, &status, WNOHANG) >= 0) { /* the orphaned supervisor */
		if (tlm_h_now_ms() > end)
			fail_msg("a process of the killed server is still alive");
		tlm_h_sleep_ms(POLL_MS);
	}
	assert_int_equal(prctl(PR_SET_CHILD_SUBREAPER, 0), 0);
	tlm_h_serve_start(&srv, args);

	j = call("GET", "/v1/agents/by-name/tlm-it-persist", NULL, 200);
	assert_string_equal(tlm_h_str(json_object_get(j, "agent"), "id"), agent);
	assert_string_equal(tlm_h_str(json_object_get(j, "agent"), "program"), "none");
	json_decref(j);
	snprintf(path, sizeof(path), "/v1/agents/%s", sleeper);
	json_decref(call("GET", path, NULL, 200));
	snprintf(path, sizeof(path), "/v1/teams/%s", team);
	j = call("GET", path, NULL, 200);
	assert_int_equal(json_array_size(json_object_get(json_object_get(j, "team"), "agentIds")),
			 2);
	json_decref(j);
	t = get_task(team, done);
	assert_string_equal(status_of(t), "completed");
	json_decref(t);
	/* Nobody will ever finish the task the killed server was running. */
	json_decref(wait_task(team, running, "failed", "restarted"));
	free(done);
	free(running);
	free(team);
	free(agent);
	free(sleeper);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_none_completes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_program_runs, setup, teardown),
		cmocka_unit_test_setup_teardown(test_program_fails, setup, teardown),
		cmocka_unit_test_setup_teardown(test_program_missing, setup, teardown),
		cmocka_unit_test_setup_teardown(test_one_at_a_time_in_order, setup, teardown),
		cmocka_unit_test_setup_teardown(test_blocked_by, setup, teardown),
		cmocka_unit_test_setup_teardown(test_offline_runs_nothing, setup, teardown),
		cmocka_unit_test_setup_teardown(test_stop_ignores_sigterm, setup, teardown),
		cmocka_unit_test_setup_teardown(test_delete_kills_grandchild, setup, teardown),
		cmocka_unit_test_setup_teardown(test_server_sigkilled, setup, teardown),
		cmocka_unit_test_setup_teardown(test_state_survives_restart, setup, teardown),
	};

	return cmocka_run_group_tests_name("serve.agents", tests, NULL, NULL);
}
