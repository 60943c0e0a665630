/* Following a running task's output (`telemachy logs -f`, docs/logs.md):
 * polls the built-in control plane's GET .../tasks/{id}/output for stdout
 * and stderr from where the last poll stopped, until the task has ended
 * and nothing is left, or the caller is interrupted.  Read-only: it claims
 * nothing, so it may follow a run another process owns. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "engine/engine_internal.h"

#define POLL_MS 500

typedef struct follow_ids {
	const char *team, *subject;
	char team_name[TLM_JOURNAL_NAME_MAX + 1];
	char *team_id, *task_id;
	int attempt;
} follow_ids;

static int on_team(const tlm_journal_resource *r, void *ctx)
{
	follow_ids *f = ctx;

	if (r->kind == TLM_JOURNAL_TEAM && strcmp(r->name, f->team_name) == 0 &&
	    r->remote_id != NULL) {
		free(f->team_id);
		if ((f->team_id = strdup(r->remote_id)) == NULL)
			return TLM_ERROR;
	}
	return 0;
}

static int on_attempt(const tlm_journal_task *t, void *ctx)
{
	follow_ids *f = ctx;

	/* Rows come by attempt: the last submitted one wins. */
	if (strcmp(t->team, f->team) == 0 && strcmp(t->subject, f->subject) == 0 &&
	    t->remote_id != NULL) {
		free(f->task_id);
		if ((f->task_id = strdup(t->remote_id)) == NULL)
			return TLM_ERROR;
		f->attempt = t->attempt;
	}
	return 0;
}

/* The remote ids of team/subject's last submitted attempt. */
static int find_ids(tlm_journal *j, const char *run_id, follow_ids *f, tlm_error *err)
{
	int rc;

	if ((rc = tlm_name_build(f->team_name, sizeof(f->team_name), run_id, TLM_NAME_TEAM, f->team,
				 err)) != 0 ||
	    (rc = tlm_journal_resources(j, run_id, on_team, f, err)) != 0 ||
	    (rc = tlm_journal_tasks(j, run_id, on_attempt, f, err)) != 0)
		return rc == TLM_ERROR && err->code == 0 ? tlm_error_set(err, rc, "out of memory")
							 : rc;
	if (f->team_id == NULL || f->task_id == NULL)
		return tlm_error_set(err, TLM_ENOTFOUND, "run %s has no submitted task %s/%.512s",
				     run_id, f->team, f->subject);
	return 0;
}

/* One poll of stream from *offset; *done when the task has ended. */
static int poll_stream(tlm_client *c, const follow_ids *f, const char *stream, size_t *offset,
		       int *done, tlm_engine_output_cb cb, void *ctx, tlm_error *err)
{
	char path[ENG_PATH_MAX], q[64];
	json_t *body = NULL;
	long status = 0;
	const char *data;
	int rc;

	if ((rc = tlm_client_path(path, sizeof(path) - sizeof(q), "/v1/teams/", f->team_id,
				  "/tasks/", f->task_id, "/output", err)) != 0)
		return rc;
	snprintf(q, sizeof(q), "?stream=%s&offset=%zu", stream, *offset);
	strcat(path, q);
	rc = tlm_client_get(c, path, &body, &status, err);
	if (rc == TLM_ENOTFOUND || status == 404)
		rc = tlm_error_set(
			err, TLM_ENOTFOUND,
			"the control plane does not serve task output (only telemachy's "
			"built-in one does): `telemachy logs` shows what the run collected");
	if (rc == 0) {
		data = json_string_value(json_object_get(body, "data"));
		if (data != NULL && data[0] != '\0')
			cb(ctx, stream, data, strlen(data));
		*offset += data != NULL ? strlen(data) : 0;
		*done = json_is_true(json_object_get(body, "done"));
	}
	json_decref(body);
	return rc;
}

static void sleep_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	nanosleep(&ts, NULL); /* a signal only shortens it */
}

static int follow(tlm_client *c, const tlm_engine_opts *o, const follow_ids *f,
		  tlm_engine_output_cb cb, void *ctx, tlm_error *err)
{
	size_t off_out = 0, off_err = 0, before;
	int done = 0, rc = 0;

	while (rc == 0 && (o->interrupts == NULL || *o->interrupts == 0)) {
		before = off_out + off_err;
		rc = poll_stream(c, f, "stdout", &off_out, &done, cb, ctx, err);
		if (rc == 0)
			rc = poll_stream(c, f, "stderr", &off_err, &done, cb, ctx, err);
		/* Ended and drained: a chunk is capped, so read until nothing. */
		if (rc != 0 || (done && off_out + off_err == before))
			break;
		if (off_out + off_err == before)
			sleep_ms(POLL_MS);
	}
	return rc;
}

int tlm_engine_follow_output(const tlm_engine_opts *o, const char *run_id, const char *task,
			     tlm_engine_output_cb cb, void *ctx, tlm_error *err)
{
	tlm_client_opts co = TLM_CLIENT_OPTS_INIT;
	tlm_journal *j = NULL;
	tlm_client *c = NULL;
	follow_ids f;
	char team[TLM_JOURNAL_NAME_MAX + 1];
	const char *slash = strchr(task, '/');
	int rc;

	if ((rc = tlm_eng__opts_check(o, err)) != 0)
		return rc;
	memset(&f, 0, sizeof(f));
	if (slash == NULL || slash == task || (size_t)(slash - task) >= sizeof(team))
		return tlm_error_set(err, TLM_EINVALID, "name the task as TEAM/TASK");
	memcpy(team, task, (size_t)(slash - task));
	team[slash - task] = '\0';
	f.team = team;
	f.subject = slash + 1;
	if (o->control_plane == NULL)
		return tlm_error_set(
			err, TLM_EINVALID,
			"run %s uses the in-process control plane of its own process, "
			"which nobody else can reach: run it against `telemachy serve` "
			"(AGAMEMNON_URL) to follow its tasks",
			run_id);
	if ((rc = tlm_journal_open(&j, o->state_dir, err)) == 0 &&
	    (rc = find_ids(j, run_id, &f, err)) == 0) {
		tlm_eng__client_opts(o, o->control_plane, 0, 2, &co);
		if ((rc = tlm_client_new(&c, &co, err)) == 0)
			rc = follow(c, o, &f, cb, ctx, err);
	}
	tlm_client_free(c);
	tlm_journal_close(j);
	free(f.team_id);
	free(f.task_id);
	return rc;
}
