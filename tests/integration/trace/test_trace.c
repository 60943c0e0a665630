/* OpenTelemetry traces of a run (issue 17; docs/tracing.md): the real
 * binary against the real `telemachy serve` (with its request log), and a
 * small OTLP/HTTP receiver here (libmicrohttpd on 127.0.0.1:0) that keeps
 * every body POSTed to /v1/traces.  Checked: the span tree of a run with a
 * completed and a failed task on two agents and two teams; traceparent on
 * every request the control plane saw, with the run's trace id and span;
 * the header of OTEL_EXPORTER_OTLP_HEADERS at the collector and nowhere
 * in the run's output; an unsampled run (traceparent with flags 00, no
 * export); a collector that never answers (the run's result unchanged,
 * its end delayed by at most the export timeout); and no traceparent at
 * all when tracing is not configured. */
#include <arpa/inet.h>
#include <jansson.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "harness/harness.h"
#include "harness/run.h"
#include "harness/serve.h"

#define RUN_MS      60000
#define BODY_MAX    (4 << 20)
#define BODIES_MAX  64
#define SECRET_HDR  "x-test-token"
#define SECRET_ENC  "s%3Dcr%2Cet-7f3a"
#define SECRET_TEXT "s=cr,et-7f3a"

static tlm_h_serve srv;
static tlm_h_run run;
static char *dir, reqlog[4096];

/* ---- the receiver ---------------------------------------------------------- */

typedef struct receiver {
	struct MHD_Daemon *d;
	unsigned short port;
	pthread_mutex_t mu;
	char *bodies[BODIES_MAX];
	size_t nbodies;
	int bad_path, bad_type, secret_seen;
} receiver;

static receiver rx;

typedef struct upload {
	char *data;
	size_t len;
	int too_big;
} upload;

static enum MHD_Result answer(void *cls, struct MHD_Connection *c, const char *url,
			      const char *method, const char *version, const char *data,
			      size_t *size, void **con_cls)
{
	receiver *r = cls;
	upload *u = *con_cls;
	struct MHD_Response *res;
	enum MHD_Result ret;
	const char *v;

	(void)version;
	if (u == NULL) {
		if ((u = calloc(1, sizeof(*u))) == NULL)
			return MHD_NO;
		*con_cls = u;
		return MHD_YES;
	}
	if (*size > 0) {
		if (u->len + *size > BODY_MAX) {
			u->too_big = 1;
		} else {
			char *grown = realloc(u->data, u->len + *size + 1);

			if (grown == NULL)
				return MHD_NO;
			u->data = grown;
			memcpy(u->data + u->len, data, *size);
			u->len += *size;
			u->data[u->len] = '\0';
		}
		*size = 0;
		return MHD_YES;
	}
	pthread_mutex_lock(&r->mu);
	if (strcmp(method, "POST") != 0 || strcmp(url, "/v1/traces") != 0)
		r->bad_path++;
	v = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Content-Type");
	if (v == NULL || strcmp(v, "application/json") != 0)
		r->bad_type++;
	v = MHD_lookup_connection_value(c, MHD_HEADER_KIND, SECRET_HDR);
	if (v != NULL && strcmp(v, SECRET_TEXT) == 0)
		r->secret_seen++;
	if (!u->too_big && u->data != NULL && r->nbodies < BODIES_MAX) {
		r->bodies[r->nbodies++] = u->data;
		u->data = NULL;
	}
	pthread_mutex_unlock(&r->mu);
	res = MHD_create_response_from_buffer(2, (void *)"{}", MHD_RESPMEM_PERSISTENT);
	MHD_add_response_header(res, "Content-Type", "application/json");
	ret = MHD_queue_response(c, u->too_big ? 413 : 200, res);
	MHD_destroy_response(res);
	return ret;
}

static void completed(void *cls, struct MHD_Connection *c, void **con_cls,
		      enum MHD_RequestTerminationCode toe)
{
	upload *u = *con_cls;

	(void)cls, (void)c, (void)toe;
	if (u != NULL) {
		free(u->data);
		free(u);
		*con_cls = NULL;
	}
}

