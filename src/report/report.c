/* Runs as JSON documents (include/telemachy/report.h).  One place builds
 * them so that `list`, `status` and every other reader say the same. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "telemachy/report.h"
#include "util/redact.h"

#define URL_MAX 512

/* The live resources of each run that has any, sorted by id. */
typedef struct live_count {
	char id[TLM_JOURNAL_RUN_ID_LEN + 1];
	long live;
} live_count;

typedef struct live_table {
	live_count *v;
	size_t n, cap;
} live_table;

typedef struct report_ctx {
	json_t *array;
	long live;
	const live_table *table; /* tlm_report_runs */
} report_ctx;

int tlm_report_resource_live(tlm_journal_state s)
{
	return s == TLM_JOURNAL_INTENT || s == TLM_JOURNAL_CREATED || s == TLM_JOURNAL_STARTED ||
	       s == TLM_JOURNAL_DELETING;
}

static int count_cb(const tlm_journal_resource *r, void *ctx)
{
	long *n = ctx;

	*n += tlm_report_resource_live(r->state);
	return 0;
}

int tlm_report_count_live(tlm_journal *j, const char *run_id, long *n, tlm_error *err)
{
	*n = 0;
	return tlm_journal_resources(j, run_id, count_cb, n, err);
}

/* Takes item (NULL: jansson ran out of memory). */
static int append(json_t *array, json_t *item)
{
	return json_array_append_new(array, item) == 0 ? 0 : TLM_ERROR;
}

/* The control plane's URL as it may be shown: NULL stays NULL. */
static const char *shown_url(char *buf, const char *url)
{
	if (url == NULL)
		return NULL;
	tlm_redact_url(buf, URL_MAX, url);
	return buf;
}

static json_t *owner_json(const tlm_journal_run *r)
{
	return json_pack("{s:I, s:s?, s:s, s:I, s:s?, s:I}", "pid", (json_int_t)r->owner_pid,
			 "host", r->owner_host, "state",
			 tlm_journal_owner_name(tlm_journal_run_owner(r)), "heartbeat_age_ms",
			 (json_int_t)r->heartbeat_age_ms, "heartbeat_at", r->heartbeat_at, "epoch",
			 (json_int_t)r->owner_epoch);
}

static int table_cb(const tlm_journal_counts *c, void *ctx)
{
	live_table *t = ctx;
	long live = 0;

	for (int s = 0; s < TLM_JOURNAL_STATE_COUNT; s++)
		live += tlm_report_resource_live((tlm_journal_state)s) ? c->n[s] : 0;
	if (live == 0)
		return 0;
	if (t->n == t->cap) {
		size_t cap = t->cap ? 2 * t->cap : 64;
		live_count *v = realloc(t->v, cap * sizeof(*v));

		if (v == NULL)
			return TLM_ERROR;
		t->v = v;
		t->cap = cap;
	}
	memcpy(t->v[t->n].id, c->run_id, sizeof(t->v[t->n].id));
	t->v[t->n++].live = live;
	return 0;
}

static int by_id(const void *a, const void *b)
{
	return strcmp(((const live_count *)a)->id, ((const live_count *)b)->id);
}

/* The whole listing's counts in one query, not one per run: on PostgreSQL
 * each is a round trip, and with 2000 runs they were most of `list`'s time. */
static int table_load(tlm_journal *j, const tlm_run_state *state, const char *workflow,
		      live_table *t, tlm_error *err)
{
	int rc = tlm_journal_resource_counts(j, state, workflow, table_cb, t, err);

	if (rc == 0 && t->n > 1)
		qsort(t->v, t->n, sizeof(*t->v), by_id);
	return rc;
}

static long table_live(const live_table *t, const char *id)
{
	live_count key = { "", 0 };
	const live_count *hit;

	if (t->n == 0)
		return 0;
	snprintf(key.id, sizeof(key.id), "%s", id);
	hit = bsearch(&key, t->v, t->n, sizeof(*t->v), by_id);
	return hit != NULL ? hit->live : 0;
}

static int run_cb(const tlm_journal_run *r, void *ctx)
{
	report_ctx *c = ctx;
	char url[URL_MAX];
	long live = table_live(c->table, r->id);

	return append(c->array,
		      json_pack("{s:s, s:s, s:s, s:s, s:s, s:o, s:s?, s:I}", "id", r->id,
				"workflow", r->workflow, "state", tlm_run_state_name(r->state),
				"created_at", r->created_at, "updated_at", r->updated_at, "owner",
				owner_json(r), "control_plane", shown_url(url, r->control_plane),
				"live_resources", (json_int_t)live));
}

