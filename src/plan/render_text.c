/* The human-readable plan.  Strings from the spec are written escaped: a
 * subject holding a newline or a terminal escape sequence must not forge
 * lines or recolour the user's terminal (src/util/esc.h). */
#include <stdint.h>
#include <string.h>

#include "plan/plan_internal.h"
#include "telemachy/names.h"
#include "util/esc.h"

/* Past these widths a column is not padded further: one long subject must
 * not push every other line off the screen. */
#define ID_COL_MAX   48
#define NAME_COL_MAX 24

/* How the engine names an agent it creates (telemachy/names.h), with the
 * run id, chosen when a run starts, shown as "<run>". */
#define RESOURCE_RUN        "<run>"
#define RESOURCE_PREFIX_LEN (sizeof("tlm-" RESOURCE_RUN "-a-") - 1)

static void pad(FILE *out, size_t written, size_t width)
{
	for (; written < width; written++)
		putc(' ', out);
}

/* Writes s in a column of the given width plus a two-space gutter. */
static void cell(FILE *out, const char *s, size_t width)
{
	pad(out, tlm_esc_fputs(out, s), width + 2);
}

static size_t max_sz(size_t a, size_t b)
{
	return a > b ? a : b;
}

static const char *plural(size_t n)
{
	return n == 1 ? "" : "s";
}

static void header(const tlm_spec *spec, FILE *out)
{
	size_t i;

	fputs("Workflow:    ", out);
	tlm_esc_fputs(out, spec->name);
	fputs("\nFile:        ", out);
	tlm_esc_fputs(out, spec->path);
	if (spec->description) {
		fputs("\nDescription: ", out);
		tlm_esc_fputs(out, spec->description);
	}
	for (i = 0; i < spec->nlabels; i++) {
		fputs(i ? ", " : "\nLabels:      ", out);
		tlm_esc_fputs(out, spec->labels[i].key);
		putc('=', out);
		tlm_esc_fputs(out, spec->labels[i].value);
	}
	fprintf(out, "\nTeardown:    %s\n", tlm_teardown_name(spec->teardown));
	if (spec->timeout_seconds > 0)
		fprintf(out, "Timeout:     %lds\n", spec->timeout_seconds);
	else
		fputs("Timeout:     none\n", out);
}

/* "image X, model Y", "model Y", or NULL when the agent has neither. */
static void image_model(const tlm_spec_agent *a, char *buf, size_t cap)
{
	const char *img = a->runtime == TLM_RUNTIME_DOCKER ? a->docker_image : NULL;

	buf[0] = '\0';
	if (img && a->model)
		snprintf(buf, cap, "image %s, model %s", img, a->model);
	else if (img)
		snprintf(buf, cap, "image %s", img);
	else if (a->model)
		snprintf(buf, cap, "model %s", a->model);
}

static void agents(const tlm_spec *spec, FILE *out)
{
	size_t i, wn = 4, wp = 7, wi = 13;
	char im[512], res[TLM_NAME_MAX + 1];

	for (i = 0; i < spec->nagents; i++) {
		const tlm_spec_agent *a = &spec->agents[i];

		image_model(a, im, sizeof(im));
		wn = max_sz(wn, tlm_esc_fputs(NULL, a->name));
		wp = max_sz(wp, tlm_esc_fputs(NULL, a->program));
		wi = max_sz(wi, tlm_esc_fputs(NULL, im[0] ? im : NULL));
	}
	/* the run id is only known when a run starts: show where it goes */
	fprintf(out, "\nAgents (%zu; <run> is the run id, chosen when the run starts):\n  ",
		spec->nagents);
	cell(out, "NAME", wn);
	cell(out, "RESOURCE", wn + RESOURCE_PREFIX_LEN);
	cell(out, "PROGRAM", wp);
	cell(out, "RUNTIME", 7);
	cell(out, "IMAGE / MODEL", wi);
	fputs("CPUS  MEMORY\n", out);
	for (i = 0; i < spec->nagents; i++) {
		const tlm_spec_agent *a = &spec->agents[i];

		image_model(a, im, sizeof(im));
		fputs("  ", out);
		cell(out, a->name, wn);
		if (tlm_name_build(res, sizeof(res), RESOURCE_RUN, TLM_NAME_AGENT, a->name, NULL) !=
		    0)
			snprintf(res, sizeof(res), "-");
		pad(out, tlm_esc_fputs(out, res), wn + RESOURCE_PREFIX_LEN + 2);
		cell(out, a->program, wp);
		cell(out, tlm_runtime_name(a->runtime), 7);
		cell(out, im[0] ? im : NULL, wi);
		fprintf(out, "%-4d  ", a->cpus);
		tlm_esc_fputs(out, a->memory);
		putc('\n', out);
	}
}