static void rx_start(void)
{
	struct sockaddr_in sa;
	const union MHD_DaemonInfo *info;

	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	sa.sin_port = 0;
	pthread_mutex_init(&rx.mu, NULL);
	rx.d = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG, 0, NULL, NULL,
				answer, &rx, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sa,
				MHD_OPTION_NOTIFY_COMPLETED, completed, NULL,
				MHD_OPTION_CONNECTION_TIMEOUT, 10u, MHD_OPTION_END);
	assert_non_null(rx.d);
	info = MHD_get_daemon_info(rx.d, MHD_DAEMON_INFO_BIND_PORT);
	assert_non_null(info);
	rx.port = info->port;
	assert_true(rx.port != 0);
}

static void rx_stop(void)
{
	if (rx.d == NULL)
		return;
	MHD_stop_daemon(rx.d);
	for (size_t i = 0; i < rx.nbodies; i++)
		free(rx.bodies[i]);
	pthread_mutex_destroy(&rx.mu);
	memset(&rx, 0, sizeof(rx));
}

/* Every span of every body, in one array (caller decrefs); fails when a
 * body is not an ExportTraceServiceRequest. */
static json_t *all_spans(json_t **resource)
{
	json_t *spans = json_array();

	pthread_mutex_lock(&rx.mu);
	for (size_t i = 0; i < rx.nbodies; i++) {
		json_error_t e;
		json_t *doc = json_loads(rx.bodies[i], 0, &e), *rs, *ss, *arr;

		if (doc == NULL)
			fail_msg("body %zu is not JSON: %s", i, e.text);
		rs = json_array_get(json_object_get(doc, "resourceSpans"), 0);
		ss = json_array_get(json_object_get(rs, "scopeSpans"), 0);
		arr = json_object_get(ss, "spans");
		if (!json_is_array(arr))
			fail_msg("body %zu has no resourceSpans[0].scopeSpans[0].spans", i);
		json_array_extend(spans, arr);
		if (resource != NULL && *resource == NULL)
			*resource = json_incref(json_object_get(rs, "resource"));
		json_decref(doc);
	}
	pthread_mutex_unlock(&rx.mu);
	return spans;
}

/* ---- span helpers ---------------------------------------------------------- */

/* The attribute key of span s as a string (its intValue too), or NULL. */
static const char *attr(const json_t *s, const char *key)
{
	size_t i;
	json_t *a;

	json_array_foreach(json_object_get(s, "attributes"), i, a)
	{
		if (strcmp(json_string_value(json_object_get(a, "key")), key) == 0) {
			json_t *v = json_object_get(a, "value");
			json_t *sv = json_object_get(v, "stringValue");

			return sv != NULL ? json_string_value(sv)
					  : json_string_value(json_object_get(v, "intValue"));
		}
	}
	return NULL;
}

static json_t *span_named(json_t *spans, const char *name)
{
	size_t i;
	json_t *s;

	json_array_foreach(spans, i, s)
	{
		if (strcmp(json_string_value(json_object_get(s, "name")), name) == 0)
			return s;
	}
	fail_msg("no span named \"%s\" in %s", name, tlm_h_dump(spans));
	return NULL;
}

static int status_code(const json_t *s)
{
	return (int)json_integer_value(json_object_get(json_object_get(s, "status"), "code"));
}

static const char *parent(const json_t *s)
{
	return json_string_value(json_object_get(s, "parentSpanId"));
}

static const char *sid(const json_t *s)
{
	return json_string_value(json_object_get(s, "spanId"));
}

static int is_hex(const char *s, size_t n)
{
	return s != NULL && strlen(s) == n && strspn(s, "0123456789abcdef") == n;
}

/* ---- fixtures -------------------------------------------------------------- */

static const char two_teams[] = "apiVersion: telemachy/v1\n"
				"metadata: {name: traced}\n"
				"teardown: always\n"
				"agents:\n"
				"  - {name: good, program: none}\n"
				"  - {name: bad, program: /bin/sh, args: ['-c', 'exit 3']}\n"
				"teams:\n"
				"  - name: ok\n"
				"    agents: [good]\n"
				"    tasks:\n"
				"      - {subject: fine, description: d}\n"
				"  - name: ko\n"
				"    agents: [bad]\n"
				"    tasks:\n"
				"      - {subject: broken, description: d}\n";

