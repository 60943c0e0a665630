/* `telemachy ui` (docs/ui.md) as a real process: every /api/ route against
 * what the report module says of the same journal (a real run on `telemachy
 * serve` with NATS, two teams, a cross-team edge and a failed task), the
 * errors (400, 404, 405, 414), the security checks (Host, Origin, CSRF,
 * the access token and the start-up refusals off loopback), the actions,
 * and a hostile journal whose names carry markup: escaped in every page and
 * in the SVG, never raw. */
#include <curl/curl.h>
#include <fcntl.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness/harness.h"
#include "harness/nats.h"
#include "harness/run.h"
#include "harness/serve.h"
#include "harness/ui.h"
#include "telemachy/journal.h"
#include "telemachy/report.h"

#define HOSTILE     "<script>alert(1)</script> \"q\" 'a' & b"
#define HOSTILE_ESC "&lt;script&gt;alert(1)&lt;/script&gt; &quot;q&quot; &#39;a&#39; &amp; b"

typedef struct world {
	char *dir;       /* temporary: the hostile journal, files */
	char *state;     /* the real run's journal */
	char *hostile;   /* the hostile journal's directory */
	char run[16];    /* the real run */
	char bad[16];    /* the hostile run */
	tlm_h_ui ui;     /* over the real run's journal */
	tlm_h_ui ui_bad; /* over the hostile journal */
	char csrf[80];
} world;

static world W;

/* ---- HTTP -------------------------------------------------------------- */

typedef struct reply {
	long status;
	char *body;
	char *headers;
	json_t *json;
} reply;

static size_t grow(char *p, size_t size, size_t n, void *ud)
{
	char **buf = ud;
	size_t old = *buf ? strlen(*buf) : 0, add = size * n;
	char *b = realloc(*buf, old + add + 1);

	assert_non_null(b);
	memcpy(b + old, p, add);
	b[old + add] = '\0';
	*buf = b;
	return add;
}

/* One request; hdrs NULL-terminated "Name: value" (may be NULL). */
static reply http(const char *method, const char *url, const char *body, const char *const *hdrs)
{
	CURL *c = curl_easy_init();
	struct curl_slist *list = NULL;
	reply r = { 0, NULL, NULL, NULL };
	size_t i;

	assert_non_null(c);
	for (i = 0; hdrs != NULL && hdrs[i] != NULL; i++)
		list = curl_slist_append(list, hdrs[i]);
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
	if (strcmp(method, "HEAD") == 0)
		curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
	if (body != NULL)
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, list);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, grow);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &r.body);
	curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, grow);
	curl_easy_setopt(c, CURLOPT_HEADERDATA, &r.headers);
	curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, 10000L);
	curl_easy_setopt(c, CURLOPT_PATH_AS_IS, 1L);
	if (curl_easy_perform(c) == CURLE_OK)
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &r.status);
	curl_slist_free_all(list);
	curl_easy_cleanup(c);
	if (r.body == NULL)
		r.body = strdup("");
	if (r.headers == NULL)
		r.headers = strdup("");
	r.json = json_loads(r.body, 0, NULL);
	return r;
}

static reply get(const tlm_h_ui *u, const char *path)
{
	char url[4096];

	snprintf(url, sizeof(url), "%s%s", u->url, path);
	return http("GET", url, NULL, NULL);
}

static void reply_free(reply *r)
{
	free(r->body);
	free(r->headers);
	json_decref(r->json);
	memset(r, 0, sizeof(*r));
}

static void expect(const tlm_h_ui *u, const char *method, const char *path, long status)
{
	char url[4096];
	reply r;

	snprintf(url, sizeof(url), "%s%s", u->url, path);
	r = http(method, url, NULL, NULL);
	if (r.status != status)
		fail_msg("%s %s: %ld, not %ld: %s", method, path, r.status, status, r.body);
	/* Errors of the API are JSON with the status in them. */
	if (status >= 400 && strncmp(path, "/api/", 5) == 0) {
		assert_non_null(r.json);
		assert_int_equal(json_integer_value(json_object_get(r.json, "status")), status);
	}
	reply_free(&r);
}

/* ---- the journals ------------------------------------------------------- */

