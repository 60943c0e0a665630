/* Which engine events are final and what they are called
 * (include/telemachy/engine.h): the hooks listen for these, and the
 * journal keeps them when the run has hooks (docs/hooks.md). */
#include <stdio.h>
#include <string.h>

#include "engine/engine_internal.h"

static int is(const char *s, const char *word)
{
	return s != NULL && strcmp(s, word) == 0;
}

const char *tlm_engine_event_final(const tlm_engine_event *ev)
{
	const char *s = ev->state;

	switch (ev->kind) {
	case TLM_ENGINE_EV_TASK:
		/* A failed attempt that will be retried is "retrying". */
		return is(s, "completed")                      ? "task_completed"
		       : is(s, "failed") || is(s, "timed_out") ? "task_failed"
		       : is(s, "skipped")                      ? "task_skipped"
							       : NULL;
	case TLM_ENGINE_EV_TEARDOWN_FAILED: return "teardown_failed";
	case TLM_ENGINE_EV_RUN_ENDED:
		/* "interrupted" and "taken_over" end this process's part, not
		 * the run: whoever continues it ends it. */
		return is(s, "completed")   ? "run_completed"
		       : is(s, "cancelled") ? "run_cancelled"
		       : is(s, "failed") || is(s, "teardown_failed") || is(s, "timed_out") ||
				       is(s, "preflight_failed")
			       ? "run_failed"
			       : NULL;
	default: return NULL;
	}
}

int tlm_engine_event_id(const tlm_engine_event *ev, char *id, size_t cap)
{
	const char *name = tlm_engine_event_final(ev), *run = ev->run_id ? ev->run_id : "";

	if (name == NULL)
		return TLM_EINVALID;
	/* A task's final state is reached once per attempt.  A run may end
	 * more than once — failed with leftovers, then torn down — and each
	 * end is news: its state is part of the id. */
	if (ev->kind == TLM_ENGINE_EV_TASK)
		snprintf(id, cap, "%s:%s:%s/%s:%d", run, name, ev->team ? ev->team : "",
			 ev->name ? ev->name : "", ev->attempt);
	else if (ev->kind == TLM_ENGINE_EV_RUN_ENDED)
		snprintf(id, cap, "%s:%s:%s", run, name, ev->state);
	else
		snprintf(id, cap, "%s:%s", run, name);
	return 0;
}
