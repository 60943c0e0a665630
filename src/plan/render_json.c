/* The plan as JSON, built with jansson.  json_object_set_new() and
 * json_array_append_new() take ownership of their value even on failure and
 * fail on a NULL value, so each builder ORs their results into one flag
 * instead of checking every allocation separately. */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>

#include "plan/plan_internal.h"

/* A JSON string, or null for a NULL s.  NULL when s is not valid UTF-8. */
static json_t *str_or_null(const char *s)
{
	return s ? json_string(s) : json_null();
}

/* A positive count of seconds, or null for 0 ("no timeout"). */
static json_t *seconds_or_null(long s)
{
	return s > 0 ? json_integer((json_int_t)s) : json_null();
}

/* {key: value, ...} in spec order; NULL on failure. */
static json_t *kv_object(const tlm_spec_kv *kv, size_t n)
{
	json_t *o = json_object();
	int bad = o == NULL;
	size_t i;

	for (i = 0; i < n; i++)
		bad |= json_object_set_new(o, kv[i].key, json_string(kv[i].value));
	if (bad) {
		json_decref(o);
		return NULL;
	}
	return o;
}

static json_t *agent_json(const tlm_spec_agent *a)
{
	json_t *o = json_object(), *args = json_array();
	int bad = o == NULL;
	size_t k;

	for (k = 0; k < a->nargs; k++)
		bad |= json_array_append_new(args, json_string(a->args[k]));
	bad |= json_object_set_new(o, "name", json_string(a->name));
	bad |= json_object_set_new(o, "program", json_string(a->program));
	bad |= json_object_set_new(o, "args", args);
	bad |= json_object_set_new(o, "model", str_or_null(a->model));
	bad |= json_object_set_new(o, "working_dir", str_or_null(a->working_dir));
	bad |= json_object_set_new(o, "runtime", json_string(tlm_runtime_name(a->runtime)));
	bad |= json_object_set_new(o, "docker_image", str_or_null(a->docker_image));
	bad |= json_object_set_new(o, "cpus", json_integer(a->cpus));
	bad |= json_object_set_new(o, "memory", str_or_null(a->memory));
	/* jansson integers are signed 64-bit; no real memory size comes close */
	bad |= json_object_set_new(
		o, "memory_bytes",
		a->memory_bytes <= INT64_MAX ? json_integer((json_int_t)a->memory_bytes) : NULL);
	bad |= json_object_set_new(o, "env", kv_object(a->env, a->nenv));
	if (bad) {
		json_decref(o);
		return NULL;
	}
	return o;
}

/* ids[i] = "team/subject" of task i, built once and shared by reference
 * wherever a task is named, which keeps the document linear in the spec. */
static json_t **task_ids(const tlm_plan *p)
{
	size_t n = p->spec->ntasks, i;
	json_t **ids = tlm_plan__alloc(n, sizeof(json_t *));

	if (ids == NULL)
		return NULL;
	for (i = 0; i < n; i++) {
		ids[i] =
			json_sprintf("%s/%s", tlm_plan__team_name(p, i), p->spec->tasks[i].subject);
		if (ids[i] == NULL) {
			while (i-- > 0)
				json_decref(ids[i]);
			free(ids);
			return NULL;
		}
	}
	return ids;
}

static void free_ids(json_t **ids, size_t n)
{
	size_t i;

	for (i = 0; ids && i < n; i++)
		json_decref(ids[i]);
	free(ids);
}

static json_t *task_json(const tlm_plan *p, size_t i, json_t **ids)
{
	const tlm_spec_task *t = &p->spec->tasks[i];
	json_t *o = json_object(), *deps = json_array();
	int bad = o == NULL;
	size_t k;

	for (k = 0; k < t->ndeps; k++)
		bad |= json_array_append(deps, ids[t->deps[k]]);
	bad |= json_object_set(o, "id", ids[i]);
	bad |= json_object_set_new(o, "team", json_string(tlm_plan__team_name(p, i)));
	bad |= json_object_set_new(o, "subject", json_string(t->subject));
	bad |= json_object_set_new(o, "description", str_or_null(t->description));
	bad |= json_object_set_new(o, "assign_to", json_string(p->spec->agents[t->agent].name));
	bad |= json_object_set_new(o, "blocked_by", deps);
	bad |= json_object_set_new(o, "wave", json_integer((json_int_t)p->wave[i]));
	bad |= json_object_set_new(o, "timeout_seconds", seconds_or_null(t->timeout_seconds));
	bad |= json_object_set_new(o, "retries", json_integer(t->retries));
	if (bad) {
		json_decref(o);
		return NULL;
	}
	return o;
}

