/* --metrics-listen and --metrics-textfile (run, resume, teardown; serve
 * takes --metrics-listen), and METRICS_LISTEN / METRICS_TEXTFILE as their
 * defaults (docs/metrics.md). */
#ifndef TLM_CLI_METRICS_H
#define TLM_CLI_METRICS_H

#define TLM_CLI_OPT_METRICS_LISTEN   0x16a
#define TLM_CLI_OPT_METRICS_TEXTFILE 0x16b
#define TLM_CLI_METRICS_LISTEN_LONGOPT                                                             \
	{                                                                                          \
		"metrics-listen", required_argument, NULL, TLM_CLI_OPT_METRICS_LISTEN              \
	}
#define TLM_CLI_METRICS_LONGOPTS                                                                   \
	TLM_CLI_METRICS_LISTEN_LONGOPT,                                                            \
	{                                                                                          \
		"metrics-textfile", required_argument, NULL, TLM_CLI_OPT_METRICS_TEXTFILE          \
	}

/* Keeps the value of one of those flags: 1 when c was one, else 0.  The
 * command is one per process, so the settings are too. */
int tlm_cli_metrics_opt(int c, const char *arg);

/* Starts the exporter when a flag or METRICS_LISTEN asks for one, and
 * says where it listens.  TLM_EXIT_OK, or TLM_EXIT_USAGE after printing
 * why it could not (a non-loopback address, a port in use). */
int tlm_cli_metrics_start(void);

/* Writes the textfile when a flag or METRICS_TEXTFILE asks for one (an
 * error is printed; the command's exit code stays what the run made it),
 * then stops the exporter. */
void tlm_cli_metrics_finish(void);

#endif
