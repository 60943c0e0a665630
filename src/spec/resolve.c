/* Names and references: unique names, team members, assign_to, blocked_by.
 * Every lookup is a hash lookup and every per-task check is O(1) amortised,
 * so resolving is linear in the size of the spec. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "spec/spec_internal.h"
#include "util/strmap.h"

#define SUGGEST_POOL_MAX 2000 /* no "did you mean" among more names than this */

typedef struct resolver {
	tlm_spec_ctx *ctx;
	tlm_spec *spec;
	tlm_strmap agents;    /* agent name -> index */
	tlm_strmap teams;     /* team name -> index */
	tlm_strmap *subjects; /* per team: subject -> task index */
	size_t *member_of;    /* per agent: 1 + the team being resolved, if member */
	size_t *dep_of;       /* per task: 1 + the task whose deps list it */
} resolver;

/* A task's subject as messages show it: "?" when it has none or it is over
 * the limit (already reported), so a subject of megabytes is not copied into
 * each of the errors about its task. */
static const char *shown(const tlm_spec_task *t)
{
	return t->subject != NULL &&
			       strnlen(t->subject, TLM_SPEC_SUBJECT_MAX + 1) <= TLM_SPEC_SUBJECT_MAX
		       ? t->subject
		       : "?";
}

static void oom_if(resolver *r, int rc)
{
	if (rc < 0)
		r->ctx->oom = 1;
}

/* Formats " (did you mean "x"?)" into buf, or "" when nothing is close. */
static const char *hint(resolver *r, char *buf, size_t size, const char *word, const char **pool,
			size_t n)
{
	const char *best = pool ? tlm_spec__suggest(word, pool, n, &r->ctx->suggest_budget) : NULL;

	buf[0] = '\0';
	if (best != NULL)
		snprintf(buf, size, " (did you mean \"%s\"?)", best);
	return buf;
}

static const char *agent_hint(resolver *r, char *buf, size_t size, const char *word)
{
	const char *pool[SUGGEST_POOL_MAX];
	size_t i, n = 0;

	if (r->spec->nagents > SUGGEST_POOL_MAX || tlm_diags__full(r->ctx->diags))
		return hint(r, buf, size, word, NULL, 0);
	for (i = 0; i < r->spec->nagents; i++)
		if (r->spec->agents[i].name)
			pool[n++] = r->spec->agents[i].name;
	return hint(r, buf, size, word, pool, n);
}

static const char *subject_hint(resolver *r, char *buf, size_t size, const char *word, size_t team)
{
	const tlm_spec_team *tm = &r->spec->teams[team];
	const char **pool;
	size_t i, n = 0;

	if (tm->ntasks > SUGGEST_POOL_MAX || tlm_diags__full(r->ctx->diags) ||
	    (pool = calloc(tm->ntasks + 1, sizeof(*pool))) == NULL)
		return hint(r, buf, size, word, NULL, 0);
	for (i = 0; i < tm->ntasks; i++)
		if (r->spec->tasks[tm->first_task + i].subject)
			pool[n++] = r->spec->tasks[tm->first_task + i].subject;
	hint(r, buf, size, word, pool, n);
	free(pool);
	return buf;
}

static void unique_agents(resolver *r)
{
	size_t i, first;

	for (i = 0; i < r->spec->nagents; i++) {
		const tlm_spec_agent *a = &r->spec->agents[i];
		int rc;

		if (a->name == NULL)
			continue;
		rc = tlm_strmap_put(&r->agents, a->name, i, &first);
		oom_if(r, rc);
		if (rc > 0)
			oom_if(r, tlm_diags__add(
					  r->ctx->diags, a->pos, "duplicate-name",
					  "duplicate agent name \"%s\" (first defined at line %u); "
					  "agent names must be unique",
					  a->name, r->spec->agents[first].pos.line));
	}
}

static void unique_teams(resolver *r)
{
	size_t i, first;

	for (i = 0; i < r->spec->nteams; i++) {
		const tlm_spec_team *t = &r->spec->teams[i];
		int rc;

		if (t->name == NULL)
			continue;
		rc = tlm_strmap_put(&r->teams, t->name, i, &first);
		oom_if(r, rc);
		if (rc > 0)
			oom_if(r, tlm_diags__add(
					  r->ctx->diags, t->pos, "duplicate-name",
					  "duplicate team name \"%s\" (first defined at line %u); "
					  "team names must be unique",
					  t->name, r->spec->teams[first].pos.line));
	}
}

