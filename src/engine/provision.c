/* Provisioning (docs/design.md §4): agents, then teams, at most
 * max_concurrent requests in flight.  The write-ahead order: a wave's
 * intents are durable before its first create leaves; a remote id is durable
 * before the next request about it (the start).  A create whose outcome is
 * unknown is resolved by name — asynchronously, with a settle wait for a
 * server that may still be committing it — and never re-posted blindly
 * (docs/lessons.md #3).  Nothing here waits except through the loop. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/engine_internal.h"
#include "util/json.h"

static const char *spec_name(const eng_res *r)
{
	const tlm_spec *s = r->e->spec;

	return r->rs.kind == TLM_JOURNAL_AGENT ? s->agents[r->idx].name : s->teams[r->idx].name;
}

static const char *kind_name(const eng_res *r)
{
	return tlm_journal_kind_name(r->rs.kind);
}

/* The one place a resource's step changes, so prov_busy counts exactly the
 * resources with a request in flight. */
static void set_step(eng_res *r, eng_step step)
{
	int was = r->step == STEP_CREATING || r->step == STEP_RESOLVING || r->step == STEP_STARTING;
	int is = step == STEP_CREATING || step == STEP_RESOLVING || step == STEP_STARTING;

	r->e->prov_busy = r->e->prov_busy - (unsigned)was + (unsigned)is;
	r->step = step;
}

static void failed(eng_res *r)
{
	set_step(r, STEP_FAILED);
	r->e->prov_failed = 1;
	tlm_metrics_resource_failed(tlm_journal_kind_name(r->rs.kind), "create");
}

/* Builds the object or NULL; every set is checked (an allocation that fails
 * must not send a create with fields missing).  Settings the control plane
 * does not keep (probe.c) are left out: the run already mapped, dropped
 * with consent or refused them. */
static json_t *agent_body(eng *e, const tlm_spec_agent *a)
{
	json_t *b = json_object(), *args = json_array(), *env = a->nenv > 0 ? json_object() : NULL;
	char desc[256], mem[32];
	unsigned lost = e->fields_lost; /* not kept (probe.c): not sent */
	int bad = b == NULL || args == NULL || (a->nenv > 0 && env == NULL);
	size_t i;

	for (i = 0; !bad && i < a->nargs; i++)
		bad |= json_array_append_new(args, json_string(a->args[i]));
	/* A control plane that drops `model` (probe.c) still passes
	 * programArgs: two elements, never "--model M" as one. */
	if (!bad && a->model != NULL && (e->fields_lost & TLM_ENGINE_FIELD_MODEL) &&
	    !(e->o->drop_fields & TLM_ENGINE_FIELD_MODEL))
		bad = json_array_append_new(args, json_string("--model")) ||
		      json_array_append_new(args, json_string(a->model));
	for (i = 0; !bad && i < a->nenv; i++)
		bad |= json_object_set_new(env, a->env[i].key, json_string(a->env[i].value));
	snprintf(desc, sizeof(desc), "telemachy run %s of workflow %.100s: agent %s", e->run_id,
		 e->spec->name, a->name);
	/* programArgs is an array, never one string (docs/lessons.md #15); a
	 * dry run executes nothing. */
	bad = bad || json_object_set_new(b, "label", json_string(a->name)) ||
	      json_object_set_new(b, "program", json_string(e->o->dry_run ? "none" : a->program)) ||
	      json_object_set(b, "programArgs", args) ||
	      json_object_set_new(b, "workingDirectory", json_string(a->working_dir)) ||
	      json_object_set_new(b, "taskDescription", json_string(desc)) ||
	      json_object_set_new(b, "owner", json_string("telemachy")) ||
	      json_object_set_new(b, "tags", json_pack("[s,s]", "telemachy", e->run_id)) ||
	      (a->model != NULL && !(lost & TLM_ENGINE_FIELD_MODEL) &&
	       json_object_set_new(b, "model", json_string(a->model))) ||
	      (env != NULL && !(lost & TLM_ENGINE_FIELD_ENV) && json_object_set(b, "env", env));
	if (!bad && a->runtime == TLM_RUNTIME_DOCKER && !e->o->dry_run) {
		/* In bytes: "2Gi" is valid in a spec but not to docker's --memory. */
		snprintf(mem, sizeof(mem), "%llu", (unsigned long long)a->memory_bytes);
		bad = json_object_set_new(b, "host", json_string("docker")) ||
		      (!(lost & TLM_ENGINE_FIELD_IMAGE) &&
		       json_object_set_new(b, "image", json_string(a->docker_image))) ||
		      (!(lost & TLM_ENGINE_FIELD_CPUS) &&
		       json_object_set_new(b, "cpus", json_integer(a->cpus))) ||
		      (!(lost & TLM_ENGINE_FIELD_MEMORY) &&
		       json_object_set_new(b, "memory", json_string(mem)));
	}
	json_decref(args);
	json_decref(env);
	if (bad) {
		json_decref(b);
		return NULL;
	}
	return b;
}

