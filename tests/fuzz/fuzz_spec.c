/*
 * libFuzzer target for the spec loader: arbitrary bytes -> tlm_spec_parse().
 *
 * Besides memory errors (ASan) and undefined behaviour (UBSan), it checks the
 * loader's contract from include/telemachy/spec.h, so a loader that accepts a
 * spec with a dangling index or a cycle fails here too:
 *   - success: a model, no diagnostics, every index in range, each team's
 *     tasks point back at it, assignees are members of their team, deps are
 *     deduplicated, never self, and acyclic;
 *   - failure: no model; TLM_EINVALID comes with at least one diagnostic,
 *     sorted by position and capped at TLM_SPEC_MAX_DIAGS.
 * A broken promise aborts, which libFuzzer reports as a crash.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "telemachy/spec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                                \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			fprintf(stderr, "fuzz_spec: broken promise: %s (%s:%d)\n", #cond,          \
				__FILE__, __LINE__);                                               \
			abort();                                                                   \
		}                                                                                  \
	} while (0)

/* Reads every byte of s, so ASan sees a string that is not in live memory. */
static size_t touch(const char *s)
{
	return s ? strlen(s) : 0;
}

/* ^[A-Za-z0-9._-]{1,63}$ */
static int name_ok(const char *s)
{
	size_t n = strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
			     "0123456789._-");

	return n >= 1 && n <= TLM_SPEC_NAME_MAX && s[n] == '\0';
}

/* Kahn's algorithm over the deps: every task must come out. */
static void check_acyclic(const tlm_spec *spec)
{
	size_t n = spec->ntasks, i, j, head = 0, tail = 0;
	size_t *indeg = calloc(n ? n : 1, sizeof(*indeg));
	size_t *queue = calloc(n ? n : 1, sizeof(*queue));
	size_t *start = calloc(n + 1, sizeof(*start));
	size_t *users;

	CHECK(indeg && queue && start);
	/* Reverse edges (dependency -> dependents) in CSR form. */
	for (i = 0; i < n; i++)
		for (j = 0; j < spec->tasks[i].ndeps; j++)
			start[spec->tasks[i].deps[j] + 1]++;
	for (i = 0; i < n; i++)
		start[i + 1] += start[i];
	users = calloc(start[n] ? start[n] : 1, sizeof(*users));
	CHECK(users);
	{
		size_t *fill = calloc(n ? n : 1, sizeof(*fill));

		CHECK(fill);
		for (i = 0; i < n; i++)
			for (j = 0; j < spec->tasks[i].ndeps; j++) {
				size_t d = spec->tasks[i].deps[j];

				users[start[d] + fill[d]++] = i;
			}
		free(fill);
	}
	for (i = 0; i < n; i++) {
		indeg[i] = spec->tasks[i].ndeps;
		if (indeg[i] == 0)
			queue[tail++] = i;
	}
	while (head < tail) {
		size_t t = queue[head++];

		for (j = start[t]; j < start[t + 1]; j++)
			if (--indeg[users[j]] == 0)
				queue[tail++] = users[j];
	}
	CHECK(tail == n);
	free(users);
	free(start);
	free(queue);
	free(indeg);
}