static const char SPEC[] =
	"apiVersion: telemachy/v1\n"
	"metadata: {name: ui-api}\n"
	"agents:\n"
	"  - {name: ok, program: /bin/sh, args: ['-c', 'cat >/dev/null; echo fine']}\n"
	"  - {name: bad, program: /bin/sh, args: ['-c', 'cat >/dev/null; echo "
	"\"it broke <b>&amp;\" >&2; exit 3']}\n"
	"teams:\n"
	"  - name: alpha\n"
	"    agents: [ok]\n"
	"    tasks:\n"
	"      - {subject: first, description: d}\n"
	"      - {subject: second, description: d, blocked_by: [first]}\n"
	"  - name: beta\n"
	"    agents: [bad]\n"
	"    tasks:\n"
	"      - {subject: breaks, description: d, blocked_by: [alpha/first]}\n";

/* A spec whose workflow and subjects carry markup, quotes and ampersands
 * (team names cannot: the spec allows [A-Za-z0-9._-]; the journal rows
 * below give a hostile team anyway). */
static const char HOSTILE_SPEC[] =
	"apiVersion: telemachy/v1\n"
	"metadata: {name: '<script>alert(1)</script> \"q\" ''a'' & b'}\n"
	"agents: [{name: a, program: none}]\n"
	"teams:\n"
	"  - name: t\n"
	"    agents: [a]\n"
	"    tasks:\n"
	"      - {subject: '<script>alert(1)</script> \"q\" ''a'' & b', description: d}\n"
	"      - {subject: '<img src=x onerror=alert(2)>', description: d,\n"
	"         blocked_by: ['<script>alert(1)</script> \"q\" ''a'' & b']}\n";

static void hostile_journal(void)
{
	tlm_error err = TLM_ERROR_INIT;
	tlm_journal *j = NULL;
	char result[512];

	assert_int_equal(tlm_journal_open(&j, W.hostile, &err), 0);
	assert_int_equal(tlm_journal_run_new(j, HOSTILE, HOSTILE_SPEC, W.bad, &err), 0);
	assert_int_equal(tlm_journal_run_set_state(j, W.bad, TLM_RUN_RUNNING, &err), 0);
	assert_int_equal(tlm_journal_task_record(j, W.bad, "t", HOSTILE, 1, "id-" HOSTILE,
						 TLM_ATTEMPT_FAILED, &err),
			 0);
	snprintf(result, sizeof(result),
		 "{\"statusMessage\": \"%s\", \"result\": {\"exitCode\": 1, \"stdout\": \"%s\", "
		 "\"stderr\": \"</pre><script>alert(3)</script>\"}}",
		 "<b>said</b> \\\"x\\\" &", "<script>alert(1)</script>");
	assert_int_equal(tlm_journal_task_result(j, W.bad, "t", HOSTILE, 1, result, &err), 0);
	assert_int_equal(tlm_journal_task_record(j, W.bad, "team<script>alert(1)</script>&\"", "x",
						 1, NULL, TLM_ATTEMPT_RUNNING, &err),
			 0);
	assert_int_equal(tlm_journal_intent(j, W.bad, TLM_JOURNAL_AGENT,
					    "tlm-<script>alert(1)</script>", &err),
			 0);
	assert_int_equal(tlm_journal_created(j, W.bad, TLM_JOURNAL_AGENT,
					     "tlm-<script>alert(1)</script>",
					     "\"><svg onload=alert(4)>", &err),
			 0);
	assert_int_equal(tlm_journal_audit(j, W.bad, "note", HOSTILE, &err), 0);
	tlm_journal_close(j);
}

