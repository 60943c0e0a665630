/* Spans from the engine's events (docs/tracing.md, "The span tree"), on the
 * engine's thread: open spans are kept here, finished ones handed to the
 * exporter's queue.  Ids come from the kernel's CSPRNG (getrandom): a
 * trace id must not be guessable from another run's. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "trace/trace_internal.h"

int tlm_trace_random_id(uint8_t *id, size_t n)
{
	for (int tries = 0; tries < 4; tries++) {
		size_t got = 0;

		while (got < n) {
			ssize_t r = getrandom(id + got, n - got, 0);

			if (r <= 0)
				return -1;
			got += (size_t)r;
		}
		for (size_t i = 0; i < n; i++)
			if (id[i] != 0)
				return 0; /* all zero is invalid (W3C Trace Context) */
	}
	return -1;
}

void tlm_trace_hex(const uint8_t *bytes, size_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";

	for (size_t i = 0; i < n; i++) {
		out[2 * i] = digits[bytes[i] >> 4];
		out[2 * i + 1] = digits[bytes[i] & 15];
	}
	out[2 * n] = '\0';
}

static int unhex(const char *s, uint8_t *out, size_t n)
{
	int nonzero = 0;

	for (size_t i = 0; i < n; i++) {
		int v = 0;

		for (int k = 0; k < 2; k++) {
			char c = s[2 * i + (size_t)k];

			v <<= 4;
			if (c >= '0' && c <= '9')
				v |= c - '0';
			else if (c >= 'a' && c <= 'f')
				v |= c - 'a' + 10;
			else
				return -1; /* W3C: lowercase only */
		}
		out[i] = (uint8_t)v;
		nonzero |= v;
	}
	return nonzero ? 0 : -1;
}

int tlm_trace_parse_traceparent(const char *s, uint8_t trace_id[16], uint8_t span_id[8],
				int *sampled)
{
	uint8_t flags;

	/* version 00 is exactly 55 characters; "ff" is invalid. */
	if (strlen(s) != 55 || strncmp(s, "00-", 3) != 0 || s[35] != '-' || s[52] != '-')
		return -1;
	if (unhex(s + 3, trace_id, 16) != 0 || unhex(s + 36, span_id, 8) != 0)
		return -1;
	if (unhex(s + 53, &flags, 1) != 0 && strcmp(s + 53, "00") != 0)
		return -1;
	if (strcmp(s + 53, "00") == 0)
		flags = 0;
	*sampled = flags & 1;
	return 0;
}

int tlm_trace_ratio_sampled(const uint8_t trace_id[16], double ratio)
{
	uint64_t v = 0;

	if (ratio >= 1.0)
		return 1;
	if (!(ratio > 0.0))
		return 0;
	for (int i = 8; i < 16; i++)
		v = v << 8 | trace_id[i];
	/* ratio * 2^64 as a bound, compared in halves to stay exact. */
	return (double)(v >> 11) < ratio * 9007199254740992.0; /* 2^53 */
}

int tlm_trace_should_sample(const tlm_trace_config *cfg, const uint8_t trace_id[16])
{
	switch (cfg->sampler) {
	case TLM_TRACE_ALWAYS_ON: return 1;
	case TLM_TRACE_ALWAYS_OFF: return 0;
	case TLM_TRACE_RATIO: return tlm_trace_ratio_sampled(trace_id, cfg->ratio);
	case TLM_TRACE_PB_ALWAYS_ON: return cfg->has_parent ? cfg->parent_sampled : 1;
	case TLM_TRACE_PB_ALWAYS_OFF: return cfg->has_parent ? cfg->parent_sampled : 0;
	case TLM_TRACE_PB_RATIO:
		return cfg->has_parent ? cfg->parent_sampled
				       : tlm_trace_ratio_sampled(trace_id, cfg->ratio);
	}
	return 0;
}

char *tlm_trace_strdup_cap(const char *s)
{
	size_t n;
	char *out;

	if (s == NULL)
		return NULL;
	n = strnlen(s, TLM_TRACE_VALUE_MAX + 1);
	if (n > TLM_TRACE_VALUE_MAX) {
		n = TLM_TRACE_VALUE_MAX;
		/* Not in the middle of a UTF-8 sequence. */
		while (n > 0 && ((unsigned char)s[n] & 0xc0) == 0x80)
			n--;
	}
	if ((out = malloc(n + 1)) == NULL)
		return NULL;
	memcpy(out, s, n);
	out[n] = '\0';
	return out;
}