static json_t *team_json(const tlm_spec *spec, const tlm_spec_team *team)
{
	json_t *o = json_object(), *members = json_array(), *tasks = json_array();
	int bad = o == NULL;
	size_t k;

	for (k = 0; k < team->nagents; k++)
		bad |= json_array_append_new(members,
					     json_string(spec->agents[team->agents[k]].name));
	for (k = 0; k < team->ntasks; k++)
		bad |= json_array_append_new(
			tasks, json_string(spec->tasks[team->first_task + k].subject));
	bad |= json_object_set_new(o, "name", json_string(team->name));
	bad |= json_object_set_new(o, "agents", members);
	bad |= json_object_set_new(o, "tasks", tasks);
	if (bad) {
		json_decref(o);
		return NULL;
	}
	return o;
}

static json_t *workflow_json(const tlm_spec *spec)
{
	json_t *o = json_object();
	int bad = o == NULL;

	bad |= json_object_set_new(o, "name", json_string(spec->name));
	bad |= json_object_set_new(o, "description", str_or_null(spec->description));
	bad |= json_object_set_new(o, "labels", kv_object(spec->labels, spec->nlabels));
	bad |= json_object_set_new(o, "file", str_or_null(spec->path));
	if (bad) {
		json_decref(o);
		return NULL;
	}
	return o;
}

/* The three arrays indexed like the spec: agents, teams, tasks. */
static int add_lists(json_t *root, const tlm_plan *p, json_t **ids)
{
	const tlm_spec *spec = p->spec;
	json_t *agents = json_array(), *teams = json_array(), *tasks = json_array();
	int bad = 0;
	size_t i;

	for (i = 0; i < spec->nagents; i++)
		bad |= json_array_append_new(agents, agent_json(&spec->agents[i]));
	for (i = 0; i < spec->nteams; i++)
		bad |= json_array_append_new(teams, team_json(spec, &spec->teams[i]));
	for (i = 0; i < spec->ntasks; i++)
		bad |= json_array_append_new(tasks, task_json(p, i, ids));
	bad |= json_object_set_new(root, "agents", agents);
	bad |= json_object_set_new(root, "teams", teams);
	bad |= json_object_set_new(root, "tasks", tasks);
	return bad;
}

static int add_waves(json_t *root, const tlm_plan *p, json_t **ids)
{
	json_t *waves = json_array();
	int bad = 0;
	size_t w, k;

	for (w = 0; w < p->nwaves; w++) {
		json_t *wave = json_array();

		for (k = p->wave_start[w]; k < p->wave_start[w + 1]; k++)
			bad |= json_array_append(wave, ids[p->order[k]]);
		bad |= json_array_append_new(waves, wave);
	}
	bad |= json_object_set_new(root, "waves", waves);
	return bad;
}

int tlm_plan_render_json(const tlm_plan *plan, FILE *out, tlm_error *err)
{
	const tlm_spec *spec = plan->spec;
	json_t *root = json_object(), **ids = task_ids(plan);
	int bad = root == NULL || ids == NULL, rc;

	if (!bad) {
		bad |= json_object_set_new(root, "apiVersion", json_string(TLM_SPEC_API_VERSION));
		bad |= json_object_set_new(root, "workflow", workflow_json(spec));
		bad |= json_object_set_new(root, "teardown",
					   json_string(tlm_teardown_name(spec->teardown)));
		bad |= json_object_set_new(root, "timeout_seconds",
					   seconds_or_null(spec->timeout_seconds));
		bad |= add_lists(root, plan, ids);
		bad |= add_waves(root, plan, ids);
	}
	if (bad) {
		rc = tlm_error_set(
			err, TLM_ERROR,
			"building the JSON plan failed (out of memory or invalid UTF-8)");
		goto done;
	}
	if (json_dumpf(root, out, JSON_INDENT(2)) != 0 || fputc('\n', out) == EOF) {
		rc = tlm_error_set(err, TLM_ERROR, "writing the json plan failed");
		goto done;
	}
	rc = tlm_plan__check_stream(out, "json", err);
done:
	free_ids(ids, spec->ntasks);
	json_decref(root);
	return rc;
}
