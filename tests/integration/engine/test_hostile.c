/* A hostile control plane (docs/design.md §11), end to end: the real
 * `telemachy run`, `teardown`, `reconcile` and `status` against the test
 * double of tests/harness/hostile.c, which gives ids that are not plain or
 * cannot be addressed, two resources under one id, endless and huge
 * listings, replies over 1 MiB or not JSON, and text that tries to forge
 * output.  Every wait is bounded. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness/harness.h"
#include "harness/hostile.h"
#include "harness/run.h"

#define RUN_MS 60000
#define CMD_MS 60000

static tlm_h_hostile *hs;
static tlm_h_run run;
static char *dir;

/* Agents a and b in team t; one task, on a. */
static const char two_agents[] = "apiVersion: telemachy/v1\n"
				 "metadata: {name: hostile}\n"
				 "agents:\n"
				 "  - {name: a, program: none}\n"
				 "  - {name: b, program: none}\n"
				 "teams:\n"
				 "  - name: t\n"
				 "    agents: [a, b]\n"
				 "    tasks: [{subject: s, description: d, assign_to: a}]\n";

static int setup(void **state)
{
	(void)state;
	hs = NULL;
	memset(&run, 0, sizeof(run));
	dir = tlm_h_tmpdir();
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	tlm_h_run_clear(&run);
	tlm_h_hostile_stop(hs);
	hs = NULL;
	tlm_h_rmrf(dir);
	free(dir);
	return 0;
}

/* ---- helpers ------------------------------------------------------------ */

static const char *state_dir(void)
{
	static char path[4096];

	snprintf(path, sizeof(path), "%s/state", run.dir);
	return path;
}

/* `telemachy SUB --state-dir (run's) ARGS...` against the hostile server
 * (AGAMEMNON_URL), bounded by timeout_ms (then a test failure). */
static void cmd_env(const char *sub, const char *extra_env, const char *const *args, int timeout_ms,
		    tlm_h_cmd *c)
{
	char urlenv[200];
	const char *env[] = { urlenv, extra_env, NULL }, *argv[32];
	size_t n = 0, i;

	snprintf(urlenv, sizeof(urlenv), "AGAMEMNON_URL=%s", tlm_h_hostile_url(hs));
	argv[n++] = sub;
	argv[n++] = "--state-dir";
	argv[n++] = state_dir();
	for (i = 0; args != NULL && args[i] != NULL && n < 31; i++)
		argv[n++] = args[i];
	argv[n] = NULL;
	tlm_h_cmd_run(c, dir, env, argv, timeout_ms);
	if (c->exit_code < 0)
		fail_msg("telemachy %s did not end within %d ms\nstdout:\n%s\nstderr:\n%s", sub,
			 timeout_ms, c->out, c->err);
	if (getenv("TLM_TEST_VERBOSE") != NULL)
		print_message("telemachy %s: exit %d in %lld ms\nstdout:\n%s\nstderr:\n%s", sub,
			      c->exit_code, (long long)c->ms, c->out, c->err);
}

static void cmd(const char *sub, const char *const *args, int timeout_ms, tlm_h_cmd *c)
{
	cmd_env(sub, NULL, args, timeout_ms, c);
}

static void want_exit(const char *sub, const tlm_h_cmd *c, int want)
{
	if (c->exit_code != want)
		fail_msg("telemachy %s: exit %d, want %d\nstdout:\n%s\nstderr:\n%s", sub,
			 c->exit_code, want, c->out, c->err);
}

/* Starts `telemachy run` of text against the hostile server, with a short
 * request timeout (creates of unknown outcome settle after it). */
static void start_run(const char *text, const char *const *extra)
{
	char urlenv[200], *file = tlm_h_write_file(dir, "w.yaml", text);
	const char *env[] = { urlenv, NULL };
	const char *args[8] = { "--request-timeout", "2" };
	size_t n = 2, i;

	for (i = 0; extra != NULL && extra[i] != NULL && n < 7; i++)
		args[n++] = extra[i];
	args[n] = NULL;
	snprintf(urlenv, sizeof(urlenv), "AGAMEMNON_URL=%s", tlm_h_hostile_url(hs));
	tlm_h_run_start(&run, env, args, file);
	free(file);
}

static int finish_run(void)
{
	tlm_h_run_wait(&run, RUN_MS);
	if (getenv("TLM_TEST_VERBOSE") != NULL)
		print_message("run: exit %d\nstdout:\n%s\nstderr:\n%s", run.exit_code, run.out,
			      run.err);
	if (run.result == NULL)
		fail_msg("no JSON summary; exit %d\nstdout:\n%s\nstderr:\n%s", run.exit_code,
			 run.out, run.err);
	return run.exit_code;
}