/* Wraps array as {key: array}, taking it; NULL and freed on failure. */
static int wrap(const char *key, json_t *array, json_t **out)
{
	*out = array != NULL ? json_pack("{s:o}", key, array) : NULL;
	return *out != NULL ? 0 : TLM_ERROR;
}

/* Two reads, not one snapshot (nor were the per-run reads before): a run
 * that gains resources between them shows the counts of the first. */
int tlm_report_runs(tlm_journal *j, const tlm_run_state *state, const char *workflow, json_t **out,
		    tlm_error *err)
{
	live_table t = { NULL, 0, 0 };
	report_ctx c = { json_array(), 0, &t };
	int rc = TLM_ERROR;

	*out = NULL;
	if (c.array == NULL || (rc = table_load(j, state, workflow, &t, err)) != 0 ||
	    (rc = tlm_journal_runs(j, state, workflow, run_cb, &c, err)) != 0)
		goto done;
	rc = wrap("runs", c.array, out);
	c.array = NULL; /* taken by wrap */
done:
	json_decref(c.array);
	free(t.v);
	return rc;
}

static int resource_cb(const tlm_journal_resource *r, void *ctx)
{
	report_ctx *c = ctx;

	c->live += tlm_report_resource_live(r->state);
	return append(c->array,
		      json_pack("{s:s, s:s, s:s?, s:s, s:s?, s:s}", "kind",
				tlm_journal_kind_name(r->kind), "name", r->name, "remote_id",
				r->remote_id, "state", tlm_journal_state_name(r->state),
				"last_error", r->last_error, "updated_at", r->updated_at));
}

static int task_cb(const tlm_journal_task *t, void *ctx)
{
	report_ctx *c = ctx;

	return append(c->array,
		      json_pack("{s:s, s:s, s:i, s:s?, s:s, s:s, s:s?}", "team", t->team, "subject",
				t->subject, "attempt", t->attempt, "remote_id", t->remote_id,
				"status", tlm_attempt_status_name(t->status), "updated_at",
				t->updated_at, "ended", t->ended));
}

static int audit_cb(const tlm_journal_audit_entry *a, void *ctx)
{
	report_ctx *c = ctx;

	return append(c->array,
		      json_pack("{s:I, s:s, s:s, s:s?, s:s?, s:s?, s:I}", "seq", (json_int_t)a->seq,
				"at", a->at, "action", a->action, "detail", a->detail, "user",
				a->user, "host", a->host, "pid", (json_int_t)a->pid));
}

static json_t *run_json(const tlm_journal_run *r)
{
	char url[URL_MAX];

	return json_pack("{s:s, s:s, s:s, s:s, s:s, s:s, s:o, s:s?, s:s?}", "id", r->id, "workflow",
			 r->workflow, "state", tlm_run_state_name(r->state), "spec_hash",
			 r->spec_hash, "created_at", r->created_at, "updated_at", r->updated_at,
			 "owner", owner_json(r), "control_plane", shown_url(url, r->control_plane),
			 "cancel_requested_at", r->cancel_requested_at);
}

/* The three lists of the run, each into its own array of c[]. */
static int collect(tlm_journal *j, const char *id, report_ctx c[3], tlm_error *err)
{
	int rc;

	for (int i = 0; i < 3; i++)
		if ((c[i].array = json_array()) == NULL)
			return TLM_ERROR;
	if ((rc = tlm_journal_resources(j, id, resource_cb, &c[0], err)) != 0 ||
	    (rc = tlm_journal_tasks(j, id, task_cb, &c[1], err)) != 0)
		return rc;
	return tlm_journal_audits(j, id, audit_cb, &c[2], err);
}

int tlm_report_run(tlm_journal *j, const tlm_journal_run *r, json_t **out, tlm_error *err)
{
	report_ctx c[3];
	int rc;

	memset(c, 0, sizeof(c));
	*out = NULL;
	if ((rc = collect(j, r->id, c, err)) == 0) {
		*out = json_pack("{s:o, s:O, s:O, s:I, s:O}", "run", run_json(r), "resources",
				 c[0].array, "tasks", c[1].array, "leftovers",
				 (json_int_t)c[0].live, "audit", c[2].array);
		rc = *out != NULL ? 0 : TLM_ERROR;
	}
	for (int i = 0; i < 3; i++)
		json_decref(c[i].array);
	return rc;
}