static const char one_task[] = "apiVersion: telemachy/v1\n"
			       "metadata: {name: small}\n"
			       "agents:\n"
			       "  - {name: a, program: none}\n"
			       "teams:\n"
			       "  - name: t\n"
			       "    agents: [a]\n"
			       "    tasks:\n"
			       "      - {subject: s, description: d}\n";

static int setup(void **state)
{
	(void)state;
	memset(&srv, 0, sizeof(srv));
	memset(&run, 0, sizeof(run));
	memset(&rx, 0, sizeof(rx));
	dir = tlm_h_tmpdir();
	snprintf(reqlog, sizeof(reqlog), "%s/requests.jsonl", dir);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	tlm_h_run_clear(&run);
	if (srv.pid != 0)
		tlm_h_serve_stop(&srv);
	rx_stop();
	tlm_h_rmrf(dir);
	free(dir);
	return 0;
}

static void start_serve(void)
{
	const char *args[] = { "--request-log", reqlog, NULL };

	tlm_h_serve_start(&srv, args);
}

/* The traceparent of every request line of the log (NULL where none),
 * counted; *first gets the first one seen (or stays NULL). */
static size_t requests(size_t *with_tp, char *first, size_t first_len, int *all_same)
{
	char *log = tlm_h_slurp(reqlog), *line, *save = NULL;
	size_t n = 0;

	*with_tp = 0;
	*all_same = 1;
	first[0] = '\0';
	for (line = strtok_r(log, "\n", &save); line != NULL; line = strtok_r(NULL, "\n", &save)) {
		json_t *o = json_loads(line, 0, NULL);
		const char *tp = json_string_value(json_object_get(o, "traceparent"));

		assert_non_null(o);
		n++;
		if (tp != NULL) {
			(*with_tp)++;
			if (first[0] == '\0')
				snprintf(first, first_len, "%s", tp);
			else if (strcmp(first, tp) != 0)
				*all_same = 0;
		}
		json_decref(o);
	}
	free(log);
	return n;
}

/* ---- tests ----------------------------------------------------------------- */

/* The span tree of a run with a completed and a failed task, and
 * traceparent on every request of it. */
