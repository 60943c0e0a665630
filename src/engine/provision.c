/* Provisioning (DESIGN §4.3–4.4): agents, then teams, at most max_concurrent
 * requests in flight.  The write-ahead order: a wave's intents are durable
 * before its first create leaves; a remote id is durable before the next
 * request about it (the start).  A create whose outcome is unknown is
 * resolved by name, never re-posted blindly (tlm_client_create). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/engine_internal.h"

static const char *kind_name(const eng_res *r)
{
	return r->kind == TLM_CLIENT_AGENT ? "agent" : "team";
}

static tlm_journal_kind jkind(const eng_res *r)
{
	return r->kind == TLM_CLIENT_AGENT ? TLM_JOURNAL_AGENT : TLM_JOURNAL_TEAM;
}

static const char *spec_name(const eng_res *r)
{
	const tlm_spec *s = r->e->spec;

	return r->kind == TLM_CLIENT_AGENT ? s->agents[r->idx].name : s->teams[r->idx].name;
}

static json_t *agent_body(eng *e, const tlm_spec_agent *a)
{
	json_t *b = json_object(), *args = json_array(), *env;
	char desc[256], mem[32];
	size_t i;

	for (i = 0; i < a->nargs; i++)
		json_array_append_new(args, json_string(a->args[i]));
	snprintf(desc, sizeof(desc), "telemachy run %s of workflow %.100s: agent %s", e->run_id,
		 e->spec->name, a->name);
	/* programArgs is an array, never one string (LESSONS 15); a dry run
	 * executes nothing. */
	json_object_set_new(b, "label", json_string(a->name));
	json_object_set_new(b, "program", json_string(e->o->dry_run ? "none" : a->program));
	json_object_set_new(b, "programArgs", args);
	json_object_set_new(b, "workingDirectory", json_string(a->working_dir));
	json_object_set_new(b, "taskDescription", json_string(desc));
	json_object_set_new(b, "owner", json_string("telemachy"));
	json_object_set_new(b, "tags", json_pack("[s,s]", "telemachy", e->run_id));
	if (a->model != NULL)
		json_object_set_new(b, "model", json_string(a->model));
	if (a->runtime == TLM_RUNTIME_DOCKER && !e->o->dry_run) {
		json_object_set_new(b, "host", json_string("docker"));
		json_object_set_new(b, "image", json_string(a->docker_image));
		json_object_set_new(b, "cpus", json_integer(a->cpus));
		/* In bytes: "2Gi" is valid in a spec but not to docker's --memory. */
		snprintf(mem, sizeof(mem), "%llu", (unsigned long long)a->memory_bytes);
		json_object_set_new(b, "memory", json_string(mem));
	}
	if (a->nenv > 0) {
		env = json_object();
		for (i = 0; i < a->nenv; i++)
			json_object_set_new(env, a->env[i].key, json_string(a->env[i].value));
		json_object_set_new(b, "env", env);
	}
	return b;
}

static json_t *team_body(eng *e, const tlm_spec_team *t)
{
	json_t *ids = json_array();
	size_t i;

	for (i = 0; i < t->nagents; i++)
		json_array_append_new(ids, json_string(e->agents[t->agents[i]].id));
	return json_pack("{s:o}", "agentIds", ids);
}

static json_t *res_body(eng_res *r)
{
	const tlm_spec *s = r->e->spec;

	return r->kind == TLM_CLIENT_AGENT ? agent_body(r->e, &s->agents[r->idx])
					   : team_body(r->e, &s->teams[r->idx]);
}