static void teams(const tlm_spec *spec, FILE *out)
{
	size_t t, k, wn = 4;

	for (t = 0; t < spec->nteams; t++)
		wn = max_sz(wn, tlm_esc_fputs(NULL, spec->teams[t].name));
	fprintf(out, "\nTeams (%zu):\n  ", spec->nteams);
	cell(out, "NAME", wn);
	fputs("TASKS  MEMBERS\n", out);
	for (t = 0; t < spec->nteams; t++) {
		const tlm_spec_team *team = &spec->teams[t];

		fputs("  ", out);
		cell(out, team->name, wn);
		fprintf(out, "%-5zu  ", team->ntasks);
		for (k = 0; k < team->nagents; k++) {
			if (k)
				fputs(", ", out);
			tlm_esc_fputs(out, spec->agents[team->agents[k]].name);
		}
		fputs(team->nagents ? "\n" : "-\n", out);
	}
}

static size_t id_width(const tlm_plan *p, size_t i)
{
	return tlm_esc_fputs(NULL, tlm_plan__team_name(p, i)) + 1 +
	       tlm_esc_fputs(NULL, p->spec->tasks[i].subject);
}

static size_t put_id(const tlm_plan *p, size_t i, FILE *out)
{
	size_t w = tlm_esc_fputs(out, tlm_plan__team_name(p, i));

	putc('/', out);
	return w + 1 + tlm_esc_fputs(out, p->spec->tasks[i].subject);
}

/* One task: "team/subject  -> agent  (after: ...)  timeout Ns, retries N". */
static void task_line(const tlm_plan *p, size_t i, size_t wid, size_t wag, FILE *out)
{
	const tlm_spec_task *task = &p->spec->tasks[i];
	size_t k, w;

	fputs("  ", out);
	pad(out, put_id(p, i, out), wid + 2);
	fputs("-> ", out);
	w = tlm_esc_fputs(out, p->spec->agents[task->agent].name);
	if (task->ndeps || task->timeout_seconds > 0 || task->retries > 0)
		pad(out, w, wag); /* no trailing blanks on a bare line */
	for (k = 0; k < task->ndeps; k++) {
		fputs(k ? ", " : "  (after: ", out);
		put_id(p, task->deps[k], out);
	}
	if (task->ndeps)
		putc(')', out);
	if (task->timeout_seconds > 0)
		fprintf(out, "  timeout %lds", task->timeout_seconds);
	if (task->retries > 0)
		fprintf(out, "%sretries %d", task->timeout_seconds > 0 ? ", " : "  ",
			task->retries);
	putc('\n', out);
}

static void waves(const tlm_plan *p, FILE *out)
{
	const tlm_spec *spec = p->spec;
	size_t i, w, wid = 0, wag = 0;

	for (i = 0; i < spec->ntasks; i++) {
		wid = max_sz(wid, id_width(p, i));
		wag = max_sz(wag, tlm_esc_fputs(NULL, spec->agents[spec->tasks[i].agent].name));
	}
	wid = wid > ID_COL_MAX ? ID_COL_MAX : wid;
	wag = wag > NAME_COL_MAX ? NAME_COL_MAX : wag;
	for (w = 0; w < p->nwaves; w++) {
		fprintf(out, "\nWave %zu:\n", w);
		for (i = p->wave_start[w]; i < p->wave_start[w + 1]; i++)
			task_line(p, p->order[i], wid, wag, out);
	}
	if (p->nwaves == 0)
		fputs("\nNo tasks.\n", out);
}

int tlm_plan_render_text(const tlm_plan *plan, FILE *out, tlm_error *err)
{
	const tlm_spec *spec = plan->spec;

	header(spec, out);
	agents(spec, out);
	teams(spec, out);
	waves(plan, out);
	fprintf(out, "\n%zu agent%s, %zu team%s, %zu task%s in %zu wave%s\n", spec->nagents,
		plural(spec->nagents), spec->nteams, plural(spec->nteams), spec->ntasks,
		plural(spec->ntasks), plan->nwaves, plural(plan->nwaves));
	return tlm_plan__check_stream(out, "text", err);
}