static int setup(void **state)
{
	tlm_h_serve srv;
	tlm_h_run run;
	unsigned short nport = 0;
	pid_t nats = tlm_h_nats_start(&nport);
	char nurl[64], nenv[96], file[4096], sdir[4096];
	const char *serve_args[] = { "--nats", nurl, NULL };
	const char *env[] = { nenv, NULL };
	const char *uargs[] = { "--state-dir", sdir, NULL };
	int code = 0;

	(void)state;
	curl_global_init(CURL_GLOBAL_DEFAULT);
	W.dir = tlm_h_tmpdir();
	tlm_h_nats_url(nurl, sizeof(nurl), nport);
	snprintf(nenv, sizeof(nenv), "NATS_URL=%s", nurl);
	tlm_h_serve_start(&srv, serve_args);
	free(tlm_h_write_file(W.dir, "w.yaml", SPEC));
	snprintf(file, sizeof(file), "%s/w.yaml", W.dir);
	tlm_h_run_on(&run, &srv, file, env, NULL);
	assert_int_equal(tlm_h_run_finish(&run, 60000), 1); /* beta/breaks failed */
	snprintf(W.run, sizeof(W.run), "%s", tlm_h_str(run.result, "run_id"));
	/* The run's journal outlives the run's dir: moved into ours. */
	snprintf(sdir, sizeof(sdir), "%s/state", W.dir);
	{
		char cmd[8192];

		snprintf(cmd, sizeof(cmd), "cp -a '%s/state' '%s'", run.dir, sdir);
		assert_int_equal(system(cmd), 0);
	}
	tlm_h_run_clear(&run);
	tlm_h_serve_stop(&srv);
	tlm_h_nats_stop(nats);
	W.state = strdup(sdir);
	if (asprintf(&W.hostile, "%s/hostile", W.dir) < 0)
		return -1;
	hostile_journal();
	if (tlm_h_ui_start(W.dir, &W.ui, uargs, NULL, &code) != 0)
		fail_msg("telemachy ui exited %d", code);
	{
		const char *hargs[] = { "--state-dir", W.hostile, NULL };

		if (tlm_h_ui_start(W.dir, &W.ui_bad, hargs, NULL, &code) != 0)
			fail_msg("telemachy ui exited %d", code);
	}
	{
		reply r = get(&W.ui, "/api/csrf");

		assert_int_equal(r.status, 200);
		snprintf(W.csrf, sizeof(W.csrf), "%s",
			 json_string_value(json_object_get(r.json, "csrf")));
		assert_int_equal(strlen(W.csrf), 64);
		reply_free(&r);
	}
	return 0;
}

static int teardown_all(void **state)
{
	(void)state;
	tlm_h_ui_stop(&W.ui);
	tlm_h_ui_stop(&W.ui_bad);
	tlm_h_rmrf(W.dir);
	free(W.dir);
	free(W.state);
	free(W.hostile);
	curl_global_cleanup();
	return 0;
}

/* ---- the tests ---------------------------------------------------------- */

/* heartbeat_age_ms is computed when read: it differs between two reads. */
static void drop_ages(json_t *doc)
{
	json_t *runs = json_object_get(doc, "runs"), *r;
	size_t i;

	json_array_foreach(runs, i, r)
		json_object_del(json_object_get(r, "owner"), "heartbeat_age_ms");
	json_object_del(json_object_get(json_object_get(doc, "run"), "owner"), "heartbeat_age_ms");
}

static json_t *report_runs(const char *dir, const tlm_run_state *st)
{
	tlm_error err = TLM_ERROR_INIT;
	tlm_journal *j = NULL;
	json_t *out = NULL;

	assert_int_equal(tlm_journal_open(&j, dir, &err), 0);
	assert_int_equal(tlm_report_runs(j, st, NULL, &out, &err), 0);
	tlm_journal_close(j);
	return out;
}

static json_t *report_run(const char *dir, const char *id)
{
	tlm_error err = TLM_ERROR_INIT;
	tlm_journal *j = NULL;
	tlm_journal_run run;
	json_t *out = NULL;

	assert_int_equal(tlm_journal_open(&j, dir, &err), 0);
	assert_int_equal(tlm_journal_run_get(j, id, &run, &err), 0);
	assert_int_equal(tlm_report_run(j, &run, &out, &err), 0);
	tlm_journal_run_clear(&run);
	tlm_journal_close(j);
	return out;
}

static void same(json_t *want, json_t *got, const char *what)
{
	assert_non_null(got);
	drop_ages(want);
	drop_ages(got);
	if (!json_equal(want, got)) {
		char *a = json_dumps(want, JSON_SORT_KEYS), *b = json_dumps(got, JSON_SORT_KEYS);

		fail_msg("%s differs from the report:\nwant %s\ngot  %s", what, a, b);
	}
	json_decref(want);
}

