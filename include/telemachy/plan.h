/*
 * telemachy — the execution plan of a validated spec.
 *
 * A plan places every task in a submission wave: wave 0 holds the tasks with
 * no dependencies, wave k the tasks whose latest dependency is in wave k-1.
 * Tasks of one wave may run concurrently once the previous waves completed;
 * the engine still submits each task as soon as its own dependencies are done,
 * so waves are a picture of the order, not a barrier.  Building a plan is
 * O(tasks + dependencies); a plan borrows its spec and never prints: the
 * renderers write into a stream the caller hands in.
 */
#ifndef TELEMACHY_PLAN_H
#define TELEMACHY_PLAN_H

#include <stddef.h>
#include <stdio.h>

#include "telemachy/error.h"
#include "telemachy/spec.h"

/* Read-only after tlm_plan_new(); all arrays are owned by the plan. */
typedef struct tlm_plan {
	const tlm_spec *spec;     /* borrowed: must outlive the plan */
	size_t *wave;             /* wave[i] of spec->tasks[i] */
	size_t nwaves;            /* 0 only for a spec without tasks */
	size_t *order;            /* task indices by wave, spec order within one */
	size_t *wave_start;       /* wave w is order[wave_start[w] .. wave_start[w+1]) */
	size_t *dependents;       /* tasks blocked by task i are */
	size_t *dependents_start; /* dependents[dependents_start[i] .. [i+1]) */
} tlm_plan;

/* Computes the waves of spec (Kahn's algorithm, linear time).  0: *out is a
 * plan (caller frees with tlm_plan_free).  TLM_EINVALID: an index is out of
 * range or the tasks form a cycle; err names it.  TLM_ERROR: out of memory. */
int tlm_plan_new(tlm_plan **out, const tlm_spec *spec, tlm_error *err);

/* Frees a plan (not its spec); NULL is a no-op. */
void tlm_plan_free(tlm_plan *plan);

/* The tasks blocked by task i (the reverse of tasks[i].deps), in spec order;
 * *n gets their count.  The engine uses it to skip the dependents of a failure. */
const size_t *tlm_plan_dependents(const tlm_plan *plan, size_t i, size_t *n);

/* Human-readable plan: header, agents, teams, tasks by wave, totals.  Control
 * characters from the spec are escaped.  TLM_ERROR when writing to out fails. */
int tlm_plan_render_text(const tlm_plan *plan, FILE *out, tlm_error *err);

/* The plan as one indented JSON document (schema in docs/plan.md), ending in a
 * newline.  TLM_ERROR when out of memory or writing to out fails. */
int tlm_plan_render_json(const tlm_plan *plan, FILE *out, tlm_error *err);

/* A Graphviz digraph: one cluster per team, an edge from each dependency to
 * the task it blocks.  TLM_ERROR when writing to out fails. */
int tlm_plan_render_dot(const tlm_plan *plan, FILE *out, tlm_error *err);

/* A Mermaid "flowchart TD" with one subgraph per team, labels escaped with
 * Mermaid entity codes.  TLM_ERROR when writing to out fails. */
int tlm_plan_render_mermaid(const tlm_plan *plan, FILE *out, tlm_error *err);

/* The same graphs with each task coloured by its state: states[i] is task
 * i's ("completed", "failed", "running", ... as the journal says; NULL:
 * not started), shown under its subject.  states NULL: as above. */
int tlm_plan_render_dot_states(const tlm_plan *plan, const char *const *states, FILE *out,
			       tlm_error *err);
int tlm_plan_render_mermaid_states(const tlm_plan *plan, const char *const *states, FILE *out,
				   tlm_error *err);

#endif
