/* The CLI's one logger (docs/logging.md): every message a command writes to
 * stderr goes through it, as the plain lines telemachy always printed or,
 * with LOG_FORMAT=json, one JSON object per line.  LOG_LEVEL and -q/-v
 * choose what is shown.  Process-wide: a command is one process. */
#ifndef TLM_CLI_LOG_H
#define TLM_CLI_LOG_H

#include <jansson.h>
#include <stdarg.h>
#include <stdint.h>

#include "telemachy/engine.h"

/* Reads LOG_LEVEL (error|warn|info|debug; default info) and LOG_FORMAT
 * (plain|json; default plain).  An unknown value prints why and returns -1
 * (the caller exits 2); an empty one is the default. */
int tlm_log_setup(void);

/* The command every later record names ("run", "serve", ...). */
void tlm_log_set_command(const char *command);

/* -q (warnings and errors only) and -v (debug too) win over LOG_LEVEL. */
void tlm_log_set_flags(int quiet, int verbose);

/* The run later records of this process are about (copied; NULL: none). */
void tlm_log_set_run(const char *run_id);

/* Whether a record of level would be written; and whether records are JSON. */
int tlm_log_enabled(tlm_engine_level level);
int tlm_log_json(void);

/* A command's message: plain "telemachy CMD: MESSAGE" (a warning says
 * "warning: " after the colon), escaped, one line.  fields (a JSON object,
 * stolen, may be NULL) are added to a JSON record. */
void tlm_log_cmd(tlm_engine_level level, json_t *fields, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
void tlm_log_vcmd(tlm_engine_level level, json_t *fields, const char *fmt, va_list ap)
	__attribute__((format(printf, 3, 0)));

/* A message printed as it is (no "telemachy CMD:" before it): a hint, a
 * diagnostic "FILE:LINE:COL: ...". */
void tlm_log_raw(tlm_engine_level level, json_t *fields, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* A line of a run: plain "[  1.23s] warning: MESSAGE"; JSON with "run" and
 * "elapsed_ms". */
void tlm_log_run(tlm_engine_level level, const char *run_id, uint64_t elapsed_ms,
		 const char *message);

#endif
