/* Local agents: a started agent runs the tasks assigned to it as processes,
 * one at a time, in creation order, each once its blockedBy tasks completed.
 *
 * One runner thread scans the store when woken (or every 250 ms) and waits
 * on its children.  Each task runs under a small supervisor process
 * (supervise.h) that leads a session of its own, adopts orphans as a
 * subreaper, and is told (PR_SET_PDEATHSIG) when the server dies, so nothing
 * a task spawned outlives the server, even when the server is SIGKILLed.
 * See docs/serve.md. */
#ifndef TLM_SERVER_RUNNER_H
#define TLM_SERVER_RUNNER_H

#include "server/store.h"
#include "telemachy/error.h"

typedef struct tlm_runner tlm_runner;

/* Bytes of a task's stdout and of its stderr kept in its result. */
#define TLM_RUNNER_TAIL 4096

typedef struct tlm_runner_hooks {
	/* Sets a task's status through the server (store + event + wake);
	 * message (may be NULL) is kept as the task's "statusMessage", result
	 * (may be NULL: how a program ended and the tails of its output) as
	 * its "result".
	 * Called on the runner thread only, with no runner lock held (so it
	 * may call tlm_runner_wake), also from within tlm_runner_free (tasks
	 * killed there become failed, "server stopped").  A non-zero return
	 * for "running" means: do not start the task. */
	int (*set_status)(void *ctx, const char *task_id, const char *status, const char *message,
			  const json_t *result);
	void *ctx;
	/* Run no program at all: every task completes at once, as for an
	 * agent whose program is "none" (a dry run's server). */
	int no_exec;
} tlm_runner_hooks;

/* Starts the runner thread.  Task logs go to log_dir/<task id>.out|.err
 * (log_dir must exist: TLM_ENOTFOUND otherwise).  The store must outlive
 * the runner.  The thread must live as long as the tasks (its exit is their
 * parent-death signal): it does, until tlm_runner_free.
 *
 * A program's environment is built from scratch: the TLM_* variables, the
 * agent's env, and of the process's environment as it is now only a short
 * allow-list (PATH, HOME, USER, LOGNAME, SHELL, LANG, LANGUAGE, LC_*, TZ,
 * TMPDIR; DOCKER_* for the docker client of a docker agent) and the names in
 * pass_env (NULL-terminated, may be NULL; "NAME" or a "PREFIX*").  Never
 * the rest: the server's credentials are not the programs' (docs/serve.md). */
int tlm_runner_new(tlm_runner **out, tlm_store *store, const char *log_dir,
		   const tlm_runner_hooks *hooks, const char *const *pass_env, tlm_error *err);

/* Something changed (task created, status changed, agent started): rescan.
 * Never blocks; safe from any thread, also from inside the hook.  Without a
 * wake the runner still rescans every 250 ms. */
void tlm_runner_wake(tlm_runner *r);

/* The agent was stopped or deleted: kill the process group of its running
 * task (SIGTERM, SIGKILL after a 2 s grace period); that task becomes
 * failed, "agent stopped".  Returns at once: the status follows when the
 * processes are gone.  An agent found offline or deleted by a rescan is
 * stopped the same way, a task found completed/failed/deleted quietly. */
void tlm_runner_stop_agent(tlm_runner *r, const char *agent_id);

/* Kills every task's processes, joins the thread, frees; NULL is a no-op. */
void tlm_runner_free(tlm_runner *r);

#endif