static void on_started(void *ctx, const tlm_client_result *res)
{
	eng_res *r = ctx;
	eng *e = r->e;
	tlm_error err = TLM_ERROR_INIT;

	if (res->outcome != TLM_CLIENT_DONE) {
		r->st = RES_FAILED;
		e->prov_failed = 1;
		tlm_eng__fail(e,
			      "agent %s: start failed: %s (it exists and is deleted at teardown)",
			      spec_name(r), res->err->message);
		return;
	}
	r->st = RES_READY;
	e->agents_ready++;
	tlm_eng__journal_check(e,
			       tlm_journal_set_resource_state(e->j, e->run_id, TLM_JOURNAL_AGENT,
							      r->name, TLM_JOURNAL_STARTED, NULL,
							      &err),
			       &err);
	tlm_eng__log(e, TLM_ENGINE_INFO, "agent %s started", spec_name(r));
}

static void start_agent(eng_res *r)
{
	eng *e = r->e;
	tlm_error err = TLM_ERROR_INIT;
	char path[TLM_JOURNAL_TEXT_MAX + 64];

	snprintf(path, sizeof(path), "/v1/agents/%s/start", r->id);
	r->st = RES_BUSY;
	if (tlm_client_submit(e->c, "POST", path, NULL, TLM_CLIENT_POST_ACTION, on_started, r,
			      &err) != 0) {
		r->st = RES_FAILED;
		e->prov_failed = 1;
		tlm_eng__fail(e, "agent %s: %s", spec_name(r), err.message);
	}
}

/* The id is known: journal it before anything else, then start agents. */
static void adopt(eng_res *r, char *id)
{
	eng *e = r->e;
	tlm_error err = TLM_ERROR_INIT;

	r->id = id;
	r->st = RES_CREATED;
	if (tlm_eng__journal_check(
		    e, tlm_journal_created(e->j, e->run_id, jkind(r), r->name, id, &err), &err) !=
	    0)
		return;
	tlm_eng__log(e, TLM_ENGINE_INFO, "%s %s created as %s (id %s)", kind_name(r), spec_name(r),
		     r->name, id);
	if (r->kind == TLM_CLIENT_TEAM) {
		r->st = RES_READY;
		return;
	}
	if (!e->ending) /* nothing is started once the run decided to end */
		start_agent(r);
}

static void on_created(void *ctx, const tlm_client_result *res)
{
	eng_res *r = ctx;
	eng *e = r->e;
	tlm_client_resource parsed = TLM_CLIENT_RESOURCE_INIT;
	tlm_error err = TLM_ERROR_INIT;
	int rc;

	if (res->outcome == TLM_CLIENT_FAILED) {
		/* Permanent, or never sent: nothing was created. */
		r->st = RES_FAILED;
		e->prov_failed = 1;
		tlm_eng__fail(e, "%s %s: create failed: %s", kind_name(r), spec_name(r),
			      res->err->message);
		(void)tlm_journal_set_resource_state(e->j, e->run_id, jkind(r), r->name,
						     TLM_JOURNAL_ABSENT, res->err->message, &err);
		return;
	}
	rc = res->outcome == TLM_CLIENT_UNKNOWN ? TLM_ERROR
	     : r->kind == TLM_CLIENT_AGENT
		     ? tlm_client__parse_agent_create(&parsed, res->raw, res->raw_len, &err)
		     : tlm_client__parse_team(&parsed, res->raw, res->raw_len, &err);
	if (rc != 0 || parsed.id == NULL) {
		/* It may exist: the loop looks the name up (outside callbacks),
		 * and the server may still be working on it. */
		r->st = RES_UNKNOWN;
		r->settle = 1;
		tlm_eng__log(e, TLM_ENGINE_WARN, "%s %s: %s; looking it up by name", kind_name(r),
			     spec_name(r),
			     res->err != NULL && res->rc != 0 ? res->err->message : err.message);
		tlm_client__resource_clear(&parsed);
		return;
	}
	adopt(r, parsed.id);
	parsed.id = NULL;
	tlm_client__resource_clear(&parsed);
}

