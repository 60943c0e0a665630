/* The metrics registry's text (format 0.0.4): HELP and TYPE for every
 * family, counters with their fixed labels, sparse families showing only
 * what was observed, histogram buckets cumulative up to +Inf with _sum and
 * _count, label values and HELP text escaped, route templates instead of
 * paths, and the textfile written whole. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "harness/harness.h"
#include "metrics/metrics_internal.h"
#include "telemachy/metrics.h"

static char *render(void)
{
	tlm_error err = TLM_ERROR_INIT;
	char *text = NULL;
	size_t len = 0;

	assert_int_equal(tlm_metrics_render(&text, &len, &err), 0);
	assert_non_null(text);
	assert_int_equal(strlen(text), len);
	return text;
}

static void has(const char *text, const char *line)
{
	if (strstr(text, line) == NULL)
		fail_msg("missing \"%s\" in:\n%s", line, text);
}

static void lacks(const char *text, const char *s)
{
	if (strstr(text, s) != NULL)
		fail_msg("unexpected \"%s\" in:\n%s", s, text);
}

static void test_counters(void **state)
{
	char *t;

	(void)state;
	tlm_metrics_reset();
	tlm_metrics_run("completed");
	tlm_metrics_run("completed");
	tlm_metrics_run("no such outcome"); /* ignored: the label set is fixed */
	tlm_metrics_resource_created("agent");
	tlm_metrics_resource_failed("team", "delete");
	tlm_metrics_task_final("skipped");
	tlm_metrics_nats_event();
	t = render();
	has(t, "# HELP telemachy_runs_total Runs ended, by outcome.\n"
	       "# TYPE telemachy_runs_total counter\n"
	       "telemachy_runs_total{outcome=\"completed\"} 2\n"
	       "telemachy_runs_total{outcome=\"failed\"} 0\n");
	lacks(t, "no such outcome");
	has(t, "telemachy_resources_created_total{kind=\"agent\"} 1\n");
	has(t, "telemachy_resources_created_total{kind=\"team\"} 0\n");
	has(t, "telemachy_resource_failures_total{kind=\"team\",op=\"delete\"} 1\n");
	has(t, "telemachy_resource_failures_total{kind=\"agent\",op=\"create\"} 0\n");
	has(t, "telemachy_tasks_total{state=\"skipped\"} 1\n");
	has(t, "\ntelemachy_nats_events_received_total 1\n");
	has(t, "# TYPE telemachy_client_requests_total counter\n");
	lacks(t, "telemachy_client_requests_total{"); /* sparse: none yet */
	free(t);
}

static void test_routes(void **state)
{
	(void)state;
	assert_string_equal(tlm_metrics_route("/v1/agents"), "/v1/agents");
	assert_string_equal(tlm_metrics_route("/v1/agents?limit=1"), "/v1/agents");
	assert_string_equal(tlm_metrics_route("/v1/agents/a1b2/start"), "/v1/agents/{id}/start");
	assert_string_equal(tlm_metrics_route("/v1/agents/by-name/tlm-x"),
			    "/v1/agents/by-name/{name}");
	assert_string_equal(tlm_metrics_route("/v1/teams/t/tasks/k"), "/v1/teams/{id}/tasks/{id}");
	assert_string_equal(tlm_metrics_route("/v1/tasks/k/complete"), "/v1/tasks/{id}/complete");
	assert_string_equal(tlm_metrics_route("/v1/agents//start"), "other");
	assert_string_equal(tlm_metrics_route("/v1/agents/x/start/more"), "other");
	assert_string_equal(tlm_metrics_route("/secret/path"), "other");
	assert_string_equal(tlm_metrics_route(""), "other");
	assert_string_equal(tlm_metrics_route(NULL), "other");
}

