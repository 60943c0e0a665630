/* Waves, order and dependents of tlm_plan_new(), on specs parsed from YAML,
 * and on hand-built specs for what the loader would reject (cycles, bad
 * indices), which the plan must still refuse without looping or reading out
 * of bounds. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "telemachy/plan.h"
#include "telemachy/spec.h"

#define HEAD                                                                                       \
	"apiVersion: telemachy/v1\n"                                                               \
	"metadata: {name: w}\n"                                                                    \
	"agents: [{name: a}]\n"                                                                    \
	"teams:\n"

typedef struct fixture {
	tlm_spec *spec;
	tlm_plan *plan;
} fixture;

/* Parses yaml (which must be valid) and plans it. */
static void load(fixture *f, const char *yaml)
{
	tlm_diags diags = TLM_DIAGS_INIT;
	tlm_error err = TLM_ERROR_INIT;
	int rc = tlm_spec_parse(&f->spec, "t.yaml", yaml, strlen(yaml), &diags, &err);
	size_t i;

	for (i = 0; i < diags.count; i++)
		print_error("t.yaml:%u:%u: %s\n", diags.items[i].pos.line, diags.items[i].pos.col,
			    diags.items[i].message);
	tlm_diags_clear(&diags);
	assert_int_equal(rc, 0);
	assert_int_equal(tlm_plan_new(&f->plan, f->spec, &err), 0);
}

static void unload(fixture *f)
{
	tlm_plan_free(f->plan);
	tlm_spec_free(f->spec);
}

/* Index of the task named "team/subject". */
static size_t task(const fixture *f, const char *team, const char *subject)
{
	size_t i;

	for (i = 0; i < f->spec->ntasks; i++)
		if (strcmp(f->spec->tasks[i].subject, subject) == 0 &&
		    strcmp(f->spec->teams[f->spec->tasks[i].team].name, team) == 0)
			return i;
	fail_msg("no task %s/%s", team, subject);
	return SIZE_MAX;
}

/* Checks wave w lists exactly the given subjects, in this order. */
static void assert_wave(const fixture *f, size_t w, size_t n, const char *const *subjects)
{
	const tlm_plan *p = f->plan;
	size_t k;

	assert_true(w < p->nwaves);
	assert_int_equal(p->wave_start[w + 1] - p->wave_start[w], n);
	for (k = 0; k < n; k++) {
		size_t i = p->order[p->wave_start[w] + k];

		assert_string_equal(f->spec->tasks[i].subject, subjects[k]);
		assert_int_equal(p->wave[i], w);
	}
}

static void test_diamond(void **state)
{
	fixture f = { 0 };

	(void)state;
	load(&f, HEAD "  - name: t\n    agents: [a]\n    tasks:\n"
		      "      - {subject: top, description: d}\n"
		      "      - {subject: left, description: d, blocked_by: [top]}\n"
		      "      - {subject: right, description: d, blocked_by: [top]}\n"
		      "      - {subject: bottom, description: d, blocked_by: [left, right]}\n");
	assert_int_equal(f.plan->nwaves, 3);
	assert_wave(&f, 0, 1, (const char *[]){ "top" });
	assert_wave(&f, 1, 2, (const char *[]){ "left", "right" });
	assert_wave(&f, 2, 1, (const char *[]){ "bottom" });
	assert_int_equal(f.plan->wave_start[3], 4);
	unload(&f);
}

static void test_chain_of_20(void **state)
{
	char yaml[8192];
	size_t len, i;
	fixture f = { 0 };

	(void)state;
	len = (size_t)snprintf(yaml, sizeof(yaml), "%s",
			       HEAD "  - name: t\n    agents: [a]\n"
				    "    tasks:\n"
				    "      - {subject: s0, description: d}\n");
	for (i = 1; i < 20; i++)
		len += (size_t)snprintf(yaml + len, sizeof(yaml) - len,
					"      - {subject: s%zu, description: d, "
					"blocked_by: [s%zu]}\n",
					i, i - 1);
	assert_true(len < sizeof(yaml));
	load(&f, yaml);
	assert_int_equal(f.plan->nwaves, 20);
	for (i = 0; i < 20; i++) {
		assert_int_equal(f.plan->wave[i], i);
		assert_int_equal(f.plan->order[i], i);
		assert_int_equal(f.plan->wave_start[i], i);
	}
	unload(&f);
}