void tlm_trace_span_clear(tlm_trace_span *s)
{
	free(s->name);
	free(s->status_message);
	free(s->key);
	for (size_t i = 0; i < s->nattrs; i++)
		free(s->attrs[i].str);
	memset(s, 0, sizeof(*s));
}

static void attr_str(tlm_trace_span *s, const char *key, const char *value)
{
	if (value == NULL || s->nattrs == TLM_TRACE_ATTRS_MAX)
		return;
	/* Out of memory: the attribute is missing, the span is not. */
	if ((s->attrs[s->nattrs].str = tlm_trace_strdup_cap(value)) == NULL)
		return;
	s->attrs[s->nattrs++].key = key;
}

static void attr_int(tlm_trace_span *s, const char *key, int64_t v)
{
	if (s->nattrs == TLM_TRACE_ATTRS_MAX)
		return;
	s->attrs[s->nattrs].key = key;
	s->attrs[s->nattrs].str = NULL;
	s->attrs[s->nattrs++].int_value = v;
}

static void add_event(tlm_trace_span *s, const char *name, uint64_t ns)
{
	if (s->nevents < TLM_TRACE_EVENTS_MAX) {
		s->events[s->nevents].name = name;
		s->events[s->nevents++].time_ns = ns;
	}
}

static uint64_t ns_of(uint64_t ms)
{
	return ms * 1000000u;
}

/* A new open span, child of parent (NULL: the environment's TRACEPARENT,
 * if any), or NULL (too many open, out of memory). */
static tlm_trace_span *open_span(tlm_trace *t, const char *name, const char *key,
				 const tlm_trace_span *parent, uint64_t at_ms)
{
	uint8_t parent_id[8];
	tlm_trace_span *s;

	/* parent points into t->open, which may move below. */
	if (parent != NULL)
		memcpy(parent_id, parent->span_id, sizeof(parent_id));
	if (t->nopen >= TLM_TRACE_OPEN_MAX) {
		t->not_recorded++;
		return NULL;
	}
	if (t->nopen == t->capopen) {
		size_t cap = t->capopen == 0 ? 16 : t->capopen * 2;
		tlm_trace_span *grown = realloc(t->open, cap * sizeof(*grown));

		if (grown == NULL) {
			t->not_recorded++;
			return NULL;
		}
		t->open = grown;
		t->capopen = cap;
	}
	s = &t->open[t->nopen];
	memset(s, 0, sizeof(*s));
	s->name = tlm_trace_strdup_cap(name);
	s->key = key != NULL ? strdup(key) : NULL;
	if (s->name == NULL || (key != NULL && s->key == NULL) ||
	    tlm_trace_random_id(s->span_id, sizeof(s->span_id)) != 0) {
		tlm_trace_span_clear(s);
		t->not_recorded++;
		return NULL;
	}
	if (parent != NULL) {
		memcpy(s->parent_id, parent_id, sizeof(s->parent_id));
		s->has_parent = 1;
	}
	s->start_ns = ns_of(at_ms);
	attr_str(s, "telemachy.run.id", t->run_id);
	attr_str(s, "telemachy.workflow", t->workflow);
	t->nopen++;
	return s;
}

static tlm_trace_span *find(tlm_trace *t, const char *key, int attempt)
{
	/* From the newest: a task's latest attempt is the one that moves. */
	for (size_t i = t->nopen; i-- > 1;)
		if (t->open[i].key != NULL && strcmp(t->open[i].key, key) == 0 &&
		    (attempt == 0 || t->open[i].attempt == attempt))
			return &t->open[i];
	return NULL;
}

/* Ends open[i] at at_ms and queues it; the last open span takes its place
 * (the run span, open[0], is ended only by end_run). */
static void close_span(tlm_trace *t, tlm_trace_span *s, uint64_t at_ms, int status,
		       const char *message)
{
	size_t i = (size_t)(s - t->open);

	s->end_ns = ns_of(at_ms);
	if (s->end_ns < s->start_ns)
		s->end_ns = s->start_ns;
	if (status != TLM_TRACE_STATUS_UNSET)
		s->status = status;
	if (message != NULL && status == TLM_TRACE_STATUS_ERROR && s->status_message == NULL)
		s->status_message = tlm_trace_strdup_cap(message);
	free(s->key);
	s->key = NULL;
	tlm_trace__enqueue(t, s);
	if (i + 1 < t->nopen)
		t->open[i] = t->open[t->nopen - 1];
	t->nopen--;
}