static void test_api_runs(void **state)
{
	tlm_run_state failed = TLM_RUN_FAILED, done = TLM_RUN_COMPLETED;
	reply r;

	(void)state;
	r = get(&W.ui, "/api/runs");
	assert_int_equal(r.status, 200);
	assert_non_null(strstr(r.headers, "Cache-Control: no-store"));
	assert_non_null(strstr(r.headers, "Content-Type: application/json"));
	same(report_runs(W.state, NULL), r.json, "/api/runs");
	assert_int_equal(json_array_size(json_object_get(r.json, "runs")), 1);
	reply_free(&r);
	r = get(&W.ui, "/api/runs?state=failed");
	same(report_runs(W.state, &failed), r.json, "/api/runs?state=failed");
	assert_int_equal(json_array_size(json_object_get(r.json, "runs")), 1);
	reply_free(&r);
	r = get(&W.ui, "/api/runs?state=completed");
	same(report_runs(W.state, &done), r.json, "/api/runs?state=completed");
	assert_int_equal(json_array_size(json_object_get(r.json, "runs")), 0);
	reply_free(&r);
	expect(&W.ui, "GET", "/api/runs?state=bogus", 400);
}

static void test_api_run(void **state)
{
	char path[256];
	reply r;
	tlm_h_cmd c;
	const char *args[] = { "status", "--output", "json", "--state-dir", W.state, W.run, NULL };

	(void)state;
	snprintf(path, sizeof(path), "/api/runs/%s", W.run);
	r = get(&W.ui, path);
	assert_int_equal(r.status, 200);
	same(report_run(W.state, W.run), r.json, path);
	/* ... which is what `status --output json` prints. */
	tlm_h_cmd_run(&c, W.dir, NULL, args, 30000);
	assert_int_equal(c.exit_code, 0);
	assert_non_null(c.json);
	same(c.json, r.json, "status --output json");
	c.json = NULL;
	tlm_h_cmd_free(&c);
	reply_free(&r);
	expect(&W.ui, "GET", "/api/runs/zzzzzzzz", 404);
	expect(&W.ui, "GET", "/api/runs/bad%21id", 400);
	expect(&W.ui, "GET", "/api/runs/bad%zzid", 400);
	expect(&W.ui, "GET", "/api/nope", 404);
	expect(&W.ui, "GET", "/api/runs/abcdefgh/nope", 404);
	expect(&W.ui, "GET", "/api/runs/zz", 400);
	expect(&W.ui, "GET", "/api/runs/ABCDEFGH", 400);
	expect(&W.ui, "POST", "/api/runs", 405);
}

static void test_api_graph(void **state)
{
	char path[256];
	json_t *n, *e;
	size_t i, cross = 0;
	reply r;

	(void)state;
	snprintf(path, sizeof(path), "/api/runs/%s/graph", W.run);
	r = get(&W.ui, path);
	assert_int_equal(r.status, 200);
	assert_int_equal(json_integer_value(json_object_get(r.json, "waves")), 2);
	assert_true(json_is_true(json_object_get(r.json, "final")));
	assert_string_equal(json_string_value(json_object_get(r.json, "state")), "failed");
	assert_int_equal(json_array_size(json_object_get(r.json, "nodes")), 3);
	json_array_foreach(json_object_get(r.json, "nodes"), i, n)
	{
		const char *subj = tlm_h_str(n, "subject");

		assert_string_equal(tlm_h_str(n, "state"),
				    strcmp(subj, "breaks") == 0 ? "failed" : "completed");
	}
	assert_int_equal(json_array_size(json_object_get(r.json, "edges")), 2);
	json_array_foreach(json_object_get(r.json, "edges"), i, e) cross +=
		json_is_true(json_object_get(e, "cross_team"));
	assert_int_equal(cross, 1);
	reply_free(&r);
}