/* A task waits for another team's task, and that team waits back on a
 * third: waves interleave the teams. */
static void test_cross_team(void **state)
{
	fixture f = { 0 };

	(void)state;
	load(&f, HEAD "  - name: x\n    agents: [a]\n    tasks:\n"
		      "      - {subject: x1, description: d}\n"
		      "      - {subject: x2, description: d, blocked_by: [y/y1]}\n"
		      "  - name: y\n    agents: [a]\n    tasks:\n"
		      "      - {subject: y1, description: d, blocked_by: [x/x1]}\n"
		      "      - {subject: y2, description: d}\n");
	assert_int_equal(f.plan->nwaves, 3);
	assert_int_equal(f.plan->wave[task(&f, "x", "x1")], 0);
	assert_int_equal(f.plan->wave[task(&f, "y", "y2")], 0);
	assert_int_equal(f.plan->wave[task(&f, "y", "y1")], 1);
	assert_int_equal(f.plan->wave[task(&f, "x", "x2")], 2);
	assert_wave(&f, 0, 2, (const char *[]){ "x1", "y2" });
	unload(&f);
}

/* Two chains of different lengths: the short one ends early, the long one
 * alone sets the number of waves. */
static void test_independent_branches(void **state)
{
	fixture f = { 0 };

	(void)state;
	load(&f, HEAD "  - name: t\n    agents: [a]\n    tasks:\n"
		      "      - {subject: a1, description: d}\n"
		      "      - {subject: b1, description: d}\n"
		      "      - {subject: a2, description: d, blocked_by: [a1]}\n"
		      "      - {subject: b2, description: d, blocked_by: [b1]}\n"
		      "      - {subject: a3, description: d, blocked_by: [a2]}\n");
	assert_int_equal(f.plan->nwaves, 3);
	assert_wave(&f, 0, 2, (const char *[]){ "a1", "b1" });
	assert_wave(&f, 1, 2, (const char *[]){ "a2", "b2" });
	assert_wave(&f, 2, 1, (const char *[]){ "a3" });
	unload(&f);
}

/* Within a wave the spec's order wins, whatever order Kahn's queue reached
 * the tasks in: here "late" is reached first (its dependency comes first) but
 * is written after "early". */
static void test_stable_order(void **state)
{
	fixture f = { 0 };

	(void)state;
	load(&f, HEAD "  - name: t\n    agents: [a]\n    tasks:\n"
		      "      - {subject: r1, description: d}\n"
		      "      - {subject: early, description: d, blocked_by: [r2]}\n"
		      "      - {subject: r2, description: d}\n"
		      "      - {subject: late, description: d, blocked_by: [r1]}\n"
		      "      - {subject: z, description: d}\n");
	assert_int_equal(f.plan->nwaves, 2);
	assert_wave(&f, 0, 3, (const char *[]){ "r1", "r2", "z" });
	assert_wave(&f, 1, 2, (const char *[]){ "early", "late" });
	unload(&f);
}

/* The wave is 1 + the latest dependency, not 1 + the first one found. */
static void test_wave_is_longest_path(void **state)
{
	fixture f = { 0 };

	(void)state;
	load(&f, HEAD "  - name: t\n    agents: [a]\n    tasks:\n"
		      "      - {subject: end, description: d, blocked_by: [s, c3]}\n"
		      "      - {subject: s, description: d}\n"
		      "      - {subject: c1, description: d}\n"
		      "      - {subject: c2, description: d, blocked_by: [c1]}\n"
		      "      - {subject: c3, description: d, blocked_by: [c2]}\n");
	assert_int_equal(f.plan->wave[task(&f, "t", "end")], 3);
	assert_int_equal(f.plan->nwaves, 4);
	unload(&f);
}

