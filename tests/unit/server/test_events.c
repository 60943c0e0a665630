/* The server's NATS events against a real nats-server: delivery, outages
 * (down at start, killed and restarted), pause, the inbound completion
 * subjects, and that publishing never waits for NATS. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>
#include <nats/nats.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "harness/harness.h"
#include "harness/nats.h"
#include "server/events.h"

#define WAIT_MS  10000 /* every wait is bounded by this */
#define QUIET_MS 300   /* how long "nothing arrives" is watched */
#define MAX_SEEN 64

/* What the inbound callback reported, for the test thread to wait on. */
struct seen {
	pthread_mutex_t mu;
	pthread_cond_t cond;
	int n;
	char id[MAX_SEEN][300];
	char status[MAX_SEEN][16];
};

struct fx {
	pid_t nats;
	unsigned short port;
	char url[64];
	tlm_events *ev;
	tlm_h_sub *sub;
	struct seen seen;
};

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void on_task(void *ctx, const char *task_id, const char *status)
{
	struct seen *s = ctx;

	pthread_mutex_lock(&s->mu);
	if (s->n < MAX_SEEN) {
		snprintf(s->id[s->n], sizeof(s->id[0]), "%s", task_id);
		snprintf(s->status[s->n], sizeof(s->status[0]), "%s", status);
		s->n++;
	}
	pthread_cond_broadcast(&s->cond);
	pthread_mutex_unlock(&s->mu);
}

/* Waits until the callback has been called n times in all; returns the count. */
static int seen_wait(struct seen *s, int n)
{
	long deadline = tlm_h_now_ms() + WAIT_MS;
	int got;

	pthread_mutex_lock(&s->mu);
	while (s->n < n && tlm_h_now_ms() < deadline) {
		pthread_mutex_unlock(&s->mu);
		tlm_h_sleep_ms(5);
		pthread_mutex_lock(&s->mu);
	}
	got = s->n;
	pthread_mutex_unlock(&s->mu);
	return got;
}

/* ---- fixtures ---- */

static struct fx *fx_new(void)
{
	struct fx *f = calloc(1, sizeof(*f));

	assert_non_null(f);
	pthread_mutex_init(&f->seen.mu, NULL);
	pthread_cond_init(&f->seen.cond, NULL);
	return f;
}

/* A running nats-server; the test creates the events. */
static int setup_nats(void **state)
{
	struct fx *f = fx_new();

	*state = f;
	f->nats = tlm_h_nats_start(&f->port);
	tlm_h_nats_url(f->url, sizeof(f->url), f->port);
	return 0;
}

/* A port where no server runs (yet). */
static int setup_no_nats(void **state)
{
	struct fx *f = fx_new();

	*state = f;
	f->port = tlm_h_free_port();
	tlm_h_nats_url(f->url, sizeof(f->url), f->port);
	return 0;
}

/* Runs even when an assertion failed: nothing outlives its test. */
static int teardown(void **state)
{
	struct fx *f = *state;

	tlm_events_free(f->ev);
	tlm_h_sub_free(f->sub);
	tlm_h_nats_stop(f->nats);
	pthread_mutex_destroy(&f->seen.mu);
	pthread_cond_destroy(&f->seen.cond);
	free(f);
	return 0;
}

static void events_new(struct fx *f)
{
	tlm_error err = TLM_ERROR_INIT;

	assert_int_equal(tlm_events_new(&f->ev, f->url, on_task, &f->seen, &err), 0);
	assert_non_null(f->ev);
}

static void wait_state(tlm_events *ev, const char *want)
{
	long deadline = tlm_h_now_ms() + WAIT_MS;

	while (strcmp(tlm_events_state(ev), want) != 0 && tlm_h_now_ms() < deadline)
		tlm_h_sleep_ms(10);
	assert_string_equal(tlm_events_state(ev), want);
}

static void wait_dropped(tlm_events *ev, uint64_t want)
{
	long deadline = tlm_h_now_ms() + WAIT_MS;
	uint64_t dropped = 0;

	do {
		tlm_events_stats(ev, NULL, &dropped);
	} while (dropped < want && tlm_h_now_ms() < deadline && (tlm_h_sleep_ms(5), 1));
	assert_int_equal(dropped, want);
}

static void publish_n(tlm_events *ev, const char *subject, int n)
{
	int i;

	for (i = 0; i < n; i++)
		tlm_events_publish(ev, subject, json_pack("{s:i}", "n", i));
}

