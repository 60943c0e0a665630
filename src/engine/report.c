/* What the engine tells its observer (the CLI prints; the library never
 * does), and the run's first error, which teardown must never hide; how a
 * failed allocation or a lost run (fencing) ends the run. */
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "engine/engine_internal.h"
#include "util/esc.h"

uint64_t tlm_eng__now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static int is_running(eng_task_state st)
{
	return st == TASK_SUBMITTING || st == TASK_UNKNOWN || st == TASK_SUBMITTED ||
	       st == TASK_RUNNING;
}

/* The task running longest, looked for at most once per progress period (a
 * walk of every task): a live display redraws no faster.  Between two
 * walks it is the task found last while that one still runs, else none
 * (walking again whenever it finished made a walk per log line: 40 % of
 * the engine's CPU at 100,000 tasks). */
static size_t slowest(eng *e, uint64_t now)
{
	size_t i, best = SIZE_MAX;

	if (e->slowest_at != 0 && now - e->slowest_at < TLM_ENGINE_PROGRESS_MS)
		return e->slowest_idx != SIZE_MAX && is_running(e->tasks[e->slowest_idx].st)
			       ? e->slowest_idx
			       : SIZE_MAX;
	for (i = 0; i < e->spec->ntasks; i++) {
		const eng_task *t = &e->tasks[i];

		if (is_running(t->st) &&
		    (best == SIZE_MAX ||
		     (t->submitted_ms != 0 && (e->tasks[best].submitted_ms == 0 ||
					       t->submitted_ms < e->tasks[best].submitted_ms))))
			best = i;
	}
	e->slowest_idx = best;
	e->slowest_at = now;
	return best;
}

/* O(1) but for the slowest task's walk (above): the counts are kept by
 * tlm_eng__task_set. */
static void snapshot(eng *e, const char *phase, tlm_engine_progress *p)
{
	uint64_t now = tlm_eng__now_ms();
	const size_t *n = e->nstate;
	size_t i;

	memset(p, 0, sizeof(*p));
	p->phase = phase;
	p->run_id = e->run_id;
	p->agents_total = e->spec != NULL ? e->spec->nagents : 0;
	p->agents_ready = e->agents_ready;
	p->tasks_total = e->spec != NULL ? e->spec->ntasks : 0;
	p->elapsed_ms = now - e->t0;
	if (e->tasks == NULL)
		return;
	p->tasks_completed = n[TASK_COMPLETED];
	p->tasks_running =
		n[TASK_SUBMITTING] + n[TASK_UNKNOWN] + n[TASK_SUBMITTED] + n[TASK_RUNNING];
	p->tasks_pending = n[TASK_WAITING] + n[TASK_READY];
	p->tasks_failed = n[TASK_FAILED] + n[TASK_TIMED_OUT] + n[TASK_SKIPPED] + n[TASK_CANCELLED];
	if (p->tasks_running > 0 && (i = slowest(e, now)) != SIZE_MAX) {
		const eng_task *t = &e->tasks[i];

		p->slowest_ms = t->submitted_ms != 0 ? now - t->submitted_ms : 0;
		p->slowest_task = tlm_eng__task_name(e, i, e->slowest, sizeof(e->slowest));
	}
}

void tlm_eng__progress(eng *e, const char *phase)
{
	tlm_engine_progress p;

	if (phase != NULL && (e->phase == NULL || strcmp(e->phase, phase) != 0)) {
		tlm_engine_event ev;

		memset(&ev, 0, sizeof(ev));
		ev.kind = TLM_ENGINE_EV_PHASE;
		ev.phase = phase;
		e->phase = phase;
		tlm_eng__emit(e, &ev);
	}
	if (e->o->observe == NULL)
		return;
	snapshot(e, e->phase, &p);
	e->o->observe(e->o->observe_ctx, TLM_ENGINE_INFO, NULL, &p);
}

/* vsnprintf cuts at a byte: a message cut inside a UTF-8 character would
 * not be UTF-8, and the JSON summary could not hold it.  n: what vsnprintf
 * returned for a buffer of cap bytes. */
static void cut_whole(char *msg, int n, size_t cap)
{
	size_t i, k = 0, need;
	unsigned char lead;

	if (n < 0 || (size_t)n < cap)
		return;
	i = strlen(msg);
	while (i > 0 && k < 3 && ((unsigned char)msg[i - 1] & 0xc0) == 0x80) {
		i--;
		k++;
	}
	if (i == 0 || (lead = (unsigned char)msg[i - 1]) < 0xc0)
		return;
	need = lead >= 0xf0 ? 4 : lead >= 0xe0 ? 3 : 2;
	if (k + 1 < need)
		msg[i - 1] = '\0';
}

