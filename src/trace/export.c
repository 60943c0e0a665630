/* The exporter (docs/tracing.md, "Export"): a thread of its own POSTs the
 * queued spans to the collector about every second and once more at the
 * end, so that the engine's thread only ever takes a mutex for a moment.
 * The queue is bounded (a full one drops spans, counted); the last export
 * is bounded by the export timeout, counted from tlm_trace_finish, however
 * long an earlier request took.  Failures are counted and reported by
 * tlm_trace_finish on the caller's thread: the CLI's logger is not
 * thread-safe, and a failed export is never an error of the run.  Header
 * values (secrets) go to libcurl only; curl's messages never hold them. */
#include <curl/curl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "trace/trace_internal.h"

static uint64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

void tlm_trace__enqueue(tlm_trace *t, tlm_trace_span *s)
{
	pthread_mutex_lock(&t->mu);
	if (t->nqueue == t->capqueue && t->capqueue < TLM_TRACE_QUEUE_MAX) {
		size_t cap = t->capqueue == 0 ? 64 : t->capqueue * 2;
		tlm_trace_span *grown;

		if (cap > TLM_TRACE_QUEUE_MAX)
			cap = TLM_TRACE_QUEUE_MAX;
		if ((grown = realloc(t->queue, cap * sizeof(*grown))) != NULL) {
			t->queue = grown;
			t->capqueue = cap;
		}
	}
	if (t->nqueue < t->capqueue) {
		t->queue[t->nqueue++] = *s; /* the queue owns its strings now */
		memset(s, 0, sizeof(*s));
	} else {
		t->dropped++;
		tlm_trace_span_clear(s);
	}
	pthread_mutex_unlock(&t->mu);
}

static size_t discard(char *p, size_t size, size_t n, void *ud)
{
	(void)p;
	(void)ud;
	return size * n;
}

/* Aborts a transfer once finish's deadline has passed. */
static int progress(void *ud, curl_off_t a, curl_off_t b, curl_off_t c, curl_off_t d)
{
	tlm_trace *t = ud;
	uint64_t deadline;

	(void)a, (void)b, (void)c, (void)d;
	pthread_mutex_lock(&t->mu);
	deadline = t->deadline_ms;
	pthread_mutex_unlock(&t->mu);
	return deadline != 0 && mono_ms() >= deadline;
}

static void note_failure(tlm_trace *t, const char *why)
{
	pthread_mutex_lock(&t->mu);
	t->failed++;
	snprintf(t->last_error, sizeof(t->last_error), "%s", why);
	pthread_mutex_unlock(&t->mu);
}

/* One POST of spans[0..n); 0 when the collector took it. */
static int post(tlm_trace *t, const tlm_trace_span *spans, size_t n)
{
	tlm_trace_resource r = { t->cfg.service_name, t->service_version, t->cfg.resource,
				 t->cfg.nresource };
	struct curl_slist *hdrs = NULL;
	char *body = NULL, err[CURL_ERROR_SIZE], why[200];
	long status = 0;
	CURLcode cc;
	CURL *e;
	int rc = -1;

	if (tlm_trace_encode(&r, t->trace_id, spans, n, &body) != 0) {
		note_failure(t, "out of memory encoding spans");
		return -1;
	}
	if ((e = curl_easy_init()) == NULL) {
		free(body);
		note_failure(t, "out of memory");
		return -1;
	}
	hdrs = curl_slist_append(hdrs, "Content-Type: application/json");
	hdrs = curl_slist_append(hdrs, "Expect:");
	for (size_t i = 0; hdrs != NULL && i < t->cfg.nheaders; i++)
		hdrs = curl_slist_append(hdrs, t->cfg.headers[i]);
	err[0] = '\0';
	curl_easy_setopt(e, CURLOPT_URL, t->cfg.endpoint);
	curl_easy_setopt(e, CURLOPT_POSTFIELDS, body);
	curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, hdrs);
	curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, t->cfg.timeout_ms);
	curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, t->cfg.timeout_ms);
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, discard);
	curl_easy_setopt(e, CURLOPT_ERRORBUFFER, err);
	curl_easy_setopt(e, CURLOPT_NOPROGRESS, 0L);
	curl_easy_setopt(e, CURLOPT_XFERINFOFUNCTION, progress);
	curl_easy_setopt(e, CURLOPT_XFERINFODATA, t);
	/* Never to another host: a redirect would carry the headers along. */
	curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
	curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
	cc = hdrs != NULL ? curl_easy_perform(e) : CURLE_OUT_OF_MEMORY;
	curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
	if (cc != CURLE_OK) {
		snprintf(why, sizeof(why), "%s",
			 cc == CURLE_ABORTED_BY_CALLBACK ? "the export timeout ran out"
							 : curl_easy_strerror(cc));
		note_failure(t, why);
	} else if (status < 200 || status > 299) {
		snprintf(why, sizeof(why), "the collector answered HTTP %ld", status);
		note_failure(t, why);
	} else {
		rc = 0;
	}
	curl_slist_free_all(hdrs);
	curl_easy_cleanup(e);
	free(body);
	return rc;
}

