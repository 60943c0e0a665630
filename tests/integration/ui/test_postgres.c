/* `telemachy ui --journal postgres://...` (docs/ui.md, docs/distributed.md):
 * the dashboard over a shared journal shows what the report module says of
 * it, pages and graph included, and its teardown action runs `telemachy
 * teardown` detached with that journal (the audit trail shows it).  The
 * database password reaches every process through PGPASSWORD only. */
#include <curl/curl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness/harness.h"
#include "harness/pg.h"
#include "harness/run.h"
#include "harness/serve.h"
#include "harness/ui.h"
#include "telemachy/journal.h"
#include "telemachy/report.h"

static json_t *fetch(const tlm_h_ui *u, const char *method, const char *path,
		     const char *const *hdrs, long *status, char **body)
{
	char url[512];
	json_t *doc = NULL;
	long st;

	snprintf(url, sizeof(url), "%s%s", u->url, path);
	st = tlm_h_http(method, url, method[0] == 'P' ? "" : NULL, hdrs, &doc, NULL, NULL);
	if (status != NULL)
		*status = st;
	if (body != NULL)
		*body = NULL;
	return doc;
}

static void drop_ages(json_t *doc)
{
	json_t *r;
	size_t i;

	json_array_foreach(json_object_get(doc, "runs"), i, r)
		json_object_del(json_object_get(r, "owner"), "heartbeat_age_ms");
}

static void test_postgres(void **state)
{
	char *uri = tlm_h_pg_newdb(&tlm_h_pg_group), *dir = tlm_h_tmpdir(), *page = NULL;
	char file[4096], run_id[16], path[256], origin[200], tok[128];
	const char *args[] = { "run", "--journal", uri, "--output", "json", file, NULL };
	const char *uargs[] = { "--journal", uri, NULL };
	const char *hdrs[] = { origin, tok, NULL };
	tlm_error err = TLM_ERROR_INIT;
	tlm_journal *j = NULL;
	json_t *want = NULL, *got, *a;
	tlm_h_cmd c;
	tlm_h_ui u;
	long st;
	size_t i;
	int code = 0, seen = 0;
	int64_t end;

	(void)state;
	snprintf(file, sizeof(file), "%s/examples/local-programs.yaml", TLM_SOURCE_DIR);
	tlm_h_cmd_run(&c, dir, NULL, args, 60000);
	assert_int_equal(c.exit_code, 0);
	assert_non_null(c.json);
	snprintf(run_id, sizeof(run_id), "%s", tlm_h_str(c.json, "run_id"));
	tlm_h_cmd_free(&c);
	assert_int_equal(tlm_h_ui_start(dir, &u, uargs, NULL, &code), 0);

	got = fetch(&u, "GET", "/api/runs", NULL, &st, NULL);
	assert_int_equal(st, 200);
	assert_int_equal(tlm_journal_open(&j, uri, &err), 0);
	assert_int_equal(tlm_report_runs(j, NULL, NULL, &want, &err), 0);
	tlm_journal_close(j);
	drop_ages(want);
	drop_ages(got);
	assert_true(json_equal(want, got));
	json_decref(want);
	json_decref(got);

	snprintf(path, sizeof(path), "/api/runs/%s/graph", run_id);
	got = fetch(&u, "GET", path, NULL, &st, NULL);
	assert_int_equal(st, 200);
	assert_int_equal(json_array_size(json_object_get(got, "nodes")), 4);
	json_decref(got);
	{
		CURL *h = curl_easy_init();
		tlm_h_body b = { NULL, 0 };
		char url[512];

		snprintf(url, sizeof(url), "%s/runs/%s", u.url, run_id);
		curl_easy_setopt(h, CURLOPT_URL, url);
		curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, tlm_h_curl_body);
		curl_easy_setopt(h, CURLOPT_WRITEDATA, &b);
		assert_int_equal(curl_easy_perform(h), CURLE_OK);
		curl_easy_cleanup(h);
		page = b.data;
		assert_non_null(strstr(page, "data-task=\"local/wait a second\">"));
		free(page);
	}

	/* Teardown of the ended run: `telemachy teardown --journal URI RUN`,
	 * detached; its audit entry shows up. */
	got = fetch(&u, "GET", "/api/csrf", NULL, &st, NULL);
	snprintf(tok, sizeof(tok), "X-CSRF-Token: %s", tlm_h_str(got, "csrf"));
	json_decref(got);
	snprintf(origin, sizeof(origin), "Origin: %s", u.url);
	snprintf(path, sizeof(path), "/api/runs/%s/teardown", run_id);
	got = fetch(&u, "POST", path, hdrs, &st, NULL);
	assert_int_equal(st, 202);
	json_decref(got);
	snprintf(path, sizeof(path), "/api/runs/%s", run_id);
	for (end = tlm_h_now_ms() + 30000; !seen && tlm_h_now_ms() < end;) {
		got = fetch(&u, "GET", path, NULL, &st, NULL);
		json_array_foreach(json_object_get(got, "audit"), i, a) seen |=
			strcmp(tlm_h_str(a, "action"), "teardown") == 0;
		json_decref(got);
		if (!seen)
			tlm_h_sleep_ms(100);
	}
	assert_true(seen);
	tlm_h_ui_stop(&u);
	tlm_h_rmrf(dir);
	free(dir);
	free(uri);
}

int main(void)
{
	const struct CMUnitTest tests[] = { cmocka_unit_test(test_postgres) };

	return cmocka_run_group_tests(tests, tlm_h_pg_group_setup, tlm_h_pg_group_teardown);
}