static void check_spec(const tlm_spec *spec)
{
	size_t i, j, k, sum = 0;

	CHECK(spec->name && touch(spec->name) > 0);
	CHECK(touch(spec->name) <= TLM_SPEC_WORKFLOW_NAME_MAX);
	touch(spec->path);
	touch(spec->description);
	CHECK(spec->nlabels == 0 || spec->labels);
	for (i = 0; i < spec->nlabels; i++)
		CHECK(touch(spec->labels[i].key) > 0 && spec->labels[i].value);
	CHECK(spec->teardown >= TLM_TEARDOWN_ON_COMPLETION && spec->teardown <= TLM_TEARDOWN_NEVER);
	CHECK(spec->timeout_seconds >= 0);

	CHECK(spec->nagents == 0 || spec->agents);
	for (i = 0; i < spec->nagents; i++) {
		const tlm_spec_agent *a = &spec->agents[i];

		CHECK(a->name && name_ok(a->name));
		for (j = 0; j < i; j++)
			CHECK(strcmp(spec->agents[j].name, a->name) != 0);
		CHECK(a->program && a->working_dir && a->memory);
		/* What the control plane accepts (docs/spec.md, limits). */
		CHECK(touch(a->program) <= TLM_SPEC_PROGRAM_MAX);
		CHECK(touch(a->working_dir) <= TLM_SPEC_WORKING_DIR_MAX);
		CHECK(touch(a->model) <= TLM_SPEC_MODEL_MAX);
		CHECK(touch(a->docker_image) <= TLM_SPEC_IMAGE_MAX);
		CHECK(a->nargs <= TLM_SPEC_ARGS_MAX && a->nenv <= TLM_SPEC_ENV_MAX);
		touch(a->program);
		touch(a->working_dir);
		touch(a->memory);
		touch(a->model);
		for (j = 0; j < a->nargs; j++)
			CHECK(a->args[j]);
		for (j = 0; j < a->nargs; j++)
			touch(a->args[j]);
		CHECK(a->cpus >= TLM_SPEC_CPUS_MIN && a->cpus <= TLM_SPEC_CPUS_MAX);
		CHECK(a->memory_bytes > 0);
		CHECK((a->runtime == TLM_RUNTIME_DOCKER) == (a->docker_image != NULL));
		touch(a->docker_image);
		for (j = 0; j < a->nenv; j++)
			CHECK(touch(a->env[j].key) > 0 && a->env[j].value);
	}

	CHECK(spec->nteams == 0 || spec->teams);
	for (i = 0; i < spec->nteams; i++) {
		const tlm_spec_team *t = &spec->teams[i];

		CHECK(t->name && name_ok(t->name));
		for (j = 0; j < i; j++)
			CHECK(strcmp(spec->teams[j].name, t->name) != 0);
		CHECK(t->nagents <= TLM_SPEC_MEMBERS_MAX);
		for (j = 0; j < t->nagents; j++) {
			CHECK(t->agents[j] < spec->nagents);
			for (k = 0; k < j; k++)
				CHECK(t->agents[k] != t->agents[j]);
		}
		CHECK(t->first_task == sum);
		sum += t->ntasks;
		CHECK(sum <= spec->ntasks);
		for (j = t->first_task; j < t->first_task + t->ntasks; j++) {
			const tlm_spec_task *task = &spec->tasks[j];
			int member = 0;

			CHECK(task->team == i);
			for (k = 0; k < t->nagents; k++)
				member |= t->agents[k] == task->agent;
			CHECK(member);
			for (k = t->first_task; k < j; k++)
				CHECK(strcmp(spec->tasks[k].subject, task->subject) != 0);
		}
	}
	CHECK(sum == spec->ntasks);

	CHECK(spec->ntasks == 0 || spec->tasks);
	for (i = 0; i < spec->ntasks; i++) {
		const tlm_spec_task *task = &spec->tasks[i];

		CHECK(touch(task->subject) >= 1 && touch(task->subject) <= TLM_SPEC_SUBJECT_MAX);
		CHECK(touch(task->description) >= 1 &&
		      touch(task->description) <= TLM_SPEC_DESCRIPTION_MAX);
		CHECK(task->team < spec->nteams);
		CHECK(task->agent < spec->nagents);
		CHECK(task->timeout_seconds >= 0);
		CHECK(task->retries >= 0 && task->retries <= TLM_SPEC_RETRIES_MAX);
		CHECK(task->ndeps == 0 || task->deps);
		CHECK(task->ndeps <= TLM_SPEC_BLOCKED_BY_MAX);
		for (j = 0; j < task->ndeps; j++) {
			CHECK(task->deps[j] < spec->ntasks);
			CHECK(task->deps[j] != i);
			for (k = 0; k < j; k++)
				CHECK(task->deps[k] != task->deps[j]);
		}
	}
	check_acyclic(spec);
}

static void check_diags(const tlm_diags *diags)
{
	size_t i;

	CHECK(diags->count <= TLM_SPEC_MAX_DIAGS);
	CHECK(diags->count <= diags->capacity);
	for (i = 0; i < diags->count; i++) {
		const tlm_diag *d = &diags->items[i];

		CHECK(touch(d->rule) > 0);
		CHECK(touch(d->message) > 0);
		if (i > 0) {
			const tlm_pos p = diags->items[i - 1].pos;

			CHECK(p.line < d->pos.line ||
			      (p.line == d->pos.line && p.col <= d->pos.col));
		}
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	tlm_spec *spec = NULL;
	tlm_diags diags = TLM_DIAGS_INIT;
	tlm_error err = TLM_ERROR_INIT;
	int rc;

	rc = tlm_spec_parse(&spec, "fuzz.yaml", (const char *)data, size, &diags, &err);
	check_diags(&diags);
	if (rc == 0) {
		CHECK(spec != NULL);
		CHECK(diags.count == 0 && diags.dropped == 0);
		check_spec(spec);
	} else {
		CHECK(spec == NULL);
		CHECK(rc < 0);
		if (rc == TLM_EINVALID)
			CHECK(diags.count > 0);
		else
			CHECK(err.message[0] != '\0');
	}
	tlm_spec_free(spec);
	tlm_diags_clear(&diags);
	CHECK(diags.count == 0);
	return 0;
}
