/* Ending a run's unfinished work on the control plane (docs/agamemnon.md,
 * "Unfinished tasks").  Upstream cannot delete a task, and deleting its team
 * does not stop it: its dispatch waits in the worker queue, and a worker
 * would later run work for a run that is over.  So before anything is
 * deleted (and when resources are kept), every task of the run that is not
 * terminal gets a status update to failed with a note saying why, and the
 * journal records it.  What to look at comes from the journal — attempts of
 * earlier tries and of a crashed process too — and what is there from one
 * listing per team: a task whose create reply was lost is found by its
 * subject, a duplicate a slow server made is ended with it.  A task that
 * could not be ended, or a team whose tasks could not be listed, is a
 * leftover.  Every wait is a turn of the engine's loop. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/engine_internal.h"
#include "util/json.h"

#define NONE ((size_t)-1)

typedef struct ew ew;

typedef struct ew_attempt {
	char *team, *subject, *id; /* team: the spec's name */
	char *key;                 /* "LEN:TEAM" SUBJECT: the task, for lookups by subject */
	int attempt;
	int open;      /* not completed or skipped, and not ended yet */
	int completed; /* a task that completed is never touched */
	int unread;    /* submitted, and what the control plane said of its end not journaled */
} ew_attempt;

typedef struct ew_team {
	ew *w;
	char *name, *id;  /* name: the spec's; id: the control plane's */
	size_t nattempts; /* journaled: at most this many times the creates are ended */
	size_t puts;
	unsigned busy; /* its listing and updates in flight */
} ew_team;

typedef struct ew_put {
	ew *w;
	size_t team, attempt; /* attempt: NONE for a task the journal has no row for */
	char *task_id, *subject;
} ew_put;

struct ew {
	eng *e;
	char note[TLM_ERROR_MSG_MAX];
	ew_attempt *attempts;
	size_t nattempts, acap;
	ew_team *teams;
	size_t nteams, tcap;
	ew_put **puts;
	size_t nputs, pcap;
	tlm_strmap ids;      /* remote id -> attempt */
	tlm_strmap subjects; /* key -> last attempt of the task */
	size_t pending, ended, unended;
	int oom;
};

/* The word a note gives for why the run stopped. */
static const char *why_word(const eng *e)
{
	if (e->leave_on_signal)
		return "torn down";
	switch (e->outcome) {
	case TLM_ENGINE_TIMED_OUT: return "timed out";
	case TLM_ENGINE_CANCELLED:
		return e->o->interrupts != NULL && *e->o->interrupts > 0 ? "interrupted"
									 : "cancelled";
	case TLM_ENGINE_FAILED: return "failed";
	default: return "ended";
	}
}

static int on_row(const tlm_journal_task *row, void *ctx)
{
	ew *w = ctx;
	ew_attempt *a;

	if (w->nattempts == w->acap) {
		size_t cap = w->acap ? 2 * w->acap : 16;

		if ((a = realloc(w->attempts, cap * sizeof(*a))) == NULL)
			return TLM_ERROR;
		w->attempts = a;
		w->acap = cap;
	}
	a = &w->attempts[w->nattempts];
	memset(a, 0, sizeof(*a));
	a->attempt = row->attempt;
	a->completed = row->status == TLM_ATTEMPT_COMPLETED;
	a->unread = row->remote_id != NULL && row->result == NULL;
	a->open = row->ended == NULL && !a->completed && row->status != TLM_ATTEMPT_SKIPPED;
	if ((a->team = strdup(row->team)) == NULL || (a->subject = strdup(row->subject)) == NULL ||
	    (row->remote_id != NULL && (a->id = strdup(row->remote_id)) == NULL) ||
	    (a->key = tlm_strmap_pair_key(row->team, row->subject)) == NULL) {
		w->nattempts++; /* freed with the rest */
		return TLM_ERROR;
	}
	w->nattempts++;
	/* Rows come by team, subject and attempt: the last one wins. */
	if (tlm_strmap_put(&w->subjects, a->key, w->nattempts - 1, NULL) < 0)
		return TLM_ERROR;
	if (a->id != NULL)
		return tlm_strmap_put(&w->ids, a->id, w->nattempts - 1, NULL) < 0 ? TLM_ERROR : 0;
	return 0;
}

