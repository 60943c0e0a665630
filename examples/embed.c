/* Running a workflow from C with libtelemachy (docs/library.md).
 *
 *   cc -o embed examples/embed.c $(pkg-config --cflags --libs telemachy)
 *   AGAMEMNON_URL=http://127.0.0.1:8080 ./embed examples/hello-world.yaml
 *
 * Loads and validates the workflow (errors with file:line:col), prints its
 * plan's waves, runs it against the control plane at $AGAMEMNON_URL (with
 * $AGAMEMNON_API_KEY and $NATS_URL when set), printing each event as it
 * happens, and exits 0 when every task completed, 1 when the run failed,
 * 2 when the workflow is invalid or the run could not start. */
#include <stdio.h>
#include <stdlib.h>

#include <telemachy/engine.h>
#include <telemachy/plan.h>
#include <telemachy/spec.h>

static const char *const kinds[] = { "run started", "phase",           "agent",    "team",
				     "task",        "teardown failed", "run ended" };

/* Called on the engine's thread for every event, in order; must not block. */
static void on_event(void *ctx, const tlm_engine_event *ev)
{
	(void)ctx;
	printf("%-15s", kinds[ev->kind]);
	if (ev->kind == TLM_ENGINE_EV_PHASE)
		printf(" %s", ev->phase);
	if (ev->kind == TLM_ENGINE_EV_TASK)
		printf(" %s/%s (attempt %d)", ev->team, ev->name, ev->attempt);
	else if (ev->name != NULL)
		printf(" %s", ev->name);
	if (ev->state != NULL)
		printf(": %s", ev->state);
	if (ev->message != NULL)
		printf(" (%s)", ev->message);
	putchar('\n');
}

static int load(const char *path, tlm_spec **spec, char **text)
{
	tlm_diags diags = TLM_DIAGS_INIT;
	tlm_error err = TLM_ERROR_INIT;
	size_t len, i;

	if (tlm_spec_load(spec, path, &diags, &err) != 0) {
		for (i = 0; i < diags.count; i++)
			fprintf(stderr, "%s:%u:%u: %s\n", path, (unsigned)diags.items[i].pos.line,
				(unsigned)diags.items[i].pos.col, diags.items[i].message);
		if (diags.count == 0)
			fprintf(stderr, "%s: %s\n", path, err.message);
		tlm_diags_clear(&diags);
		return 2;
	}
	tlm_diags_clear(&diags);
	/* The engine journals the text as written, with the run. */
	return tlm_spec_read(text, &len, path, &err) == 0 ? 0 : 2;
}

static void print_plan(const tlm_spec *spec)
{
	tlm_plan *plan = NULL;
	tlm_error err = TLM_ERROR_INIT;

	if (tlm_plan_new(&plan, spec, &err) != 0) {
		fprintf(stderr, "plan: %s\n", err.message);
		return;
	}
	printf("plan: %zu tasks in %zu waves\n", spec->ntasks, plan->nwaves);
	tlm_plan_free(plan);
}

int main(int argc, char **argv)
{
	tlm_engine_opts o = TLM_ENGINE_OPTS_INIT;
	tlm_engine_result res;
	tlm_error err = TLM_ERROR_INIT;
	tlm_spec *spec = NULL;
	char *text = NULL;
	int rc;

	if (argc != 2 || getenv("AGAMEMNON_URL") == NULL) {
		fprintf(stderr, "usage: AGAMEMNON_URL=URL %s WORKFLOW.yaml\n", argv[0]);
		return 2;
	}
	if ((rc = load(argv[1], &spec, &text)) != 0)
		return rc;
	print_plan(spec);
	o.spec = spec;
	o.spec_text = text;
	o.control_plane = getenv("AGAMEMNON_URL");
	o.api_key = getenv("AGAMEMNON_API_KEY");
	o.nats_url = getenv("NATS_URL");
	o.on_event = on_event;
	if (tlm_engine_run(&o, &res, &err) != 0) {
		fprintf(stderr, "the run could not start: %s\n", err.message);
		rc = 2;
	} else {
		printf("run %s: %s, %zu leftovers\n", res.run_id, res.state, res.nleftovers);
		rc = res.outcome == TLM_ENGINE_COMPLETED && res.nleftovers == 0 ? 0 : 1;
	}
	tlm_engine_result_clear(&res);
	free(text);
	tlm_spec_free(spec);
	return rc;
}
