/* The plan object: checks the spec's indices, builds the reverse edges
 * (dependents), and hands over to waves.c for the ordering. */
#include <assert.h>
#include <stdint.h>
#include <stdlib.h>

#include "plan/plan_internal.h"

void *tlm_plan__alloc(size_t n, size_t size)
{
	if (size != 0 && n > SIZE_MAX / size)
		return NULL;
	return malloc(n * size != 0 ? n * size : 1);
}

const char *tlm_plan__team_name(const tlm_plan *plan, size_t i)
{
	return plan->spec->teams[plan->spec->tasks[i].team].name;
}

int tlm_plan__check_stream(FILE *out, const char *format, tlm_error *err)
{
	if (ferror(out))
		return tlm_error_set(err, TLM_ERROR, "writing the %s plan failed", format);
	return 0;
}

/* The loader guarantees these, but the plan indexes arrays with them, so a
 * hand-built or corrupted spec must fail here rather than read out of bounds. */
static int check_teams(const tlm_spec *spec, tlm_error *err)
{
	size_t t, k;

	for (t = 0; t < spec->nteams; t++) {
		const tlm_spec_team *team = &spec->teams[t];

		if (team->first_task > spec->ntasks ||
		    team->ntasks > spec->ntasks - team->first_task)
			return tlm_error_set(err, TLM_EINVALID,
					     "team %zu: tasks [%zu, +%zu) out of range", t,
					     team->first_task, team->ntasks);
		for (k = 0; k < team->nagents; k++)
			if (team->agents[k] >= spec->nagents)
				return tlm_error_set(err, TLM_EINVALID,
						     "team %zu: agent index %zu out of range", t,
						     team->agents[k]);
	}
	return 0;
}

static int check_tasks(const tlm_spec *spec, size_t *nedges, tlm_error *err)
{
	size_t i, k;

	*nedges = 0;
	for (i = 0; i < spec->ntasks; i++) {
		const tlm_spec_task *task = &spec->tasks[i];
		const tlm_spec_team *team;

		if (task->team >= spec->nteams || task->agent >= spec->nagents)
			return tlm_error_set(err, TLM_EINVALID,
					     "task %zu: team or agent index out of range", i);
		team = &spec->teams[task->team];
		if (i < team->first_task || i - team->first_task >= team->ntasks)
			return tlm_error_set(err, TLM_EINVALID,
					     "task %zu: not within the tasks of its team", i);
		for (k = 0; k < task->ndeps; k++)
			if (task->deps[k] >= spec->ntasks || task->deps[k] == i)
				return tlm_error_set(err, TLM_EINVALID,
						     "task %zu: dependency %zu invalid", i,
						     task->deps[k]);
		*nedges += task->ndeps; /* bounded by memory the spec already holds */
	}
	return 0;
}

/* Reverse adjacency in one array (CSR): two passes over the edges, so the
 * dependents of each task come out in spec order without sorting. */
static int build_dependents(tlm_plan *p, size_t nedges, tlm_error *err)
{
	const tlm_spec *spec = p->spec;
	size_t n = spec->ntasks, i, k, *next;

	p->dependents_start = tlm_plan__alloc(n + 1, sizeof(size_t));
	p->dependents = tlm_plan__alloc(nedges, sizeof(size_t));
	next = tlm_plan__alloc(n, sizeof(size_t));
	if (!p->dependents_start || !p->dependents || !next) {
		free(next);
		return tlm_error_set(err, TLM_ERROR, "out of memory building the plan");
	}
	for (i = 0; i <= n; i++)
		p->dependents_start[i] = 0;
	for (i = 0; i < n; i++)
		for (k = 0; k < spec->tasks[i].ndeps; k++)
			p->dependents_start[spec->tasks[i].deps[k] + 1]++;
	for (i = 0; i < n; i++) {
		p->dependents_start[i + 1] += p->dependents_start[i];
		next[i] = p->dependents_start[i];
	}
	for (i = 0; i < n; i++)
		for (k = 0; k < spec->tasks[i].ndeps; k++)
			p->dependents[next[spec->tasks[i].deps[k]]++] = i;
	free(next);
	return 0;
}

int tlm_plan_new(tlm_plan **out, const tlm_spec *spec, tlm_error *err)
{
	tlm_plan *p = NULL;
	size_t nedges;
	int rc;

	assert(out != NULL && spec != NULL);
	*out = NULL;
	if ((rc = check_teams(spec, err)) != 0 || (rc = check_tasks(spec, &nedges, err)) != 0)
		goto done;
	p = calloc(1, sizeof(*p));
	if (p == NULL) {
		rc = tlm_error_set(err, TLM_ERROR, "out of memory building the plan");
		goto done;
	}
	p->spec = spec;
	if ((rc = build_dependents(p, nedges, err)) != 0 || (rc = tlm_plan__waves(p, err)) != 0)
		goto done;
	*out = p;
	p = NULL;
done:
	tlm_plan_free(p);
	return rc;
}

void tlm_plan_free(tlm_plan *plan)
{
	if (plan == NULL)
		return;
	free(plan->wave);
	free(plan->order);
	free(plan->wave_start);
	free(plan->dependents);
	free(plan->dependents_start);
	free(plan);
}

const size_t *tlm_plan_dependents(const tlm_plan *plan, size_t i, size_t *n)
{
	assert(plan != NULL && i < plan->spec->ntasks);
	*n = plan->dependents_start[i + 1] - plan->dependents_start[i];
	return plan->dependents + plan->dependents_start[i];
}
