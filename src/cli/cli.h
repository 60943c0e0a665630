/* The command-line front end: shared options, exit codes, and one entry point
 * per command (src/cli/cmd_<name>.c).  Only the CLI prints. */
#ifndef TLM_CLI_H
#define TLM_CLI_H

#include <getopt.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>

/* Exit codes (docs/design.md §5); documented in the README. */
enum {
	TLM_EXIT_OK = 0,
	TLM_EXIT_FAILED = 1,      /* the workflow failed */
	TLM_EXIT_USAGE = 2,       /* usage or validation error */
	TLM_EXIT_UNREACHABLE = 3, /* control plane or NATS unreachable */
	TLM_EXIT_TEARDOWN = 4,    /* teardown left resources */
	TLM_EXIT_TAKEN_OVER = 5,  /* another process took the run over: this one stopped */
	TLM_EXIT_INTERRUPTED = 130
};

typedef enum { TLM_OUTPUT_TEXT = 0, TLM_OUTPUT_JSON } tlm_output;

/* Options every command accepts, before or after the command name. */
typedef struct tlm_cli {
	tlm_output output;
	int quiet;
	int verbose;
	const char *command; /* e.g. "plan" */
	/* --hook of run, resume and worker (cli/cli_hooks.h); NULL: none */
	const struct tlm_cli_hooks *hooks;
} tlm_cli;

#define TLM_CLI_INIT                                                                               \
	{                                                                                          \
		TLM_OUTPUT_TEXT, 0, 0, NULL, NULL                                                  \
	}

/* getopt_long entries for the global options; a command's option table
 * starts with these (TLM_CLI_LONGOPTS) and ends with { 0 }. */
#define TLM_CLI_OPT_OUTPUT 0x100
#define TLM_CLI_OPT_HELP   'h'
#define TLM_CLI_LONGOPTS                                                                           \
	{ "output", required_argument, NULL, TLM_CLI_OPT_OUTPUT },                                 \
		{ "help", no_argument, NULL, 'h' }, { "quiet", no_argument, NULL, 'q' },           \
	{                                                                                          \
		"verbose", no_argument, NULL, 'v'                                                  \
	}
#define TLM_CLI_SHORTOPTS "hqv"

/* --state-dir DIR (the journal's directory) and --journal WHERE (a
 * directory, sqlite:DIR or a postgres:// URI; docs/distributed.md): two
 * names for where the journal is, shared by every command that reads or
 * writes it. */
#define TLM_CLI_OPT_STATE_DIR 0x161
#define TLM_CLI_STATE_DIR_LONGOPT                                                                  \
	{ "state-dir", required_argument, NULL, TLM_CLI_OPT_STATE_DIR },                           \
	{                                                                                          \
		"journal", required_argument, NULL, TLM_CLI_OPT_STATE_DIR                          \
	}

/* Refuses a database password on the command line (where `ps` shows it to
 * every local user): 0, or TLM_EXIT_USAGE after saying where it belongs. */
int tlm_cli_check_argv_secrets(int argc, char **argv);

/* Handles a global option returned by getopt_long.  Returns 1 when handled,
 * 0 when c is not a global option, -1 on a bad value (message printed). */
int tlm_cli_global_opt(tlm_cli *cli, int c, const char *arg);

/* Steps through a command's options with getopt_long, handling the global
 * ones, --help (prints usage, exit 0) and unknown options or missing values
 * (usage error, exit 2).  Returns the next command-specific option (> 0),
 * 0 when the options are done (optind is the first operand), or -1 when the
 * command must return *exit_code now. */
int tlm_cli_next_opt(tlm_cli *cli, int argc, char **argv, const struct option *longopts,
		     void (*usage)(void), int *exit_code);

/* Prints "telemachy CMD: <msg>" and a hint to use --help; returns
 * TLM_EXIT_USAGE. */
