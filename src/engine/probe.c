/* The settings probe (docs/agamemnon.md, "What upstream keeps of an
 * agent").  Upstream keeps ten fields of an agent's create and drops the
 * rest without a word, so a run whose agents carry a model, an environment
 * or docker settings would report success while its agents run without
 * them.  What a control plane keeps is learnt from what it does, not from
 * its name: one agent carrying every such setting (harmless values,
 * program "none", never started) is created, the agent its reply describes
 * is read — upstream answers {"id", "agent": the stored object}, the same
 * object a GET returns, so the reply costs no extra request; a reply that
 * does not describe it (lost, or no agent object) is made up for by a GET —
 * and it is deleted.  It is journaled like any
 * other agent (intent before the create, id before the delete), so a
 * crash, a lost reply, teardown, `teardown RUN` and reconcile account for
 * it as for any other.  Every wait is a turn of the engine's loop. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/engine_internal.h"
#include "util/json.h"
#include "util/redact.h"

static const char *const field_names[] = { "model", "env", "image", "cpus", "memory" };
#define NFIELDS (sizeof(field_names) / sizeof(field_names[0]))

const char *tlm_engine_field_name(unsigned bit)
{
	size_t i;

	for (i = 0; i < NFIELDS; i++)
		if (bit == 1u << i)
			return field_names[i];
	return NULL;
}

int tlm_engine_field_parse(const char *name, unsigned *bit, tlm_error *err)
{
	size_t i;

	for (i = 0; i < NFIELDS; i++) {
		if (strcmp(name, field_names[i]) == 0) {
			*bit = 1u << i;
			return 0;
		}
	}
	return tlm_error_set(err, TLM_EINVALID,
			     "\"%.64s\" is not a setting that can be dropped (model, env, image, "
			     "cpus, memory)",
			     name);
}

unsigned tlm_eng__fields_used(const eng *e)
{
	const tlm_spec *s = e->spec;
	unsigned used = 0;
	size_t i;

	for (i = 0; i < s->nagents; i++) {
		const tlm_spec_agent *a = &s->agents[i];

		used |= a->model != NULL ? TLM_ENGINE_FIELD_MODEL : 0u;
		used |= a->nenv > 0 ? TLM_ENGINE_FIELD_ENV : 0u;
		/* A dry run sends no docker settings (provision.c, agent_body). */
		if (a->runtime == TLM_RUNTIME_DOCKER && !e->o->dry_run)
			used |= TLM_ENGINE_FIELD_IMAGE | TLM_ENGINE_FIELD_CPUS |
				TLM_ENGINE_FIELD_MEMORY;
	}
	return used;
}

/* Every setting, harmless: the probe is never started.  NULL out of memory. */
static char *probe_body(eng *e)
{
	char desc[128];
	json_t *b;
	char *text;

	snprintf(desc, sizeof(desc), "telemachy run %s: which agent settings are kept", e->run_id);
	b = json_pack("{s:s, s:s, s:s, s:[], s:s, s:s, s:s, s:[s,s], s:s, s:{s:s}, s:s, s:i, s:s}",
		      "name", e->probe.rs.name, "label", "probe", "program", "none", "programArgs",
		      "workingDirectory", "/tmp", "taskDescription", desc, "owner", "telemachy",
		      "tags", "telemachy", e->run_id, "model", "telemachy-probe", "env",
		      "TELEMACHY_PROBE", "1", "image", "telemachy-probe", "cpus", 1, "memory",
		      "1048576");
	text = b != NULL ? tlm_json_dump_body(b) : NULL;
	json_decref(b);
	return text;
}

/* Notes the fields the reply's agent holds, if it describes the agent:
 * {"agent": {...}} as the contract has it (docs/contract.md §1), or an
 * agent object itself (one with the probe's name). */
static void note_kept(eng *e, const json_t *reply)
{
	const json_t *agent = json_object_get(reply, "agent");
	const char *name;
	size_t i;

	if (!json_is_object(agent))
		agent = reply;
	name = json_string_value(json_object_get(agent, "name"));
	if (!json_is_object(agent) || name == NULL || strcmp(name, e->probe.rs.name) != 0)
		return;
	e->probe_told = 1;
	e->fields_kept = 0;
	for (i = 0; i < NFIELDS; i++)
		if (json_object_get(agent, field_names[i]) != NULL)
			e->fields_kept |= 1u << i;
}

