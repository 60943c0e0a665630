/* `telemachy status RUN --graph dot|mermaid`: the run's plan (from the spec
 * the journal keeps) with each task coloured by the state of its last
 * attempt (docs/recovery.md, "status").  Reads the journal only. */
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/status_graph.h"
#include "telemachy/plan.h"
#include "util/strmap.h"

typedef struct graph_ctx {
	tlm_strmap tasks; /* "LEN:team" subject -> task index */
	char **keys;
	const char **states; /* per task: the last attempt's status, or NULL */
} graph_ctx;

static int on_attempt(const tlm_journal_task *t, void *ctx)
{
	graph_ctx *g = ctx;
	char *key = tlm_strmap_pair_key(t->team, t->subject);
	size_t i;
	int found;

	if (key == NULL)
		return TLM_ERROR;
	found = tlm_strmap_get(&g->tasks, key, &i) == 0;
	free(key);
	/* Rows come by attempt: the last one wins. */
	if (found)
		g->states[i] = tlm_attempt_status_name(t->status);
	return 0;
}

/* Indexes the spec's tasks by team and subject. */
static int index_tasks(graph_ctx *g, const tlm_spec *s)
{
	size_t i;

	g->keys = calloc(s->ntasks + 1, sizeof(*g->keys));
	g->states = calloc(s->ntasks + 1, sizeof(*g->states));
	if (g->keys == NULL || g->states == NULL)
		return TLM_ERROR;
	for (i = 0; i < s->ntasks; i++)
		if ((g->keys[i] = tlm_strmap_pair_key(s->teams[s->tasks[i].team].name,
						      s->tasks[i].subject)) == NULL ||
		    tlm_strmap_put(&g->tasks, g->keys[i], i, NULL) < 0)
			return TLM_ERROR;
	return 0;
}

static void graph_free(graph_ctx *g, size_t n)
{
	size_t i;

	for (i = 0; g->keys != NULL && i < n; i++)
		free(g->keys[i]);
	free(g->keys);
	free(g->states);
	tlm_strmap_clear(&g->tasks);
}

int tlm_cli_status_graph(tlm_journal *j, const tlm_journal_run *r, const char *format)
{
	tlm_diags diags = TLM_DIAGS_INIT;
	tlm_error err = TLM_ERROR_INIT;
	graph_ctx g = { TLM_STRMAP_INIT, NULL, NULL };
	tlm_spec *spec = NULL;
	tlm_plan *plan = NULL;
	int rc;

	rc = tlm_spec_parse(&spec, "the journal's copy of the spec", r->spec, strlen(r->spec),
			    &diags, &err);
	if (rc == 0)
		rc = tlm_plan_new(&plan, spec, &err);
	if (rc == 0 && index_tasks(&g, spec) != 0)
		rc = tlm_error_set(&err, TLM_ERROR, "out of memory");
	if (rc == 0)
		rc = tlm_journal_tasks(j, r->id, on_attempt, &g, &err);
	if (rc == 0)
		rc = strcmp(format, "mermaid") == 0
			     ? tlm_plan_render_mermaid_states(plan, g.states, stdout, &err)
			     : tlm_plan_render_dot_states(plan, g.states, stdout, &err);
	if (rc != 0)
		tlm_log_cmd(TLM_ENGINE_ERROR, NULL, "run %s: %s", r->id,
			    err.message[0] ? err.message : "out of memory");
	graph_free(&g, spec != NULL ? spec->ntasks : 0);
	tlm_plan_free(plan);
	tlm_spec_free(spec);
	tlm_diags_clear(&diags);
	return rc == 0 ? TLM_EXIT_OK : TLM_EXIT_FAILED;
}