static json_t *team_body(eng *e, const tlm_spec_team *t)
{
	json_t *ids = json_array(), *b;
	size_t i;

	for (i = 0; ids != NULL && i < t->nagents; i++) {
		if (json_array_append_new(ids, json_string(e->agents[t->agents[i]].rs.id)) != 0) {
			json_decref(ids);
			return NULL;
		}
	}
	b = ids != NULL ? json_pack("{s:o}", "agentIds", ids) : NULL;
	return b;
}

/* The create body as text, with the resource's name; NULL out of memory. */
static char *create_text(eng_res *r)
{
	const tlm_spec *s = r->e->spec;
	json_t *b = r->rs.kind == TLM_JOURNAL_AGENT ? agent_body(r->e, &s->agents[r->idx])
						    : team_body(r->e, &s->teams[r->idx]);
	char *text = NULL;

	if (b != NULL && json_object_set_new(b, "name", json_string(r->rs.name)) == 0)
		text = tlm_json_dump_body(b);
	json_decref(b);
	return text;
}

static void on_started(void *ctx, const tlm_client_result *res)
{
	eng_res *r = ctx;
	eng *e = r->e;

	if (res->outcome == TLM_CLIENT_CANCELLED)
		return; /* the client stopped: nothing more to do */

	if (res->outcome != TLM_CLIENT_DONE) {
		failed(r);
		tlm_eng__fail(e,
			      "agent %s: start failed: %s (it exists and is deleted at teardown)",
			      spec_name(r), res->err->message);
		return;
	}
	set_step(r, STEP_DONE);
	if (tlm_eng__res_to(e, &r->rs, TLM_JOURNAL_STARTED, NULL, NULL) != 0)
		return;
	e->agents_ready++;
	tlm_eng__log(e, TLM_ENGINE_INFO, "agent %s started", spec_name(r));
	tlm_eng__progress(e, NULL);
}

static void start_agent(eng_res *r)
{
	eng *e = r->e;
	tlm_error err = TLM_ERROR_INIT;
	char path[ENG_PATH_MAX];

	set_step(r, STEP_STARTING);
	if (tlm_client_path(path, sizeof(path), "/v1/agents/", r->rs.id, "/start", NULL, NULL,
			    &err) != 0 ||
	    tlm_client_submit(e->c, "POST", path, NULL, TLM_CLIENT_POST_ACTION, on_started, r,
			      &err) != 0) {
		failed(r);
		tlm_eng__fail(e, "agent %s: %s", spec_name(r), err.message);
	}
}

/* Another resource of r's kind that the control plane gave id to, or NULL. */
static const eng_res *twin_of(const eng_res *r, const char *id)
{
	const eng *e = r->e;
	const eng_res *items = r->rs.kind == TLM_JOURNAL_AGENT ? e->agents : e->teams;
	size_t n = r->rs.kind == TLM_JOURNAL_AGENT ? e->spec->nagents : e->spec->nteams, i;

	for (i = 0; i < n; i++)
		if (&items[i] != r && items[i].rs.id != NULL && strcmp(items[i].rs.id, id) == 0)
			return &items[i];
	return NULL;
}

/* The control plane answered with an id that cannot be used: no path can
 * hold it, or it gave the same id to another resource of the run (then a
 * request by id reaches one of them, and one delete would count for two).
 * It exists all the same, so it is recorded — with its id when the journal
 * can hold it, else as a note on its intent — and the run fails; teardown
 * lists it as a leftover and sends it nothing.  Never dropped.  Takes id. */
