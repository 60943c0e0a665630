/* What resume, teardown and cancel need first: the run as the journal has
 * it, and the control plane its resources live on. */
#include <stdio.h>
#include <string.h>

#include "cli/cli.h"
#include "cli/cli_journal.h"
#include "cli/run_journal.h"

int tlm_cli_journal_run(const char *state_dir, const char *run_id, tlm_journal_run *run)
{
	tlm_error err = TLM_ERROR_INIT;
	tlm_journal *j = NULL;
	int rc;

	memset(run, 0, sizeof(*run));
	if ((rc = tlm_cli_journal_open(state_dir, &j)) != TLM_EXIT_OK)
		return rc;
	rc = j == NULL                                  ? TLM_ENOTFOUND
	     : strlen(run_id) == TLM_JOURNAL_RUN_ID_LEN ? tlm_journal_run_get(j, run_id, run, &err)
							: TLM_ENOTFOUND;
	if (rc == TLM_ENOTFOUND)
		tlm_error_set(&err, TLM_ENOTFOUND, "no run \"%.64s\" in %s", run_id,
			      j != NULL ? tlm_journal_path(j) : "the journal (it has no runs)");
	tlm_journal_close(j);
	if (rc == 0) {
		tlm_log_set_run(run->id); /* every later record names it */
		return TLM_EXIT_OK;
	}
	tlm_log_cmd(TLM_ENGINE_ERROR, NULL, "%s", err.message);
	return rc == TLM_ENOTFOUND || rc == TLM_EINVALID ? TLM_EXIT_USAGE : TLM_EXIT_FAILED;
}

const char *tlm_cli_run_control_plane(const tlm_journal_run *run, const char *flag,
				      const char *env_url)
{
	if (flag != NULL)
		return flag;
	if (run->control_plane == NULL)
		return env_url; /* not recorded (an older journal): the environment's */
	if (strcmp(run->control_plane, TLM_JOURNAL_BUILTIN) == 0)
		return NULL;
	return run->control_plane;
}