static void start_run(tlm_trace *t, const tlm_engine_event *ev)
{
	tlm_trace_span *s;
	char name[300];

	if (t->run_open)
		return;
	free(t->run_id);
	free(t->workflow);
	t->run_id = tlm_trace_strdup_cap(ev->run_id);
	t->workflow = tlm_trace_strdup_cap(ev->workflow);
	snprintf(name, sizeof(name), "run %.256s", ev->workflow != NULL ? ev->workflow : "");
	s = open_span(t, name, NULL, NULL, ev->at_ms);
	if (s == NULL)
		return;
	/* The id the control plane has seen in traceparent since the client
	 * was made, and the environment's TRACEPARENT as its parent. */
	memcpy(s->span_id, t->run_span, sizeof(s->span_id));
	if (t->cfg.has_parent) {
		memcpy(s->parent_id, t->cfg.parent_span, sizeof(s->parent_id));
		s->has_parent = 1;
	}
	attr_str(s, "telemachy.run.start", ev->state);
	t->run_open = 1;
}

/* The phase span open now (key "phase"), if any. */
static void end_phase(tlm_trace *t, uint64_t at_ms)
{
	tlm_trace_span *p = find(t, "phase", 0);

	if (p != NULL)
		close_span(t, p, at_ms, TLM_TRACE_STATUS_UNSET, NULL);
}

static void phase(tlm_trace *t, const tlm_engine_event *ev)
{
	const char *name = ev->phase != NULL ? ev->phase : "phase";
	tlm_trace_span *s;

	end_phase(t, ev->at_ms);
	/* The documents call it teardown; the progress display "tearing down". */
	if (strcmp(name, "tearing down") == 0)
		name = "teardown";
	s = open_span(t, name, "phase", &t->open[0], ev->at_ms);
	if (s != NULL)
		attr_str(s, "telemachy.phase", name);
}

/* The span of the phase named name, open now, else the run's: the parent
 * of what starts in it. */
static const tlm_trace_span *parent_in(tlm_trace *t, const char *name)
{
	const tlm_trace_span *p = find(t, "phase", 0);

	return p != NULL && strcmp(p->name, name) == 0 ? p : &t->open[0];
}

/* An agent's or a team's span: its life on the control plane, from the
 * create's answer ("created") to deleted or absent; started and deleting
 * are events of the span. */
static void resource(tlm_trace *t, const tlm_engine_event *ev)
{
	const char *kind = ev->kind == TLM_ENGINE_EV_AGENT ? "agent" : "team";
	const char *st = ev->state != NULL ? ev->state : "";
	char key[600], name[600];
	tlm_trace_span *s;

	if (ev->name == NULL)
		return;
	snprintf(key, sizeof(key), "%s\x1f%.512s", kind, ev->name);
	s = find(t, key, 0);
	if (s == NULL) {
		if (strcmp(st, "created") != 0 && strcmp(st, "started") != 0)
			return; /* a resume's or teardown's resource: no creation to show */
		snprintf(name, sizeof(name), "%s %.512s", kind, ev->name);
		s = open_span(t, name, key, parent_in(t, "provisioning"), ev->at_ms);
		if (s == NULL)
			return;
		attr_str(s, "telemachy.resource.kind", kind);
		attr_str(s, "telemachy.resource.name", ev->name);
		attr_str(s, "telemachy.resource.remote_id", ev->remote_id);
		if (strcmp(st, "started") == 0)
			add_event(s, "started", ns_of(ev->at_ms));
		return;
	}
	if (strcmp(st, "deleted") == 0 || strcmp(st, "absent") == 0) {
		/* Absent is not a failure of its own (a kept resource whose
		 * in-process plane stopped, one found gone): why is kept. */
		attr_str(s, "telemachy.resource.end", st);
		attr_str(s, "telemachy.resource.why", ev->message);
		close_span(t, s, ev->at_ms, TLM_TRACE_STATUS_UNSET, NULL);
	} else if (strcmp(st, "abandoned") == 0) {
		close_span(t, s, ev->at_ms, TLM_TRACE_STATUS_ERROR,
			   ev->message != NULL ? ev->message : "abandoned");
	} else if (strcmp(st, "started") == 0 || strcmp(st, "deleting") == 0) {
		add_event(s, strcmp(st, "started") == 0 ? "started" : "deleting", ns_of(ev->at_ms));
	}
}

