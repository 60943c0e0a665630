/* The run's task graph (docs/ui.md, "The graph"): the plan module's waves
 * from the spec the journal keeps, one column per wave, each task drawn
 * with the state of its last attempt as a colour, a shape (corners, border
 * width and dashes, set by the stylesheet per state) and a glyph and a word,
 * so no state is told by colour alone; an edge for every blocked_by, dashed
 * when it crosses teams.  Server-side SVG: every string is escaped here. */
#include <stdlib.h>
#include <string.h>

#include "telemachy/spec.h"
#include "ui/ui_internal.h"
#include "util/strmap.h"

#define NODE_W 210
#define NODE_H 64
#define GAP_X  70
#define GAP_Y  18
#define MARGIN 16
#define HEAD   26 /* room for the wave titles */
#define LABEL  24 /* characters of a subject shown in a node */
#define LANE   20 /* under the nodes, for edges that skip waves */

typedef struct load_ctx {
	tlm_strmap index; /* "LEN:team" subject -> spec task (keys borrowed from keys) */
	char **keys;
	tlm_ui_graph *g;
} load_ctx;

static char *dup_or_null(const char *s)
{
	return s != NULL ? strdup(s) : NULL;
}

static int on_attempt(const tlm_journal_task *t, void *ctx)
{
	load_ctx *l = ctx;
	char *key = tlm_strmap_pair_key(t->team, t->subject);
	tlm_ui_task *k;
	json_t *doc;
	const char *msg;
	size_t i;
	int found;

	if (key == NULL)
		return TLM_ERROR;
	found = tlm_strmap_get(&l->index, key, &i) == 0;
	free(key);
	if (!found)
		return 0; /* not in the spec: the tables show it */
	k = &l->g->tasks[i];
	/* Rows come by attempt: the last one wins. */
	k->state = tlm_attempt_status_name(t->status);
	k->attempts = t->attempt > k->attempts ? t->attempt : k->attempts;
	free(k->updated_at);
	free(k->message);
	free(k->result);
	doc = t->result != NULL ? json_loads(t->result, 0, NULL) : NULL;
	msg = json_string_value(json_object_get(doc, "statusMessage"));
	k->updated_at = dup_or_null(t->updated_at);
	k->message = dup_or_null(msg != NULL ? msg : t->ended);
	k->result = dup_or_null(t->result);
	json_decref(doc);
	return 0;
}

int tlm_ui__graph_load(tlm_journal *j, const tlm_journal_run *r, tlm_ui_graph *g, tlm_error *err)
{
	tlm_diags diags = TLM_DIAGS_INIT;
	tlm_error perr = TLM_ERROR_INIT;
	load_ctx l = { TLM_STRMAP_INIT, NULL, g };
	size_t i;
	int rc = 0;

	memset(g, 0, sizeof(*g));
	if (r->spec == NULL ||
	    tlm_spec_parse(&g->spec, "the journal's copy of the spec", r->spec, strlen(r->spec),
			   &diags, &perr) != 0 ||
	    tlm_plan_new(&g->plan, g->spec, &perr) != 0) {
		snprintf(g->error, sizeof(g->error),
			 "no graph: the journal's spec cannot be read%s%.180s",
			 perr.message[0] ? ": " : "", perr.message);
		tlm_diags_clear(&diags);
		return 0;
	}
	tlm_diags_clear(&diags);
	if ((g->tasks = calloc(g->spec->ntasks + 1, sizeof(*g->tasks))) == NULL ||
	    (l.keys = calloc(g->spec->ntasks + 1, sizeof(*l.keys))) == NULL) {
		free(l.keys);
		return tlm_error_set(err, TLM_ERROR, "out of memory");
	}
	for (i = 0; i < g->spec->ntasks && rc == 0; i++) {
		l.keys[i] = tlm_strmap_pair_key(g->spec->teams[g->spec->tasks[i].team].name,
						g->spec->tasks[i].subject);
		if (l.keys[i] == NULL || tlm_strmap_put(&l.index, l.keys[i], i, NULL) < 0)
			rc = tlm_error_set(err, TLM_ERROR, "out of memory");
	}
	if (rc == 0)
		rc = tlm_journal_tasks(j, r->id, on_attempt, &l, err);
	tlm_strmap_clear(&l.index);
	for (i = 0; i < g->spec->ntasks; i++)
		free(l.keys[i]);
	free(l.keys);
	return rc;
}

void tlm_ui__graph_clear(tlm_ui_graph *g)
{
	size_t i;

	for (i = 0; g->tasks != NULL && g->spec != NULL && i < g->spec->ntasks; i++) {
		free(g->tasks[i].updated_at);
		free(g->tasks[i].message);
		free(g->tasks[i].result);
	}
	free(g->tasks);
	tlm_plan_free(g->plan);
	tlm_spec_free(g->spec);
	memset(g, 0, sizeof(*g));
}