static void test_api_output(void **state)
{
	char path[256];
	json_t *a;
	reply r;

	(void)state;
	snprintf(path, sizeof(path), "/api/runs/%s/tasks/beta/breaks/output", W.run);
	r = get(&W.ui, path);
	assert_int_equal(r.status, 200);
	a = json_array_get(json_object_get(r.json, "attempts"), 0);
	assert_string_equal(tlm_h_str(a, "status"), "failed");
	assert_string_equal(
		json_string_value(json_object_get(
			json_object_get(json_object_get(a, "said"), "result"), "stderr")),
		"it broke <b>&amp;\n");
	reply_free(&r);
	snprintf(path, sizeof(path), "/api/runs/%s/tasks/beta/nope/output", W.run);
	expect(&W.ui, "GET", path, 404);
	/* A subject with a slash in it travels as %2F. */
	snprintf(path, sizeof(path), "/api/runs/%s/tasks/beta/a%%2Fb/output", W.run);
	expect(&W.ui, "GET", path, 404);
}

static void test_pages(void **state)
{
	char path[256], big[3000];
	reply r;

	(void)state;
	r = get(&W.ui, "/");
	assert_int_equal(r.status, 200);
	assert_non_null(strstr(r.headers,
			       "Content-Security-Policy: default-src 'none'; script-src 'self'"));
	assert_non_null(strstr(r.headers, "X-Content-Type-Options: nosniff"));
	assert_non_null(strstr(r.headers, "X-Frame-Options: DENY"));
	assert_non_null(strstr(r.headers, "Referrer-Policy: no-referrer"));
	assert_non_null(strstr(r.body, W.run));
	assert_non_null(strstr(r.body, W.csrf));
	assert_null(strstr(r.body, "<script>")); /* no inline script */
	reply_free(&r);
	snprintf(path, sizeof(path), "/runs/%s", W.run);
	r = get(&W.ui, path);
	assert_int_equal(r.status, 200);
	assert_non_null(strstr(r.body, "<svg class=\"graph\""));
	assert_non_null(strstr(r.body, "data-state=\"failed\""));
	assert_non_null(strstr(r.body, "class=\"edge cross\""));
	assert_non_null(strstr(r.body, "it broke &lt;b&gt;&amp;amp;"));
	reply_free(&r);
	expect(&W.ui, "GET", "/runs/zzzzzzzz", 404);
	expect(&W.ui, "GET", "/nope", 404);
	expect(&W.ui, "GET", "/static/app.js", 200);
	expect(&W.ui, "GET", "/static/app.css", 200);
	expect(&W.ui, "GET", "/static/other.js", 404);
	snprintf(path, sizeof(path), "/runs/%s/cancel", W.run);
	expect(&W.ui, "GET", path, 405);
	snprintf(path, sizeof(path), "/api/runs/%s/cancel", W.run);
	expect(&W.ui, "GET", path, 405);
	snprintf(path, sizeof(path), "/api/runs/%s/teardown", W.run);
	expect(&W.ui, "GET", path, 405);
	snprintf(path, sizeof(path), "/api/runs/%s/resume", W.run);
	expect(&W.ui, "GET", path, 405);
	memset(big, 'a', sizeof(big) - 1);
	big[0] = '/';
	big[sizeof(big) - 1] = '\0';
	expect(&W.ui, "GET", big, 414);
}

/* POST with these headers to the real run's path. */
static long post(const tlm_h_ui *u, const char *path, const char *body, const char *const *hdrs,
		 char **text)
{
	char url[512];
	reply r;
	long s;

	snprintf(url, sizeof(url), "%s%s", u->url, path);
	r = http("POST", url, body, hdrs);
	s = r.status;
	if (text != NULL)
		*text = strdup(r.body);
	reply_free(&r);
	return s;
}