static void unusable(eng_res *r, char *id, const eng_res *twin, const tlm_error *why)
{
	eng *e = r->e;
	char shown[ENG_SHORT_ID], msg[sizeof(why->message) + 2 * TLM_JOURNAL_NAME_MAX + 256];

	tlm_eng__short_id(id, shown, sizeof(shown));
	if (twin != NULL)
		snprintf(
			msg, sizeof(msg),
			"the control plane gave it the id of %s %s (%s): one id cannot stand for two resources",
			kind_name(twin), spec_name(twin), shown);
	else
		snprintf(msg, sizeof(msg),
			 "the control plane gave it an id no request can address (%s): %s",
			 why->message, shown);
	if (strlen(id) <= TLM_JOURNAL_TEXT_MAX) {
		if (tlm_eng__res_to(e, &r->rs, TLM_JOURNAL_CREATED, id, NULL) == 0)
			(void)tlm_eng__res_note(e, &r->rs, msg);
	} else {
		free(id);
		(void)tlm_eng__res_note(e, &r->rs, msg);
	}
	failed(r);
	tlm_eng__fail(e, "%s %s: %s; it is left as it is, a leftover", kind_name(r), spec_name(r),
		      msg);
}

/* The id is known: journal it before anything else, then start agents.
 * Takes id. */
static void adopt(eng_res *r, char *id)
{
	eng *e = r->e;
	tlm_error err = TLM_ERROR_INIT;
	const eng_res *twin = twin_of(r, id);

	if (twin != NULL || tlm_eng__addressable(r->rs.kind, id, &err) != 0) {
		unusable(r, id, twin, &err);
		return;
	}
	if (tlm_eng__res_to(e, &r->rs, TLM_JOURNAL_CREATED, id, NULL) != 0) {
		failed(r);
		return;
	}
	tlm_eng__log(e, TLM_ENGINE_INFO, "%s %s created as %s (id %s)", kind_name(r), spec_name(r),
		     r->rs.name, r->rs.id);
	/* Nothing is started once the run decided to end. */
	if (r->rs.kind == TLM_JOURNAL_TEAM || e->ending)
		set_step(r, STEP_DONE);
	else
		start_agent(r);
}

static void submit_create(eng_res *r);

static void on_resolved(void *ctx, int rc, const char *id, const tlm_error *err)
{
	eng_res *r = ctx;
	eng *e = r->e;
	char *copy;

	if (rc == TLM_ECANCELLED)
		return; /* the client stopped */
	if (rc == 0) {
		if ((copy = strdup(id)) == NULL) {
			failed(r);
			tlm_eng__oom(e);
			return;
		}
		tlm_eng__log(e, TLM_ENGINE_INFO, "%s %s: found by name", kind_name(r),
			     spec_name(r));
		adopt(r, copy);
	} else if (rc == TLM_ENOTFOUND && e->ending) {
		/* Left as an intent: teardown's sweep by name settles it. */
		set_step(r, STEP_DONE);
	} else if (rc == TLM_ENOTFOUND && r->posts < ENG_CREATE_POSTS) {
		tlm_eng__log(e, TLM_ENGINE_WARN, "%s %s: not created after all; creating it again",
			     kind_name(r), spec_name(r));
		/* A resumed run's half-deleted resource is gone: a new intent. */
		if (r->rs.st == TLM_JOURNAL_DELETING &&
		    (tlm_eng__res_to(e, &r->rs, TLM_JOURNAL_ABSENT, NULL, "gone") != 0 ||
		     tlm_eng__res_to(e, &r->rs, TLM_JOURNAL_INTENT, NULL, NULL) != 0)) {
			failed(r);
			return;
		}
		submit_create(r);
	} else {
		failed(r);
		tlm_eng__fail(e, "%s %s: create failed: %s", kind_name(r), spec_name(r),
			      rc == TLM_ENOTFOUND ? "its outcome stayed unknown" : err->message);
	}
}

/* Looks the name up; settle: how long a create may still be landing. */
static void resolve(eng_res *r, long settle)
{
	tlm_error err = TLM_ERROR_INIT;

	set_step(r, STEP_RESOLVING);
	if (tlm_client_find_start(
		    r->e->c, r->rs.kind == TLM_JOURNAL_AGENT ? TLM_CLIENT_AGENT : TLM_CLIENT_TEAM,
		    r->rs.name, settle, on_resolved, r, &err) != 0) {
		failed(r);
		tlm_eng__fail(r->e, "%s %s: %s", kind_name(r), spec_name(r), err.message);
	}
}