/* Publishes probes until one arrives (both sides reconnect on their own
 * schedule after an outage); fails the test after WAIT_MS. */
static void probe_until_delivered(struct fx *f)
{
	long deadline = tlm_h_now_ms() + WAIT_MS;

	while (tlm_h_now_ms() < deadline) {
		tlm_events_publish(f->ev, "hi.probe", json_pack("{s:b}", "probe", 1));
		if (tlm_h_sub_wait(f->sub, "hi.probe", 200, NULL, NULL) == 0)
			return;
	}
	fail_msg("no event delivered within %d ms", WAIT_MS);
}

static void expect_msg(tlm_h_sub *sub, const char *subject, const char *json)
{
	char *got_subject = NULL;
	json_t *got = NULL, *want = json_loads(json, 0, NULL);

	assert_non_null(want);
	assert_int_equal(tlm_h_sub_wait(sub, "", WAIT_MS, &got_subject, &got), 0);
	assert_string_equal(got_subject, subject);
	assert_non_null(got);
	assert_true(json_equal(got, want));
	free(got_subject);
	json_decref(got);
	json_decref(want);
}

/* ---- outbound ---- */

static void test_publish_delivers_subject_and_payload(void **state)
{
	struct fx *f = *state;
	uint64_t published, dropped;
	json_t *task = json_pack("{s:s,s:s,s:s}", "id", "k1", "status", "running", "subject",
				 "build \"x\"\n");

	events_new(f);
	wait_state(f->ev, "connected");
	f->sub = tlm_h_sub_new(f->port, "hi.>");
	tlm_events_publish(f->ev, "hi.tasks.t1.k1.updated", json_pack("{s:o}", "task", task));
	tlm_events_publish(f->ev, "hi.agents.team.deleted", json_pack("{s:s}", "id", "T9"));
	expect_msg(
		f->sub, "hi.tasks.t1.k1.updated",
		"{\"task\":{\"id\":\"k1\",\"status\":\"running\",\"subject\":\"build \\\"x\\\"\\n\"}}");
	expect_msg(f->sub, "hi.agents.team.deleted", "{\"id\":\"T9\"}");
	tlm_events_stats(f->ev, &published, &dropped);
	assert_int_equal(published, 2);
	assert_int_equal(dropped, 0);
}

/* Subjects are built from request data: one that would break the protocol
 * stream (space, CR/LF) or is a wildcard is dropped, not sent. */
static void test_publish_rejects_bad_subjects(void **state)
{
	static const char *const bad[] = { "",      "hi.a b", "hi.a\r\nPUB x 1",
					   "hi..x", "hi.",    ".hi",
					   "hi.*",  "hi.>",   "hi.\x7f" };
	struct fx *f = *state;
	size_t i;
	uint64_t published, dropped;

	events_new(f);
	wait_state(f->ev, "connected");
	f->sub = tlm_h_sub_new(f->port, ">");
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		tlm_events_publish(f->ev, bad[i], json_object());
	tlm_events_publish(f->ev, NULL, json_object());
	tlm_events_publish(f->ev, "hi.ok", NULL);
	tlm_events_publish(f->ev, "hi.a*b.c>d", json_pack("{s:i}", "n", 1));
	expect_msg(f->sub, "hi.a*b.c>d", "{\"n\":1}");
	tlm_events_stats(f->ev, &published, &dropped);
	assert_int_equal(published, 1);
	assert_int_equal(dropped, sizeof(bad) / sizeof(bad[0]) + 2);
}

/* Order is kept, nothing is lost while connected, and the numbers behind
 * docs/performance.md are printed. */
static void test_publish_burst_in_order(void **state)
{
	enum { N = 5000 };
	struct fx *f = *state;
	json_t *p = NULL;
	uint64_t published, dropped;
	double t0, t1, t2;
	int i;

	events_new(f);
	wait_state(f->ev, "connected");
	f->sub = tlm_h_sub_new(f->port, "hi.burst");
	t0 = now_s();
	publish_n(f->ev, "hi.burst", N);
	t1 = now_s();
	for (i = 0; i < N; i++) {
		assert_int_equal(tlm_h_sub_wait(f->sub, "hi.burst", WAIT_MS, NULL, &p), 0);
		assert_int_equal(json_integer_value(json_object_get(p, "n")), i);
		json_decref(p);
	}
	t2 = now_s();
	tlm_events_stats(f->ev, &published, &dropped);
	assert_int_equal(published, N);
	assert_int_equal(dropped, 0);
	print_message("%d publishes: %.2f ms in the caller, all received after %.1f ms\n", N,
		      (t1 - t0) * 1e3, (t2 - t0) * 1e3);
}