/* The id is journaled before anything is done about it.  One that cannot
 * be used (no path holds it, or an agent of the run has it) is recorded
 * and never sent a request: teardown lists it as a leftover.  Takes id. */
static void adopt(eng *e, char *id)
{
	eng_rs *rs = &e->probe.rs;
	tlm_error err = TLM_ERROR_INIT;
	size_t i;

	if (strlen(id) > TLM_JOURNAL_TEXT_MAX) {
		free(id);
		(void)tlm_eng__res_note(e, rs, "the control plane gave it an id too long to keep");
		tlm_eng__fail(e,
			      "the settings probe %s got an id too long to keep; it is a leftover",
			      rs->name);
		return;
	}
	if (tlm_eng__res_to(e, rs, TLM_JOURNAL_CREATED, id, NULL) != 0)
		return;
	for (i = 0; i < e->spec->nagents; i++)
		if (e->agents[i].rs.id != NULL && strcmp(e->agents[i].rs.id, rs->id) == 0)
			(void)tlm_error_set(&err, TLM_EINVALID, "it is the id of %s",
					    e->agents[i].rs.name);
	if (err.code != 0 || tlm_eng__addressable(rs->kind, rs->id, &err) != 0) {
		tlm_eng__fail(e,
			      "the settings probe %s: the control plane gave it an id that "
			      "cannot be used (%s); it is left as it is, a leftover",
			      rs->name, err.message);
		return;
	}
	tlm_eng__log(e, TLM_ENGINE_DEBUG, "settings probe created as %s", rs->name);
}

static void on_found(void *ctx, int rc, const char *id, const tlm_error *err)
{
	eng *e = ctx;
	char *copy;

	if (rc == TLM_ECANCELLED)
		return; /* the client stopped */
	e->probe_done = 1;
	if (rc == 0) {
		if ((copy = strdup(id)) == NULL)
			(void)tlm_eng__oom(e);
		else
			adopt(e, copy);
	} else if (rc == TLM_ENOTFOUND) {
		(void)tlm_eng__res_to(e, &e->probe.rs, TLM_JOURNAL_ABSENT, NULL,
				      "not found by name");
	} else {
		/* Left as an intent: teardown's sweep by name settles it. */
		tlm_eng__log(e, TLM_ENGINE_WARN, "settings probe %s: %s; teardown looks for it",
			     e->probe.rs.name, err->message);
	}
}

/* The probe's create may have happened: its name decides (settle: how long
 * a create may still be landing). */
static int resolve(eng *e, long settle)
{
	tlm_error err = TLM_ERROR_INIT;

	e->probe_done = 0;
	if (tlm_client_find_start(e->c, TLM_CLIENT_AGENT, e->probe.rs.name, settle, on_found, e,
				  &err) != 0) {
		tlm_eng__fail(e, "settings probe %s: %s", e->probe.rs.name, err.message);
		return err.code;
	}
	return tlm_eng__await(e, &e->probe_done);
}

static void on_created(void *ctx, const tlm_client_result *res)
{
	eng *e = ctx;
	tlm_client_resource parsed = TLM_CLIENT_RESOURCE_INIT;
	tlm_error err = TLM_ERROR_INIT;

	if (res->outcome == TLM_CLIENT_CANCELLED)
		return; /* the client stopped: nothing more to do */
	e->probe_done = 1;
	if (res->outcome == TLM_CLIENT_FAILED) {
		/* Nothing was created; a server that refuses the probe would
		 * refuse the agents' creates too. */
		(void)tlm_eng__res_to(e, &e->probe.rs, TLM_JOURNAL_ABSENT, NULL, res->err->message);
		tlm_eng__fail(e, "the settings probe %s could not be created: %s", e->probe.rs.name,
			      res->err->message);
		return;
	}
	if (res->outcome != TLM_CLIENT_DONE ||
	    tlm_client__res_agent_create(&parsed, res, &err) != 0 || parsed.id == NULL) {
		/* It may exist: resolved by name after this callback. */
		tlm_eng__log(e, TLM_ENGINE_WARN, "settings probe %s: %s; looking it up by name",
			     e->probe.rs.name,
			     res->err != NULL && res->rc != 0 ? res->err->message : err.message);
		tlm_client__resource_clear(&parsed);
		return;
	}
	note_kept(e, res->body);
	adopt(e, parsed.id);
	parsed.id = NULL;
	tlm_client__resource_clear(&parsed);
}