static const char *run_id(void)
{
	return tlm_h_str(run.result, "run_id");
}

/* `status RUN --output json` (the caller decrefs). */
static json_t *status_json(void)
{
	const char *args[] = { "--output", "json", run_id(), NULL };
	tlm_h_cmd c;
	json_t *j;

	cmd("status", args, CMD_MS, &c);
	want_exit("status", &c, 0);
	if (c.json == NULL)
		fail_msg("status: not JSON:\n%s", c.out);
	j = json_incref(c.json);
	tlm_h_cmd_free(&c);
	return j;
}

/* The journal's row of name in a status document, or NULL. */
static json_t *row(const json_t *st, const char *name)
{
	return tlm_h_find(st, "resources", "name", name);
}

/* The summary's leftover named name, or NULL. */
static json_t *leftover(const json_t *result, const char *name)
{
	return tlm_h_find(result, "leftovers", "name", name);
}

static void resource_name(char *out, size_t cap, char kind, const char *name)
{
	snprintf(out, cap, "tlm-%s-%c-%s", run_id(), kind, name);
}

static void want_count(const char *method, const char *prefix, const char *id, const char *suffix,
		       size_t want)
{
	char enc[16384], path[17000];
	size_t got;

	tlm_h_pct(enc, sizeof(enc), id);
	snprintf(path, sizeof(path), "%s%s%s", prefix, enc, suffix);
	got = tlm_h_hostile_count(hs, method, path);
	if (got != want) {
		char *log = tlm_h_hostile_log(hs);

		fail_msg("%s %s: %zu requests, want %zu; the server saw:\n%s", method, path, got,
			 want, log);
	}
}

static void want_no_miss(void)
{
	if (tlm_h_hostile_misses(hs) != 0) {
		char *log = tlm_h_hostile_log(hs);

		fail_msg("%zu requests on a path that is no id's exact encoding:\n%s",
			 tlm_h_hostile_misses(hs), log);
	}
}

/* ---- 1: ids that are not plain ------------------------------------------ */

/* Every request about a resource whose id holds "#", "?", "../", a space or
 * "%2F" arrives on the exact percent-encoded path of that id; the deletes
 * hit them; what the journal calls deleted is gone from the server. */