/* A team of the run with an id, whose tasks may need ending. */
static int on_team(const tlm_journal_resource *r, void *ctx)
{
	ew *w = ctx;
	tlm_name_parts parts;
	ew_team *t;

	if (r->kind != TLM_JOURNAL_TEAM || r->remote_id == NULL ||
	    r->state == TLM_JOURNAL_ABANDONED || tlm_name_parse(r->name, &parts) != 0 ||
	    parts.kind != TLM_NAME_TEAM || parts.name == NULL)
		return 0;
	if (w->nteams == w->tcap) {
		size_t cap = w->tcap ? 2 * w->tcap : 8;

		if ((t = realloc(w->teams, cap * sizeof(*t))) == NULL)
			return TLM_ERROR;
		w->teams = t;
		w->tcap = cap;
	}
	t = &w->teams[w->nteams++];
	memset(t, 0, sizeof(*t));
	t->w = w;
	if ((t->name = strdup(parts.name)) == NULL || (t->id = strdup(r->remote_id)) == NULL)
		return TLM_ERROR;
	return 0;
}

/* Counts each team's attempts; 1 when some attempt of the team is open or
 * its end unread: the team's tasks are listed. */
static int team_open(ew *w, ew_team *t)
{
	size_t i;
	int open = 0;

	for (i = 0; i < w->nattempts; i++)
		if (strcmp(w->attempts[i].team, t->name) == 0) {
			t->nattempts++;
			open |= w->attempts[i].open || w->attempts[i].unread;
		}
	return open;
}

/* Task TEAM/subject (subject "*": the team's) is a leftover: why is
 * "could not be ended: " or "not ended: " and what. */
static void leftover(ew_team *t, const char *subject, const char *id, const char *why,
		     const char *what)
{
	char name[2 * TLM_JOURNAL_NAME_MAX + 2], text[TLM_ERROR_MSG_MAX + 64];

	snprintf(name, sizeof(name), "%s/%s", t->name, subject);
	snprintf(text, sizeof(text), "%s%s", why, what);
	t->w->unended++;
	tlm_eng__log(t->w->e, TLM_ENGINE_ERROR, "task %s: %s", name, text);
	tlm_eng__add_leftover_named(t->w->e, "task", name, id, text);
}

static void on_put(void *ctx, const tlm_client_result *res)
{
	ew_put *p = ctx;
	ew *w = p->w;
	ew_team *t = &w->teams[p->team];
	tlm_error err = TLM_ERROR_INIT;
	int rc;

	if (res->outcome == TLM_CLIENT_CANCELLED)
		return; /* the engine is leaving: end_work reports the team */
	w->pending--;
	t->busy--;
	if (res->outcome == TLM_CLIENT_GONE)
		return; /* nothing left to run it */
	if (res->outcome != TLM_CLIENT_DONE) {
		leftover(t, p->subject, p->task_id, "could not be ended: ", res->err->message);
		return;
	}
	w->ended++;
	tlm_eng__log(w->e, TLM_ENGINE_INFO, "task %s/%s ended on the control plane", t->name,
		     p->subject);
	if (p->attempt == NONE)
		return;
	rc = tlm_journal_task_ended(w->e->j, w->e->run_id, t->name, p->subject,
				    w->attempts[p->attempt].attempt, p->task_id, w->note, &err);
	(void)tlm_eng__journal_check(w->e, rc, &err);
}

static ew_put *put_new(ew *w, size_t team, size_t attempt, const char *id, const char *subject)
{
	ew_put *p;

	if (w->nputs == w->pcap) {
		size_t cap = w->pcap ? 2 * w->pcap : 16;
		ew_put **q = realloc(w->puts, cap * sizeof(*q));

		if (q == NULL)
			return NULL;
		w->puts = q;
		w->pcap = cap;
	}
	if ((p = calloc(1, sizeof(*p))) == NULL)
		return NULL;
	w->puts[w->nputs++] = p;
	p->w = w;
	p->team = team;
	p->attempt = attempt;
	if ((p->task_id = strdup(id)) == NULL || (p->subject = strdup(subject)) == NULL)
		return NULL;
	return p;
}

