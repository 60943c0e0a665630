/* A journaled run for the commands that act on one (resume, teardown,
 * cancel). */
#ifndef TLM_CLI_RUN_JOURNAL_H
#define TLM_CLI_RUN_JOURNAL_H

#include "cli/cli.h"
#include "telemachy/journal.h"

/* Reads run_id from the journal in state_dir (NULL: the default); clear
 * *run with tlm_journal_run_clear.  Returns TLM_EXIT_OK, or an exit code
 * after printing "telemachy CMD: ..." (an unknown run is a usage error). */
int tlm_cli_journal_run(const char *state_dir, const char *run_id, tlm_journal_run *run);

/* Resumes run (read from the journal) as `telemachy resume` does, with the
 * options in eo; flag is --control-plane as given (NULL: none).  Returns the
 * exit code (shared by resume and worker). */
int tlm_cli_resume_run(tlm_cli *cli, tlm_engine_opts *eo, const tlm_journal_run *run,
		       const char *flag, const char *const *pass_env);

/* Where run's resources live: the --control-plane flag if given, else the
 * URL the journal recorded, else (an older journal) env_url.  NULL means the
 * in-process control plane. */

const char *tlm_cli_run_control_plane(const tlm_journal_run *run, const char *flag,
				      const char *env_url);

#endif