static void *run(void *arg)
{
	tlm_trace *t = arg;
	int oom = 0;

	for (;;) {
		tlm_trace_span *batch;
		size_t n;
		int stop;

		pthread_mutex_lock(&t->mu);
		if ((t->nqueue == 0 || oom) && !t->stop) {
			struct timespec ts;

			clock_gettime(CLOCK_MONOTONIC, &ts);
			ts.tv_sec += TLM_TRACE_PERIOD_MS / 1000;
			pthread_cond_timedwait(&t->cv, &t->mu, &ts);
		}
		stop = t->stop;
		n = t->nqueue < TLM_TRACE_BATCH_MAX ? t->nqueue : TLM_TRACE_BATCH_MAX;
		batch = n > 0 ? malloc(n * sizeof(*batch)) : NULL;
		oom = n > 0 && batch == NULL; /* wait a turn before trying again */
		if (batch != NULL) {
			memcpy(batch, t->queue, n * sizeof(*batch));
			memmove(t->queue, t->queue + n, (t->nqueue - n) * sizeof(*batch));
			t->nqueue -= n;
		} else {
			n = 0;
		}
		/* Past the deadline: what is left is dropped, not sent. */
		if (stop && t->deadline_ms != 0 && mono_ms() >= t->deadline_ms) {
			for (size_t i = 0; i < t->nqueue; i++)
				tlm_trace_span_clear(&t->queue[i]);
			t->dropped += t->nqueue;
			t->nqueue = 0;
		}
		pthread_mutex_unlock(&t->mu);
		if (n > 0 && post(t, batch, n) == 0) {
			pthread_mutex_lock(&t->mu);
			t->exported += n;
			pthread_mutex_unlock(&t->mu);
		} else if (n > 0) {
			pthread_mutex_lock(&t->mu);
			t->dropped += n;
			pthread_mutex_unlock(&t->mu);
		}
		for (size_t i = 0; i < n; i++)
			tlm_trace_span_clear(&batch[i]);
		free(batch);
		if (stop) {
			pthread_mutex_lock(&t->mu);
			int done = t->nqueue == 0;

			pthread_mutex_unlock(&t->mu);
			if (done)
				return NULL;
		} else if (n == 0) {
			continue;
		} else {
			/* A batch a second: the rest waits for the next turn
			 * unless the queue is filling up. */
			struct timespec ts = { 0, 0 };

			pthread_mutex_lock(&t->mu);
			if (!t->stop && t->nqueue < TLM_TRACE_QUEUE_MAX / 2) {
				clock_gettime(CLOCK_MONOTONIC, &ts);
				ts.tv_sec += TLM_TRACE_PERIOD_MS / 1000;
				pthread_cond_timedwait(&t->cv, &t->mu, &ts);
			}
			pthread_mutex_unlock(&t->mu);
		}
	}
}

int tlm_trace__export_start(tlm_trace *t)
{
	pthread_condattr_t ca;
	sigset_t all, old;
	int rc;

	if (pthread_condattr_init(&ca) != 0)
		return -1;
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	if (pthread_cond_init(&t->cv, &ca) != 0) {
		pthread_condattr_destroy(&ca);
		return -1;
	}
	pthread_condattr_destroy(&ca);
	/* The thread takes no signal: the CLI's handlers must run on the
	 * engine's thread, whose wait they cut short (src/cli/run_drive.c). */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	rc = pthread_create(&t->thread, NULL, run, t);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc != 0) {
		pthread_cond_destroy(&t->cv);
		return -1;
	}
	t->thread_started = 1;
	return 0;
}

void tlm_trace__export_stop(tlm_trace *t)
{
	if (!t->thread_started)
		return;
	pthread_mutex_lock(&t->mu);
	t->stop = 1;
	t->deadline_ms = mono_ms() + (uint64_t)t->cfg.timeout_ms;
	pthread_cond_signal(&t->cv);
	pthread_mutex_unlock(&t->mu);
	pthread_join(t->thread, NULL);
	pthread_cond_destroy(&t->cv);
	t->thread_started = 0;
}