static void test_dependents(void **state)
{
	fixture f = { 0 };
	const size_t *d;
	size_t n;

	(void)state;
	load(&f, HEAD "  - name: t\n    agents: [a]\n    tasks:\n"
		      "      - {subject: root, description: d}\n"
		      "      - {subject: u, description: d, blocked_by: [root]}\n"
		      "      - {subject: v, description: d}\n"
		      "      - {subject: w, description: d, blocked_by: [v, root]}\n");
	d = tlm_plan_dependents(f.plan, 0, &n);
	assert_int_equal(n, 2);
	assert_int_equal(d[0], 1);
	assert_int_equal(d[1], 3);
	d = tlm_plan_dependents(f.plan, 2, &n);
	assert_int_equal(n, 1);
	assert_int_equal(d[0], 3);
	tlm_plan_dependents(f.plan, 3, &n);
	assert_int_equal(n, 0);
	unload(&f);
}

/* ---- hand-built specs: what the loader never produces ---- */

#define MAX_HAND 8

typedef struct hand {
	tlm_spec spec;
	tlm_spec_agent agent;
	tlm_spec_team team;
	tlm_spec_task tasks[MAX_HAND];
	size_t deps[MAX_HAND][MAX_HAND];
} hand;

/* One team "t", one agent "a", tasks named by subjects[]; arena stays NULL,
 * so the spec is not freed with tlm_spec_free. */
static void hand_init(hand *h, size_t n, const char *const *subjects)
{
	size_t i;

	memset(h, 0, sizeof(*h));
	h->agent.name = "a";
	h->team.name = "t";
	h->team.ntasks = n;
	h->spec.name = "hand";
	h->spec.agents = &h->agent;
	h->spec.nagents = 1;
	h->spec.teams = &h->team;
	h->spec.nteams = 1;
	h->spec.tasks = h->tasks;
	h->spec.ntasks = n;
	for (i = 0; i < n; i++) {
		h->tasks[i].subject = subjects[i];
		h->tasks[i].deps = h->deps[i];
	}
}

static void hand_dep(hand *h, size_t task_i, size_t dep)
{
	h->deps[task_i][h->tasks[task_i].ndeps++] = dep;
}

static void test_cycle_is_refused_with_its_path(void **state)
{
	hand h;
	tlm_plan *plan = (tlm_plan *)&h; /* must be reset to NULL */
	tlm_error err = TLM_ERROR_INIT;

	(void)state;
	/* "in" waits on the cycle without being part of it: the walk starts
	 * there, and the reported path must still be the cycle alone */
	hand_init(&h, 4, (const char *[]){ "ok", "in", "c1", "c2" });
	hand_dep(&h, 1, 2);
	hand_dep(&h, 2, 0);
	hand_dep(&h, 2, 3);
	hand_dep(&h, 3, 2);
	assert_int_equal(tlm_plan_new(&plan, &h.spec, &err), TLM_EINVALID);
	assert_null(plan);
	assert_int_equal(err.code, TLM_EINVALID);
	assert_non_null(strstr(err.message, "t/c1 -> t/c2 -> t/c1"));
	assert_null(strstr(err.message, "t/in"));
}

static void test_self_and_out_of_range_deps_are_refused(void **state)
{
	hand h;
	tlm_plan *plan = NULL;
	tlm_error err = TLM_ERROR_INIT;

	(void)state;
	hand_init(&h, 2, (const char *[]){ "a", "b" });
	hand_dep(&h, 1, 1);
	assert_int_equal(tlm_plan_new(&plan, &h.spec, &err), TLM_EINVALID);
	assert_null(plan);
	hand_init(&h, 2, (const char *[]){ "a", "b" });
	hand_dep(&h, 1, 2);
	assert_int_equal(tlm_plan_new(&plan, &h.spec, &err), TLM_EINVALID);
	hand_init(&h, 2, (const char *[]){ "a", "b" });
	h.tasks[0].agent = 1;
	assert_int_equal(tlm_plan_new(&plan, &h.spec, &err), TLM_EINVALID);
	hand_init(&h, 2, (const char *[]){ "a", "b" });
	h.team.ntasks = 1; /* task 1 outside its team's range */
	assert_int_equal(tlm_plan_new(&plan, &h.spec, &err), TLM_EINVALID);
	assert_null(plan);
}

