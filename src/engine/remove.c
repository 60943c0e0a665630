/* Deleting one remote resource, the same way for teardown and reconcile:
 * an agent is stopped first — so its program ends before its record goes —
 * and deleted even if the stop failed (deleting stops it too on the
 * built-in server; upstream keeps no process for a deleted agent); a team
 * is deleted.  404 on the delete means it is already gone (the caller sees
 * TLM_CLIENT_GONE). */
#include <stdlib.h>
#include <string.h>

#include "engine/engine_internal.h"

typedef struct removal {
	tlm_client *c;
	char path[ENG_PATH_MAX];
	tlm_client_cb cb;
	void *ctx;
} removal;

static void on_deleted(void *ctx, const tlm_client_result *res)
{
	removal *rm = ctx;
	tlm_client_cb cb = rm->cb;
	void *cb_ctx = rm->ctx;

	free(rm);
	cb(cb_ctx, res);
}

static int send_delete(removal *rm, tlm_error *err)
{
	return tlm_client_submit(rm->c, "DELETE", rm->path, NULL, TLM_CLIENT_DELETE, on_deleted, rm,
				 err);
}

static void on_stopped(void *ctx, const tlm_client_result *res)
{
	removal *rm = ctx;
	tlm_client_result failed;
	tlm_error err = TLM_ERROR_INIT;

	if (res->outcome == TLM_CLIENT_CANCELLED) {
		on_deleted(rm, res); /* dropped: the caller frees what it owns */
		return;
	}
	/* A stop that failed is no reason not to delete. */
	if (send_delete(rm, &err) == 0)
		return;
	memset(&failed, 0, sizeof(failed));
	failed.outcome = TLM_CLIENT_FAILED;
	failed.rc = err.code;
	failed.raw = "";
	failed.err = &err;
	on_deleted(rm, &failed);
}

int tlm_eng__remove(tlm_client *c, tlm_journal_kind kind, const char *id, tlm_client_cb cb,
		    void *ctx, tlm_error *err)
{
	removal *rm = calloc(1, sizeof(*rm));
	char stop[ENG_PATH_MAX];
	int rc;

	if (rm == NULL)
		return tlm_error_set(err, TLM_ERROR, "out of memory");
	rm->c = c;
	rm->cb = cb;
	rm->ctx = ctx;
	rc = tlm_client_path(rm->path, sizeof(rm->path),
			     kind == TLM_JOURNAL_AGENT ? "/v1/agents/" : "/v1/teams/", id, NULL,
			     NULL, NULL, err);
	if (rc == 0 && kind == TLM_JOURNAL_AGENT)
		rc = tlm_client_path(stop, sizeof(stop), "/v1/agents/", id, "/stop", NULL, NULL,
				     err);
	if (rc == 0)
		rc = kind == TLM_JOURNAL_AGENT
			     ? tlm_client_submit(c, "POST", stop, NULL, TLM_CLIENT_POST_ACTION,
						 on_stopped, rm, err)
			     : send_delete(rm, err);
	if (rc != 0)
		free(rm);
	return rc;
}

int tlm_eng__addressable(tlm_journal_kind kind, const char *id, tlm_error *err)
{
	char path[ENG_PATH_MAX];

	/* The longest paths built on the id alone; a task's id, which comes
	 * after a team's, is checked where it is used. */
	return tlm_client_path(path, sizeof(path),
			       kind == TLM_JOURNAL_AGENT ? "/v1/agents/" : "/v1/teams/", id,
			       kind == TLM_JOURNAL_AGENT ? "/start" : "/tasks", NULL, NULL, err);
}
