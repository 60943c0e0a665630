/* The output of `telemachy run`: log lines and a live progress line on
 * stderr, the final summary on stdout (text table or JSON). */
#ifndef TLM_CLI_RUN_OUTPUT_H
#define TLM_CLI_RUN_OUTPUT_H

#include <stdint.h>

#include "cli/cli.h"
#include "telemachy/engine.h"

typedef struct tlm_run_output {
	const tlm_cli *cli;
	int tty;       /* stderr is a terminal: draw the progress line */
	int color;     /* and NO_COLOR is not set */
	int drawn;     /* a progress line is on screen */
	uint64_t last; /* when it was drawn (ms, monotonic) */
} tlm_run_output;

void tlm_run_output_init(tlm_run_output *out, const tlm_cli *cli);

/* The engine's observer (ctx: a tlm_run_output). */
void tlm_run_output_observe(void *ctx, tlm_engine_level level, const char *message,
			    const tlm_engine_progress *p);

/* Clears the progress line before the summary. */
void tlm_run_output_done(tlm_run_output *out);

/* Prints the summary; -1 when stdout could not be written. */
int tlm_run_output_result(const tlm_run_output *out, const tlm_engine_result *r, int exit_code);

#endif
