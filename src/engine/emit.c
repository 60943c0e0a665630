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

void tlm_eng__emit(eng *e, tlm_engine_event *ev)
{
	if (e->o->on_event == NULL)
		return;
	ev->run_id = e->run_id[0] != '\0' ? e->run_id : NULL;
	ev->workflow = e->spec != NULL ? e->spec->name : NULL;
	ev->at_ms = wall_ms();
	e->o->on_event(e->o->on_event_ctx, ev);
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

void tlm_eng__emit_end(eng *e)
{
	const tlm_engine_result *res = e->res;
	tlm_engine_event ev;

	if (e->o->on_event == NULL)
		return;
	if (res->nleftovers > 0 && !res->abandoned && !res->taken_over) {
		memset(&ev, 0, sizeof(ev));
		ev.kind = TLM_ENGINE_EV_TEARDOWN_FAILED;
		ev.count = res->nleftovers;
		ev.state = "teardown_failed";
		tlm_eng__emit(e, &ev);
	}
	tlm_eng__emit_simple(e, TLM_ENGINE_EV_RUN_ENDED, res->state,
			     res->error != NULL ? res->error : e->error);
}
