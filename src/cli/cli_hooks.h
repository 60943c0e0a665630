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

/* The hooks of spec plus extra (either may have none): *out NULL when
 * there are none.  Adds them to events.  TLM_EXIT_OK, or TLM_EXIT_FAILED
 * (logged). */
int tlm_cli_hooks_start(tlm_hooks **out, const tlm_spec *spec, const tlm_cli_hooks *extra,
			tlm_cli_events *events);

/* After the run: lets the hooks finish within their own timeout (a hook
 * that hangs is killed then), then frees them.  NULL is a no-op. */
void tlm_cli_hooks_finish(tlm_hooks *h);

#endif
