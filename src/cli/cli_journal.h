/* Shared by the commands that read or edit existing runs (status, list,
 * abandon, ...): opening the journal without creating one, and the few
 * judgements about rows they all print. */
#ifndef TLM_CLI_JOURNAL_H
#define TLM_CLI_JOURNAL_H

#include <stddef.h>

#include "cli/cli.h"
#include "telemachy/journal.h"

/* Opens the journal in dir (NULL: $TELEMACHY_STATE_DIR or the default).  A
 * journal that does not exist is not created: *out is NULL and the result
 * TLM_EXIT_OK, meaning "no runs".  On failure prints why (prefixed with the
 * command) and returns TLM_EXIT_FAILED. */
int tlm_cli_journal_open(const char *dir, tlm_journal **out);

/* Whether a resource in state s may still exist remotely (a leftover). */
int tlm_cli_resource_live(tlm_journal_state s);

/* *n: how many of run_id's resources are live. */
int tlm_cli_count_live(tlm_journal *j, const char *run_id, long *n, tlm_error *err);

/* "850ms", "12.3s", "4m05s", "2h10m", "3d04h"; "-" for a negative age. */
void tlm_cli_format_age(char *buf, size_t size, long ms);

#endif