static void test_ids_not_plain(void **state)
{
	static const char *const aid = "a#frag?x=y&z", *const bid = "../b 2/..",
				 *const tid = "t%2F..%2Fx/../y";
	static char longname[301];
	tlm_h_hostile_opts o = { 0 };
	const char *td[2];
	tlm_h_cmd c;
	json_t *st, *r;
	size_t i;

	(void)state;
	o.agent_ids[0] = aid;
	o.agent_ids[1] = bid;
	o.team_ids[0] = tid;
	/* and an extra of the run named longer than any run names: deleted */
	memset(longname, 'z', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	o.stray_suffix = longname;
	hs = tlm_h_hostile_start(&o);
	start_run(two_agents, NULL);
	assert_int_equal(finish_run(), 0);
	assert_string_equal(tlm_h_str(run.result, "outcome"), "completed");
	want_no_miss();
	for (i = 0; i < 2; i++) {
		const char *id = i == 0 ? aid : bid;

		want_count("POST", "/v1/agents/", id, "/start", 1);
		want_count("POST", "/v1/agents/", id, "/stop", 1);
		want_count("DELETE", "/v1/agents/", id, "", 1);
	}
	want_count("POST", "/v1/teams/", tid, "/tasks", 1);
	want_count("DELETE", "/v1/teams/", tid, "", 1);
	assert_int_equal(tlm_h_hostile_live(hs, "agents"), 0);
	assert_int_equal(tlm_h_hostile_live(hs, "teams"), 0);

	/* the journal has the ids as the server gave them, all deleted */
	st = status_json();
	json_array_foreach(json_object_get(st, "resources"), i, r)
	{
		const char *id = tlm_h_str(r, "remote_id");

		if (strcmp(id, aid) != 0 && strcmp(id, bid) != 0 && strcmp(id, tid) != 0)
			fail_msg("journal id %s is none the server gave", id);
		assert_string_equal(tlm_h_str(r, "state"), "deleted");
	}
	json_decref(st);

	/* teardown RUN again: nothing left, still no wrong path */
	td[0] = run_id();
	td[1] = NULL;
	cmd("teardown", td, CMD_MS, &c);
	want_exit("teardown", &c, 0);
	tlm_h_cmd_free(&c);
	want_no_miss();
}

/* ---- 2: ids that cannot be addressed ------------------------------------ */

/* An id no path can hold — "..", one too long for a path, one too long even
 * for the journal — is recorded, warned about and a leftover (exit 4),
 * never dropped; nothing is ever sent about it. */
static void test_ids_unaddressable(void **state)
{
	static char longer[3001], longest[5001];
	tlm_h_hostile_opts o = { 0 };
	char a[128], b[128], t[128], shown[64];
	const char *td[2];
	json_t *st, *r, *l;
	tlm_h_cmd c;

	(void)state;
	memset(longer, 'x', sizeof(longer) - 1);
	memset(longest, 'y', sizeof(longest) - 1);

	/* a team id of 5000 bytes: more than the journal holds */
	o.team_ids[0] = longest;
	hs = tlm_h_hostile_start(&o);
	start_run(two_agents, NULL);
	if (finish_run() != 4)
		fail_msg("exit %d, want 4\n%s", run.exit_code, run.err);
	resource_name(t, sizeof(t), 't', "t");
	l = leftover(run.result, t);
	if (l == NULL)
		fail_msg("team %s must be a leftover:\n%s", t, run.out);
	assert_string_equal(tlm_h_str(l, "id"), longest);
	assert_int_equal(tlm_h_hostile_live(hs, "agents"), 0);
	assert_int_equal(tlm_h_hostile_live(hs, "teams"), 1);
	want_no_miss();
	st = status_json();
	r = row(st, t);
	assert_non_null(r);
	assert_string_equal(tlm_h_str(r, "state"), "intent");
	snprintf(shown, sizeof(shown), "%.40s", longest);
	if (!json_is_string(json_object_get(r, "last_error")) ||
	    strstr(tlm_h_str(r, "last_error"), "cannot be addressed") == NULL ||
	    strstr(tlm_h_str(r, "last_error"), shown) == NULL)
		fail_msg("the journal must say why: %s", tlm_h_dump(r));
	assert_int_equal(tlm_h_int(st, "leftovers"), 1);
	json_decref(st);
	td[0] = run_id();
	td[1] = NULL;
	cmd("teardown", td, CMD_MS, &c);
	want_exit("teardown", &c, 4);
	assert_non_null(strstr(c.out, t));
	tlm_h_cmd_free(&c);
	assert_int_equal(tlm_h_hostile_live(hs, "teams"), 1);
	want_no_miss();
	tlm_h_run_clear(&run);
	tlm_h_hostile_stop(hs);

	/* agents: ".." and 3000 bytes (the journal holds it, no path does) */
	memset(&o, 0, sizeof(o));
	o.agent_ids[0] = "..";
	o.agent_ids[1] = longer;
	hs = tlm_h_hostile_start(&o);
	start_run(two_agents, NULL);
	if (finish_run() != 4)
		fail_msg("exit %d, want 4\n%s", run.exit_code, run.err);
	resource_name(a, sizeof(a), 'a', "a");
	resource_name(b, sizeof(b), 'a', "b");
	l = leftover(run.result, a);
	if (l == NULL || leftover(run.result, b) == NULL)
		fail_msg("%s and %s must be leftovers:\n%s", a, b, run.out);
	assert_string_equal(tlm_h_str(l, "id"), "..");
	assert_string_equal(tlm_h_str(leftover(run.result, b), "id"), longer);
	assert_non_null(strstr(tlm_h_str(l, "reason"), "cannot be addressed"));
	assert_non_null(strstr(run.err, "no request can address"));
	want_no_miss();
	assert_int_equal(tlm_h_hostile_live(hs, "agents"), 2);
	st = status_json();
	r = row(st, a);
	assert_non_null(r);
	assert_string_equal(tlm_h_str(r, "remote_id"), "..");
	assert_non_null(strstr(tlm_h_str(r, "last_error"), "cannot be addressed"));
	assert_string_equal(tlm_h_str(row(st, b), "remote_id"), longer);
	assert_int_equal(tlm_h_int(st, "leftovers"), 2);
	json_decref(st);
	td[0] = run_id();
	cmd("teardown", td, CMD_MS, &c);
	want_exit("teardown", &c, 4);
	assert_non_null(strstr(c.out, a));
	tlm_h_cmd_free(&c);
	want_no_miss();
}

/* ---- 3: two resources under one id --------------------------------------- */

/* Both agents are given one id: the second is an error and a leftover, and
 * the id is deleted once — never one delete counted for two. */
static void test_one_id_two_agents(void **state)
{
	tlm_h_hostile_opts o = { 0 };
	char b[128];
	const char *td[2];
	json_t *l;
	tlm_h_cmd c;

	(void)state;
	o.agent_ids[0] = "same";
	o.same_agent_id = 1;
	hs = tlm_h_hostile_start(&o);
	start_run(two_agents, NULL);
	if (finish_run() != 4)
		fail_msg("exit %d, want 4\n%s\n%s", run.exit_code, run.out, run.err);
	resource_name(b, sizeof(b), 'a', "b");
	l = leftover(run.result, b);
	if (l == NULL)
		fail_msg("%s must be a leftover:\n%s", b, run.out);
	assert_string_equal(tlm_h_str(l, "id"), "same");
	assert_non_null(strstr(tlm_h_str(l, "reason"), "one delete cannot count for both"));
	assert_non_null(strstr(tlm_h_str(run.result, "error"), "one id cannot stand for two"));
	want_count("DELETE", "/v1/agents/", "same", "", 1);
	assert_int_equal(tlm_h_hostile_live(hs, "agents"), 1); /* b's record */
	want_no_miss();
	td[0] = run_id();
	td[1] = NULL;
	cmd("teardown", td, CMD_MS, &c);
	want_exit("teardown", &c, 4);
	tlm_h_cmd_free(&c);
	want_count("DELETE", "/v1/agents/", "same", "", 1);
}

/* The listing shows a second name under each agent's id: each is a
 * leftover with its reason; each id is deleted once; and so again in a
 * later teardown, once the ids' first holders are gone. */
static void test_second_name_under_an_id(void **state)
{
	tlm_h_hostile_opts o = { 0 };
	char a[128], dup[160];
	const char *td[2];
	json_t *l;
	tlm_h_cmd c;

	(void)state;
	o.dup_name = 1;
	hs = tlm_h_hostile_start(&o);
	start_run(two_agents, NULL);
	if (finish_run() != 4)
		fail_msg("exit %d, want 4\n%s\n%s", run.exit_code, run.out, run.err);
	resource_name(a, sizeof(a), 'a', "a");
	snprintf(dup, sizeof(dup), "%s-dup", a);
	l = leftover(run.result, dup);
	if (l == NULL)
		fail_msg("%s must be a leftover:\n%s", dup, run.out);
	if (strstr(tlm_h_str(l, "reason"), a) == NULL)
		fail_msg("the reason must name %s: %s", a, tlm_h_str(l, "reason"));
	assert_int_equal(json_array_size(json_object_get(run.result, "leftovers")), 2);
	want_count("DELETE", "/v1/agents/", "agent-1", "", 1);
	want_count("DELETE", "/v1/agents/", "agent-2", "", 1);
	assert_int_equal(tlm_h_hostile_live(hs, "agents"), 2); /* the two -dup */
	td[0] = run_id();
	td[1] = NULL;
	cmd("teardown", td, CMD_MS, &c);
	want_exit("teardown", &c, 4);
	if (strstr(c.out, dup) == NULL)
		fail_msg("teardown must list %s:\n%s", dup, c.out);
	tlm_h_cmd_free(&c);
	want_count("DELETE", "/v1/agents/", "agent-1", "", 1);
	want_no_miss();
}

/* reconcile: a kept run whose agent is listed under a second name with the
 * same id: both are reported, neither is deleted (a delete by that id
 * would reach one of them, and count for both). */
static void test_reconcile_one_id(void **state)
{
	static const char kept[] =
		"apiVersion: telemachy/v1\n"
		"metadata: {name: kept}\n"
		"teardown: never\n"
		"agents: [{name: a, program: none}]\n"
		"teams:\n"
		"  - {name: t, agents: [a], tasks: [{subject: s, description: d}]}\n";
	const char *plan[] = { "--output", "json", NULL },
		   *del[] = { "--output", "json", "--delete", NULL };
	tlm_h_hostile_opts o = { 0 };
	tlm_h_cmd c;
	json_t *orphan;
	size_t i, shared = 0;

	(void)state;
	o.dup_name = 1;
	hs = tlm_h_hostile_start(&o);
	start_run(kept, NULL);
	assert_int_equal(finish_run(), 0);
	cmd("reconcile", plan, CMD_MS, &c);
	want_exit("reconcile", &c, 0);
	json_array_foreach(json_object_get(c.json, "orphans"), i, orphan)
	{
		if (strstr(tlm_h_str(orphan, "why"), "its id is also that of") != NULL) {
			shared++;
			assert_true(json_is_false(json_object_get(orphan, "deletable")));
		}
	}
	if (shared != 2)
		fail_msg("want both agents under one id reported, not deletable:\n%s", c.out);
	tlm_h_cmd_free(&c);
	cmd("reconcile", del, CMD_MS, &c);
	want_exit("reconcile", &c, 0);
	tlm_h_cmd_free(&c);
	want_count("DELETE", "/v1/agents/", "agent-1", "", 0);
	want_count("DELETE", "/v1/teams/", "team-1", "", 1);
	assert_int_equal(tlm_h_hostile_live(hs, "agents"), 2);
}

/* ---- 4: endless and huge listings ---------------------------------------- */

/* A kept run (teardown: never) against the server, then `teardown RUN`
 * started against a listing that never ends: it leaves at the first
 * SIGINT within a second, exit 130, and the journal still has the run. */
static void test_endless_listing_teardown_signal(void **state)
{
	static const char kept[] =
		"apiVersion: telemachy/v1\n"
		"metadata: {name: kept}\n"
		"teardown: never\n"
		"agents: [{name: a, program: none}]\n"
		"teams:\n"
		"  - {name: t, agents: [a], tasks: [{subject: s, description: d}]}\n";
	tlm_h_hostile_opts o = { 0 };
	char urlenv[200];
	const char *env[] = { urlenv, NULL }, *args[5];
	tlm_h_cmd c;
	int64_t t0, sent;
	int sig;

	(void)state;
	o.endless = 1;
	hs = tlm_h_hostile_start(&o);
	start_run(kept, NULL);
	assert_int_equal(finish_run(), 0);
	snprintf(urlenv, sizeof(urlenv), "AGAMEMNON_URL=%s", tlm_h_hostile_url(hs));
	for (sig = 0; sig < 2; sig++) {
		size_t before = tlm_h_hostile_pages(hs, NULL);

		args[0] = "teardown";
		args[1] = "--state-dir";
		args[2] = state_dir();
		args[3] = run_id();
		args[4] = NULL;
		tlm_h_cmd_start(&c, dir, env, args);
		t0 = tlm_h_now_ms();
		while (tlm_h_hostile_pages(hs, NULL) < before + 20 && tlm_h_now_ms() - t0 < 20000)
			tlm_h_sleep_ms(5);
		assert_true(tlm_h_hostile_pages(hs, NULL) >= before + 20);
		sent = tlm_h_now_ms();
		kill(c.pid, sig == 0 ? SIGINT : SIGTERM);
		tlm_h_cmd_wait(&c, dir, 10000);
		print_message("teardown left %lld ms after %s, %zu pages in\n",
			      (long long)(tlm_h_now_ms() - sent), sig == 0 ? "SIGINT" : "SIGTERM",
			      tlm_h_hostile_pages(hs, NULL) - before);
		want_exit("teardown", &c, 130);
		assert_true(tlm_h_now_ms() - sent < 1000);
		tlm_h_cmd_free(&c);
	}
	assert_int_equal(tlm_h_hostile_live(hs, "agents"), 1); /* still there, journaled */
}

/* run's own teardown against the endless listing: the first SIGINT does not
 * cut it short, the second leaves within a second (exit 130). */
static void test_endless_listing_run_signals(void **state)
{
	tlm_h_hostile_opts o = { 0 };
	int64_t t0, sent;

	(void)state;
	o.endless = 1;
	hs = tlm_h_hostile_start(&o);
	start_run(two_agents, NULL);
	t0 = tlm_h_now_ms();
	while (tlm_h_hostile_pages(hs, NULL) < 20 && tlm_h_now_ms() - t0 < 20000)
		tlm_h_sleep_ms(5);
	assert_true(tlm_h_hostile_pages(hs, NULL) >= 20);
	kill(run.pid, SIGINT);
	tlm_h_sleep_ms(500);
	assert_int_equal(waitpid(run.pid, NULL, WNOHANG), 0); /* still tearing down */
	sent = tlm_h_now_ms();
	kill(run.pid, SIGINT);
	tlm_h_run_wait(&run, 10000);
	print_message("run left %lld ms after the second SIGINT\n",
		      (long long)(tlm_h_now_ms() - sent));
	if (run.exit_code != 130)
		fail_msg("exit %d, want 130\n%s", run.exit_code, run.err);
	assert_true(tlm_h_now_ms() - sent < 1000);
	assert_non_null(strstr(run.err, "telemachy teardown"));
}

/* A kept run, then `teardown RUN` against a listing of 100,000 tlm- agents
 * of other runs: the sweep reads them all and stays linear (the figures
 * are in docs/performance.md); then `reconcile` over the same listing. */
static void test_sweep_100k(void **state)
{
	static const char kept[] =
		"apiVersion: telemachy/v1\n"
		"metadata: {name: kept}\n"
		"teardown: never\n"
		"agents: [{name: a, program: none}]\n"
		"teams:\n"
		"  - {name: t, agents: [a], tasks: [{subject: s, description: d}]}\n";
	tlm_h_hostile_opts o = { 0 };
	const char *td[2], *rec[] = { "--output", "json", NULL };
	size_t items = 0;
	tlm_h_cmd c;

	(void)state;
	o.filler = 100000;
	hs = tlm_h_hostile_start(&o);
	start_run(kept, NULL);
	assert_int_equal(finish_run(), 0);
	td[0] = run_id();
	td[1] = NULL;
	cmd("teardown", td, CMD_MS, &c);
	want_exit("teardown", &c, 0);
	print_message("teardown RUN over 100,000 listed agents: %lld ms, %zu pages\n",
		      (long long)c.ms, tlm_h_hostile_pages(hs, &items));
	assert_true(items >= 100000);
	assert_true(c.ms < 30000);
	tlm_h_cmd_free(&c);
	assert_int_equal(tlm_h_hostile_live(hs, "agents"), 0);
	cmd("reconcile", rec, CMD_MS, &c);
	want_exit("reconcile", &c, 0);
	print_message("reconcile over 100,000 listed agents: %lld ms\n", (long long)c.ms);
	assert_int_equal(tlm_h_int(c.json, "scanned"), 100000);
	assert_true(c.ms < 30000);
	tlm_h_cmd_free(&c);
	want_no_miss();
}

/* Listings that never end, or whose pages are over 1 MiB: `teardown RUN`
 * stops by itself at the paging bounds (TLM_CLIENT_LIST_MAX_ITEMS and
 * _MS, lowered here through the test builds' TLM_TEST_LIST_MAX_*), says
 * why, and still deletes what the journal knows. */
/* The listings failed (teams too when both): one leftover line per kind,
 * under the run's prefix. */
static void want_unverified(const tlm_h_cmd *c, int both)
{
	if (strstr(c->out, "agents could not be listed") == NULL ||
	    (strstr(c->out, "teams could not be listed") == NULL) == both)
		fail_msg("no leftover for the unlisted control plane:\nstdout:\n%s\nstderr:\n%s",
			 c->out, c->err);
}

static void test_listing_bounded(void **state)
{
	static const char kept[] =
		"apiVersion: telemachy/v1\n"
		"metadata: {name: kept}\n"
		"teardown: never\n"
		"agents: [{name: a, program: none}]\n"
		"teams:\n"
		"  - {name: t, agents: [a], tasks: [{subject: s, description: d}]}\n";
	tlm_h_hostile_opts o = { 0 };
	char cp[200];
	const char *td[4];
	size_t items = 0, pages;
	tlm_h_cmd c;

	(void)state;
	o.endless = 1;
	o.page_max = 1000;
	hs = tlm_h_hostile_start(&o);
	start_run(kept, NULL);
	assert_int_equal(finish_run(), 0);
	td[0] = run_id();
	td[1] = NULL;
	/* The listing was cut short: what else the run left there is unknown,
	 * so teardown deletes what it knows and says it is not clean. */
	cmd_env("teardown", "TLM_TEST_LIST_MAX_ITEMS=50000", td, CMD_MS, &c);
	want_exit("teardown", &c, 4);
	want_unverified(&c, 1);
	pages = tlm_h_hostile_pages(hs, &items);
	print_message("endless listing, 50,000-item bound: %lld ms, %zu pages, %zu items\n",
		      (long long)c.ms, pages, items);
	if (strstr(c.err, "more than 50000 items; refusing to go on") == NULL)
		fail_msg("no word of the bound:\n%s", c.err);
	assert_true(items < 2 * 52000);
	tlm_h_cmd_free(&c);
	assert_int_equal(tlm_h_hostile_live(hs, "agents"), 0);
	assert_int_equal(tlm_h_hostile_live(hs, "teams"), 0);

	cmd_env("teardown", "TLM_TEST_LIST_MAX_MS=1000", td, CMD_MS, &c);
	want_exit("teardown", &c, 4);
	want_unverified(&c, 1);
	print_message("endless listing, 1 s bound: %lld ms\n", (long long)c.ms);
	if (strstr(c.err, "paging took over 1000 ms; giving up") == NULL)
		fail_msg("no word of the bound:\n%s", c.err);
	assert_true(c.ms < 10000);
	tlm_h_cmd_free(&c);
	tlm_h_hostile_stop(hs);

	/* pages over 1 MiB */
	memset(&o, 0, sizeof(o));
	o.filler = 40000;
	o.page_max = 40000;
	hs = tlm_h_hostile_start(&o);
	snprintf(cp, sizeof(cp), "%s", tlm_h_hostile_url(hs));
	td[1] = "--control-plane";
	td[2] = cp;
	td[3] = NULL;
	cmd("teardown", td, CMD_MS, &c);
	want_exit("teardown", &c, 4);
	want_unverified(&c, 0);
	if (strstr(c.err, "reply over 1 MiB") == NULL)
		fail_msg("no word of the huge page:\n%s", c.err);
	tlm_h_cmd_free(&c);
}

/* ---- 5: a server that forges output --------------------------------------- */

/* What a hostile server (or spec) can put in names, ids, task messages and
 * error texts: ANSI sequences, \r, an OSC window title, a fake summary
 * line, hidden text. */
#define FORGED "\r\x1b[2K\x1b]0;pwned\x07\nrun zzzzzzzz: completed in 0.1 s\n\x1b[8mhidden"
#define SHOWN  "\\x0d\\x1b[2K\\x1b]0;pwned\\x07\\nrun zzzzzzzz: completed in 0.1 s\\n\\x1b[8mhidden"

/* No control character but newlines in text, no line starting with the
 * forged summary line, and the forged text shown escaped (when shown). */
static void want_inert(const char *what, const char *text, int shown)
{
	const unsigned char *p;
	const char *line;

	for (p = (const unsigned char *)text; *p != '\0'; p++)
		if ((*p < 0x20 && *p != '\n') || *p == 0x7f)
			fail_msg("%s: byte 0x%02x printed raw:\n%s", what, *p, text);
	for (line = text; line != NULL; line = strchr(line, '\n')) {
		line += *line == '\n';
		if (strncmp(line, "run zzzzzzzz", 12) == 0)
			fail_msg("%s: a forged line:\n%s", what, text);
	}
	if (shown && strstr(text, SHOWN) == NULL)
		fail_msg("%s: the forged text is not shown escaped:\n%s", what, text);
}

static void test_forged_output(void **state)
{
	static const char spec[] =
		"apiVersion: telemachy/v1\n"
		"metadata: {name: \"wf\\e]0;pwned\\a\\r\"}\n"
		"teardown: never\n"
		"agents: [{name: a, program: none}]\n"
		"teams:\n"
		"  - {name: t, agents: [a], tasks: [{subject: s, description: d}]}\n";
	tlm_h_hostile_opts o = { 0 };
	char urlenv[200], *file;
	const char *env[] = { urlenv, NULL }, *args[8], *td[2];
	tlm_h_cmd c;

	(void)state;
	o.agent_ids[0] = "a" FORGED;
	o.team_ids[0] = "t" FORGED;
	o.task_status = "failed";
	o.task_message = FORGED;
	o.stray_suffix = "x" FORGED;
	hs = tlm_h_hostile_start(&o);
	snprintf(urlenv, sizeof(urlenv), "AGAMEMNON_URL=%s", tlm_h_hostile_url(hs));
	run.dir = tlm_h_tmpdir(); /* state_dir() */
	file = tlm_h_write_file(dir, "w.yaml", spec);
	args[0] = "run";
	args[1] = "--state-dir";
	args[2] = state_dir();
	args[3] = file;
	args[4] = NULL;
	tlm_h_cmd_run(&c, dir, env, args, RUN_MS);
	want_exit("run", &c, 1); /* the task failed; kept by policy */
	want_inert("run's summary", c.out, 1);
	want_inert("run's log", c.err, 1);
	tlm_h_cmd_free(&c);
	free(file);

	args[0] = "list";
	args[1] = "--state-dir";
	args[2] = state_dir();
	args[3] = NULL;
	tlm_h_cmd_run(&c, dir, env, args, CMD_MS);
	want_exit("list", &c, 0);
	want_inert("list", c.out, 0);
	assert_non_null(strstr(c.out, "wf\\x1b]0;pwned\\x07\\x0d"));
	tlm_h_cmd_free(&c);

	cmd("status", NULL, CMD_MS, &c);
	want_exit("status", &c, 0);
	want_inert("status", c.out, 1);
	tlm_h_cmd_free(&c);

	cmd("reconcile", NULL, CMD_MS, &c);
	want_exit("reconcile", &c, 0);
	want_inert("reconcile", c.out, 1);
	want_inert("reconcile's stderr", c.err, 0);
	tlm_h_cmd_free(&c);

	/* the run id, from list -q */
	args[0] = "list";
	args[3] = "-q";
	args[4] = NULL;
	tlm_h_cmd_run(&c, dir, env, args, CMD_MS);
	c.out[strcspn(c.out, "\n")] = '\0';
	td[0] = c.out;
	td[1] = NULL;
	{
		tlm_h_cmd t;

		cmd("teardown", td, CMD_MS, &t);
		want_exit("teardown", &t, 0);
		want_inert("teardown's summary", t.out, 0);
		want_inert("teardown's log", t.err, 1);
		tlm_h_cmd_free(&t);
	}
	tlm_h_cmd_free(&c);
	assert_int_equal(tlm_h_hostile_live(hs, "agents"), 0);
	want_no_miss();
}

/* ---- 6: replies over 1 MiB, and not JSON ---------------------------------- */

/* Agent creates answered 201 with a body that is not JSON (1) or one over
 * 1 MiB (2): the agents exist, the outcome is unknown; the engine finds
 * them by name, posts nothing twice, completes, and deletes them. */
static void create_reply(int mode)
{
	tlm_h_hostile_opts o = { 0 };

	o.create_reply = mode;
	hs = tlm_h_hostile_start(&o);
	start_run(two_agents, NULL);
	if (finish_run() != 0)
		fail_msg("exit %d, want 0\n%s", run.exit_code, run.err);
	assert_string_equal(tlm_h_str(run.result, "outcome"), "completed");
	if (strstr(run.err, "agent a: found by name") == NULL ||
	    strstr(run.err, "agent b: found by name") == NULL)
		fail_msg("the agents were not looked up by name:\n%s", run.err);
	assert_int_equal(tlm_h_hostile_count(hs, "POST", "/v1/agents"), 2);
	assert_int_equal(tlm_h_hostile_live(hs, "agents"), 0);
	assert_int_equal(tlm_h_hostile_live(hs, "teams"), 0);
	want_no_miss();
}

static void test_create_reply_not_json(void **state)
{
	(void)state;
	create_reply(1);
}

static void test_create_reply_over_1mib(void **state)
{
	(void)state;
	create_reply(2);
}

/* Task creates answered 201 with a body that is not JSON (1), or with an
 * id that is a number (2): the reply is read without the transport's
 * parse (src/client/task_reply.c) and both readings refuse it; the task
 * exists, so the engine finds it by its subject, posts it once, and the
 * run completes with nothing left. */
static void task_create_reply(int mode)
{
	tlm_h_hostile_opts o = { 0 };

	o.task_create_reply = mode;
	hs = tlm_h_hostile_start(&o);
	start_run(two_agents, NULL);
	if (finish_run() != 0)
		fail_msg("exit %d, want 0\n%s", run.exit_code, run.err);
	assert_string_equal(tlm_h_str(run.result, "outcome"), "completed");
	/* its id came from the listing: the reply had none to read */
	assert_string_equal(
		tlm_h_str(json_array_get(json_object_get(run.result, "tasks"), 0), "id"), "task-1");
	assert_int_equal(tlm_h_hostile_count(hs, "POST", "/v1/teams/team-1/tasks"), 1);
	assert_int_equal(tlm_h_hostile_live(hs, "agents"), 0);
	assert_int_equal(tlm_h_hostile_live(hs, "teams"), 0);
	want_no_miss();
}

static void test_task_create_reply_not_json(void **state)
{
	(void)state;
	task_create_reply(1);
}

static void test_task_create_reply_numeric_id(void **state)
{
	(void)state;
	task_create_reply(2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_ids_not_plain, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ids_unaddressable, setup, teardown),
		cmocka_unit_test_setup_teardown(test_one_id_two_agents, setup, teardown),
		cmocka_unit_test_setup_teardown(test_second_name_under_an_id, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reconcile_one_id, setup, teardown),
		cmocka_unit_test_setup_teardown(test_endless_listing_teardown_signal, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_endless_listing_run_signals, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sweep_100k, setup, teardown),
		cmocka_unit_test_setup_teardown(test_listing_bounded, setup, teardown),
		cmocka_unit_test_setup_teardown(test_forged_output, setup, teardown),
		cmocka_unit_test_setup_teardown(test_create_reply_not_json, setup, teardown),
		cmocka_unit_test_setup_teardown(test_create_reply_over_1mib, setup, teardown),
		cmocka_unit_test_setup_teardown(test_task_create_reply_not_json, setup, teardown),
		cmocka_unit_test_setup_teardown(test_task_create_reply_numeric_id, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