/* tlm_events_free hands over what is still queued before closing. */
static void test_free_flushes_queue(void **state)
{
	enum { N = 200 };
	struct fx *f = *state;
	int i;

	events_new(f);
	wait_state(f->ev, "connected");
	f->sub = tlm_h_sub_new(f->port, "hi.flush");
	publish_n(f->ev, "hi.flush", N);
	tlm_events_free(f->ev);
	f->ev = NULL;
	for (i = 0; i < N; i++)
		assert_int_equal(tlm_h_sub_wait(f->sub, "hi.flush", WAIT_MS, NULL, NULL), 0);
}

/* The upstream hazard: a publish while NATS is down blocked a REST request
 * for ~15 s.  Here 1,000 publishes take well under 100 ms, and are counted
 * as dropped. */
static void test_down_never_blocks(void **state)
{
	enum { N = 1000 };
	struct fx *f = *state;
	uint64_t published;
	double t0, t_new, t_pub;

	t0 = now_s();
	events_new(f);
	t_new = now_s() - t0;
	assert_string_equal(tlm_events_state(f->ev), "connecting");
	t0 = now_s();
	publish_n(f->ev, "hi.tasks.t.k.updated", N);
	t_pub = now_s() - t0;
	print_message("NATS down: tlm_events_new %.2f ms, %d publishes %.2f ms\n", t_new * 1e3, N,
		      t_pub * 1e3);
	assert_true(t_new < 0.5);
	assert_true(t_pub < 0.1);
	wait_dropped(f->ev, N);
	tlm_events_stats(f->ev, &published, NULL);
	assert_int_equal(published, 0);
	assert_string_equal(tlm_events_state(f->ev), "connecting");
}

/* NATS that comes up after the server is used without a restart (upstream
 * never connected later). */
static void test_late_nats_gets_connected(void **state)
{
	struct fx *f = *state;
	double t0;

	events_new(f);
	publish_n(f->ev, "hi.early", 10);
	wait_dropped(f->ev, 10);
	tlm_h_sleep_ms(600); /* a few failed connect attempts first */
	assert_string_equal(tlm_events_state(f->ev), "connecting");
	t0 = now_s();
	f->nats = tlm_h_nats_start(&f->port);
	wait_state(f->ev, "connected");
	print_message("connected %.0f ms after starting nats-server\n", (now_s() - t0) * 1e3);
	f->sub = tlm_h_sub_new(f->port, "hi.>");
	tlm_events_publish(f->ev, "hi.late", json_pack("{s:s}", "id", "L"));
	expect_msg(f->sub, "hi.late", "{\"id\":\"L\"}");
}

static void test_nats_killed_and_restarted(void **state)
{
	struct fx *f = *state;
	uint64_t dropped0;
	double t0;

	events_new(f);
	wait_state(f->ev, "connected");
	f->sub = tlm_h_sub_new(f->port, "hi.>");
	probe_until_delivered(f);
	tlm_h_nats_kill(f->nats);
	f->nats = 0;
	wait_state(f->ev, "reconnecting");
	tlm_events_stats(f->ev, NULL, &dropped0);
	publish_n(f->ev, "hi.lost", 5);
	wait_dropped(f->ev, dropped0 + 5);
	t0 = now_s();
	f->nats = tlm_h_nats_restart(0, f->port);
	wait_state(f->ev, "connected");
	print_message("reconnected %.0f ms after restarting nats-server\n", (now_s() - t0) * 1e3);
	assert_int_equal(tlm_h_sub_ready(f->sub, WAIT_MS), 0);
	tlm_events_publish(f->ev, "hi.back", json_pack("{s:i}", "n", 1));
	expect_msg(f->sub, "hi.back", "{\"n\":1}");
	/* Nothing queued during the outage leaks out after it. */
	assert_int_equal(tlm_h_sub_wait(f->sub, "hi.lost", QUIET_MS, NULL, NULL), -1);
}