static void test_span_tree(void **state)
{
	char *file, endpoint[64], tp[128], want_tp[128];
	const char *env[] = { endpoint, "OTEL_EXPORTER_OTLP_HEADERS=" SECRET_HDR "=" SECRET_ENC,
			      "OTEL_SERVICE_NAME=tlm-test",
			      "OTEL_RESOURCE_ATTRIBUTES=deployment.environment=ci", NULL };
	json_t *spans, *resource = NULL, *root = NULL, *prov, *tear, *s;
	const char *trace_id, *run_id;
	size_t i, n, with_tp, roots = 0, agents = 0, teams = 0, tasks = 0;
	int same, code;

	(void)state;
	rx_start();
	start_serve();
	snprintf(endpoint, sizeof(endpoint), "OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:%u",
		 (unsigned)rx.port);
	file = tlm_h_write_file(dir, "w.yaml", two_teams);
	tlm_h_run_on(&run, &srv, file, env, NULL);
	code = tlm_h_run_finish(&run, RUN_MS);
	assert_int_equal(code, 1); /* a task failed */
	assert_string_equal(tlm_h_str(run.result, "outcome"), "failed");
	run_id = tlm_h_str(run.result, "run_id");
	/* The export is done before the command exits. */
	assert_int_equal(rx.bad_path, 0);
	assert_int_equal(rx.bad_type, 0);
	assert_true(rx.nbodies > 0);
	assert_int_equal(rx.secret_seen, (int)rx.nbodies);
	if (strstr(run.err, SECRET_TEXT) != NULL || strstr(run.out, SECRET_TEXT) != NULL ||
	    strstr(run.err, "cr%2Cet") != NULL)
		fail_msg("the header value is in the run's output");

	spans = all_spans(&resource);
	if (strstr(tlm_h_dump(resource), "\"tlm-test\"") == NULL ||
	    strstr(tlm_h_dump(resource), "deployment.environment") == NULL ||
	    strstr(tlm_h_dump(resource), "service.version") == NULL)
		fail_msg("resource: %s", tlm_h_dump(resource));
	trace_id = json_string_value(json_object_get(json_array_get(spans, 0), "traceId"));
	assert_true(is_hex(trace_id, 32));
	json_array_foreach(spans, i, s)
	{
		const char *start = json_string_value(json_object_get(s, "startTimeUnixNano"));
		const char *end = json_string_value(json_object_get(s, "endTimeUnixNano"));

		assert_string_equal(json_string_value(json_object_get(s, "traceId")), trace_id);
		assert_true(is_hex(sid(s), 16));
		assert_non_null(start);
		assert_non_null(end);
		assert_true(strtoull(end, NULL, 10) >= strtoull(start, NULL, 10));
		assert_true(strtoull(start, NULL, 10) > 1000000000000000000ull); /* ns, 2001 on */
		if (attr(s, "telemachy.run.id") == NULL ||
		    strcmp(attr(s, "telemachy.run.id"), run_id) != 0 ||
		    attr(s, "telemachy.workflow") == NULL ||
		    strcmp(attr(s, "telemachy.workflow"), "traced") != 0)
			fail_msg("span without the run's attributes: %s", tlm_h_dump(s));
		if (parent(s) == NULL) {
			roots++;
			root = s;
		}
		/* No two spans share an id. */
		for (size_t k = 0; k < i; k++)
			assert_string_not_equal(sid(json_array_get(spans, k)), sid(s));
	}
	assert_int_equal(roots, 1);
	assert_string_equal(json_string_value(json_object_get(root, "name")), "run traced");
	assert_int_equal(status_code(root), 2);
	assert_non_null(strstr(
		json_string_value(json_object_get(json_object_get(root, "status"), "message")),
		"broken"));
	assert_string_equal(attr(root, "telemachy.run.state"), "failed");

	prov = span_named(spans, "provisioning");
	tear = span_named(spans, "teardown");
	assert_string_equal(parent(prov), sid(root));
	assert_string_equal(parent(tear), sid(root));

	json_array_foreach(spans, i, s)
	{
		const char *name = json_string_value(json_object_get(s, "name"));

		if (strncmp(name, "agent ", 6) == 0 || strncmp(name, "team ", 5) == 0) {
			char want[128];

			if (name[0] == 'a')
				agents++;
			else
				teams++;
			assert_string_equal(parent(s), sid(prov));
			snprintf(want, sizeof(want), "tlm-%s-%c-", run_id, name[0]);
			if (strncmp(attr(s, "telemachy.resource.name"), want, strlen(want)) != 0)
				fail_msg("resource span %s", tlm_h_dump(s));
			assert_non_null(attr(s, "telemachy.resource.remote_id"));
			/* Torn down: its life ended with the delete. */
			assert_string_equal(attr(s, "telemachy.resource.end"), "deleted");
			assert_int_not_equal(status_code(s), 2);
		}
	}
	assert_int_equal(agents, 2);
	assert_int_equal(teams, 2);

	s = span_named(spans, "task ok/fine");
	tasks++;
	assert_int_equal(status_code(s), 1);
	assert_string_equal(attr(s, "telemachy.task.team"), "ok");
	assert_string_equal(attr(s, "telemachy.task.subject"), "fine");
	assert_string_equal(attr(s, "telemachy.task.attempt"), "1");
	assert_non_null(attr(s, "telemachy.task.remote_id"));
	assert_string_equal(parent(s), sid(span_named(spans, "running")));
	s = span_named(spans, "task ko/broken");
	tasks++;
	assert_int_equal(status_code(s), 2);
	assert_string_equal(attr(s, "telemachy.task.state"), "failed");
	assert_non_null(json_object_get(json_object_get(s, "status"), "message"));
	assert_string_equal(parent(s), sid(span_named(spans, "running")));
	assert_int_equal(tasks, 2);

	/* traceparent: every request, the run's trace and the run's span,
	 * sampled. */
	n = requests(&with_tp, tp, sizeof(tp), &same);
	assert_true(n > 8);
	if (with_tp != n || !same)
		fail_msg("%zu of %zu requests had traceparent (all the same: %d)", with_tp, n,
			 same);
	snprintf(want_tp, sizeof(want_tp), "00-%s-%s-01", trace_id, sid(root));
	assert_string_equal(tp, want_tp);
	json_decref(resource);
	json_decref(spans);
	free(file);
}

