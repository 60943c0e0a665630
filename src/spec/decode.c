/* Tree -> model: shapes, keys, scalar values and defaults.  References
 * between objects are resolved afterwards (resolve.c), once every name is
 * known. */
#include <stdio.h>
#include <string.h>

#include "spec/spec_internal.h"
#include "telemachy/journal.h"

#define TIMEOUT_MAX 31536000L /* one year, in seconds */

/* An agent is created as tlm-<run id>-a-<name>, a team as tlm-<run id>-t-<name>
 * (src/engine/engine.c): the name limit keeps those within the journal's
 * names (and the control plane's 256). */
_Static_assert(sizeof("tlm-") - 1 + TLM_JOURNAL_RUN_ID_LEN + sizeof("-a-") - 1 +
			       TLM_SPEC_NAME_MAX <=
		       TLM_JOURNAL_NAME_MAX,
	       "agent and team names must fit the journal's resource names");

/* What an agent's create request holds besides its program, args, working
 * directory, model, image and env (src/engine/provision.c, agent_body): keys,
 * name and label, a taskDescription quoting up to 100 bytes of the workflow
 * name (6 bytes each at worst, escaped), owner, tags, cpus, memory.  A bound,
 * well above the real size. */
#define AGENT_BODY_REST 2048

static const char *const top_keys[] = { "apiVersion", "metadata",        "agents", "teams",
					"teardown",   "timeout_seconds", "hooks",  NULL };
static const char *const agent_keys[] = { "name",         "program",     "args",
					  "model",        "working_dir", "runtime",
					  "docker_image", "cpus",        "memory",
					  "env",          NULL };
static const char *const team_keys[] = { "name", "agents", "tasks", NULL };
static const char *const task_keys[] = { "subject",    "description",     "assign_to",
					 "blocked_by", "timeout_seconds", "retries",
					 NULL };
static const char *const runtime_names[] = { "local", "docker", NULL };
static const char *const teardown_names[] = { "on_completion", "on_failure", "always", "never",
					      NULL };

static int valid_name(const char *s)
{
	size_t n = strlen(s);

	return n >= 1 && n <= TLM_SPEC_NAME_MAX &&
	       strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-") == n;
}