static void test_csrf_origin_host(void **state)
{
	char path[256], origin[200], tok[128], bad_origin[] = "Origin: http://evil.example";
	const char *none[] = { origin, NULL };
	const char *wrong[] = { origin, "X-CSRF-Token: 0000", NULL };
	const char *no_origin[] = { tok, NULL };
	const char *evil[] = { bad_origin, tok, NULL };
	const char *null_origin[] = { "Origin: null", tok, NULL };
	const char *null_cross[] = { "Origin: null", "Sec-Fetch-Site: cross-site", tok, NULL };
	const char *good[] = { origin, tok, NULL };
	const char *null_same[] = { "Origin: null", "Sec-Fetch-Site: same-origin", tok, NULL };
	const char *host[] = { "Host: evil.example", NULL };
	const char *host_port[] = { "Host: 127.0.0.1:1", NULL };
	char url[256], *text = NULL;
	reply r;

	(void)state;
	snprintf(origin, sizeof(origin), "Origin: %s", W.ui.url);
	snprintf(tok, sizeof(tok), "X-CSRF-Token: %s", W.csrf);
	snprintf(path, sizeof(path), "/api/runs/%s/cancel", W.run);
	assert_int_equal(post(&W.ui, path, "", none, NULL), 403);
	assert_int_equal(post(&W.ui, path, "", wrong, NULL), 403);
	assert_int_equal(post(&W.ui, path, "", no_origin, NULL), 403);
	assert_int_equal(post(&W.ui, path, "", evil, NULL), 403);
	assert_int_equal(post(&W.ui, path, "", null_origin, NULL), 403);
	assert_int_equal(post(&W.ui, path, "", null_cross, NULL), 403);
	/* The form field works as the header does; a wrong one does not. */
	snprintf(path, sizeof(path), "/runs/%s/cancel", W.run);
	assert_int_equal(post(&W.ui, path, "csrf=nope", none, NULL), 403);
	/* Right token and origin: the run has ended, so 409. */
	snprintf(url, sizeof(url), "csrf=%s", W.csrf);
	assert_int_equal(post(&W.ui, path, url, none, NULL), 409);
	snprintf(path, sizeof(path), "/api/runs/%s/resume", W.run);
	assert_int_equal(post(&W.ui, path, "", good, &text), 409);
	assert_non_null(strstr(text, "has already ended"));
	free(text);
	/* What a browser sends from a no-referrer page of ours. */
	assert_int_equal(post(&W.ui, path, "", null_same, NULL), 409);
	/* DNS rebinding: a foreign Host is refused, pages and API alike. */
	snprintf(url, sizeof(url), "%s/api/runs", W.ui.url);
	r = http("GET", url, NULL, host);
	assert_int_equal(r.status, 421);
	reply_free(&r);
	snprintf(url, sizeof(url), "%s/", W.ui.url);
	r = http("GET", url, NULL, host_port);
	assert_int_equal(r.status, 421);
	reply_free(&r);
	/* A body over the cap. */
	{
		char *huge = malloc(40000);

		assert_non_null(huge);
		memset(huge, 'x', 39999);
		huge[39999] = '\0';
		assert_int_equal(post(&W.ui, "/api/runs/abcdefgh/cancel", huge, good, NULL), 413);
		free(huge);
	}
}

/* The hostile run is owned by this (live) process: teardown and resume
 * are refused, cancel asks the owner through the journal, with the audit
 * entry `telemachy cancel` leaves. */
static void test_actions_live_owner(void **state)
{
	char path[256], origin[200], tok[128], *text = NULL;
	const char *good[] = { origin, tok, NULL };
	tlm_error err = TLM_ERROR_INIT;
	tlm_journal *j = NULL;
	tlm_journal_run run;
	reply r;

	(void)state;
	r = get(&W.ui_bad, "/api/csrf");
	snprintf(tok, sizeof(tok), "X-CSRF-Token: %s",
		 json_string_value(json_object_get(r.json, "csrf")));
	reply_free(&r);
	snprintf(origin, sizeof(origin), "Origin: %s", W.ui_bad.url);
	snprintf(path, sizeof(path), "/api/runs/%s/teardown", W.bad);
	assert_int_equal(post(&W.ui_bad, path, "", good, &text), 409);
	assert_non_null(strstr(text, "is alive"));
	free(text);
	snprintf(path, sizeof(path), "/api/runs/%s/resume", W.bad);
	assert_int_equal(post(&W.ui_bad, path, "", good, NULL), 409);
	snprintf(path, sizeof(path), "/api/runs/%s/cancel", W.bad);
	assert_int_equal(post(&W.ui_bad, path, "", good, NULL), 202);
	assert_int_equal(tlm_journal_open(&j, W.hostile, &err), 0);
	assert_int_equal(tlm_journal_run_get(j, W.bad, &run, &err), 0);
	assert_non_null(run.cancel_requested_at);
	tlm_journal_run_clear(&run);
	tlm_journal_close(j);
	snprintf(path, sizeof(path), "/api/runs/%s", W.bad);
	r = get(&W.ui_bad, path);
	assert_non_null(strstr(r.body, "\"action\":\"cancel\""));
	assert_non_null(strstr(r.body, "from the dashboard"));
	reply_free(&r);
}