const char *tlm_ui__glyph(const char *state)
{
	static const struct {
		const char *state, *glyph;
	} glyphs[] = {
		{ "pending", "\u25cb" },
		{ "submitted", "\u25d4" },
		{ "running", "\u25b6" },
		{ "completed", "\u2713" },
		{ "failed", "\u2717" },
		{ "skipped", "\u21b7" },
		{ "cancelled", "\u2298" },
		{ "timed_out", "\u25f7" },
		/* run states besides */
		{ "queued", "\u25cb" },
		{ "provisioning", "\u25d4" },
		{ "tearing_down", "\u25d1" },
		{ "teardown_failed", "\u2717" },
		/* and resource states */
		{ "intent", "\u25cc" },
		{ "created", "\u25cf" },
		{ "started", "\u25b6" },
		{ "deleting", "\u25d1" },
		{ "deleted", "\u2205" },
		{ "absent", "\u2205" },
		{ "abandoned", "\u26a0" },
	};
	size_t i;

	for (i = 0; state != NULL && i < sizeof(glyphs) / sizeof(glyphs[0]); i++)
		if (strcmp(state, glyphs[i].state) == 0)
			return glyphs[i].glyph;
	return "\u25cb";
}

static const char *state_of(const tlm_ui_graph *g, size_t i)
{
	return g->tasks[i].state != NULL ? g->tasks[i].state : "pending";
}

/* s cut to at most max characters (UTF-8), with an ellipsis when cut. */
static void put_cut(FILE *f, const char *s, size_t max)
{
	size_t i = 0, chars = 0;
	char *cut;

	while (s[i] != '\0' && chars < max) {
		i++;
		while ((s[i] & 0xC0) == 0x80)
			i++;
		chars++;
	}
	if (s[i] == '\0') {
		tlm_ui__esc(f, s);
		return;
	}
	if ((cut = strndup(s, i)) != NULL)
		tlm_ui__esc(f, cut);
	free(cut);
	fputs("\u2026", f);
}

static void node_xy(const tlm_plan *p, size_t task, size_t *row_of, long *x, long *y)
{
	*x = MARGIN + (long)p->wave[task] * (NODE_W + GAP_X);
	*y = MARGIN + HEAD + (long)row_of[task] * (NODE_H + GAP_Y);
}

static void put_node(const tlm_ui_graph *g, size_t i, long x, long y, FILE *f)
{
	const tlm_spec_task *t = &g->spec->tasks[i];
	const char *team = g->spec->teams[t->team].name, *st = state_of(g, i);

	fprintf(f, "<g class=\"node st-%s\" id=\"task-%zu\" data-state=\"%s\" data-task=\"", st, i,
		st);
	tlm_ui__esc(f, team);
	fputc('/', f);
	tlm_ui__esc(f, t->subject);
	fputs("\"><title>", f);
	tlm_ui__esc(f, team);
	fputc('/', f);
	tlm_ui__esc(f, t->subject);
	fprintf(f, ": %s, %d attempt%s</title>", st, g->tasks[i].attempts,
		g->tasks[i].attempts == 1 ? "" : "s");
	fprintf(f, "<rect class=\"box\" x=\"%ld\" y=\"%ld\" width=\"%d\" height=\"%d\"/>", x, y,
		NODE_W, NODE_H);
	fprintf(f, "<text class=\"team\" x=\"%ld\" y=\"%ld\">", x + 10, y + 18);
	put_cut(f, team, LABEL + 4);
	fprintf(f, "</text><text class=\"subj\" x=\"%ld\" y=\"%ld\">", x + 10, y + 37);
	put_cut(f, t->subject, LABEL);
	fprintf(f, "</text><text class=\"lbl\" x=\"%ld\" y=\"%ld\">%s %s</text></g>", x + 10,
		y + 56, tlm_ui__glyph(st), st);
}

/* An edge to the next wave is a curve; one that skips waves goes down the
 * gap after its source, along a lane under every node, and up the gap
 * before its target, so it never passes behind a node in between. */
static void put_edges(const tlm_ui_graph *g, size_t *row_of, long lane, FILE *f)
{
	const tlm_plan *p = g->plan;
	size_t i, k;
	long x1, y1, x2, y2;

	for (i = 0; i < g->spec->ntasks; i++)
		for (k = 0; k < g->spec->tasks[i].ndeps; k++) {
			size_t d = g->spec->tasks[i].deps[k];
			int cross = g->spec->tasks[d].team != g->spec->tasks[i].team;

			node_xy(p, d, row_of, &x1, &y1);
			node_xy(p, i, row_of, &x2, &y2);
			x1 += NODE_W;
			y1 += NODE_H / 2;
			y2 += NODE_H / 2;
			fprintf(f,
				"<path class=\"edge%s\" data-from=\"task-%zu\" data-to=\"task-%zu\" d=\"",
				cross ? " cross" : "", d, i);
			if (p->wave[i] == p->wave[d] + 1)
				fprintf(f, "M%ld %ld C%ld %ld %ld %ld %ld %ld", x1, y1,
					x1 + GAP_X / 2, y1, x2 - GAP_X / 2, y2, x2 - 6, y2);
			else
				fprintf(f, "M%ld %ld H%ld V%ld H%ld V%ld H%ld", x1, y1,
					x1 + GAP_X / 2, lane, x2 - GAP_X / 2, y2, x2 - 6);
			fputs("\" marker-end=\"url(#arrow)\"/>", f);
		}
}