/* A graceful server shutdown, then a restart: the same as a crash. */
static void test_nats_stopped_and_restarted(void **state)
{
	struct fx *f = *state;

	events_new(f);
	wait_state(f->ev, "connected");
	f->sub = tlm_h_sub_new(f->port, "hi.>");
	f->nats = tlm_h_nats_restart(f->nats, f->port);
	probe_until_delivered(f);
	wait_state(f->ev, "connected");
}

static void test_pause_drops(void **state)
{
	struct fx *f = *state;
	uint64_t published, dropped;

	events_new(f);
	wait_state(f->ev, "connected");
	f->sub = tlm_h_sub_new(f->port, "hi.>");
	tlm_events_pause(f->ev, 1);
	publish_n(f->ev, "hi.paused", 3);
	assert_int_equal(tlm_h_sub_wait(f->sub, "", QUIET_MS, NULL, NULL), -1);
	tlm_events_stats(f->ev, &published, &dropped);
	assert_int_equal(published, 0);
	assert_int_equal(dropped, 3);
	tlm_events_pause(f->ev, 0);
	tlm_events_publish(f->ev, "hi.resumed", json_pack("{s:i}", "n", 2));
	expect_msg(f->sub, "hi.resumed", "{\"n\":2}");
}

/* ---- inbound ---- */

static void expect_seen(struct fx *f, int i, const char *id, const char *status)
{
	assert_true(seen_wait(&f->seen, i + 1) > i);
	assert_string_equal(f->seen.id[i], id);
	assert_string_equal(f->seen.status[i], status);
}

static void test_inbound_payload_shapes(void **state)
{
	struct fx *f = *state;

	events_new(f);
	wait_state(f->ev, "connected");
	/* "connected" promises registered subscriptions: no probing needed. */
	f->sub = tlm_h_sub_new(f->port, "none");
	tlm_h_sub_publish_str(f->sub, "hi.tasks.team1.subj-a.completed", "{\"task_id\":\"id-1\"}");
	expect_seen(f, 0, "id-1", "completed");
	tlm_h_sub_publish_str(f->sub, "hi.tasks.team1.subj-b.failed",
			      "{\"data\":{\"task_id\":\"id-2\",\"error\":\"x\"}}");
	expect_seen(f, 1, "id-2", "failed");
	tlm_h_sub_publish_str(f->sub, "hi.tasks.team1.task-3.completed", "{}");
	expect_seen(f, 2, "task-3", "completed");
	tlm_h_sub_publish(f->sub, "hi.tasks.team1.task-4.failed", "", 0);
	expect_seen(f, 3, "task-4", "failed");
	tlm_h_sub_publish_str(f->sub, "hi.tasks.team1.task-5.completed",
			      "{\"data\":\"text\",\"status\":\"completed\"}");
	expect_seen(f, 4, "task-5", "completed");
	/* The payload's id wins over the subject's. */
	tlm_h_sub_publish_str(f->sub, "hi.tasks.t.subject-id.completed",
			      "{\"task_id\":\"payload-id\",\"data\":{\"task_id\":\"inner\"}}");
	expect_seen(f, 5, "payload-id", "completed");
}

/* Malformed or oversized input never reaches the callback, and does not
 * stop the next good message: the sentinel is the only thing seen. */
