/* Submission waves by Kahn's algorithm, then a counting sort by wave so the
 * order is stable (spec order within a wave) without an O(n log n) sort. */
#include <stdlib.h>
#include <string.h>

#include "plan/plan_internal.h"

/* Appends "team/subject" of task i to msg, keeping it NUL-terminated and
 * truncated at cap; *len tracks the length written so far. */
static void append_id(char *msg, size_t cap, size_t *len, const tlm_plan *p, size_t i,
		      const char *sep)
{
	int w = snprintf(msg + *len, cap - *len, "%s%s/%s", sep, tlm_plan__team_name(p, i),
			 p->spec->tasks[i].subject);

	if (w > 0)
		*len += (size_t)w < cap - *len ? (size_t)w : cap - *len - 1;
}

/* After Kahn stops early, every task left has indeg > 0, i.e. at least one
 * dependency that is also left: following such dependencies must revisit a
 * task, and the walk from that task's first visit is a cycle.  Each task is
 * visited once, so this stays linear. */
static int report_cycle(const tlm_plan *p, const size_t *indeg, tlm_error *err)
{
	const tlm_spec *spec = p->spec;
	size_t n = spec->ntasks, v = 0, step = 0, start, k, len = 0;
	size_t *seen = tlm_plan__alloc(n, sizeof(size_t)); /* step + 1, 0 = unseen */
	size_t *path = tlm_plan__alloc(n + 1, sizeof(size_t));
	char msg[TLM_ERROR_MSG_MAX - 64];

	if (!seen || !path) {
		free(seen);
		free(path);
		return tlm_error_set(err, TLM_EINVALID, "the tasks form a dependency cycle");
	}
	memset(seen, 0, n * sizeof(size_t));
	while (indeg[v] == 0)
		v++;
	while (seen[v] == 0) {
		seen[v] = ++step;
		path[step - 1] = v;
		for (k = 0; indeg[spec->tasks[v].deps[k]] == 0; k++)
			;
		v = spec->tasks[v].deps[k];
	}
	msg[0] = '\0';
	for (start = seen[v] - 1; start < step; start++)
		append_id(msg, sizeof(msg), &len, p, path[start], len ? " -> " : "");
	append_id(msg, sizeof(msg), &len, p, v, " -> ");
	free(seen);
	free(path);
	return tlm_error_set(err, TLM_EINVALID,
			     "dependency cycle (each task is blocked by the next): %s", msg);
}

/* Kahn's algorithm; queue[0..*done) receives the tasks in topological order. */
static void kahn(tlm_plan *p, size_t *indeg, size_t *queue, size_t *done)
{
	const tlm_spec *spec = p->spec;
	size_t head = 0, tail = 0, i, k;

	for (i = 0; i < spec->ntasks; i++) {
		p->wave[i] = 0;
		indeg[i] = spec->tasks[i].ndeps;
		if (indeg[i] == 0)
			queue[tail++] = i;
	}
	while (head < tail) {
		size_t u = queue[head++];

		for (k = p->dependents_start[u]; k < p->dependents_start[u + 1]; k++) {
			size_t v = p->dependents[k];

			/* wave = 1 + the latest wave among the dependencies */
			if (p->wave[v] < p->wave[u] + 1)
				p->wave[v] = p->wave[u] + 1;
			if (--indeg[v] == 0)
				queue[tail++] = v;
		}
	}
	*done = tail;
}

/* Stable counting sort of the task indices by wave. */
static int sort_by_wave(tlm_plan *p, tlm_error *err)
{
	size_t n = p->spec->ntasks, i, w;

	p->nwaves = 0;
	for (i = 0; i < n; i++)
		if (p->wave[i] + 1 > p->nwaves)
			p->nwaves = p->wave[i] + 1;
	p->wave_start = tlm_plan__alloc(p->nwaves + 2, sizeof(size_t));
	if (p->wave_start == NULL)
		return tlm_error_set(err, TLM_ERROR, "out of memory building the plan");
	memset(p->wave_start, 0, (p->nwaves + 2) * sizeof(size_t));
	/* counts go one slot ahead so that, after the prefix sum, slot w + 1 is
	 * the insertion point of wave w and ends as its end = start of w + 1 */
	for (i = 0; i < n; i++)
		p->wave_start[p->wave[i] + 2]++;
	for (w = 2; w < p->nwaves + 2; w++)
		p->wave_start[w] += p->wave_start[w - 1];
	for (i = 0; i < n; i++)
		p->order[p->wave_start[p->wave[i] + 1]++] = i;
	return 0;
}

int tlm_plan__waves(tlm_plan *p, tlm_error *err)
{
	size_t n = p->spec->ntasks, done = 0;
	size_t *indeg = tlm_plan__alloc(n, sizeof(size_t));
	int rc;

	p->wave = tlm_plan__alloc(n, sizeof(size_t));
	p->order = tlm_plan__alloc(n, sizeof(size_t));
	if (!indeg || !p->wave || !p->order) {
		rc = tlm_error_set(err, TLM_ERROR, "out of memory building the plan");
		goto done;
	}
	/* order doubles as Kahn's queue: the sort below overwrites it */
	kahn(p, indeg, p->order, &done);
	if (done < n)
		rc = report_cycle(p, indeg, err);
	else
		rc = sort_by_wave(p, err);
done:
	free(indeg);
	return rc;
}