static void unique_subjects(resolver *r, size_t team)
{
	const tlm_spec_team *tm = &r->spec->teams[team];
	size_t i, first;

	for (i = tm->first_task; i < tm->first_task + tm->ntasks; i++) {
		const tlm_spec_task *t = &r->spec->tasks[i];
		int rc;

		if (t->subject == NULL)
			continue;
		rc = tlm_strmap_put(&r->subjects[team], t->subject, i, &first);
		oom_if(r, rc);
		if (rc > 0)
			oom_if(r,
			       tlm_diags__add(r->ctx->diags, t->pos, "duplicate-name",
					      "duplicate task subject \"%s\" in team \"%s\" (first "
					      "at line %u); subjects must be unique within a team",
					      shown(t), tm->name ? tm->name : "?",
					      r->spec->tasks[first].pos.line));
	}
}

/* The team's `agents` list -> indices; marks members for assign_to checks. */
static void resolve_members(resolver *r, size_t team)
{
	tlm_spec_team *tm = &r->spec->teams[team];
	const tlm_node *seq = r->ctx->members[team];
	char buf[TLM_SPEC_NAME_MAX + 32];
	const tlm_node *v;
	uint32_t i;

	if (seq == NULL)
		return;
	tm->agents = tlm_arena_calloc(r->spec->arena, seq->n ? seq->n : 1, sizeof(size_t));
	if (tm->agents == NULL) {
		r->ctx->oom = 1;
		return;
	}
	for (i = 0, v = tlm_node__first(seq); i < seq->n; i++, v = tlm_node__next(v)) {
		size_t a;

		if (v->kind != TLM_NODE_SCALAR || v->type != TLM_SCALAR_STR) {
			tlm_spec__report(r->ctx, v, "type",
					 "team members must be agent names, got %s",
					 tlm_node__kind_name(v));
		} else if (tlm_strmap_get(&r->agents, v->u.str, &a) != 0) {
			tlm_spec__report(
				r->ctx, v, "unknown-agent",
				"team \"%s\" lists unknown agent \"%s\"%s; define it under "
				"\"agents\"",
				tm->name ? tm->name : "?", v->u.str,
				agent_hint(r, buf, sizeof(buf), v->u.str));
		} else if (r->member_of[a] == team + 1) {
			tlm_spec__report(r->ctx, v, "duplicate-member",
					 "agent \"%s\" is listed twice in team \"%s\"; remove one",
					 v->u.str, tm->name ? tm->name : "?");
		} else {
			r->member_of[a] = team + 1;
			tm->agents[tm->nagents++] = a;
		}
	}
}

static void resolve_assignee(resolver *r, size_t team, size_t ti)
{
	tlm_spec_team *tm = &r->spec->teams[team];
	tlm_spec_task *t = &r->spec->tasks[ti];
	const tlm_node *v = r->ctx->assign_to[ti];
	const char *tname = tm->name ? tm->name : "?";
	const char *tsubj = shown(t);
	size_t a;

	if (v == NULL) {
		if (tm->nagents == 1)
			t->agent = tm->agents[0];
		else if (t->subject != NULL)
			oom_if(r,
			       tlm_diags__add(
				       r->ctx->diags, t->pos, "assign-to",
				       "task \"%s\" has no \"assign_to\" and team \"%s\" has %zu "
				       "agents; name the agent that runs it",
				       tsubj, tname, tm->nagents));
		return;
	}
	if (tlm_strmap_get(&r->agents, v->u.str, &a) != 0) {
		char buf[TLM_SPEC_NAME_MAX + 32];

		tlm_spec__report(r->ctx, v, "assign-to",
				 "task \"%s\" is assigned to unknown agent \"%s\"%s", tsubj,
				 v->u.str, agent_hint(r, buf, sizeof(buf), v->u.str));
	} else if (r->member_of[a] != team + 1) {
		tlm_spec__report(
			r->ctx, v, "assign-to",
			"task \"%s\" is assigned to agent \"%s\", which is not a member of "
			"team \"%s\"; add it to the team's agents",
			tsubj, v->u.str, tname);
	} else {
		t->agent = a;
	}
}

/* Reports an unresolvable `ref` of a task of `team`.  A same-team subject wins
 * over a "team/subject" reading, so this explains the reading that failed. */
