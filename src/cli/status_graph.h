/* `telemachy status --graph`: the run's task graph coloured by state. */
#ifndef TLM_CLI_STATUS_GRAPH_H
#define TLM_CLI_STATUS_GRAPH_H

#include "telemachy/journal.h"

/* Prints run r's plan as format ("dot" or "mermaid") on stdout, each task
 * coloured by its last attempt's state; returns an exit code. */
int tlm_cli_status_graph(tlm_journal *j, const tlm_journal_run *r, const char *format);

#endif
