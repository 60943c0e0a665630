/* --hook EVENT=COMMAND (run, resume, worker) and the hooks of a run the
 * CLI drives: the spec's and these, fed the run's events (docs/hooks.md). */
#ifndef TLM_CLI_HOOKS_H
#define TLM_CLI_HOOKS_H

#include "cli/cli.h"
#include "cli/cli_events.h"
#include "telemachy/hooks.h"

#define TLM_CLI_OPT_HOOK 0x16c
#define TLM_CLI_HOOK_LONGOPT                                                                       \
	{                                                                                          \
		"hook", required_argument, NULL, TLM_CLI_OPT_HOOK                                  \
	}

typedef struct tlm_cli_hooks {
	tlm_spec_hook items[TLM_SPEC_HOOKS_MAX];
	const char *argv[TLM_SPEC_HOOKS_MAX][4];
	size_t n;
} tlm_cli_hooks;

/* Adds one --hook; a usage error's exit code (message printed) otherwise. */
int tlm_cli_hook_add(const tlm_cli *cli, tlm_cli_hooks *h, const char *arg);

/* The hooks a run is driven with, and their own connection to the journal
 * (docs/hooks.md, "At least once"). */
typedef struct tlm_cli_hooks_run {
	tlm_hooks *hooks; /* NULL: the run has none */
	tlm_journal *ledger;
} tlm_cli_hooks_run;

/* The hooks of spec plus extra (either may have none): out->hooks NULL
 * when there are none.  Adds them to events, and opens the journal at
 * state_dir for their deliveries (when it cannot, they are best effort:
 * warned).  TLM_EXIT_OK, or TLM_EXIT_FAILED (logged). */
int tlm_cli_hooks_start(tlm_cli_hooks_run *out, const tlm_spec *spec, const tlm_cli_hooks *extra,
			const char *state_dir, tlm_cli_events *events);

/* After the run: lets the hooks finish within their own timeout (a hook
 * that hangs is killed then), then frees them and closes their journal. */
void tlm_cli_hooks_finish(tlm_cli_hooks_run *r);

#endif
