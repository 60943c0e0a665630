/* The plan as a Graphviz digraph.  Node ids are t<index> and clusters
 * cluster_<index>, so no spec string ever reaches an id; strings appear only
 * inside double-quoted labels, escaped. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "plan/plan_internal.h"

/* Writes s as the body of a DOT double-quoted string.  Quotes and backslashes
 * are escaped (a lone backslash would otherwise start a DOT escape such as
 * \N, the node name); newlines become \n, DOT's centred line break, and other
 * control characters, which no layout can show, become spaces. */
static void put_dot(FILE *out, const char *s)
{
	const unsigned char *c;

	putc('"', out);
	for (c = (const unsigned char *)(s ? s : ""); *c; c++) {
		if (*c == '"' || *c == '\\') {
			putc('\\', out);
			putc(*c, out);
		} else if (*c == '\n') {
			fputs("\\n", out);
		} else if (*c == '\r' && c[1] == '\n') {
			continue; /* CRLF: the \n that follows makes the break */
		} else {
			putc(*c < 0x20 || *c == 0x7f ? ' ' : *c, out);
		}
	}
	putc('"', out);
}

const char *tlm_plan__state_fill(const char *state)
{
	static const struct {
		const char *state, *fill;
	} fills[] = {
		{ "completed", "#c8e6c9" }, { "failed", "#ffcdd2" },    { "timed_out", "#ffcdd2" },
		{ "running", "#bbdefb" },   { "submitted", "#fff9c4" }, { "pending", "#fff9c4" },
		{ "skipped", "#e0e0e0" },   { "cancelled", "#e0e0e0" },
	};
	size_t i;

	for (i = 0; state != NULL && i < sizeof(fills) / sizeof(fills[0]); i++)
		if (strcmp(state, fills[i].state) == 0)
			return fills[i].fill;
	return "#ffffff";
}

/* A task's label: its subject, and its state on a line under it. */
static void put_task(FILE *out, const char *subject, const char *state)
{
	char *label = NULL;

	if (state != NULL && asprintf(&label, "%s\n(%s)", subject, state) < 0)
		label = NULL;
	put_dot(out, label != NULL ? label : subject);
	free(label);
}

static void clusters(const tlm_spec *spec, const char *const *states, FILE *out)
{
	size_t t, i;

	for (t = 0; t < spec->nteams; t++) {
		const tlm_spec_team *team = &spec->teams[t];

		fprintf(out, "  subgraph cluster_%zu {\n    label=", t);
		put_dot(out, team->name);
		fputs(";\n", out);
		for (i = team->first_task; i < team->first_task + team->ntasks; i++) {
			fprintf(out, "    t%zu [label=", i);
			put_task(out, spec->tasks[i].subject, states ? states[i] : NULL);
			if (states != NULL)
				fprintf(out, ", style=\"rounded,filled\", fillcolor=\"%s\"",
					tlm_plan__state_fill(states[i]));
			fputs("];\n", out);
		}
		fputs("  }\n", out);
	}
}

int tlm_plan_render_dot(const tlm_plan *plan, FILE *out, tlm_error *err)
{
	return tlm_plan_render_dot_states(plan, NULL, out, err);
}

int tlm_plan_render_dot_states(const tlm_plan *plan, const char *const *states, FILE *out,
			       tlm_error *err)
{
	const tlm_spec *spec = plan->spec;
	size_t i, k;

	fputs("digraph ", out);
	put_dot(out, spec->name);
	fputs(" {\n  node [shape=box, style=rounded];\n", out);
	clusters(spec, states, out);
	/* an edge runs from the dependency to the task it blocks: the order of
	 * execution, as the waves read top to bottom */
	for (i = 0; i < spec->ntasks; i++)
		for (k = 0; k < spec->tasks[i].ndeps; k++)
			fprintf(out, "  t%zu -> t%zu;\n", spec->tasks[i].deps[k], i);
	fputs("}\n", out);
	return tlm_plan__check_stream(out, "dot", err);
}