static void test_requests_and_histogram(void **state)
{
	char *t;

	(void)state;
	tlm_metrics_reset();
	tlm_metrics_client_request("POST", "/v1/agents/abc/start", 200, 3000);   /* 3 ms */
	tlm_metrics_client_request("POST", "/v1/agents/def/start", 503, 700000); /* 0.7 s */
	tlm_metrics_client_request("BREW", "/v1/agents/def/start", 0, 60000000); /* 60 s */
	t = render();
	has(t, "telemachy_client_requests_total{method=\"POST\",route=\"/v1/agents/{id}/start\","
	       "status_class=\"2xx\"} 1\n");
	has(t, "telemachy_client_requests_total{method=\"POST\",route=\"/v1/agents/{id}/start\","
	       "status_class=\"5xx\"} 1\n");
	has(t, "telemachy_client_requests_total{method=\"other\",route=\"/v1/agents/{id}/start\","
	       "status_class=\"none\"} 1\n");
	lacks(t, "abc");
	has(t, "# TYPE telemachy_client_request_duration_seconds histogram\n");
	has(t, "telemachy_client_request_duration_seconds_bucket{route=\"/v1/agents/{id}/start\","
	       "le=\"0.001\"} 0\n"
	       "telemachy_client_request_duration_seconds_bucket{route=\"/v1/agents/{id}/start\","
	       "le=\"0.005\"} 1\n");
	has(t, "le=\"0.5\"} 1\n");
	has(t, "le=\"1\"} 2\n");
	has(t, "le=\"30\"} 2\n"
	       "telemachy_client_request_duration_seconds_bucket{route=\"/v1/agents/{id}/start\","
	       "le=\"+Inf\"} 3\n"
	       "telemachy_client_request_duration_seconds_sum{route=\"/v1/agents/{id}/start\"} "
	       "60.703000\n"
	       "telemachy_client_request_duration_seconds_count{route=\"/v1/agents/{id}/start\"} "
	       "3\n");
	lacks(t, "route=\"/v1/agents\"");
	/* An unlabelled histogram is always there, zero or not. */
	has(t, "telemachy_journal_commit_duration_seconds_bucket{le=\"+Inf\"} 0\n"
	       "telemachy_journal_commit_duration_seconds_sum 0.000000\n"
	       "telemachy_journal_commit_duration_seconds_count 0\n");
	free(t);
}

static void collect(void *ctx, tlm_metrics_buf *b)
{
	tlm_metrics_append(b, "# TYPE %s gauge\n%s 7\n", (const char *)ctx, (const char *)ctx);
}

static void test_escaping_and_collector(void **state)
{
	tlm_metrics_buf b = { NULL, 0, 0, 0, 0 };
	char *t;

	(void)state;
	tlm_metrics__append_label_value(&b, "a\\b\"c\nd");
	tlm_metrics_append(&b, "|");
	tlm_metrics__append_help(&b, "x\\y\"z\nw");
	assert_false(b.failed);
	assert_string_equal(b.p, "a\\\\b\\\"c\\nd|x\\\\y\"z\\nw");
	free(b.p);
	tlm_metrics_set_collector(collect, "telemachy_test_gauge");
	t = render();
	has(t, "# TYPE telemachy_test_gauge gauge\ntelemachy_test_gauge 7\n");
	free(t);
	tlm_metrics_set_collector(NULL, NULL);
	t = render();
	lacks(t, "telemachy_test_gauge");
	free(t);
}

static void test_textfile(void **state)
{
	tlm_error err = TLM_ERROR_INIT;
	char *dir = tlm_h_tmpdir(), path[4096], tmp[4200], *text = render(), buf[1 << 16];
	struct stat st;
	FILE *f;
	size_t n;

	(void)state;
	snprintf(path, sizeof(path), "%s/telemachy.prom", dir);
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	assert_int_equal(tlm_metrics_write_textfile(path, &err), 0);
	assert_int_not_equal(stat(tmp, &st), 0); /* renamed away */
	f = fopen(path, "r");
	assert_non_null(f);
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	assert_string_equal(buf, text);
	free(text);
	/* A directory that does not exist: an error naming the file. */
	snprintf(path, sizeof(path), "%s/no/such/dir/x.prom", dir);
	assert_int_not_equal(tlm_metrics_write_textfile(path, &err), 0);
	assert_non_null(strstr(err.message, "x.prom.tmp"));
	tlm_h_rmrf(dir);
	free(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_counters),
		cmocka_unit_test(test_routes),
		cmocka_unit_test(test_requests_and_histogram),
		cmocka_unit_test(test_escaping_and_collector),
		cmocka_unit_test(test_textfile),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