static void on_created(void *ctx, const tlm_client_result *res)
{
	eng_res *r = ctx;
	eng *e = r->e;
	tlm_client_resource parsed = TLM_CLIENT_RESOURCE_INIT;
	tlm_error err = TLM_ERROR_INIT;
	int rc;

	if (res->outcome == TLM_CLIENT_CANCELLED)
		return; /* the client stopped: nothing more to do */

	if (res->outcome == TLM_CLIENT_FAILED) {
		/* Permanent, or never sent: nothing was created. */
		failed(r);
		tlm_eng__fail(e, "%s %s: create failed: %s", kind_name(r), spec_name(r),
			      res->err->message);
		(void)tlm_eng__res_to(e, &r->rs, TLM_JOURNAL_ABSENT, NULL, res->err->message);
		return;
	}
	rc = res->outcome == TLM_CLIENT_UNKNOWN ? TLM_ERROR
	     : r->rs.kind == TLM_JOURNAL_AGENT
		     ? tlm_client__res_agent_create(&parsed, res, &err)
		     : tlm_client__res_resource(&parsed, "team", res, &err);
	if (rc != 0 || parsed.id == NULL) {
		/* It may exist, and the server may still be working on it. */
		tlm_eng__log(e, TLM_ENGINE_WARN, "%s %s: %s; looking it up by name", kind_name(r),
			     spec_name(r),
			     res->err != NULL && res->rc != 0 ? res->err->message : err.message);
		tlm_client__resource_clear(&parsed);
		resolve(r, tlm_eng__request_timeout(e));
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
	char *text = create_text(r);

	set_step(r, STEP_CREATING);
	r->posts++;
	if (text == NULL) {
		failed(r);
		tlm_eng__oom(e);
	} else if (tlm_client_submit(e->c, "POST",
				     r->rs.kind == TLM_JOURNAL_AGENT ? "/v1/agents" : "/v1/teams",
				     text, TLM_CLIENT_POST_CREATE, on_created, r, &err) != 0) {
		failed(r);
		tlm_eng__fail(e, "%s %s: %s", kind_name(r), spec_name(r), err.message);
	}
	free(text);
}

/* A resumed run: agents that exist are started again (idempotent); creates
 * of unknown outcome are looked up first. */
static void continue_restored(eng *e, eng_res *items, size_t n)
{
	size_t i;

	for (i = 0; i < n && !e->ending; i++) {
		eng_res *r = &items[i];

		if (r->step != STEP_NEW)
			continue;
		if (r->rs.st == TLM_JOURNAL_CREATED && r->rs.kind == TLM_JOURNAL_AGENT)
			start_agent(r);
		else if (r->rs.st == TLM_JOURNAL_CREATED || r->rs.st == TLM_JOURNAL_STARTED)
			set_step(r, STEP_DONE);
		else if ((r->rs.st == TLM_JOURNAL_INTENT || r->rs.st == TLM_JOURNAL_DELETING) &&
			 r->settle >= 0)
			resolve(r, r->settle);
	}
}

static int provision(eng *e, eng_res *items, size_t n)
{
	eng_rs **rs = calloc(n + 1, sizeof(*rs));
	size_t next = 0, i;
	int rc;

	if (rs == NULL)
		return tlm_eng__oom(e);
	for (i = 0; i < n; i++)
		rs[i] = &items[i].rs;
	rc = n > 0 ? tlm_eng__intents(e, rs, n) : 0;
	free(rs);
	if (rc != 0)
		return rc;
	continue_restored(e, items, n);
	while (e->stop == STOP_NONE) {
		while (!e->ending && next < n && tlm_client_pending(e->c) < e->maxc) {
			if (items[next].step == STEP_NEW)
				submit_create(&items[next]);
			next++;
		}
		if ((next == n || e->ending) && e->prov_busy == 0)
			break;
		tlm_eng__turn(e, ENG_TICK_MS);
	}
	return 0;
}

int tlm_eng__provision_agents(eng *e)
{
	int rc;

	tlm_eng__progress(e, "provisioning");
	rc = provision(e, e->agents, e->spec->nagents);
	/* A failed agent fails the run before any task: the whole wave is
	 * reported (siblings finish), then everything is torn down. */
	if (e->prov_failed)
		e->ending = 1;
	return rc;
}

int tlm_eng__provision_teams(eng *e)
{
	int rc = provision(e, e->teams, e->spec->nteams);

	if (e->prov_failed)
		e->ending = 1;
	return rc;
}