/* The loader deduplicates blocked_by, but a repeated edge must not be
 * mistaken for a cycle nor count twice (a lesson of the predecessor). */
static void test_duplicate_edge_is_not_a_cycle(void **state)
{
	hand h;
	tlm_plan *plan = NULL;
	tlm_error err = TLM_ERROR_INIT;

	(void)state;
	hand_init(&h, 2, (const char *[]){ "a", "b" });
	hand_dep(&h, 1, 0);
	hand_dep(&h, 1, 0);
	assert_int_equal(tlm_plan_new(&plan, &h.spec, &err), 0);
	assert_int_equal(plan->nwaves, 2);
	assert_int_equal(plan->wave[1], 1);
	tlm_plan_free(plan);
}

static void test_no_tasks(void **state)
{
	hand h;
	tlm_plan *plan = NULL;
	tlm_error err = TLM_ERROR_INIT;

	(void)state;
	hand_init(&h, 0, NULL);
	assert_int_equal(tlm_plan_new(&plan, &h.spec, &err), 0);
	assert_int_equal(plan->nwaves, 0);
	assert_int_equal(plan->wave_start[0], 0);
	tlm_plan_free(plan);
	tlm_plan_free(NULL);
}

/* 200,000 tasks: a quadratic step would take minutes, linear takes
 * milliseconds.  Half a chain (deep), half fanning out from one root (wide). */
static void test_large_is_linear(void **state)
{
	enum { N = 200000, HALF = N / 2 };
	tlm_spec spec;
	tlm_spec_agent agent = { .name = "a" };
	tlm_spec_team team = { .name = "t", .ntasks = N };
	tlm_spec_task *tasks = calloc(N, sizeof(*tasks));
	size_t *deps = calloc(N, sizeof(*deps)), i;
	tlm_plan *plan = NULL;
	tlm_error err = TLM_ERROR_INIT;

	(void)state;
	assert_non_null(tasks);
	assert_non_null(deps);
	memset(&spec, 0, sizeof(spec));
	spec.name = "big";
	spec.agents = &agent;
	spec.nagents = 1;
	spec.teams = &team;
	spec.nteams = 1;
	spec.tasks = tasks;
	spec.ntasks = N;
	for (i = 0; i < N; i++) {
		tasks[i].subject = "s";
		tasks[i].deps = &deps[i];
		if (i > 0 && i < HALF)
			deps[i] = i - 1;
		else if (i > HALF)
			deps[i] = HALF;
		tasks[i].ndeps = i != 0 && i != HALF;
	}
	assert_int_equal(tlm_plan_new(&plan, &spec, &err), 0);
	assert_int_equal(plan->nwaves, HALF);
	assert_int_equal(plan->wave_start[1], 2); /* the two roots */
	assert_int_equal(plan->wave_start[2] - plan->wave_start[1], HALF);
	assert_int_equal(plan->wave[HALF - 1], HALF - 1);
	tlm_plan_free(plan);
	free(tasks);
	free(deps);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_diamond),
		cmocka_unit_test(test_chain_of_20),
		cmocka_unit_test(test_cross_team),
		cmocka_unit_test(test_independent_branches),
		cmocka_unit_test(test_stable_order),
		cmocka_unit_test(test_wave_is_longest_path),
		cmocka_unit_test(test_dependents),
		cmocka_unit_test(test_cycle_is_refused_with_its_path),
		cmocka_unit_test(test_self_and_out_of_range_deps_are_refused),
		cmocka_unit_test(test_duplicate_edge_is_not_a_cycle),
		cmocka_unit_test(test_no_tasks),
		cmocka_unit_test(test_large_is_linear),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