const char *tlm_eng__short_id(const char *id, char *buf, size_t cap)
{
	int cut = 0;
	size_t n;

	assert(cap > 4);
	n = tlm_esc_str(buf, cap - 3, id, &cut);
	if (cut)
		memcpy(buf + n, "...", 4);
	return buf;
}

/* The attribute tells clang's -Wformat-nonliteral that fmt is checked at the
 * callers (tlm_eng__log is declared printf-like). */
__attribute__((format(printf, 3, 0))) static void vlog(eng *e, tlm_engine_level level,
						       const char *fmt, va_list ap)
{
	char msg[2048];
	tlm_engine_progress p;
	int n;

	if (e->o->observe == NULL)
		return;
	n = vsnprintf(msg, sizeof(msg), fmt, ap);
	cut_whole(msg, n, sizeof(msg));
	snapshot(e, e->phase, &p);
	e->o->observe(e->o->observe_ctx, level, msg, &p);
}

void tlm_eng__log(eng *e, tlm_engine_level level, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vlog(e, level, fmt, ap);
	va_end(ap);
}

void tlm_eng__fail(eng *e, const char *fmt, ...)
{
	char msg[2048];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(msg, sizeof(msg), fmt, ap);
	cut_whole(msg, n, sizeof(msg));
	va_end(ap);
	tlm_eng__log(e, TLM_ENGINE_ERROR, "%s", msg);
	if (e->error == NULL && (e->error = strdup(msg)) == NULL)
		e->oom = 1; /* the result says "out of memory" then */
	if (e->outcome == TLM_ENGINE_COMPLETED)
		e->outcome = TLM_ENGINE_FAILED;
}

int tlm_eng__oom(eng *e)
{
	if (!e->oom) {
		e->oom = 1;
		tlm_eng__fail(e, "out of memory");
	}
	e->ending = 1;
	return TLM_ERROR;
}

void tlm_eng__fenced(eng *e, const tlm_error *err)
{
	if (e->stop == STOP_FENCED)
		return;
	e->stop = STOP_FENCED;
	e->ending = 1;
	e->outcome = TLM_ENGINE_TAKEN_OVER;
	free(e->error);
	e->error = strdup(err != NULL && err->message[0] ? err->message : "the run was taken over");
	tlm_eng__log(e, TLM_ENGINE_ERROR, "%s: stopping at once, without another request",
		     e->error != NULL ? e->error : "the run was taken over");
}

int tlm_eng__journal_check(eng *e, int rc, const tlm_error *err)
{
	if (rc == TLM_EFENCED)
		tlm_eng__fenced(e, err);
	else if (rc != 0 && e->stop != STOP_FENCED) {
		tlm_eng__fail(e, "journal: %s", err->message);
		e->ending = 1;
	}
	return rc;
}

const char *tlm_eng__task_name(eng *e, size_t i, char *buf, size_t cap)
{
	const tlm_spec_task *t = &e->spec->tasks[i];

	snprintf(buf, cap, "%s/%s", e->spec->teams[t->team].name, t->subject);
	return buf;
}

/* ---- what the result lists ---- */

void tlm_eng__add_leftover(eng *e, tlm_journal_kind kind, const char *name, const char *id,
			   const char *why)
{
	tlm_eng__add_leftover_named(e, tlm_journal_kind_name(kind), name, id, why);
}

void tlm_eng__add_leftover_named(eng *e, const char *kind, const char *name, const char *id,
				 const char *why)
{
	tlm_engine_result *r = e->res;
	tlm_engine_leftover *p;

	/* Doubling: a hostile listing can make many leftovers. */
	if (r->nleftovers == e->leftovers_cap) {
		size_t cap = e->leftovers_cap ? 2 * e->leftovers_cap : 16;

		if ((p = realloc(r->leftovers, cap * sizeof(*p))) == NULL) {
			tlm_eng__oom(e); /* a leftover must never go unreported */
			return;
		}
		r->leftovers = p;
		e->leftovers_cap = cap;
	}
	p = r->leftovers;
	p = &r->leftovers[r->nleftovers++];
	p->kind = strdup(kind);
	p->name = strdup(name);
	p->remote_id = id != NULL ? strdup(id) : NULL;
	p->error = strdup(why);
	if (p->kind == NULL || p->name == NULL || (id != NULL && p->remote_id == NULL) ||
	    p->error == NULL)
		tlm_eng__oom(e);
}