static void no_raw(const char *what, const char *body)
{
	if (strstr(body, "<script>alert") != NULL || strstr(body, "<img src=x") != NULL ||
	    strstr(body, "<svg onload") != NULL || strstr(body, "</pre><script") != NULL ||
	    strstr(body, "<b>said") != NULL)
		fail_msg("%s has raw markup from the journal:\n%s", what, body);
}

static void test_hostile(void **state)
{
	char path[256];
	reply r;

	(void)state;
	r = get(&W.ui_bad, "/");
	assert_int_equal(r.status, 200);
	no_raw("/", r.body);
	assert_non_null(strstr(r.body, HOSTILE_ESC));
	reply_free(&r);
	r = get(&W.ui_bad, "/fragment/runs");
	no_raw("/fragment/runs", r.body);
	assert_non_null(strstr(r.body, HOSTILE_ESC));
	reply_free(&r);
	snprintf(path, sizeof(path), "/runs/%s", W.bad);
	r = get(&W.ui_bad, path);
	assert_int_equal(r.status, 200);
	no_raw(path, r.body);
	assert_non_null(strstr(r.body, "<title>" HOSTILE_ESC));        /* the page's title */
	assert_non_null(strstr(r.body, "data-task=\"t/" HOSTILE_ESC)); /* an SVG attribute */
	assert_non_null(strstr(r.body, "&lt;img src=x onerror=alert(2)&gt;"));
	assert_non_null(strstr(r.body, "team&lt;script&gt;alert(1)&lt;/script&gt;&amp;&quot;"));
	assert_non_null(strstr(r.body, "&quot;&gt;&lt;svg onload=alert(4)&gt;"));
	assert_non_null(strstr(r.body, "&lt;/pre&gt;&lt;script&gt;alert(3)&lt;/script&gt;"));
	assert_non_null(strstr(r.body, "&lt;b&gt;said&lt;/b&gt; &quot;x&quot; &amp;"));
	reply_free(&r);
	snprintf(path, sizeof(path), "/fragment/runs/%s", W.bad);
	r = get(&W.ui_bad, path);
	no_raw(path, r.body);
	reply_free(&r);
	/* JSON escapes by construction, and is served as JSON (nosniff). */
	snprintf(path, sizeof(path), "/api/runs/%s/graph", W.bad);
	r = get(&W.ui_bad, path);
	assert_int_equal(r.status, 200);
	assert_string_equal(
		tlm_h_str(json_array_get(json_object_get(r.json, "nodes"), 0), "subject"), HOSTILE);
	reply_free(&r);
	snprintf(path, sizeof(path), "/api/runs/%s/tasks/t/%s/output", W.bad,
		 "%3Cscript%3Ealert(1)%3C%2Fscript%3E%20%22q%22%20'a'%20%26%20b");
	r = get(&W.ui_bad, path);
	assert_int_equal(r.status, 200);
	assert_string_equal(tlm_h_str(r.json, "subject"), HOSTILE);
	reply_free(&r);
}

/* Off loopback: no token, no start (exit 2); no TLS, no start unless
 * --insecure-http; with a token every route but /login and /static wants
 * it, by header or by the login form's cookie. */
