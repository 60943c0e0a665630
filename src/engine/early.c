/* Events that arrive before their task's create reply (docs/internals/engine.md,
 * "Early events").  A control plane that finishes a task at once publishes
 * "completed" while the reply to the create is still on its way; the event
 * names an id the run does not know yet.  Dropping it left the task to the
 * REST reconcile, up to a second later — for each level of the graph.  The
 * last ENG_EARLY_MAX such events are kept (id and status only: bounded, so a
 * flood of foreign events costs nothing but evicting each other) and the
 * ones for a task are replayed, oldest first, when its id becomes known. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/engine_internal.h"

void tlm_eng__early_keep(eng *e, const char *task_id, const char *status)
{
	eng_early *x;

	if (task_id == NULL || status == NULL || strlen(task_id) >= sizeof(x->id))
		return; /* longer than any id we could match */
	if (e->early == NULL && (e->early = calloc(ENG_EARLY_MAX, sizeof(*e->early))) == NULL)
		return; /* the reconcile will find it */
	x = &e->early[e->early_next++ % ENG_EARLY_MAX];
	snprintf(x->id, sizeof(x->id), "%s", task_id);
	snprintf(x->status, sizeof(x->status), "%s", status);
}

void tlm_eng__early_apply(eng *e, eng_task *t)
{
	size_t n, i, first;

	if (e->early == NULL || t->id == NULL)
		return;
	n = e->early_next < ENG_EARLY_MAX ? e->early_next : ENG_EARLY_MAX;
	first = e->early_next - n;
	for (i = first; i < e->early_next; i++) {
		eng_early *x = &e->early[i % ENG_EARLY_MAX];

		if (x->id[0] != '\0' && strcmp(x->id, t->id) == 0) {
			x->id[0] = '\0'; /* once */
			tlm_eng__task_status(e, t, x->status, NULL);
		}
	}
}
