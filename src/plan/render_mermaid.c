/* The plan as a Mermaid flowchart.  Node ids are t<index> and subgraph ids
 * team<index>: a spec string as an id could be a Mermaid keyword ("end") or
 * break the syntax, so strings appear only inside quoted labels. */
#include <stdio.h>
#include <stdlib.h>

#include "plan/plan_internal.h"

/* Writes s as a double-quoted Mermaid label.  Mermaid has no backslash
 * escapes; it decodes entity codes (#quot;, #35;) instead, so every character
 * that could end the label, start an entity, or be read as HTML or Markdown
 * is written as its code.  Control characters become spaces: a newline would
 * end the statement. */
static void put_mermaid(FILE *out, const char *s)
{
	const unsigned char *c;

	putc('"', out);
	for (c = (const unsigned char *)(s ? s : ""); *c; c++) {
		switch (*c) {
		case '"': fputs("#quot;", out); break;
		case '#': fputs("#35;", out); break;
		case '&': fputs("#38;", out); break;
		case '<': fputs("#60;", out); break;
		case '>': fputs("#62;", out); break;
		case '`': fputs("#96;", out); break;
		default: putc(*c < 0x20 || *c == 0x7f ? ' ' : *c, out);
		}
	}
	putc('"', out);
}

int tlm_plan_render_mermaid(const tlm_plan *plan, FILE *out, tlm_error *err)
{
	return tlm_plan_render_mermaid_states(plan, NULL, out, err);
}

/* A task's label: its subject, and its state after it. */
static void put_label(FILE *out, const char *subject, const char *state)
{
	char *label = NULL;

	if (state == NULL || asprintf(&label, "%s (%s)", subject, state) < 0) {
		put_mermaid(out, subject);
		return;
	}
	put_mermaid(out, label);
	free(label);
}

int tlm_plan_render_mermaid_states(const tlm_plan *plan, const char *const *states, FILE *out,
				   tlm_error *err)
{
	const tlm_spec *spec = plan->spec;
	size_t t, i, k;

	fputs("flowchart TD\n", out);
	for (t = 0; t < spec->nteams; t++) {
		const tlm_spec_team *team = &spec->teams[t];

		fprintf(out, "  subgraph team%zu [", t);
		put_mermaid(out, team->name);
		fputs("]\n", out);
		for (i = team->first_task; i < team->first_task + team->ntasks; i++) {
			fprintf(out, "    t%zu[", i);
			put_label(out, spec->tasks[i].subject, states ? states[i] : NULL);
			fputs("]\n", out);
		}
		fputs("  end\n", out);
	}
	/* from the dependency to the task it blocks, as in the DOT graph */
	for (i = 0; i < spec->ntasks; i++)
		for (k = 0; k < spec->tasks[i].ndeps; k++)
			fprintf(out, "  t%zu --> t%zu\n", spec->tasks[i].deps[k], i);
	/* Colours by state: one style per task (a fixed, safe colour list). */
	for (i = 0; states != NULL && i < spec->ntasks; i++)
		fprintf(out, "  style t%zu fill:%s\n", i, tlm_plan__state_fill(states[i]));
	return tlm_plan__check_stream(out, "mermaid", err);
}