int tlm_cli_usage_error(const tlm_cli *cli, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* ---- text from outside (docs/design.md §11) ------------------------------
 * Every name, id and message that came from a control plane (or from the
 * journal, which keeps what the control plane said, or from a spec file) is
 * printed through these, in every text output: control characters, C1
 * controls, bidi marks and invalid UTF-8 escaped (src/util/esc.h), so such
 * text can neither forge a line nor drive the terminal.  --output json
 * escapes by construction. */

/* s escaped (NULL as "-"). */
void tlm_cli_put_esc(FILE *f, const char *s);

/* Display width of s once escaped. */
size_t tlm_cli_width(const char *s);

/* s escaped, cut at max columns (0: no cut), padded with spaces to width. */
void tlm_cli_cell(FILE *f, const char *s, size_t width, size_t max);

/* The formatted text, escaped as a whole: for messages built from outside
 * text.  tlm_cli_line adds the newline (the only one: the message's own
 * newlines are escaped). */
void tlm_cli_esc(FILE *f, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void tlm_cli_vesc(FILE *f, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));
void tlm_cli_line(FILE *f, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* In a build with test hooks: arms the allocation faults of
 * TLM_ALLOC_FAIL_AT / TLM_ALLOC_LOG (src/cli/alloc_faults.c); else nothing. */
void tlm_cli_alloc_faults_start(void);

/* Each command: argv[0] is the command name; returns an exit code. */
int tlm_cmd_validate(tlm_cli *cli, int argc, char **argv);
int tlm_cmd_plan(tlm_cli *cli, int argc, char **argv);
int tlm_cmd_schema(tlm_cli *cli, int argc, char **argv);
int tlm_cmd_version(tlm_cli *cli, int argc, char **argv);
int tlm_cmd_serve(tlm_cli *cli, int argc, char **argv);
int tlm_cmd_run(tlm_cli *cli, int argc, char **argv);
int tlm_cmd_status(tlm_cli *cli, int argc, char **argv);
int tlm_cmd_list(tlm_cli *cli, int argc, char **argv);
int tlm_cmd_cancel(tlm_cli *cli, int argc, char **argv);
int tlm_cmd_resume(tlm_cli *cli, int argc, char **argv);
int tlm_cmd_teardown(tlm_cli *cli, int argc, char **argv);
int tlm_cmd_reconcile(tlm_cli *cli, int argc, char **argv);
int tlm_cmd_abandon(tlm_cli *cli, int argc, char **argv);
int tlm_cmd_logs(tlm_cli *cli, int argc, char **argv);
int tlm_cmd_mcp(tlm_cli *cli, int argc, char **argv);
int tlm_cmd_audit(tlm_cli *cli, int argc, char **argv);
int tlm_cmd_doctor(tlm_cli *cli, int argc, char **argv);
int tlm_cmd_submit(tlm_cli *cli, int argc, char **argv);
int tlm_cmd_worker(tlm_cli *cli, int argc, char **argv);
int tlm_cmd_ui(tlm_cli *cli, int argc, char **argv);

/* 1 when LOG_LEVEL or LOG_FORMAT was refused (main.c; only `doctor` runs on). */
int tlm_cli_log_env_bad(void);

#include "cli/log.h"
#include "telemachy/engine.h"
#include "telemachy/journal.h"
#include "telemachy/spec.h"

/* Runs the engine with eo — a run, a resume (eo->resume_run_id), or with
 * teardown set (read from the journal, its spec included) `telemachy
 * teardown` of that run — handling signals, the
 * observer, the summary and the exit code.  A run or resume with no control
 * plane (and every dry run) gets the in-process one, whose agent programs
 * also get the variables named in pass_env (NULL-terminated, may be NULL).
 * Returns the exit code. */
int tlm_cli_drive(tlm_cli *cli, tlm_engine_opts *eo, const tlm_journal_run *teardown,
		  const char *const *pass_env);

/* --pass-env NAME (serve, and run/resume for the in-process control plane):
 * the variables of this process's environment that agent programs get
 * besides the allow-list (docs/serve.md). */
#define TLM_CLI_PASS_MAX 64
typedef struct tlm_cli_pass {
	const char *names[TLM_CLI_PASS_MAX + 1]; /* NULL-terminated */
	size_t n;
} tlm_cli_pass;

/* Adds NAME or PREFIX* (a variable name as the spec allows them, or such a
 * prefix and '*'); a usage error's exit code otherwise. */
int tlm_cli_pass_add(const tlm_cli *cli, tlm_cli_pass *p, const char *name);

/* Installs the handlers for SIGINT and SIGTERM (the first asks to stop,
 * the second to leave at once) and points eo->interrupts at their count. */
void tlm_cli_catch_signals(tlm_engine_opts *eo);

/* From a signal handler: the run being driven leaves at once, as after a
 * second interrupt (a worker handing a run back). */
void tlm_cli_leave_now(void);

/* The exit code for an engine result (docs/design.md §5). */
int tlm_cli_exit_code(const tlm_engine_result *r);

/* Logs each diagnostic as "FILE:LINE:COL: error: MESSAGE [rule]" (with
 * LOG_FORMAT=json: file, line, col and rule as fields). */
void tlm_cli_print_diags(const char *path, const tlm_diags *diags);

/* Loads and validates a spec; on failure prints why to stderr and returns
 * TLM_EXIT_USAGE (*out NULL), else TLM_EXIT_OK.  With text (not NULL) the
 * file is read once, through the loader's checks, and *text (caller frees)
 * gets the very text that was parsed: a run journals what it ran, even if
 * the file changes meanwhile. */
int tlm_cli_load_spec(tlm_spec **out, const char *path, char **text);

#endif
