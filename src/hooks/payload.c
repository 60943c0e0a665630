/* From an engine event to a hook event: which events hooks get, the JSON
 * payload and its deterministic id (docs/hooks.md, "The payload"). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "hooks/hooks_internal.h"

/* Which hook event ev is: 0, or -1 when none (the engine decides which
 * events are final, include/telemachy/engine.h). */
static int classify(const tlm_engine_event *ev, tlm_hook_event *out)
{
	const char *name = tlm_engine_event_final(ev);

	return name != NULL && tlm_hook_event_parse(name, out) == 0 ? 0 : -1;
}

static void iso8601(uint64_t ms, char buf[32])
{
	time_t t = (time_t)(ms / 1000u);
	struct tm tm;

	if (gmtime_r(&t, &tm) == NULL || strftime(buf, 32, "%Y-%m-%dT%H:%M:%S", &tm) == 0) {
		snprintf(buf, 32, "1970-01-01T00:00:00.000Z");
		return;
	}
	snprintf(buf + strlen(buf), 32 - strlen(buf), ".%03uZ", (unsigned)(ms % 1000u));
}

/* jansson refuses invalid UTF-8 (json_string gives NULL): such a field is
 * null rather than the event lost. */
static json_t *str_or_null(const char *s)
{
	json_t *v = s != NULL ? json_string(s) : NULL;

	return v != NULL ? v : json_null();
}

int tlm_hooks_payload(const tlm_engine_event *ev, tlm_hook_event *event, char **json, char *id,
		      size_t idcap)
{
	const char *name;
	json_t *o;
	char at[32];
	int task = ev->kind == TLM_ENGINE_EV_TASK;

	*json = NULL;
	if (classify(ev, event) != 0)
		return TLM_EINVALID;
	name = tlm_hook_event_name(*event);
	tlm_engine_event_id(ev, id, idcap);
	iso8601(ev->at_ms, at);
	o = json_object();
	if (o == NULL)
		return TLM_ERROR;
	json_object_set_new(o, "id", json_string(id));
	json_object_set_new(o, "event", json_string(name));
	json_object_set_new(o, "run", str_or_null(ev->run_id));
	json_object_set_new(o, "workflow", str_or_null(ev->workflow));
	json_object_set_new(o, "team", str_or_null(task ? ev->team : NULL));
	json_object_set_new(o, "task", str_or_null(task ? ev->name : NULL));
	json_object_set_new(o, "attempt", task ? json_integer(ev->attempt) : json_null());
	json_object_set_new(o, "status", str_or_null(ev->state));
	json_object_set_new(o, "message", str_or_null(ev->message));
	if (ev->kind == TLM_ENGINE_EV_TEARDOWN_FAILED)
		json_object_set_new(o, "leftovers", json_integer((json_int_t)ev->count));
	json_object_set_new(o, "at", json_string(at));
	*json = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(o);
	return *json != NULL ? 0 : TLM_ERROR;
}

static char *dup_or_empty(const char *s)
{
	return strdup(s != NULL ? s : "");
}

tlm_hooks_item *tlm_hooks__item_new(const tlm_engine_event *ev, int *ignored)
{
	tlm_hooks_item *it = calloc(1, sizeof(*it));
	tlm_hook_event e;
	int rc, task = ev->kind == TLM_ENGINE_EV_TASK;

	*ignored = 0;
	if (it == NULL)
		return NULL;
	rc = tlm_hooks_payload(ev, &e, &it->json, it->id, sizeof(it->id));
	if (rc != 0) {
		*ignored = rc == TLM_EINVALID;
		free(it);
		return NULL;
	}
	it->event = e;
	it->run = dup_or_empty(ev->run_id);
	it->team = dup_or_empty(task ? ev->team : NULL);
	it->task = dup_or_empty(task ? ev->name : NULL);
	it->status = dup_or_empty(ev->state);
	it->workflow = dup_or_empty(ev->workflow);
	if (it->run == NULL || it->team == NULL || it->task == NULL || it->status == NULL ||
	    it->workflow == NULL) {
		tlm_hooks__item_free(it);
		return NULL;
	}
	return it;
}

tlm_hooks_item *tlm_hooks__replay_marker(const tlm_engine_event *ev)
{
	tlm_hooks_item *it = calloc(1, sizeof(*it));

	if (it == NULL)
		return NULL;
	it->replay = 1;
	it->run = dup_or_empty(ev->run_id);
	it->workflow = ev->workflow != NULL ? strdup(ev->workflow) : NULL;
	if (it->run == NULL || (ev->workflow != NULL && it->workflow == NULL)) {
		tlm_hooks__item_free(it);
		return NULL;
	}
	return it;
}

void tlm_hooks__item_free(tlm_hooks_item *it)
{
	if (it == NULL)
		return;
	free(it->workflow);
	free(it->json);
	free(it->run);
	free(it->team);
	free(it->task);
	free(it->status);
	free(it);
}
