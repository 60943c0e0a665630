/* The engine's events as data (tlm_engine_opts.on_event,
 * include/telemachy/engine.h): one function fills what every event
 * carries, and the transition functions (states.c), the phase (report.c)
 * and the run's start and end (engine.c) call it. */
#include <string.h>
#include <time.h>

#include "engine/engine_internal.h"

static uint64_t wall_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static const char *kind_word(tlm_engine_event_kind k)
{
	return k == TLM_ENGINE_EV_TASK              ? "task"
	       : k == TLM_ENGINE_EV_TEARDOWN_FAILED ? "teardown_failed"
						    : "run_ended";
}

/* Journals a final event when the run asks for it (hooks at least once,
 * docs/hooks.md): in the open batch, so it commits with the state change
 * it reports.  A message longer than the journal keeps is cut at a UTF-8
 * character boundary. */
static void journal_event(eng *e, const tlm_engine_event *ev)
{
	char id[TLM_ENGINE_EVENT_ID_MAX], msg[TLM_JOURNAL_TEXT_MAX + 1];
	tlm_error err = TLM_ERROR_INIT;
	tlm_journal_event je;
	size_t n;

	if (!e->o->journal_events || e->j == NULL || tlm_engine_event_id(ev, id, sizeof(id)) != 0)
		return;
	memset(&je, 0, sizeof(je));
	je.id = id;
	je.kind = kind_word(ev->kind);
	je.team = ev->kind == TLM_ENGINE_EV_TASK ? ev->team : NULL;
	je.name = ev->kind == TLM_ENGINE_EV_TASK ? ev->name : NULL;
	je.state = ev->state;
	je.attempt = ev->attempt;
	je.count = (long long)ev->count;
	je.at_ms = ev->at_ms;
	if (ev->message != NULL) {
		n = strlen(ev->message);
		if (n > TLM_JOURNAL_TEXT_MAX) {
			n = TLM_JOURNAL_TEXT_MAX;
			while (n > 0 && ((unsigned char)ev->message[n] & 0xC0u) == 0x80u)
				n--;
		}
		memcpy(msg, ev->message, n);
		msg[n] = '\0';
		je.message = msg;
	}
	if (tlm_journal_event_put(e->j, e->run_id, &je, &err) != 0)
		tlm_eng__log(e, TLM_ENGINE_WARN, "event %s is not in the journal: %s", id,
			     err.message);
}

/* Fills what every event carries; journal: whether a final event is
 * journaled here (the run's end events are, earlier: tlm_eng__journal_end). */
static void emit(eng *e, tlm_engine_event *ev, int journal)
{
	if (e->o->on_event == NULL)
		return;
	ev->run_id = e->run_id[0] != '\0' ? e->run_id : NULL;
	ev->workflow = e->spec != NULL ? e->spec->name : NULL;
	if (ev->at_ms == 0)
		ev->at_ms = wall_ms();
	if (journal)
		journal_event(e, ev);
	e->o->on_event(e->o->on_event_ctx, ev);
}

void tlm_eng__emit(eng *e, tlm_engine_event *ev)
{
	emit(e, ev, 1);
}

void tlm_eng__emit_simple(eng *e, tlm_engine_event_kind kind, const char *state,
			  const char *message)
{
	tlm_engine_event ev;

	memset(&ev, 0, sizeof(ev));
	ev.kind = kind;
	ev.state = state;
	ev.message = message;
	tlm_eng__emit(e, &ev);
}

/* The name events give a task's state: the scheduler's own states are not
 * part of the interface; a failed attempt that will be retried is
 * "retrying". */
static const char *task_event_state(eng_task_state to)
{
	switch (to) {
	case TASK_SUBMITTED: return "submitted";
	case TASK_RUNNING: return "running";
	case TASK_COMPLETED: return "completed";
	case TASK_FAILED: return "failed";
	case TASK_TIMED_OUT: return "timed_out";
	case TASK_SKIPPED: return "skipped";
	case TASK_CANCELLED: return "cancelled";
	default: return NULL;
	}
}

void tlm_eng__emit_task(eng *e, const eng_task *t, eng_task_state from, eng_task_state to,
			const char *msg)
{
	const tlm_spec_task *st = &e->spec->tasks[t->idx];
	const char *state = task_event_state(to);
	tlm_engine_event ev;

	if (to == TASK_READY && from != TASK_WAITING && from != TASK_READY)
		state = "retrying";
	if (state == NULL || e->o->on_event == NULL)
		return;
	memset(&ev, 0, sizeof(ev));
	ev.kind = TLM_ENGINE_EV_TASK;
	ev.name = st->subject;
	ev.team = e->spec->teams[st->team].name;
	ev.remote_id = t->id;
	ev.state = state;
	ev.message = msg != NULL ? msg : t->message;
	ev.attempt = t->attempt;
	tlm_eng__emit(e, &ev);
}

void tlm_eng__emit_resource(eng *e, const eng_rs *r, const char *why)
{
	tlm_engine_event ev;

	if (e->o->on_event == NULL)
		return;
	memset(&ev, 0, sizeof(ev));
	ev.kind = r->kind == TLM_JOURNAL_AGENT ? TLM_ENGINE_EV_AGENT : TLM_ENGINE_EV_TEAM;
	ev.name = r->name;
	ev.remote_id = r->id;
	ev.state = tlm_journal_state_name(r->st);
	ev.message = why;
	tlm_eng__emit(e, &ev);
}

/* The events that end the run: TEARDOWN_FAILED when resources are left,
 * then RUN_ENDED; both stamped with the end's time (once). */
static size_t end_events(eng *e, tlm_engine_event ev[2])
{
	const tlm_engine_result *res = e->res;
	size_t n = 0;

	if (e->end_at_ms == 0)
		e->end_at_ms = wall_ms();
	memset(ev, 0, 2 * sizeof(*ev));
	if (res->nleftovers > 0 && !res->abandoned && !res->taken_over) {
		ev[n].kind = TLM_ENGINE_EV_TEARDOWN_FAILED;
		ev[n].count = res->nleftovers;
		ev[n].state = "teardown_failed";
		ev[n++].at_ms = e->end_at_ms;
	}
	ev[n].kind = TLM_ENGINE_EV_RUN_ENDED;
	ev[n].state = res->state;
	ev[n].message = res->error != NULL ? res->error : e->error;
	ev[n++].at_ms = e->end_at_ms;
	return n;
}

void tlm_eng__journal_end(eng *e)
{
	tlm_engine_event ev[2];
	size_t i, n;

	if (e->o->on_event == NULL || !e->o->journal_events)
		return;
	n = end_events(e, ev);
	for (i = 0; i < n; i++) {
		ev[i].run_id = e->run_id;
		ev[i].workflow = e->spec != NULL ? e->spec->name : NULL;
		journal_event(e, &ev[i]);
	}
}

void tlm_eng__emit_end(eng *e)
{
	tlm_engine_event ev[2];
	size_t i, n;

	if (e->o->on_event == NULL)
		return;
	n = end_events(e, ev);
	for (i = 0; i < n; i++)
		emit(e, &ev[i], 0);
}
