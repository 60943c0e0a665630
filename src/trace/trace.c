/* A tracer's life (include/telemachy/trace.h): made from the environment
 * before the run (its trace id and the run span's id are chosen here, so
 * that every request of the run can carry traceparent), finished after. */
#include <curl/curl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "trace/trace_internal.h"
#include "util/opts.h"

static const char *process_env(void *ctx, const char *name)
{
	(void)ctx;
	return getenv(name);
}

static void say(const tlm_trace *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void say(const tlm_trace *t, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (t->warn != NULL)
		t->warn(t->warn_ctx, msg);
	else
		fprintf(stderr, "telemachy: warning: %s\n", msg);
}

tlm_trace *tlm_trace_new_from_env(const tlm_trace_opts *opts)
{
	tlm_trace_opts o = TLM_TRACE_OPTS_INIT;
	tlm_trace_config cfg;
	tlm_trace *t;

	if (opts != NULL) {
		tlm_error err = TLM_ERROR_INIT;

		/* A struct of another layout is not read past its version. */
		if (tlm_opts_version_check(opts->version, TLM_TRACE_OPTS_VERSION, "trace",
					   "TLM_TRACE_OPTS_INIT", &err) != 0) {
			fprintf(stderr, "telemachy: tracing off: %s\n", err.message);
			return NULL;
		}
		o = *opts;
	}
	if (o.getenv == NULL)
		o.getenv = process_env;
	if (tlm_trace_config_read(&cfg, o.getenv, o.getenv_ctx, o.warn, o.warn_ctx) != 0 ||
	    !cfg.enabled) {
		tlm_trace_config_clear(&cfg);
		return NULL;
	}
	if ((t = calloc(1, sizeof(*t))) == NULL) {
		tlm_trace_config_clear(&cfg);
		return NULL;
	}
	t->cfg = cfg;
	t->warn = o.warn;
	t->warn_ctx = o.warn_ctx;
	t->service_version = strdup(o.service_version != NULL ? o.service_version : TLM_VERSION);
	pthread_mutex_init(&t->mu, NULL);
	if (t->cfg.has_parent)
		memcpy(t->trace_id, t->cfg.parent_trace, sizeof(t->trace_id));
	if (t->service_version == NULL ||
	    (!t->cfg.has_parent && tlm_trace_random_id(t->trace_id, sizeof(t->trace_id)) != 0) ||
	    tlm_trace_random_id(t->run_span, sizeof(t->run_span)) != 0) {
		say(t, "tracing: cannot make trace ids: traces are not exported");
		tlm_trace_free(t);
		return NULL;
	}
	t->sampled = tlm_trace_should_sample(&t->cfg, t->trace_id);
	tlm_trace_hex(t->trace_id, sizeof(t->trace_id), t->trace_hex);
	snprintf(t->traceparent, sizeof(t->traceparent), "00-%s-", t->trace_hex);
	tlm_trace_hex(t->run_span, sizeof(t->run_span), t->traceparent + 36);
	snprintf(t->traceparent + 52, sizeof(t->traceparent) - 52, "-%s", t->sampled ? "01" : "00");
	/* Unsampled: traceparent still travels (flags 00), nothing else runs. */
	if (!t->sampled)
		return t;
	/* The exporter thread uses curl beside the engine's client: global
	 * initialisation is not thread-safe in every libcurl, so it is done
	 * here, before the thread exists. */
	t->curl_init = curl_global_init(CURL_GLOBAL_DEFAULT) == CURLE_OK;
	if (!t->curl_init || tlm_trace__export_start(t) != 0) {
		say(t, "tracing: cannot start the exporter: traces are not exported");
		t->sampled = 0;
		return t;
	}
	return t;
}

const char *tlm_trace_traceparent(const tlm_trace *t)
{
	return t != NULL ? t->traceparent : NULL;
}

const char *tlm_trace_trace_id(const tlm_trace *t)
{
	return t != NULL ? t->trace_hex : NULL;
}

void tlm_trace_finish(tlm_trace *t)
{
	struct timespec ts;
	size_t dropped, failed;

	if (t == NULL || t->finished)
		return;
	t->finished = 1;
	if (t->run_open) {
		/* The run never said it ended (an early exit): its span ends
		 * now, as an error. */
		clock_gettime(CLOCK_REALTIME, &ts);
		tlm_engine_event ev;

		memset(&ev, 0, sizeof(ev));
		ev.kind = TLM_ENGINE_EV_RUN_ENDED;
		ev.state = "interrupted";
		ev.message = "the run ended without its end being recorded";
		ev.at_ms = (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
		t->finished = 0;
		tlm_trace_on_event(t, &ev);
		t->finished = 1;
	}
	tlm_trace__export_stop(t);
	pthread_mutex_lock(&t->mu);
	dropped = t->dropped + t->not_recorded;
	failed = t->failed;
	pthread_mutex_unlock(&t->mu);
	if (failed > 0)
		say(t,
		    "tracing: %zu export(s) to the OTLP endpoint failed (last: %s); %zu span(s) "
		    "were not exported",
		    failed, t->last_error, dropped);
	else if (dropped > 0)
		say(t, "tracing: %zu span(s) were not exported (queue full or too many open)",
		    dropped);
}

void tlm_trace_free(tlm_trace *t)
{
	if (t == NULL)
		return;
	tlm_trace_finish(t);
	for (size_t i = 0; i < t->nopen; i++)
		tlm_trace_span_clear(&t->open[i]);
	free(t->open);
	for (size_t i = 0; i < t->nqueue; i++)
		tlm_trace_span_clear(&t->queue[i]);
	free(t->queue);
	free(t->run_id);
	free(t->workflow);
	free(t->service_version);
	if (t->curl_init)
		curl_global_cleanup();
	pthread_mutex_destroy(&t->mu);
	tlm_trace_config_clear(&t->cfg);
	free(t);
}
