/* The plan as a Graphviz digraph.  Node ids are t<index> and clusters
 * cluster_<index>, so no spec string ever reaches an id; strings appear only
 * inside double-quoted labels, escaped. */
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

static void clusters(const tlm_spec *spec, FILE *out)
{
	size_t t, i;

	for (t = 0; t < spec->nteams; t++) {
		const tlm_spec_team *team = &spec->teams[t];

		fprintf(out, "  subgraph cluster_%zu {\n    label=", t);
		put_dot(out, team->name);
		fputs(";\n", out);
		for (i = team->first_task; i < team->first_task + team->ntasks; i++) {
			fprintf(out, "    t%zu [label=", i);
			put_dot(out, spec->tasks[i].subject);
			fputs("];\n", out);
		}
		fputs("  }\n", out);
	}
}

int tlm_plan_render_dot(const tlm_plan *plan, FILE *out, tlm_error *err)
{
	const tlm_spec *spec = plan->spec;
	size_t i, k;

	fputs("digraph ", out);
	put_dot(out, spec->name);
	fputs(" {\n  node [shape=box, style=rounded];\n", out);
	clusters(spec, out);
	/* an edge runs from the dependency to the task it blocks: the order of
	 * execution, as the waves read top to bottom */
	for (i = 0; i < spec->ntasks; i++)
		for (k = 0; k < spec->tasks[i].ndeps; k++)
			fprintf(out, "  t%zu -> t%zu;\n", spec->tasks[i].deps[k], i);
	fputs("}\n", out);
	return tlm_plan__check_stream(out, "dot", err);
}