/* Whether any edge skips a wave (it needs the lane under the nodes). */
static int long_edges(const tlm_ui_graph *g)
{
	size_t i, k;

	for (i = 0; i < g->spec->ntasks; i++)
		for (k = 0; k < g->spec->tasks[i].ndeps; k++)
			if (g->plan->wave[i] > g->plan->wave[g->spec->tasks[i].deps[k]] + 1)
				return 1;
	return 0;
}

void tlm_ui__graph_svg(const tlm_ui_graph *g, FILE *f)
{
	const tlm_plan *p = g->plan;
	size_t *row_of, w, k, rows = 1;
	long width, height;

	if (g->spec == NULL) {
		fputs("<p class=\"note\">", f);
		tlm_ui__esc(f, g->error);
		fputs("</p>", f);
		return;
	}
	if (g->spec->ntasks == 0 || g->spec->ntasks > TLM_UI_GRAPH_MAX) {
		fprintf(f, "<p class=\"note\">%zu tasks: %s</p>", g->spec->ntasks,
			g->spec->ntasks == 0 ? "nothing to draw"
					     : "too many to draw; the tables below list them");
		return;
	}
	if ((row_of = calloc(g->spec->ntasks, sizeof(*row_of))) == NULL) {
		fputs("<p class=\"note\">out of memory</p>", f);
		return;
	}
	for (w = 0; w < p->nwaves; w++) {
		for (k = p->wave_start[w]; k < p->wave_start[w + 1]; k++)
			row_of[p->order[k]] = k - p->wave_start[w];
		if (p->wave_start[w + 1] - p->wave_start[w] > rows)
			rows = p->wave_start[w + 1] - p->wave_start[w];
	}
	width = 2 * MARGIN + (long)p->nwaves * (NODE_W + GAP_X) - GAP_X;
	height = 2 * MARGIN + HEAD + (long)rows * (NODE_H + GAP_Y) - GAP_Y;
	if (long_edges(g))
		height += LANE;
	fprintf(f,
		"<svg class=\"graph\" xmlns=\"http://www.w3.org/2000/svg\" width=\"%ld\" "
		"height=\"%ld\" viewBox=\"0 0 %ld %ld\" role=\"group\" "
		"aria-label=\"task graph: %zu tasks in %zu waves\">"
		"<defs><marker id=\"arrow\" viewBox=\"0 0 10 10\" refX=\"9\" refY=\"5\" "
		"markerWidth=\"7\" markerHeight=\"7\" orient=\"auto-start-reverse\">"
		"<path class=\"arrowhead\" d=\"M0 0 L10 5 L0 10 z\"/></marker></defs>",
		width, height, width, height, g->spec->ntasks, p->nwaves);
	for (w = 0; w < p->nwaves; w++)
		fprintf(f, "<text class=\"wave\" x=\"%ld\" y=\"%d\">wave %zu</text>",
			(long)MARGIN + (long)w * (NODE_W + GAP_X), MARGIN + 12, w + 1);
	put_edges(g, row_of, height - MARGIN - LANE / 2, f);
	for (k = 0; k < g->spec->ntasks; k++) {
		long x, y;

		node_xy(p, k, row_of, &x, &y);
		put_node(g, k, x, y, f);
	}
	fputs("</svg>", f);
	free(row_of);
}

json_t *tlm_ui__graph_json(const tlm_ui_graph *g)
{
	json_t *doc, *nodes, *edges;
	size_t i, k;
	char id[32], dep[32];
	int bad = 0;

	if (g->spec == NULL)
		return json_pack("{s:i, s:[], s:[], s:s}", "waves", 0, "nodes", "edges", "error",
				 g->error);
	doc = json_pack("{s:I, s:[], s:[], s:n}", "waves", (json_int_t)g->plan->nwaves, "nodes",
			"edges", "error");
	if (doc == NULL)
		return NULL;
	nodes = json_object_get(doc, "nodes");
	edges = json_object_get(doc, "edges");
	for (i = 0; i < g->spec->ntasks && !bad; i++) {
		const tlm_spec_task *t = &g->spec->tasks[i];

		snprintf(id, sizeof(id), "task-%zu", i);
		bad |= json_array_append_new(
			nodes,
			json_pack("{s:s, s:s, s:s, s:I, s:s, s:i, s:s?, s:s?}", "id", id, "team",
				  g->spec->teams[t->team].name, "subject", t->subject, "wave",
				  (json_int_t)g->plan->wave[i], "state", state_of(g, i), "attempts",
				  g->tasks[i].attempts, "updated_at", g->tasks[i].updated_at,
				  "message", g->tasks[i].message));
		for (k = 0; k < t->ndeps && !bad; k++) {
			snprintf(dep, sizeof(dep), "task-%zu", t->deps[k]);
			bad |= json_array_append_new(
				edges,
				json_pack("{s:s, s:s, s:b}", "from", dep, "to", id, "cross_team",
					  g->spec->tasks[t->deps[k]].team != t->team));
		}
	}
	if (bad) {
		json_decref(doc);
		return NULL;
	}
	return doc;
}