/* always_off: traceparent still travels, with flags 00; nothing is sent. */
static void test_unsampled(void **state)
{
	char *file, endpoint[64], tp[128];
	const char *env[] = { endpoint, "OTEL_TRACES_SAMPLER=always_off", NULL };
	size_t n, with_tp;
	int same;

	(void)state;
	rx_start();
	start_serve();
	snprintf(endpoint, sizeof(endpoint), "OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:%u",
		 (unsigned)rx.port);
	file = tlm_h_write_file(dir, "w.yaml", one_task);
	tlm_h_run_on(&run, &srv, file, env, NULL);
	assert_int_equal(tlm_h_run_finish(&run, RUN_MS), 0);
	assert_int_equal(rx.nbodies, 0);
	n = requests(&with_tp, tp, sizeof(tp), &same);
	assert_true(n > 0);
	assert_int_equal(with_tp, n);
	assert_true(same);
	assert_int_equal(strlen(tp), 55);
	assert_string_equal(tp + 52, "-00");
	free(file);
}

/* Nothing configured: no traceparent on any request, no warning. */
static void test_unset(void **state)
{
	char *file, tp[128];
	size_t n, with_tp;
	int same;

	(void)state;
	start_serve();
	file = tlm_h_write_file(dir, "w.yaml", one_task);
	tlm_h_run_on(&run, &srv, file, NULL, NULL);
	assert_int_equal(tlm_h_run_finish(&run, RUN_MS), 0);
	n = requests(&with_tp, tp, sizeof(tp), &same);
	assert_true(n > 0);
	assert_int_equal(with_tp, 0);
	assert_null(strstr(run.err, "tracing"));
	free(file);
}

/* A collector that accepts connections and never answers: the run ends
 * as it would have, warned, and later by at most the export timeout. */
static void test_collector_down(void **state)
{
	struct sockaddr_in sa;
	socklen_t len = sizeof(sa);
	char *file, endpoint[64];
	const char *env[] = { endpoint, "OTEL_EXPORTER_OTLP_TIMEOUT=1500", NULL };
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	int64_t t0, wall;

	(void)state;
	assert_true(fd >= 0);
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(fd, 16), 0); /* never accepted: a black hole */
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
	snprintf(endpoint, sizeof(endpoint), "OTEL_EXPORTER_OTLP_ENDPOINT=http://127.0.0.1:%u",
		 (unsigned)ntohs(sa.sin_port));
	start_serve();
	file = tlm_h_write_file(dir, "w.yaml", one_task);
	t0 = tlm_h_now_ms();
	tlm_h_run_on(&run, &srv, file, env, NULL);
	assert_int_equal(tlm_h_run_finish(&run, RUN_MS), 0);
	wall = tlm_h_now_ms() - t0;
	close(fd);
	tlm_h_assert_all_completed(&run);
	if (strstr(run.err, "tracing:") == NULL)
		fail_msg("no warning about the failed export:\n%s", run.err);
	/* The run's own time, the export timeout, and room for a slow CI. */
	if (wall > tlm_h_int(run.result, "elapsed_ms") + 1500 + 3000)
		fail_msg("the command took %lld ms, the run %lld ms", (long long)wall,
			 (long long)tlm_h_int(run.result, "elapsed_ms"));
	free(file);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_span_tree, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unsampled, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unset, setup, teardown),
		cmocka_unit_test_setup_teardown(test_collector_down, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