static void test_inbound_malformed_ignored(void **state)
{
	static const char *const bad[] = {
		"not json",
		"[\"task_id\",\"x\"]",
		"\"id\"",
		"null",
		"42",
		"{\"task_id\":5}",
		"{\"task_id\":null}",
		"{\"task_id\":\"\"}",
		"{\"task_id\":\"a b\"}",
		"{\"task_id\":\"a\\u0001b\"}",
		"{\"data\":{\"task_id\":[]}}",
		"{\"task_id\":\"x\"",
		"\xff\xfe{}",
		"{\"task_id\":\"caf\\u00e9\"}",
	};
	struct fx *f = *state;
	char long_id[400];
	size_t i;

	events_new(f);
	wait_state(f->ev, "connected");
	f->sub = tlm_h_sub_new(f->port, "none");
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		tlm_h_sub_publish_str(f->sub, "hi.tasks.t.k.completed", bad[i]);
		tlm_h_sub_publish_str(f->sub, "hi.tasks.t.k.failed", bad[i]);
	}
	memset(long_id, 'x', sizeof(long_id) - 1);
	long_id[sizeof(long_id) - 1] = '\0';
	tlm_h_sub_publish_str(f->sub, "hi.tasks.t.k.completed", long_id); /* not JSON either */
	{
		char subj[sizeof(long_id) + 32];

		snprintf(subj, sizeof(subj), "hi.tasks.t.%s.completed", long_id);
		tlm_h_sub_publish_str(f->sub, subj, "{}"); /* the subject's id is too long */
	}
	/* Subjects the server does not listen to. */
	tlm_h_sub_publish_str(f->sub, "hi.tasks.t.k.started", "{\"task_id\":\"s\"}");
	tlm_h_sub_publish_str(f->sub, "hi.tasks.t.k.x.completed", "{\"task_id\":\"s\"}");
	tlm_h_sub_publish_str(f->sub, "hi.tasks.k.completed", "{\"task_id\":\"s\"}");
	/* Sentinels: each subscription delivers in order, so once they are
	 * seen every message before them was handled. */
	tlm_h_sub_publish_str(f->sub, "hi.tasks.t.k.completed", "{\"task_id\":\"good-1\"}");
	tlm_h_sub_publish_str(f->sub, "hi.tasks.t.k.failed", "{\"task_id\":\"good-2\"}");
	assert_int_equal(seen_wait(&f->seen, 2), 2);
	tlm_h_sleep_ms(50);
	pthread_mutex_lock(&f->seen.mu);
	assert_int_equal(f->seen.n, 2);
	pthread_mutex_unlock(&f->seen.mu);
	assert_true(
		(strcmp(f->seen.id[0], "good-1") == 0 && strcmp(f->seen.id[1], "good-2") == 0) ||
		(strcmp(f->seen.id[0], "good-2") == 0 && strcmp(f->seen.id[1], "good-1") == 0));
}

/* Payloads over 1 MiB are not parsed (the server is given a larger
 * max_payload so that such a message can be sent at all). */
static void test_inbound_oversized_ignored(void **state)
{
	struct fx *f = *state;
	const char *extra[] = { "-c", NULL, NULL };
	char *dir = tlm_h_tmpdir(), conf[512], *big;
	size_t n = (1u << 20) + 64;
	FILE *fp;

	snprintf(conf, sizeof(conf), "%s/nats.conf", dir);
	fp = fopen(conf, "w");
	assert_non_null(fp);
	fputs("max_payload: 4194304\n", fp);
	fclose(fp);
	extra[1] = conf;
	f->nats = tlm_h_nats_start_args(&f->port, extra);
	tlm_h_nats_url(f->url, sizeof(f->url), f->port);
	events_new(f);
	wait_state(f->ev, "connected");
	f->sub = tlm_h_sub_new(f->port, "none");
	big = malloc(n);
	assert_non_null(big);
	memset(big, ' ', n);
	memcpy(big, "{\"task_id\":\"big\"", 16);
	big[n - 1] = '}';
	tlm_h_sub_publish(f->sub, "hi.tasks.t.k.completed", big, n);
	free(big);
	tlm_h_sub_publish_str(f->sub, "hi.tasks.t.k.completed", "{\"task_id\":\"small\"}");
	expect_seen(f, 0, "small", "completed");
	tlm_h_rmrf(dir);
	free(dir);
}

/* ---- construction ---- */

static void test_bad_urls(void **state)
{
	static const char *const bad[] = {
		"",
		"garbage",
		"localhost:4222",
		"http://127.0.0.1:4222",
		"nats://",
		"nats://:4222",
		"nats://host:",
		"nats://host:0",
		"nats://host:65536",
		"nats://host:123456",
		"nats://host:42x",
		"nats://host:4222/path",
		"nats://a b:4222",
		"nats://[::1",
		"nats://h:1,",
		"nats://h:1,,nats://g:2",
		"nats://user:s3cret@host:notaport",
		"nats://h:1,tls://admin:s3cret@h2:99999",
	};
	tlm_error err = TLM_ERROR_INIT;
	tlm_events *ev = (tlm_events *)&err;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		tlm_error_clear(&err);
		assert_int_equal(tlm_events_new(&ev, bad[i], NULL, NULL, &err), TLM_EINVALID);
		assert_null(ev);
		assert_true(err.message[0] != '\0');
		/* A URL may carry a password: never echoed. */
		assert_null(strstr(err.message, "s3cret"));
	}
	assert_int_equal(tlm_events_new(&ev, NULL, NULL, NULL, &err), TLM_EINVALID);
	assert_non_null(strstr(err.message, "empty"));
	assert_int_equal(tlm_events_new(&ev, "nats://u:s3cret@h:99999", NULL, NULL, &err),
			 TLM_EINVALID);
	assert_non_null(strstr(err.message, "nats://***@h:99999"));
}

