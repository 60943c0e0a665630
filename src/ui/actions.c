/* The actions (docs/ui.md, "Actions"), each as the CLI does it: cancel asks
 * a live owner through the journal, with the audit entry `telemachy
 * cancel` leaves (src/engine/recover.c); a dead owner's run, teardown and
 * resume are the CLI commands themselves, started detached
 * (tlm_spawn_detached), so they leave their own audit entries and outlive
 * a request.  A run whose owner is alive is refused teardown and resume
 * (409), as the CLI refuses them without --force. */
#include <stdlib.h>
#include <string.h>

#include "ui/ui_internal.h"
#include "util/spawn.h"

static void answer(tlm_ui_resp *res, int form, unsigned status, const char *run_id,
		   const char *action, const char *msg)
{
	char loc[128];

	if (status >= 300) {
		if (form)
			tlm_ui__html_error(res, status, msg);
		else
			tlm_ui__error(res, status, "%s", msg);
		return;
	}
	if (!form) {
		tlm_ui__json(res, status,
			     json_pack("{s:s, s:s, s:s}", "run", run_id, "action", action, "result",
				       msg));
		return;
	}
	snprintf(loc, sizeof(loc), "/runs/%s?done=%s", run_id, action);
	tlm_ui__take(res, 303, "text/plain; charset=utf-8", strdup("see the run's page\n"), 19);
	res->location = strdup(loc);
}

/* Starts `telemachy ACTION [--journal WHERE] RUN` detached.  The journal
 * goes on argv only when it came from ours (a password never does: the
 * CLI refuses one there); else the child finds it as this process did, in
 * the environment it inherits. */
static int start(tlm_ui *ui, const char *action, const char *run_id, tlm_error *err)
{
	char *argv[6];
	size_t n = 0;
	pid_t pid;

	argv[n++] = (char *)"telemachy";
	argv[n++] = (char *)action;
	if (ui->o.journal_given && ui->o.journal != NULL) {
		argv[n++] = (char *)"--journal";
		argv[n++] = (char *)ui->o.journal;
	}
	argv[n++] = (char *)run_id;
	argv[n] = NULL;
	return tlm_spawn_detached(ui->o.exe, argv, ui->action_log, &pid, err);
}

void tlm_ui__action(tlm_ui_req *r, tlm_ui_resp *res, const char *run_id, const char *action,
		    int form)
{
	tlm_error err = TLM_ERROR_INIT;
	tlm_journal *j = NULL;
	tlm_journal_run run;
	tlm_journal_owner owner;
	char msg[512];
	int rc;

	memset(&run, 0, sizeof(run));
	if (tlm_ui__journal_rw(r->ui, &j, &err) != 0 || j == NULL ||
	    (rc = tlm_journal_run_get(j, run_id, &run, &err)) != 0) {
		snprintf(msg, sizeof(msg), "%.400s",
			 j == NULL || err.code == TLM_ENOTFOUND ? "no such run" : err.message);
		answer(res, form, j == NULL || err.code == TLM_ENOTFOUND ? 404 : 500, run_id,
		       action, msg);
		tlm_journal_close(j);
		return;
	}
	owner = tlm_journal_run_owner(&run);
	if (owner == TLM_JOURNAL_OWNER_ALIVE && strcmp(action, "cancel") != 0) {
		snprintf(
			msg, sizeof(msg),
			"run %s's owner (pid %ld on %s) is alive: cancel it, or wait for it to end",
			run.id, run.owner_pid, run.owner_host != NULL ? run.owner_host : "?");
		answer(res, form, 409, run.id, action, msg);
	} else if (tlm_run_state_is_final(run.state) && strcmp(action, "teardown") != 0) {
		snprintf(msg, sizeof(msg), "run %s has already ended: %s", run.id,
			 tlm_run_state_name(run.state));
		answer(res, form, 409, run.id, action, msg);
	} else if (owner == TLM_JOURNAL_OWNER_ALIVE) {
		/* As `telemachy cancel` asks a live owner, audit entry included. */
		if (tlm_journal_run_request_cancel(j, run.id, &err) != 0 ||
		    tlm_journal_audit(j, run.id, "cancel",
				      "asked the live owner to cancel (from the dashboard)",
				      &err) != 0)
			answer(res, form, 500, run.id, action, err.message);
		else
			answer(res, form, 202, run.id, action, "asked the run's owner to cancel");
	} else if (start(r->ui, action, run.id, &err) != 0) {
		answer(res, form, 500, run.id, action, err.message);
	} else {
		snprintf(msg, sizeof(msg), "started `telemachy %s %s`", action, run.id);
		answer(res, form, 202, run.id, action, msg);
	}
	tlm_journal_run_clear(&run);
	tlm_journal_close(j);
}