static int valid_env_name(const char *s)
{
	size_t n = strlen(s);

	return n >= 1 && !(s[0] >= '0' && s[0] <= '9') &&
	       strspn(s, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_") == n;
}

/* "512m", "4g", "2Gi", "1GiB": binary units, as docker reads them. */
static int parse_memory(const char *s, uint64_t *bytes)
{
	uint64_t v = 0;
	const char *p = s;
	int shift;

	for (; *p >= '0' && *p <= '9'; p++) {
		if (v > (UINT64_MAX - 9) / 10)
			return -1;
		v = v * 10 + (uint64_t)(*p - '0');
	}
	if (p == s || v == 0)
		return -1;
	switch (*p | 0x20) {
	case 'k': shift = 10; break;
	case 'm': shift = 20; break;
	case 'g': shift = 30; break;
	case 't': shift = 40; break;
	default: return -1;
	}
	p++;
	if (*p == 'i' || *p == 'I')
		p++;
	if (*p == 'b' || *p == 'B')
		p++;
	if (*p != '\0' || v > (UINT64_MAX >> shift))
		return -1;
	*bytes = v << shift;
	return 0;
}

/* Copies a list of scalars into an arena array of strings. */
static const char **scalar_list(tlm_spec_ctx *ctx, const tlm_node *seq, const char *what,
				size_t *count)
{
	const tlm_node *v;
	const char **out;
	uint32_t i;

	*count = 0;
	if (!tlm_field__is_seq(ctx, seq, what))
		return NULL;
	out = tlm_arena_calloc(ctx->spec->arena, seq->n, sizeof(*out));
	if (out == NULL) {
		ctx->oom = 1;
		return NULL;
	}
	for (i = 0, v = tlm_node__first(seq); i < seq->n; i++, v = tlm_node__next(v))
		if (tlm_field__scalar(ctx, v, what, &out[*count]) == 0)
			(*count)++;
	return out;
}

/* A map of scalars (env, labels) into key/value pairs; `skip` are keys that
 * are not part of it (metadata's own keys). */
static tlm_spec_kv *scalar_map(tlm_spec_ctx *ctx, const tlm_node *map, const char *container,
			       const char *what, const char *const *skip, int env, size_t *count)
{
	const tlm_node *k, *v;
	tlm_spec_kv *out;
	uint32_t i;

	*count = 0;
	if (!tlm_field__is_map(ctx, map, container))
		return NULL;
	tlm_field__keys(ctx, map, container, NULL);
	out = tlm_arena_calloc(ctx->spec->arena, map->n, sizeof(*out));
	if (out == NULL) {
		ctx->oom = 1;
		return NULL;
	}
	for (i = 0, k = tlm_node__first(map); i < map->n; i++, k = tlm_node__next(v)) {
		const char *const *s;
		tlm_spec_kv *kv = &out[*count];
		char label[128];

		v = tlm_node__next(k);
		if (k->kind != TLM_NODE_SCALAR)
			continue;
		for (s = skip; s && *s && strcmp(*s, k->u.str) != 0; s++)
			;
		if (s && *s)
			continue;
		if (env && !valid_env_name(k->u.str)) {
			tlm_spec__report(ctx, k, "env-name",
					 "environment variable name \"%s\" must match "
					 "[A-Za-z_][A-Za-z0-9_]*",
					 k->u.str);
			continue;
		}
		snprintf(label, sizeof(label), "%s \"%.64s\"", what, k->u.str);
		if (tlm_field__scalar(ctx, v, label, &kv->value) != 0)
			continue;
		kv->key = k->u.str;
		kv->pos = tlm_node__pos(k);
		(*count)++;
	}
	return out;
}

/* A value over the length a run can send or journal: reported at it. */
static void check_length(tlm_spec_ctx *ctx, const tlm_node *map, const char *key, const char *what,
			 size_t max, const char *whose)
{
	const tlm_node *v = tlm_node__get(map, key);

	if (v != NULL && v->kind == TLM_NODE_SCALAR && v->type == TLM_SCALAR_STR && v->n > max)
		tlm_spec__report(ctx, v, "too-long",
				 "\"%s\" of %s is %u bytes long; %s accepts at most %zu", key, what,
				 v->n, whose, max);
}

/* A list or map with more entries than a run can send: reported at it. */
static void check_count(tlm_spec_ctx *ctx, const tlm_node *list, const char *key, const char *what,
			size_t max, const char *whose)
{
	if (list != NULL && list->kind != TLM_NODE_SCALAR && list->n > max)
		tlm_spec__report(ctx, list, "too-many",
				 "\"%s\" of %s has %u entries; %s accepts at most %zu", key, what,
				 list->n, whose, max);
}

/* Bytes of s as a JSON string, quotes included, as jansson writes it. */
static size_t json_len(const char *s)
{
	size_t n = 2;

	for (; s != NULL && *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (c == '"' || c == '\\' || c == '\b' || c == '\f' || c == '\n' || c == '\r' ||
		    c == '\t')
			n += 2;
		else if (c < 0x20)
			n += 6; /* \u00XX */
		else
			n += 1;
	}
	return n;
}

/* The agent's create request must fit the control plane's body limit; args
 * and env are what can make it big. */
static void check_request(tlm_spec_ctx *ctx, const tlm_node *map, const char *what,
			  const tlm_spec_agent *a)
{
	size_t args = 0, env = 0, i, total;

	for (i = 0; i < a->nargs; i++)
		args += json_len(a->args[i]) + 1;
	for (i = 0; i < a->nenv; i++)
		env += json_len(a->env[i].key) + json_len(a->env[i].value) + 2;
	total = AGENT_BODY_REST + args + env + json_len(a->program) + json_len(a->working_dir) +
		json_len(a->model) + json_len(a->docker_image);
	if (total > TLM_SPEC_REQUEST_MAX)
		tlm_spec__report(ctx, map, "request-size",
				 "%s would be created with a request of %zu bytes (\"args\" %zu "
				 "and \"env\" %zu as JSON); the control plane accepts at most %zu: "
				 "pass large data in a file",
				 what, total, args, env, TLM_SPEC_REQUEST_MAX);
}

static void decode_name(tlm_spec_ctx *ctx, const tlm_node *map, const char *kind, const char *what,
			const char **name)
{
	if (tlm_field__string(ctx, map, "name", what, 1, name) != 0)
		return;
	if (!valid_name(*name)) {
		tlm_spec__report(ctx, tlm_node__get(map, "name"), "name-format",
				 "%s name \"%s\" must be 1 to %d characters of A-Z a-z 0-9 . _ -",
				 kind, *name, TLM_SPEC_NAME_MAX);
		*name = NULL;
	}
}

static void decode_memory(tlm_spec_ctx *ctx, const tlm_node *map, const char *what,
			  tlm_spec_agent *a)
{
	const tlm_node *v = tlm_node__get(map, "memory");

	if (v == NULL)
		return;
	if (v->kind != TLM_NODE_SCALAR ||
	    (v->type != TLM_SCALAR_STR && v->type != TLM_SCALAR_INT) ||
	    parse_memory(v->u.str, &a->memory_bytes) != 0) {
		tlm_spec__report(ctx, v, "memory-format",
				 "\"memory\" of %s must be a size with a unit k, m, g or t "
				 "(e.g. \"512m\", \"4g\"), got %s%s%s",
				 what, v->kind == TLM_NODE_SCALAR ? "\"" : "",
				 v->kind == TLM_NODE_SCALAR ? v->u.str : tlm_node__kind_name(v),
				 v->kind == TLM_NODE_SCALAR ? "\"" : "");
		return;
	}
	a->memory = v->u.str;
}

static void decode_agent(tlm_spec_ctx *ctx, const tlm_node *map, size_t idx, tlm_spec_agent *a)
{
	char what[TLM_SPEC_NAME_MAX + 32];
	const tlm_node *v;
	const char *name = NULL;
	long cpus = 2;
	int runtime = TLM_RUNTIME_LOCAL;

	a->pos = tlm_node__pos(map);
	a->program = "claude-code";
	a->working_dir = "/tmp";
	a->memory = "4g";
	a->memory_bytes = (uint64_t)4 << 30;
	snprintf(what, sizeof(what), "agents[%zu]", idx);
	decode_name(ctx, map, "agent", what, &name);
	if (name != NULL)
		snprintf(what, sizeof(what), "agent \"%s\"", name);
	a->name = name;
	tlm_field__keys(ctx, map, what, agent_keys);
	tlm_field__string(ctx, map, "program", what, 0, &a->program);
	if ((v = tlm_node__get(map, "args")) != NULL)
		a->args = scalar_list(ctx, v, "\"args\" entries", &a->nargs);
	tlm_field__string(ctx, map, "model", what, 0, &a->model);
	if (tlm_field__string(ctx, map, "working_dir", what, 0, &a->working_dir) == 0 &&
	    a->working_dir[0] != '/')
		tlm_spec__report(ctx, tlm_node__get(map, "working_dir"), "working-dir",
				 "\"working_dir\" of %s must be an absolute path, got \"%s\"", what,
				 a->working_dir);
	tlm_field__enum(ctx, map, "runtime", what, runtime_names, &runtime);
	a->runtime = (tlm_runtime)runtime;
	v = tlm_node__get(map, "docker_image");
	if (tlm_field__string(ctx, map, "docker_image", what, 0, &a->docker_image) == 0 &&
	    a->runtime != TLM_RUNTIME_DOCKER)
		tlm_spec__report(
			ctx, v, "docker-image",
			"\"docker_image\" of %s needs runtime: docker; remove it or set the runtime",
			what);
	else if (v == NULL && a->runtime == TLM_RUNTIME_DOCKER)
		tlm_spec__report(
			ctx, map, "docker-image",
			"%s has runtime: docker but no \"docker_image\"; add the image to run",
			what);
	tlm_field__int(ctx, map, "cpus", what, TLM_SPEC_CPUS_MIN, TLM_SPEC_CPUS_MAX, &cpus);
	a->cpus = (int)cpus;
	decode_memory(ctx, map, what, a);
	if ((v = tlm_node__get(map, "env")) != NULL) {
		a->env = scalar_map(ctx, v, "\"env\"", "environment variable", NULL, 1, &a->nenv);
		check_count(ctx, v, "env", what, TLM_SPEC_ENV_MAX, "the control plane");
	}
	check_count(ctx, tlm_node__get(map, "args"), "args", what, TLM_SPEC_ARGS_MAX,
		    "the control plane");
	check_length(ctx, map, "program", what, TLM_SPEC_PROGRAM_MAX, "the control plane");
	check_length(ctx, map, "model", what, TLM_SPEC_MODEL_MAX, "the control plane");
	check_length(ctx, map, "working_dir", what, TLM_SPEC_WORKING_DIR_MAX, "the control plane");
	check_length(ctx, map, "docker_image", what, TLM_SPEC_IMAGE_MAX, "the control plane");
	check_request(ctx, map, what, a);
}

static void decode_task(tlm_spec_ctx *ctx, const tlm_node *map, size_t team, size_t ti, size_t idx)
{
	tlm_spec_task *t = &ctx->spec->tasks[ti];
	const char *team_name = ctx->spec->teams[team].name;
	char what[TLM_SPEC_SUBJECT_MAX + TLM_SPEC_NAME_MAX + 32];
	const tlm_node *v;
	long timeout = 0, retries = 0;

	t->pos = tlm_node__pos(map);
	t->team = team;
	t->agent = (size_t)-1;
	snprintf(what, sizeof(what), "tasks[%zu] of team \"%s\"", idx, team_name ? team_name : "?");
	if (tlm_field__string(ctx, map, "subject", what, 1, &t->subject) == 0) {
		if (strlen(t->subject) > TLM_SPEC_SUBJECT_MAX)
			tlm_spec__report(ctx, tlm_node__get(map, "subject"), "too-long",
					 "subject of %s is longer than %d bytes", what,
					 TLM_SPEC_SUBJECT_MAX);
		else
			snprintf(what, sizeof(what), "task \"%s\"", t->subject);
	}
	tlm_field__keys(ctx, map, what, task_keys);
	if (tlm_field__string(ctx, map, "description", what, 1, &t->description) == 0 &&
	    strlen(t->description) > TLM_SPEC_DESCRIPTION_MAX)
		tlm_spec__report(ctx, tlm_node__get(map, "description"), "too-long",
				 "description of %s is longer than %d bytes", what,
				 TLM_SPEC_DESCRIPTION_MAX);
	if ((v = tlm_node__get(map, "assign_to")) != NULL) {
		const char *unused;

		if (tlm_field__string(ctx, map, "assign_to", what, 0, &unused) == 0)
			ctx->assign_to[ti] = v;
	}
	if ((v = tlm_node__get(map, "blocked_by")) != NULL &&
	    tlm_field__is_seq(ctx, v, "\"blocked_by\"")) {
		ctx->blocked_by[ti] = v;
		check_count(ctx, v, "blocked_by", what, TLM_SPEC_BLOCKED_BY_MAX,
			    "the control plane");
	}
	tlm_field__int(ctx, map, "timeout_seconds", what, 1, TIMEOUT_MAX, &timeout);
	tlm_field__int(ctx, map, "retries", what, 0, TLM_SPEC_RETRIES_MAX, &retries);
	t->timeout_seconds = timeout;
	t->retries = (int)retries;
}

static void decode_team(tlm_spec_ctx *ctx, const tlm_node *map, size_t idx, size_t *ntasks)
{
	tlm_spec_team *tm = &ctx->spec->teams[idx];
	char what[TLM_SPEC_NAME_MAX + 32];
	const tlm_node *tasks, *t;
	uint32_t i;

	tm->pos = tlm_node__pos(map);
	snprintf(what, sizeof(what), "teams[%zu]", idx);
	decode_name(ctx, map, "team", what, &tm->name);
	if (tm->name != NULL)
		snprintf(what, sizeof(what), "team \"%s\"", tm->name);
	tlm_field__keys(ctx, map, what, team_keys);
	ctx->members[idx] = tlm_node__get(map, "agents");
	if (ctx->members[idx] && !tlm_field__is_seq(ctx, ctx->members[idx], "\"agents\" of a team"))
		ctx->members[idx] = NULL;
	check_count(ctx, ctx->members[idx], "agents", what, TLM_SPEC_MEMBERS_MAX,
		    "the control plane");
	tm->first_task = *ntasks;
	tasks = tlm_node__get(map, "tasks");
	if (tasks == NULL || !tlm_field__is_seq(ctx, tasks, "\"tasks\""))
		return;
	for (i = 0, t = tlm_node__first(tasks); i < tasks->n; i++, t = tlm_node__next(t)) {
		if (!tlm_field__is_map(ctx, t, "a task"))
			continue;
		decode_task(ctx, t, idx, (*ntasks)++, i);
		tm->ntasks++;
	}
}

static size_t count_maps(const tlm_node *seq)
{
	const tlm_node *v;
	size_t n = 0;
	uint32_t i;

	for (i = 0, v = tlm_node__first(seq); i < seq->n; i++, v = tlm_node__next(v))
		n += v->kind == TLM_NODE_MAP;
	return n;
}

static size_t count_tasks(const tlm_node *teams)
{
	const tlm_node *team;
	size_t n = 0;
	uint32_t i;

	for (i = 0, team = tlm_node__first(teams); i < teams->n; i++, team = tlm_node__next(team)) {
		const tlm_node *t = tlm_node__get(team, "tasks");

		if (t != NULL && t->kind == TLM_NODE_SEQ)
			n += count_maps(t);
	}
	return n;
}

static void *alloc_array(tlm_spec_ctx *ctx, tlm_arena *a, size_t n, size_t size)
{
	void *p = tlm_arena_calloc(a, n ? n : 1, size);

	if (p == NULL)
		ctx->oom = 1;
	return p;
}

static void decode_agents(tlm_spec_ctx *ctx, const tlm_node *seq)
{
	tlm_spec *s = ctx->spec;
	const tlm_node *v;
	uint32_t i;

	if (!tlm_field__is_seq(ctx, seq, "\"agents\""))
		return;
	s->agents = alloc_array(ctx, s->arena, count_maps(seq), sizeof(*s->agents));
	if (s->agents == NULL)
		return;
	for (i = 0, v = tlm_node__first(seq); i < seq->n; i++, v = tlm_node__next(v))
		if (tlm_field__is_map(ctx, v, "an agent"))
			decode_agent(ctx, v, i, &s->agents[s->nagents++]);
}

static void decode_teams(tlm_spec_ctx *ctx, const tlm_node *seq)
{
	tlm_spec *s = ctx->spec;
	const tlm_node *v;
	size_t nteams, ntasks;
	uint32_t i;

	if (!tlm_field__is_seq(ctx, seq, "\"teams\""))
		return;
	nteams = count_maps(seq);
	ntasks = count_tasks(seq);
	s->teams = alloc_array(ctx, s->arena, nteams, sizeof(*s->teams));
	s->tasks = alloc_array(ctx, s->arena, ntasks, sizeof(*s->tasks));
	ctx->members = alloc_array(ctx, ctx->scratch, nteams, sizeof(*ctx->members));
	ctx->assign_to = alloc_array(ctx, ctx->scratch, ntasks, sizeof(*ctx->assign_to));
	ctx->blocked_by = alloc_array(ctx, ctx->scratch, ntasks, sizeof(*ctx->blocked_by));
	if (ctx->oom)
		return;
	for (i = 0, v = tlm_node__first(seq); i < seq->n; i++, v = tlm_node__next(v))
		if (tlm_field__is_map(ctx, v, "a team"))
			decode_team(ctx, v, s->nteams++, &s->ntasks);
}

static void decode_metadata(tlm_spec_ctx *ctx, const tlm_node *root)
{
	static const char *const own[] = { "name", "description", NULL };
	const tlm_node *md = tlm_node__get(root, "metadata");
	tlm_spec *s = ctx->spec;

	if (md == NULL) {
		tlm_spec__report(
			ctx, root, "required",
			"the workflow is missing required key \"metadata\" (with a \"name\")");
		return;
	}
	if (!tlm_field__is_map(ctx, md, "\"metadata\""))
		return;
	if (tlm_field__string(ctx, md, "name", "\"metadata\"", 1, &s->name) == 0)
		check_length(ctx, md, "name", "\"metadata\"", TLM_SPEC_WORKFLOW_NAME_MAX,
			     "the journal");
	tlm_field__string(ctx, md, "description", "\"metadata\"", 0, &s->description);
	s->labels = scalar_map(ctx, md, "\"metadata\"", "metadata label", own, 0, &s->nlabels);
}

static void decode_api_version(tlm_spec_ctx *ctx, const tlm_node *root)
{
	const tlm_node *v = tlm_node__get(root, "apiVersion");
	const char *s = NULL;

	if (tlm_field__string(ctx, root, "apiVersion", "the workflow", 1, &s) == 0 &&
	    strcmp(s, TLM_SPEC_API_VERSION) != 0)
		tlm_spec__report(ctx, v, "api-version",
				 "apiVersion \"%s\" is not supported; use \"%s\"", s,
				 TLM_SPEC_API_VERSION);
}

void tlm_spec__decode(tlm_spec_ctx *ctx, const tlm_node *root)
{
	tlm_spec *s = ctx->spec;
	const tlm_node *v;
	long timeout = 0;
	int teardown = TLM_TEARDOWN_ON_COMPLETION;

	if (root == NULL || (root->kind == TLM_NODE_SCALAR && root->type == TLM_SCALAR_NULL)) {
		tlm_spec__report(ctx, root, "required",
				 "the file is empty; a workflow needs apiVersion and metadata");
		return;
	}
	if (!tlm_field__is_map(ctx, root, "the workflow"))
		return;
	tlm_field__keys(ctx, root, "the workflow", top_keys);
	decode_api_version(ctx, root);
	decode_metadata(ctx, root);
	if ((v = tlm_node__get(root, "agents")) != NULL)
		decode_agents(ctx, v);
	if ((v = tlm_node__get(root, "teams")) != NULL)
		decode_teams(ctx, v);
	tlm_field__enum(ctx, root, "teardown", "the workflow", teardown_names, &teardown);
	s->teardown = (tlm_teardown)teardown;
	tlm_field__int(ctx, root, "timeout_seconds", "the workflow", 1, TIMEOUT_MAX, &timeout);
	s->timeout_seconds = timeout;
	if ((v = tlm_node__get(root, "hooks")) != NULL)
		tlm_spec__decode_hooks(ctx, v);
}

const char *tlm_runtime_name(tlm_runtime r)
{
	return r == TLM_RUNTIME_DOCKER ? "docker" : "local";
}

const char *tlm_teardown_name(tlm_teardown t)
{
	return teardown_names[t <= TLM_TEARDOWN_NEVER ? t : 0];
}