static void unknown_dep(resolver *r, const tlm_node *v, size_t ti, const char *other,
			size_t other_len)
{
	size_t team = r->spec->tasks[ti].team;
	const char *tname = r->spec->teams[team].name ? r->spec->teams[team].name : "?";
	const char *self = shown(&r->spec->tasks[ti]);
	char buf[TLM_SPEC_SUBJECT_MAX + 32], name[TLM_SPEC_NAME_MAX + 1];
	size_t t;

	if (other != NULL && other_len <= TLM_SPEC_NAME_MAX) {
		memcpy(name, other, other_len);
		name[other_len] = '\0';
		if (tlm_strmap_get(&r->teams, name, &t) == 0) {
			const char *subj = other + other_len + 1;

			tlm_spec__report(
				r->ctx, v, "blocked-by-unknown",
				"task \"%s\" is blocked by unknown task \"%s\" in team \"%s\"%s",
				self, subj, name, subject_hint(r, buf, sizeof(buf), subj, t));
			return;
		}
	}
	tlm_spec__report(r->ctx, v, "blocked-by-unknown",
			 "task \"%s\" is blocked by unknown task \"%s\" in team \"%s\"%s; use "
			 "a subject of this team or \"team/subject\"",
			 self, v->u.str, tname, subject_hint(r, buf, sizeof(buf), v->u.str, team));
}

static int lookup_dep(resolver *r, const tlm_node *v, size_t ti, size_t *out)
{
	size_t team = r->spec->tasks[ti].team;
	const char *ref = v->u.str, *slash = strchr(ref, '/');
	char name[TLM_SPEC_NAME_MAX + 1];
	size_t t;

	if (tlm_strmap_get(&r->subjects[team], ref, out) == 0)
		return 0;
	if (slash != NULL && (size_t)(slash - ref) <= TLM_SPEC_NAME_MAX) {
		memcpy(name, ref, (size_t)(slash - ref));
		name[slash - ref] = '\0';
		if (tlm_strmap_get(&r->teams, name, &t) == 0 &&
		    tlm_strmap_get(&r->subjects[t], slash + 1, out) == 0)
			return 0;
	}
	unknown_dep(r, v, ti, slash ? ref : NULL, slash ? (size_t)(slash - ref) : 0);
	return -1;
}

static void resolve_deps(resolver *r, size_t ti)
{
	tlm_spec_task *t = &r->spec->tasks[ti];
	const tlm_node *seq = r->ctx->blocked_by[ti], *v;
	uint32_t i;

	if (seq == NULL || seq->n == 0)
		return;
	t->deps = tlm_arena_calloc(r->spec->arena, seq->n, sizeof(size_t));
	if (t->deps == NULL) {
		r->ctx->oom = 1;
		return;
	}
	for (i = 0, v = tlm_node__first(seq); i < seq->n; i++, v = tlm_node__next(v)) {
		size_t d;

		if (v->kind != TLM_NODE_SCALAR || v->type != TLM_SCALAR_STR) {
			tlm_spec__report(r->ctx, v, "type",
					 "\"blocked_by\" entries must be task subjects, got %s",
					 tlm_node__kind_name(v));
			continue;
		}
		if (lookup_dep(r, v, ti, &d) != 0)
			continue;
		if (d == ti) {
			tlm_spec__report(r->ctx, v, "self-dependency",
					 "task \"%s\" is blocked by itself; remove this entry",
					 shown(t));
			continue;
		}
		if (r->dep_of[d] == ti + 1)
			continue; /* listed twice: harmless, not a cycle */
		r->dep_of[d] = ti + 1;
		t->deps[t->ndeps++] = d;
	}
}

void tlm_spec__resolve(tlm_spec_ctx *ctx)
{
	tlm_spec *s = ctx->spec;
	resolver r = { ctx, s, TLM_STRMAP_INIT, TLM_STRMAP_INIT, NULL, NULL, NULL };
	size_t i, ti;

	r.subjects = calloc(s->nteams + 1, sizeof(*r.subjects));
	r.member_of = calloc(s->nagents + 1, sizeof(size_t));
	r.dep_of = calloc(s->ntasks + 1, sizeof(size_t));
	if (r.subjects == NULL || r.member_of == NULL || r.dep_of == NULL) {
		ctx->oom = 1;
		goto done;
	}
	unique_agents(&r);
	unique_teams(&r);
	for (i = 0; i < s->nteams; i++)
		unique_subjects(&r, i);
	for (i = 0; i < s->nteams && !ctx->oom; i++) {
		const tlm_spec_team *tm = &s->teams[i];

		resolve_members(&r, i);
		for (ti = tm->first_task; ti < tm->first_task + tm->ntasks; ti++) {
			resolve_assignee(&r, i, ti);
			resolve_deps(&r, ti);
		}
	}
done:
	for (i = 0; r.subjects && i < s->nteams; i++)
		tlm_strmap_clear(&r.subjects[i]);
	tlm_strmap_clear(&r.agents);
	tlm_strmap_clear(&r.teams);
	free(r.subjects);
	free(r.member_of);
	free(r.dep_of);
}