static void on_read(void *ctx, const tlm_client_result *res)
{
	eng *e = ctx;

	if (res->outcome == TLM_CLIENT_CANCELLED)
		return;
	e->probe_done = 1;
	if (res->outcome == TLM_CLIENT_DONE)
		note_kept(e, res->body);
	else
		tlm_eng__log(e, TLM_ENGINE_WARN, "settings probe %s: %s", e->probe.rs.name,
			     res->err->message);
}

/* The create's reply did not describe the agent (or was lost): the agent
 * as the control plane stored it is the evidence then.  Still nothing told
 * means nothing counts as kept. */
static int read_back(eng *e)
{
	tlm_error err = TLM_ERROR_INIT;
	char path[ENG_PATH_MAX];

	e->probe_done = 0;
	if (tlm_client_path(path, sizeof(path), "/v1/agents/", e->probe.rs.id, NULL, NULL, NULL,
			    &err) != 0 ||
	    tlm_client_submit(e->c, "GET", path, NULL, TLM_CLIENT_GET, on_read, e, &err) != 0) {
		tlm_eng__log(e, TLM_ENGINE_WARN, "settings probe %s: %s", e->probe.rs.name,
			     err.message);
		return 0;
	}
	return tlm_eng__await(e, &e->probe_done);
}

static int create_probe(eng *e)
{
	eng_rs *rs = &e->probe.rs, *one[1] = { rs };
	tlm_error err = TLM_ERROR_INIT;
	char *text;
	int rc;

	if ((rc = tlm_eng__intents(e, one, 1)) != 0)
		return rc;
	if ((text = probe_body(e)) == NULL)
		return tlm_eng__oom(e);
	e->probe_done = 0;
	rc = tlm_client_submit(e->c, "POST", "/v1/agents", text, TLM_CLIENT_POST_CREATE, on_created,
			       e, &err);
	free(text);
	if (rc != 0) {
		tlm_eng__fail(e, "settings probe %s: %s", rs->name, err.message);
		return rc;
	}
	if ((rc = tlm_eng__await(e, &e->probe_done)) != 0)
		return rc;
	/* Outcome unknown, or a reply without an id: its name decides. */
	if (rs->st == TLM_JOURNAL_INTENT && e->error == NULL &&
	    (rc = resolve(e, tlm_eng__request_timeout(e))) != 0)
		return rc;
	if (rs->st == TLM_JOURNAL_CREATED && e->error == NULL && !e->probe_told)
		return read_back(e);
	return 0;
}

static void on_deleted(void *ctx, const tlm_client_result *res)
{
	eng *e = ctx;

	if (res->outcome == TLM_CLIENT_CANCELLED)
		return;
	e->probe_done = 1;
	if (res->outcome == TLM_CLIENT_DONE || res->outcome == TLM_CLIENT_GONE) {
		(void)tlm_eng__res_to(e, &e->probe.rs, TLM_JOURNAL_DELETED, NULL, NULL);
		return;
	}
	/* Journaled as deleting: the run's teardown tries again. */
	(void)tlm_eng__res_to(e, &e->probe.rs, TLM_JOURNAL_DELETING, NULL, res->err->message);
	tlm_eng__log(e, TLM_ENGINE_WARN,
		     "settings probe %s: delete failed: %s; teardown tries again", e->probe.rs.name,
		     res->err->message);
}

/* Deletes the probe if it exists (journaled deleting, then deleted). */
static int remove_probe(eng *e)
{
	eng_rs *rs = &e->probe.rs;
	tlm_error err = TLM_ERROR_INIT;
	int rc;

	if (rs->id == NULL || e->error != NULL ||
	    (rs->st != TLM_JOURNAL_CREATED && rs->st != TLM_JOURNAL_STARTED &&
	     rs->st != TLM_JOURNAL_DELETING))
		return 0;
	if (rs->st != TLM_JOURNAL_DELETING &&
	    (rc = tlm_eng__res_to(e, rs, TLM_JOURNAL_DELETING, NULL, NULL)) != 0)
		return rc;
	e->probe_done = 0;
	if ((rc = tlm_eng__remove(e->c, rs->kind, rs->id, on_deleted, e, &err)) != 0) {
		tlm_eng__log(e, TLM_ENGINE_WARN, "settings probe %s: %s; teardown tries again",
			     rs->name, err.message);
		return 0;
	}
	return tlm_eng__await(e, &e->probe_done);
}