/* PUT {"status":"failed","note":...} for task id of team ti. */
static int end_task(ew *w, size_t ti, size_t attempt, const char *id, const char *subject)
{
	ew_team *t = &w->teams[ti];
	tlm_error err = TLM_ERROR_INIT;
	char path[ENG_PATH_MAX], *body;
	json_t *b;
	ew_put *p;

	if ((p = put_new(w, ti, attempt, id, subject)) == NULL)
		return TLM_ERROR;
	if (tlm_client_path(path, sizeof(path), "/v1/teams/", t->id, "/tasks/", id, NULL, &err) !=
	    0) {
		leftover(t, subject, NULL, "could not be ended: ", err.message);
		return 0;
	}
	b = json_pack("{s:s,s:s,s:s}", "status", "failed", "note", w->note, "statusMessage",
		      w->note);
	body = tlm_json_dump_body(b);
	json_decref(b);
	if (body == NULL)
		return TLM_ERROR;
	if (tlm_client_submit(w->e->c, "PUT", path, body, TLM_CLIENT_PUT, on_put, p, &err) == 0) {
		w->pending++;
		t->busy++;
		t->puts++;
	} else {
		leftover(t, subject, id, "could not be ended: ", err.message);
	}
	free(body);
	return 0;
}

/* The journal's attempt a listed task is, or NONE (a duplicate create);
 * *ours 0 when the run made no task of that subject in the team. */
static size_t match(ew_team *t, const char *id, const char *subject, int *ours)
{
	ew *w = t->w;
	size_t ai;
	char *key;
	int found;

	*ours = 1;
	if (tlm_strmap_get(&w->ids, id, &ai) == 0)
		return ai;
	if (subject == NULL || (key = tlm_strmap_pair_key(t->name, subject)) == NULL) {
		*ours = 0;
		w->oom |= subject != NULL;
		return NONE;
	}
	found = tlm_strmap_get(&w->subjects, key, &ai) == 0;
	free(key);
	if (!found) {
		*ours = 0;
		return NONE;
	}
	/* Its last attempt's create reply was lost: this is that task. */
	return w->attempts[ai].id == NULL ? ai : NONE;
}

/* A hostile listing could ask for a million updates: a run made at most
 * ENG_CREATE_POSTS tasks per journaled attempt. */
#define EW_CAPPED 1

static int on_item(void *ctx, json_t *item)
{
	ew_team *t = ctx;
	ew *w = t->w;
	tlm_client_resource k = TLM_CLIENT_RESOURCE_INIT;
	tlm_task_state st;
	const char *subject;
	size_t ai;
	int ours, rc = 0;

	if (tlm_client__resource_from_json(&k, "task", item, NULL) != 0 || k.id == NULL)
		goto done; /* not a task we could address */
	st = k.status != NULL ? tlm_client__task_state(k.status) : TLM_TASK_UNKNOWN;
	subject = json_string_value(json_object_get(k.object, "subject"));
	ai = match(t, k.id, subject, &ours);
	if (ai != NONE && w->attempts[ai].unread && w->attempts[ai].id != NULL &&
	    (st == TLM_TASK_COMPLETED || st == TLM_TASK_FAILED)) {
		w->attempts[ai].unread = 0;
		(void)tlm_eng__result_seen(w->e, t->name, w->attempts[ai].subject,
					   w->attempts[ai].attempt, k.id, k.object);
	}
	if (st == TLM_TASK_COMPLETED || st == TLM_TASK_FAILED)
		goto done;
	if (!ours || (ai != NONE && w->attempts[ai].completed))
		goto done;
	if (t->puts >= t->nattempts * ENG_CREATE_POSTS) {
		leftover(t, "*", NULL,
			 "not ended: ", "the team lists more unfinished tasks than the run made");
		rc = EW_CAPPED;
		goto done;
	}
	rc = end_task(w, (size_t)(t - w->teams), ai, k.id, subject != NULL ? subject : "?");
	w->oom |= rc != 0;
done:
	tlm_client__resource_clear(&k);
	return rc;
}