/* Accepted forms; NATS need not be there, and a cb may be NULL. */
static void test_good_urls(void **state)
{
	static const char *const good[] = {
		"nats://127.0.0.1:1",
		"NATS://localhost:1",
		"tls://127.0.0.1:1",
		"nats://127.0.0.1",
		"nats://user:pass@127.0.0.1:1",
		"nats://tok@127.0.0.1:1",
		"nats://[::1]:1",
		"nats://127.0.0.1:1, nats://127.0.0.1:2",
	};
	tlm_error err = TLM_ERROR_INIT;
	tlm_events *ev = NULL;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		assert_int_equal(tlm_events_new(&ev, good[i], NULL, NULL, &err), 0);
		assert_non_null(ev);
		tlm_events_free(ev);
	}
}

/* libnats ignores the scheme; tls:// must still mean TLS, which a plain
 * server does not speak.  libnats gives up on such a server: at once (an
 * error from tlm_events_new) or, when its first attempt came late, a moment
 * later ("closed"); either way never "connected". */
static void test_tls_scheme_requires_tls(void **state)
{
	struct fx *f = *state;
	tlm_error err = TLM_ERROR_INIT;
	int rc;

	snprintf(f->url, sizeof(f->url), "tls://user:s3cret@127.0.0.1:%u", (unsigned)f->port);
	rc = tlm_events_new(&f->ev, f->url, NULL, NULL, &err);
	if (rc != 0) {
		assert_int_equal(rc, TLM_ERROR);
		assert_null(strstr(err.message, "s3cret"));
		print_message("refused at once: %s\n", err.message);
		return;
	}
	tlm_h_sleep_ms(1000);
	assert_string_not_equal(tlm_events_state(f->ev), "connected");
}

/* A server without --nats may keep a NULL handle. */
static void test_null_handle(void **state)
{
	uint64_t p = 7, d = 7;

	(void)state;
	tlm_events_publish(NULL, "hi.x", json_object()); /* still steals the payload */
	tlm_events_pause(NULL, 1);
	tlm_events_stats(NULL, &p, &d);
	assert_int_equal(p + d, 0);
	assert_string_equal(tlm_events_state(NULL), "closed");
	tlm_events_free(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_publish_delivers_subject_and_payload,
						setup_nats, teardown),
		cmocka_unit_test_setup_teardown(test_publish_rejects_bad_subjects, setup_nats,
						teardown),
		cmocka_unit_test_setup_teardown(test_publish_burst_in_order, setup_nats, teardown),
		cmocka_unit_test_setup_teardown(test_free_flushes_queue, setup_nats, teardown),
		cmocka_unit_test_setup_teardown(test_down_never_blocks, setup_no_nats, teardown),
		cmocka_unit_test_setup_teardown(test_late_nats_gets_connected, setup_no_nats,
						teardown),
		cmocka_unit_test_setup_teardown(test_nats_killed_and_restarted, setup_nats,
						teardown),
		cmocka_unit_test_setup_teardown(test_nats_stopped_and_restarted, setup_nats,
						teardown),
		cmocka_unit_test_setup_teardown(test_pause_drops, setup_nats, teardown),
		cmocka_unit_test_setup_teardown(test_inbound_payload_shapes, setup_nats, teardown),
		cmocka_unit_test_setup_teardown(test_inbound_malformed_ignored, setup_nats,
						teardown),
		cmocka_unit_test_setup_teardown(test_inbound_oversized_ignored, setup_no_nats,
						teardown),
		cmocka_unit_test_setup_teardown(test_tls_scheme_requires_tls, setup_nats, teardown),
		cmocka_unit_test(test_bad_urls),
		cmocka_unit_test(test_good_urls),
		cmocka_unit_test(test_null_handle),
	};
	int failed = cmocka_run_group_tests_name("server.events", tests, NULL, NULL);

	/* libnats' global threads, joined so valgrind and LeakSanitizer see
	 * no memory held by running threads. */
	nats_CloseAndWait(5000);
	return failed;
}
