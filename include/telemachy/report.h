/* The journal's runs as JSON documents: what `telemachy list --output json`
 * and `telemachy status --output json` print, and what every other reader
 * (the dashboard, tools) serves, so that they all say the same
 * (docs/output.md).  Reads the journal only; contacts nothing.  URLs are
 * given with credentials redacted. */
#ifndef TELEMACHY_REPORT_H
#define TELEMACHY_REPORT_H

#include <jansson.h>

#include "telemachy/error.h"
#include "telemachy/journal.h"

/* Whether a resource in state s may still exist remotely (a leftover):
 * intent, created, started or deleting. */
int tlm_report_resource_live(tlm_journal_state s);

/* *n: how many of run_id's resources are live. */
int tlm_report_count_live(tlm_journal *j, const char *run_id, long *n, tlm_error *err);

/* *out (owned by the caller): {"runs": [...]}, newest first, each run with
 * its owner and live_resources; only runs in *state (NULL: all) of workflow
 * (NULL: all). */
int tlm_report_runs(tlm_journal *j, const tlm_run_state *state, const char *workflow, json_t **out,
		    tlm_error *err);

/* *out (owned by the caller): {"run", "resources", "tasks", "leftovers",
 * "audit"} for the run r (from tlm_journal_run_get). */
int tlm_report_run(tlm_journal *j, const tlm_journal_run *r, json_t **out, tlm_error *err);

#endif