static void test_token(void **state)
{
	char tokfile[4096], url[256], body[256], auth[128], cookie[512], origin[200];
	const char *a1[] = { "--listen", "0.0.0.0:0", "--state-dir", W.state, NULL };
	const char *a2[] = { "--listen",     "0.0.0.0:0", "--state-dir", W.state,
			     "--token-file", tokfile,     NULL };
	const char *a3[] = { "--listen",     "0.0.0.0:0", "--state-dir",     W.state,
			     "--token-file", tokfile,     "--insecure-http", NULL };
	const char *bearer[] = { auth, NULL };
	const char *wrong[] = { "Authorization: Bearer nope", NULL };
	const char *with_cookie[] = { cookie, NULL };
	tlm_h_ui u;
	char *c, *end, *form_csrf;
	int code = 0;
	reply r;

	(void)state;
	free(tlm_h_write_file(W.dir, "token", "s3cret-token;=%\n"));
	snprintf(tokfile, sizeof(tokfile), "%s/token", W.dir);
	memset(&u, 0, sizeof(u));
	assert_int_equal(tlm_h_ui_start(W.dir, &u, a1, NULL, &code), -1);
	assert_int_equal(code, 2);
	assert_int_equal(tlm_h_ui_start(W.dir, &u, a2, NULL, &code), -1);
	assert_int_equal(code, 2);
	/* The token in the environment does as well as a file. */
	{
		const char *env[] = { "TELEMACHY_UI_TOKEN=s3cret-token;=%", NULL };
		const char *a4[] = { "--listen", "0.0.0.0:0",       "--state-dir",
				     W.state,    "--insecure-http", NULL };
		const char *blank[] = { "TELEMACHY_UI_TOKEN= ", NULL };
		tlm_h_ui v;

		assert_int_equal(tlm_h_ui_start(W.dir, &v, a4, blank, &code), -1);
		assert_int_equal(code, 2);
		assert_int_equal(tlm_h_ui_start(W.dir, &v, a4, env, &code), 0);
		r = get(&v, "/api/runs");
		assert_int_equal(r.status, 401);
		reply_free(&r);
		tlm_h_ui_stop(&v);
	}
	assert_int_equal(tlm_h_ui_start(W.dir, &u, a3, NULL, &code), 0);
	r = get(&u, "/api/runs");
	assert_int_equal(r.status, 401);
	reply_free(&r);
	r = get(&u, "/");
	assert_int_equal(r.status, 401);
	assert_non_null(strstr(r.body, "action=\"/login\""));
	reply_free(&r);
	expect(&u, "GET", "/static/app.css", 200);
	snprintf(auth, sizeof(auth), "Authorization: Bearer s3cret-token;=%%");
	snprintf(url, sizeof(url), "%s/api/runs", u.url);
	r = http("GET", url, NULL, bearer);
	assert_int_equal(r.status, 200);
	reply_free(&r);
	r = http("GET", url, NULL, wrong);
	assert_int_equal(r.status, 401);
	reply_free(&r);
	/* The login form: its CSRF token, then the cookie. */
	r = get(&u, "/login");
	assert_int_equal(r.status, 200);
	c = strstr(r.body, "name=\"csrf\" value=\"");
	assert_non_null(c);
	c += strlen("name=\"csrf\" value=\"");
	end = strchr(c, '"');
	form_csrf = strndup(c, (size_t)(end - c));
	reply_free(&r);
	snprintf(origin, sizeof(origin), "Origin: %s", u.url);
	{
		const char *h[] = { origin, NULL };

		snprintf(body, sizeof(body), "csrf=%s&token=wrong", form_csrf);
		assert_int_equal(post(&u, "/login", body, h, NULL), 401);
		snprintf(url, sizeof(url), "%s/login", u.url);
		snprintf(body, sizeof(body), "csrf=%s&token=s3cret-token%%3B%%3D%%25", form_csrf);
		r = http("POST", url, body, h);
		assert_int_equal(r.status, 303);
		c = strstr(r.headers, "Set-Cookie: ");
		assert_non_null(c);
		assert_non_null(strstr(c, "HttpOnly"));
		assert_non_null(strstr(c, "SameSite=Strict"));
		c += strlen("Set-Cookie: ");
		end = strchr(c, ';');
		snprintf(cookie, sizeof(cookie), "Cookie: %.*s", (int)(end - c), c);
		reply_free(&r);
	}
	free(form_csrf);
	snprintf(url, sizeof(url), "%s/", u.url);
	r = http("GET", url, NULL, with_cookie);
	assert_int_equal(r.status, 200);
	reply_free(&r);
	tlm_h_ui_stop(&u);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_api_runs),
		cmocka_unit_test(test_api_run),
		cmocka_unit_test(test_api_graph),
		cmocka_unit_test(test_api_output),
		cmocka_unit_test(test_pages),
		cmocka_unit_test(test_csrf_origin_host),
		cmocka_unit_test(test_actions_live_owner),
		cmocka_unit_test(test_hostile),
		cmocka_unit_test(test_token),
	};

	return cmocka_run_group_tests(tests, setup, teardown_all);
}