/* A resumed run: what an earlier owner left of the probe is settled first,
 * then the name is free for a new probe (the control plane may have moved). */
static int settle_old(eng *e)
{
	eng_res *p = &e->probe;
	int rc = 0;

	if (!p->rs.journaled)
		return 0;
	if (p->rs.st == TLM_JOURNAL_INTENT && p->settle >= 0)
		rc = resolve(e, p->settle);
	if (rc == 0)
		rc = remove_probe(e);
	if (rc == 0 && e->error == NULL &&
	    (p->rs.st == TLM_JOURNAL_DELETED || p->rs.st == TLM_JOURNAL_ABSENT))
		rc = tlm_eng__res_to(e, &p->rs, TLM_JOURNAL_INTENT, NULL, NULL);
	p->settle = -1;
	return rc;
}

/* "`env`, `image`" into buf: the fields of mask, each quoted as sep says. */
static void list_fields(char *buf, size_t cap, unsigned mask, const char *before, const char *after)
{
	size_t i, n = 0;

	buf[0] = '\0';
	for (i = 0; i < NFIELDS; i++)
		if (mask & (1u << i))
			n += (size_t)snprintf(buf + n, n < cap ? cap - n : 0, "%s%s%s%s",
					      n > 0 ? (before[0] == '-' ? " " : ", ") : "", before,
					      field_names[i], after);
}

/* The first agent of the spec that uses one of mask's fields. */
static const char *user_of(const eng *e, unsigned mask)
{
	size_t i;

	for (i = 0; i < e->spec->nagents; i++) {
		const tlm_spec_agent *a = &e->spec->agents[i];

		if (((mask & TLM_ENGINE_FIELD_ENV) && a->nenv > 0) ||
		    ((mask & ~(TLM_ENGINE_FIELD_ENV | TLM_ENGINE_FIELD_MODEL)) &&
		     a->runtime == TLM_RUNTIME_DOCKER))
			return a->name;
	}
	return "?";
}

static void refuse(eng *e, unsigned refused)
{
	char url[256], which[128], flags[160];

	tlm_redact_url(url, sizeof(url), e->o->in_process ? "(built-in)" : e->o->control_plane);
	list_fields(which, sizeof(which), refused, "`", "`");
	list_fields(flags, sizeof(flags), refused, "--drop-field ", "");
	e->res->fields_refused = refused;
	tlm_eng__fail(e,
		      "the control plane at %s does not keep %s; agent %s would run without %s "
		      "(use %s to run anyway)",
		      url, which, user_of(e, refused), (refused & (refused - 1)) ? "them" : "it",
		      flags);
	e->ending = 1;
}

/* What was not kept: model goes to programArgs, what the operator agreed
 * to drop is dropped, the rest refuses the run. */
static void decide(eng *e, unsigned used)
{
	unsigned lost = used & ~e->fields_kept, drop = e->o->drop_fields;
	unsigned mapped = lost & TLM_ENGINE_FIELD_MODEL & ~drop;
	unsigned refused = lost & ~TLM_ENGINE_FIELD_MODEL & ~drop;
	char which[128];

	e->fields_lost = lost;
	e->res->fields_mapped = mapped;
	e->res->fields_dropped = lost & drop;
	if (mapped)
		tlm_eng__log(e, TLM_ENGINE_INFO,
			     "the control plane does not keep `model`: agents get it as "
			     "programArgs \"--model\" MODEL");
	if (lost & drop) {
		list_fields(which, sizeof(which), lost & drop, "`", "`");
		tlm_eng__log(e, TLM_ENGINE_WARN,
			     "the control plane does not keep %s: dropped (--drop-field); agents "
			     "run without it",
			     which);
	}
	if (refused)
		refuse(e, refused);
}

int tlm_eng__probe(eng *e)
{
	unsigned used = tlm_eng__fields_used(e);
	int rc;

	if (used == 0 && !e->probe.rs.journaled)
		return 0;
	tlm_eng__progress(e, "probing");
	if ((rc = settle_old(e)) != 0 || used == 0 || e->error != NULL)
		return rc;
	if ((rc = create_probe(e)) == 0)
		rc = remove_probe(e);
	if (rc == 0 && e->error == NULL && e->stop == STOP_NONE)
		decide(e, used);
	/* A probe that failed, or a refusal: no agent is created. */
	if (e->error != NULL)
		e->ending = 1;
	return rc;
}