/* A task attempt's span: submitted to its end. */
static void task(tlm_trace *t, const tlm_engine_event *ev)
{
	const char *st = ev->state != NULL ? ev->state : "";
	char key[600], name[600];
	tlm_trace_span *s;

	if (ev->name == NULL || ev->team == NULL)
		return;
	snprintf(key, sizeof(key), "task\x1f%.256s\x1f%.256s", ev->team, ev->name);
	if (strcmp(st, "submitted") == 0) {
		/* A still-open earlier attempt ended without an event of its own. */
		if ((s = find(t, key, 0)) != NULL)
			close_span(t, s, ev->at_ms, TLM_TRACE_STATUS_UNSET, NULL);
		snprintf(name, sizeof(name), "task %.256s/%.256s", ev->team, ev->name);
		s = open_span(t, name, key, parent_in(t, "running"), ev->at_ms);
		if (s == NULL)
			return;
		s->attempt = ev->attempt;
		attr_str(s, "telemachy.task.team", ev->team);
		attr_str(s, "telemachy.task.subject", ev->name);
		attr_int(s, "telemachy.task.attempt", ev->attempt);
		attr_str(s, "telemachy.task.remote_id", ev->remote_id);
		return;
	}
	if ((s = find(t, key, 0)) == NULL)
		return; /* skipped before any attempt, or a resumed run's attempt */
	if (strcmp(st, "running") == 0) {
		add_event(s, "running", ns_of(ev->at_ms));
		return;
	}
	if (strcmp(st, "completed") == 0) {
		attr_str(s, "telemachy.task.state", st);
		close_span(t, s, ev->at_ms, TLM_TRACE_STATUS_OK, NULL);
	} else if (strcmp(st, "failed") == 0 || strcmp(st, "timed_out") == 0 ||
		   strcmp(st, "cancelled") == 0 || strcmp(st, "retrying") == 0 ||
		   strcmp(st, "skipped") == 0) {
		attr_str(s, "telemachy.task.state", st);
		close_span(t, s, ev->at_ms, TLM_TRACE_STATUS_ERROR,
			   ev->message != NULL ? ev->message : st);
	}
}

static void end_run(tlm_trace *t, const tlm_engine_event *ev)
{
	tlm_trace_span *run = &t->open[0];
	int ok = ev->state != NULL && strcmp(ev->state, "completed") == 0;

	tlm_trace__close_all(t, ns_of(ev->at_ms));
	attr_str(run, "telemachy.run.state", ev->state);
	run->end_ns = ns_of(ev->at_ms);
	if (run->end_ns < run->start_ns)
		run->end_ns = run->start_ns;
	run->status = ok ? TLM_TRACE_STATUS_OK : TLM_TRACE_STATUS_ERROR;
	if (!ok)
		run->status_message = tlm_trace_strdup_cap(
			ev->message != NULL ? ev->message
					    : (ev->state != NULL ? ev->state : "not completed"));
	tlm_trace__enqueue(t, run);
	t->nopen = 0;
	t->run_open = 0;
}

void tlm_trace__close_all(tlm_trace *t, uint64_t now_ns)
{
	/* Everything but the run span; what is still open when the run ends
	 * ended with it (a resource kept by policy, a task left running). */
	while (t->nopen > 1) {
		tlm_trace_span *s = &t->open[t->nopen - 1];

		s->end_ns = now_ns < s->start_ns ? s->start_ns : now_ns;
		free(s->key);
		s->key = NULL;
		tlm_trace__enqueue(t, s);
		t->nopen--;
	}
}

void tlm_trace_on_event(void *ctx, const tlm_engine_event *ev)
{
	tlm_trace *t = ctx;

	if (t == NULL || !t->sampled || t->finished)
		return;
	if (ev->kind == TLM_ENGINE_EV_RUN_STARTED) {
		start_run(t, ev);
		return;
	}
	if (!t->run_open)
		return;
	switch (ev->kind) {
	case TLM_ENGINE_EV_PHASE: phase(t, ev); break;
	case TLM_ENGINE_EV_AGENT:
	case TLM_ENGINE_EV_TEAM: resource(t, ev); break;
	case TLM_ENGINE_EV_TASK: task(t, ev); break;
	case TLM_ENGINE_EV_TEARDOWN_FAILED: {
		tlm_trace_span *p = find(t, "phase", 0);

		attr_int(&t->open[0], "telemachy.run.leftovers", (int64_t)ev->count);
		if (p != NULL && strcmp(p->name, "teardown") == 0) {
			attr_int(p, "telemachy.teardown.leftovers", (int64_t)ev->count);
			p->status = TLM_TRACE_STATUS_ERROR;
			if (p->status_message == NULL)
				p->status_message = tlm_trace_strdup_cap("teardown left resources");
		}
		break;
	}
	case TLM_ENGINE_EV_RUN_ENDED: end_run(t, ev); break;
	default: break;
	}
}
