/* Harness: `telemachy run` as a real process against a test's control plane,
 * its JSON summary, and what the control plane still holds afterwards. */
#ifndef TLM_TEST_HARNESS_RUN_H
#define TLM_TEST_HARNESS_RUN_H

#include <jansson.h>
#include <stdint.h>
#include <sys/types.h>

#include "harness/serve.h"

typedef struct tlm_h_run {
	pid_t pid;
	int exit_code;   /* exit status, or 128 + signal */
	json_t *result;  /* the --output json summary (NULL when stdout was not JSON) */
	char *out, *err; /* captured stdout and stderr, NUL-terminated */
	char *dir;       /* the run's temporary dir: state (journal), output files */
} tlm_h_run;

/* Starts `telemachy run --output json --state-dir DIR/state ARGS... FILE`
 * with env (NULL-terminated "NAME=VALUE" list, may be NULL) added to the
 * environment, AGAMEMNON_URL / NATS_URL / AGAMEMNON_API_KEY removed first so
 * only what the test passes counts.  Returns at once. */
void tlm_h_run_start(tlm_h_run *r, const char *const *env, const char *const *args,
		     const char *file);

/* Waits for it (at most timeout_ms, then SIGKILL and a test failure), reads
 * its output and parses the summary. */
void tlm_h_run_wait(tlm_h_run *r, int timeout_ms);

/* Start + wait. */
void tlm_h_run_wf(tlm_h_run *r, const char *const *env, const char *const *args, const char *file,
		  int timeout_ms);

/* Waits (at most timeout_ms) until the run's stderr contains text; 0 or -1. */
int tlm_h_run_wait_for(tlm_h_run *r, const char *text, int timeout_ms);

/* Starts file against the control plane s (AGAMEMNON_URL) with the extra
 * environment and args (both may be NULL); returns at once. */
void tlm_h_run_on(tlm_h_run *r, const tlm_h_serve *s, const char *file,
		  const char *const *env_extra, const char *const *args);

/* Waits for a started run (tlm_h_run_wait), prints its stderr when
 * TLM_TEST_VERBOSE is set, fails the test without a JSON summary; returns the
 * exit code. */
int tlm_h_run_finish(tlm_h_run *r, int timeout_ms);

/* The server holds no agent and no team whose name starts with "tlm-". */
void tlm_h_assert_no_tlm(const tlm_h_serve *s);

/* Every task of the summary completed (fails with the run's stderr if not). */
void tlm_h_assert_all_completed(const tlm_h_run *r);

/* How often fault i (in the order added) of s has fired. */
json_int_t tlm_h_fault_fired(const tlm_h_serve *s, size_t i);

/* Any telemachy command, captured. */
typedef struct tlm_h_cmd {
	int exit_code;   /* exit status, 128 + signal, or -1 when it ran out of time */
	int64_t ms;      /* how long it took */
	char *out, *err; /* stdout and stderr, NUL-terminated */
	json_t *json;    /* stdout parsed, or NULL */
	pid_t pid;       /* while it runs (tlm_h_cmd_start) */
	int64_t start_ms;
} tlm_h_cmd;

/* Runs TLM_BIN ARGS... (NULL-terminated) with the engine's variables
 * (AGAMEMNON_URL, NATS_URL, the API key ones, TELEMACHY_STATE_DIR, TLM_CRASH_*)
 * removed and env ("NAME=VALUE", may be NULL) added; stdout and stderr go
 * through files in dir.  Killed after timeout_ms (exit_code -1; no test
 * failure: the caller decides).  Free with tlm_h_cmd_free. */
void tlm_h_cmd_run(tlm_h_cmd *c, const char *dir, const char *const *env, const char *const *args,
		   int timeout_ms);
void tlm_h_cmd_free(tlm_h_cmd *c);

/* tlm_h_cmd_run in two halves, for a test that signals the command while it
 * runs (c->pid): start returns at once; wait reaps it (at most timeout_ms,
 * then SIGKILL and exit_code -1) and reads its output. */
void tlm_h_cmd_start(tlm_h_cmd *c, const char *dir, const char *const *env,
		     const char *const *args);
void tlm_h_cmd_wait(tlm_h_cmd *c, const char *dir, int timeout_ms);

/* A whole file, NUL-terminated ("" when it cannot be read); caller frees. */
char *tlm_h_slurp(const char *path);

/* Frees the output and removes the run's dir. */
void tlm_h_run_clear(tlm_h_run *r);

/* Writes text to DIR/name (dir from tlm_h_tmpdir); returns the path (caller frees). */
char *tlm_h_write_file(const char *dir, const char *name, const char *text);

/* The agents ("agents") or teams ("teams") on s whose name starts with
 * prefix, paging through every list; fails the test if the list fails. */
size_t tlm_h_count_prefixed(const tlm_h_serve *s, const char *kind, const char *prefix);

/* The same resources as [{"name", "id"}] (caller json_decrefs). */
json_t *tlm_h_list_prefixed(const tlm_h_serve *s, const char *kind, const char *prefix);

/* Writes DIR/w.yaml: workflow name with one agent `a` running
 * /bin/sh -c SCRIPT (no double quotes in it) for its one task t/s; returns
 * the path (caller frees). */
char *tlm_h_sh_workflow(const char *dir, const char *name, const char *script);

/* The status of task i of the summary ("completed", "skipped", ...). */
const char *tlm_h_task_status(const tlm_h_run *r, size_t i);

#endif