static void submit_create(eng_res *r)
{
	eng *e = r->e;
	tlm_error err = TLM_ERROR_INIT;
	json_t *b = res_body(r);
	char *text;

	json_object_set_new(b, "name", json_string(r->name));
	text = json_dumps(b, JSON_COMPACT);
	json_decref(b);
	r->st = RES_BUSY;
	if (text == NULL ||
	    tlm_client_submit(e->c, "POST",
			      r->kind == TLM_CLIENT_AGENT ? "/v1/agents" : "/v1/teams", text,
			      TLM_CLIENT_POST_CREATE, on_created, r, &err) != 0) {
		r->st = RES_FAILED;
		e->prov_failed = 1;
		tlm_eng__fail(e, "%s %s: %s", kind_name(r), spec_name(r),
			      text == NULL ? "out of memory" : err.message);
	}
	free(text);
}

/* Unknown outcomes, one at a time outside the callbacks: look the name up,
 * adopt, or create (once).  Once the run is ending nothing is created: the
 * teardown's sweep by name settles what is still unknown. */
static void resolve_unknown(eng_res *r)
{
	tlm_error err = TLM_ERROR_INIT;
	json_t *b;
	char *id = NULL;
	int rc;

	if (r->e->ending)
		return;
	b = res_body(r);
	rc = tlm_client_create(r->e->c, r->kind, r->name, b,
			       r->settle ? TLM_CLIENT_LOOKUP_FIRST : TLM_CLIENT_LOOKUP_ONCE, &id,
			       &err);
	json_decref(b);
	if (rc == 0) {
		adopt(r, id);
		return;
	}
	r->st = RES_FAILED;
	r->e->prov_failed = 1;
	tlm_eng__fail(r->e, "%s %s: create failed: %s", kind_name(r), spec_name(r), err.message);
}

/* The wave's intents in one transaction (those a resumed run journaled
 * already are skipped). */
static int journal_intents(eng *e, eng_res *items, size_t n)
{
	tlm_error err = TLM_ERROR_INIT;
	const char **names = calloc(n + 1, sizeof(*names));
	size_t i, k = 0;
	int rc;

	if (names == NULL) {
		tlm_eng__fail(e, "out of memory");
		return TLM_ERROR;
	}
	for (i = 0; i < n; i++)
		if (!items[i].journaled)
			names[k++] = items[i].name;
	rc = k == 0 ? 0 : tlm_journal_intents(e->j, e->run_id, jkind(&items[0]), names, k, &err);
	free(names);
	for (i = 0; rc == 0 && i < n; i++)
		items[i].journaled = 1;
	return tlm_eng__journal_check(e, rc, &err);
}

/* A resumed run's agents that exist are started again (idempotent). */
static void start_existing(eng *e, eng_res *items, size_t n)
{
	size_t i;

	for (i = 0; i < n && !e->ending; i++)
		if (items[i].kind == TLM_CLIENT_AGENT && items[i].st == RES_CREATED)
			start_agent(&items[i]);
}

static void provision(eng *e, eng_res *items, size_t n)
{
	size_t next = 0, i;

	if (journal_intents(e, items, n) != 0)
		return;
	start_existing(e, items, n);
	while (!e->abandoned) {
		while (next < n && items[next].st != RES_NEW)
			next++;
		while (!e->ending && next < n && tlm_client_pending(e->c) < e->maxc) {
			submit_create(&items[next++]);
			while (next < n && items[next].st != RES_NEW)
				next++;
		}
		for (i = 0; i < next; i++)
			if (items[i].st == RES_UNKNOWN)
				resolve_unknown(&items[i]);
		if ((next == n || e->ending) && tlm_client_pending(e->c) == 0)
			break;
		tlm_eng__turn(e, ENG_TICK_MS);
	}
}

void tlm_eng__provision_agents(eng *e)
{
	tlm_eng__progress(e, "provisioning");
	provision(e, e->agents, e->spec->nagents);
	/* A failed agent fails the run before any task: the whole wave is
	 * reported (siblings finish), then everything is torn down. */
	if (e->prov_failed)
		e->ending = 1;
}

void tlm_eng__provision_teams(eng *e)
{
	provision(e, e->teams, e->spec->nteams);
	if (e->prov_failed)
		e->ending = 1;
}
