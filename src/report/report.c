/* Runs as JSON documents (include/telemachy/report.h).  One place builds
 * them so that `list`, `status` and every other reader say the same. */
#include <string.h>

#include "telemachy/report.h"
#include "util/redact.h"

#define URL_MAX 512

typedef struct report_ctx {
	tlm_journal *j;
	json_t *array;
	tlm_error *err;
	long live;
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

static int run_cb(const tlm_journal_run *r, void *ctx)
{
	report_ctx *c = ctx;
	char url[URL_MAX];
	long live = 0;
	int rc;

	if ((rc = tlm_report_count_live(c->j, r->id, &live, c->err)) != 0)
		return rc;
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

int tlm_report_runs(tlm_journal *j, const tlm_run_state *state, const char *workflow, json_t **out,
		    tlm_error *err)
{
	report_ctx c = { j, json_array(), err, 0 };
	int rc;

	*out = NULL;
	if (c.array == NULL)
		return TLM_ERROR;
	if ((rc = tlm_journal_runs(j, state, workflow, run_cb, &c, err)) != 0) {
		json_decref(c.array);
		return rc;
	}
	return wrap("runs", c.array, out);
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