static void on_listed(void *ctx, int rc, const tlm_error *err)
{
	ew_team *t = ctx;

	if (rc == TLM_ECANCELLED)
		return;
	t->w->pending--;
	t->busy--;
	/* 404: the team is gone, and on a server that checks, its tasks too. */
	if (rc != 0 && rc != EW_CAPPED && rc != TLM_ENOTFOUND)
		leftover(t, "*", NULL,
			 "its tasks could not be listed, unfinished ones may remain: ",
			 err != NULL ? err->message : "failed");
}

/* Lists the tasks of every team with an open attempt; ends what runs. */
static void end_teams(ew *w)
{
	tlm_error err = TLM_ERROR_INIT;
	char path[ENG_PATH_MAX];
	size_t i;

	for (i = 0; i < w->nteams; i++) {
		ew_team *t = &w->teams[i];

		if (!team_open(w, t))
			continue;
		if (tlm_client_path(path, sizeof(path), "/v1/teams/", t->id, "/tasks", NULL, NULL,
				    &err) != 0 ||
		    tlm_client_list(w->e->c, path, "tasks", on_item, on_listed, t, &err) != 0) {
			leftover(t, "*", NULL, "its tasks could not be listed: ", err.message);
			continue;
		}
		w->pending++;
		t->busy++;
	}
	while (w->pending > 0 && tlm_eng__turn(w->e, ENG_TICK_MS))
		;
}

static void ew_free(ew *w)
{
	size_t i;

	for (i = 0; i < w->nattempts; i++) {
		free(w->attempts[i].team);
		free(w->attempts[i].subject);
		free(w->attempts[i].id);
		free(w->attempts[i].key);
	}
	for (i = 0; i < w->nteams; i++) {
		free(w->teams[i].name);
		free(w->teams[i].id);
	}
	for (i = 0; i < w->nputs; i++) {
		free(w->puts[i]->task_id);
		free(w->puts[i]->subject);
		free(w->puts[i]);
	}
	free(w->attempts);
	free(w->teams);
	free(w->puts);
	tlm_strmap_clear(&w->ids);
	tlm_strmap_clear(&w->subjects);
}

/* The journal's attempts and teams into w. */
static int ew_load(ew *w)
{
	eng *e = w->e;
	tlm_error err = TLM_ERROR_INIT;
	int rc = tlm_journal_tasks(e->j, e->run_id, on_row, w, &err);

	if (rc == 0)
		rc = tlm_journal_resources(e->j, e->run_id, on_team, w, &err);
	if (rc == TLM_ERROR && err.code == 0)
		return tlm_eng__oom(e);
	return tlm_eng__journal_check(e, rc, &err);
}

/* The run is leaving (a second signal, taken over): requests in flight
 * point into w; what they were ending is a leftover. */
static void ew_abandon(ew *w)
{
	size_t i;

	tlm_client_cancel_all(w->e->c);
	if (w->e->stop != STOP_ABANDONED)
		return; /* taken over: the new owner ends them */
	for (i = 0; i < w->nteams; i++)
		if (w->teams[i].busy > 0)
			leftover(&w->teams[i], "*", NULL, "not ended: ", "the run was abandoned");
}

int tlm_eng__end_work(eng *e)
{
	tlm_error err = TLM_ERROR_INIT;
	char detail[TLM_ERROR_MSG_MAX + 128];
	ew w;
	int rc;

	if (e->c == NULL || e->stop != STOP_NONE)
		return 0;
	memset(&w, 0, sizeof(w));
	w.e = e;
	snprintf(w.note, sizeof(w.note), "cancelled by telemachy: run %s %s", e->run_id,
		 why_word(e));
	if ((rc = ew_load(&w)) == 0)
		end_teams(&w);
	if (w.pending > 0)
		ew_abandon(&w);
	if (w.oom)
		rc = tlm_eng__oom(e);
	if (e->stop == STOP_NONE && w.ended + w.unended > 0) {
		snprintf(detail, sizeof(detail),
			 "ended %zu unfinished task(s) (\"%s\"); %zu not ended", w.ended, w.note,
			 w.unended);
		if (tlm_journal_audit(e->j, e->run_id, "end-tasks", detail, &err) != 0)
			tlm_eng__log(e, TLM_ENGINE_WARN, "no audit entry for the ended tasks: %s",
				     err.message);
	}
	ew_free(&w);
	return rc;
}
