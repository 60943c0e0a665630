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

/* "850ms", "12.3s", "4m05s", "2h10m", "3d04h"; "-" for a negative age. */
void tlm_cli_format_age(char *buf, size_t size, long ms);

#endif
