/* Internal to src/hooks/: one queued event, and the steps that deliver it
 * (payload.c, env.c, command.c, webhook.c; dispatch.c runs them). */
#ifndef TLM_HOOKS_INTERNAL_H
#define TLM_HOOKS_INTERNAL_H

#include <stdatomic.h>
#include <stddef.h>

#include "telemachy/hooks.h"

#define TLM_HOOKS_ID_MAX  1024
#define TLM_HOOKS_KEY_LEN 32 /* hex characters of a hook's key (ledger.c) */

/* One event as the hooks get it: everything copied (the engine's strings
 * live only during its callback). */
typedef struct tlm_hooks_item {
	tlm_hook_event event;
	char *json; /* the payload */
	char id[TLM_HOOKS_ID_MAX];
	char *run, *team, *task, *status; /* "" when not applicable */
	char *workflow;
	int replay; /* not an event: read the run's journaled events (ledger.c) */
	struct tlm_hooks_item *next;
} tlm_hooks_item;

/* The item of ev, or NULL (*ignored 1: not an event of a hook; 0: out of
 * memory). */
tlm_hooks_item *tlm_hooks__item_new(const tlm_engine_event *ev, int *ignored);
void tlm_hooks__item_free(tlm_hooks_item *it);
/* The marker a RUN_STARTED of a run picked up again queues: NULL when out
 * of memory. */
tlm_hooks_item *tlm_hooks__replay_marker(const tlm_engine_event *ev);

/* ---- ledger.c: the journal's record of deliveries ---- */
/* hk's key (TLM_HOOKS_KEY_LEN hex characters); occurrence: how many
 * identical hooks come before it.  0, or -1 (no digest). */
int tlm_hooks__key(const tlm_spec_hook *hk, unsigned occurrence, char key[TLM_HOOKS_KEY_LEN + 1]);
/* 1 when the journal says the hook of key had it, 0 when not, -1 when it
 * cannot tell (why). */
int tlm_hooks__had(tlm_journal *j, const tlm_hooks_item *it, const char *key, char *why,
		   size_t whycap);
/* Records that the hook of key had it: 0, or -1 (why). */
int tlm_hooks__note(tlm_journal *j, const tlm_hooks_item *it, const char *key, char *why,
		    size_t whycap);
/* The run's journaled events (start: its replay marker) as items, oldest
 * first (NULL: none, or why says what failed); *dropped: events that could
 * not be made items (out of memory). */
tlm_hooks_item *tlm_hooks__replay(tlm_journal *j, const tlm_hooks_item *start, size_t *dropped,
				  char *why, size_t whycap);

/* The environment a command hook inherits (env.c): this process's, minus
 * what may be a secret, as a NULL-terminated array of "NAME=value" (caller
 * frees with tlm_hooks__env_free).  NULL when out of memory. */
char **tlm_hooks__env_base(void);
void tlm_hooks__env_free(char **env);
/* 1 when a variable of this name is never passed to a hook. */
int tlm_hooks__env_secret(const char *name, size_t len);

/* Runs a command hook for it: 0 when it exited 0; else TLM_ERROR, why
 * (escaped) saying what happened.  *out gets its output (stdout and
 * stderr, at most TLM_HOOKS_OUTPUT_MAX bytes; caller frees; may be NULL).
 * abort_now set: the command is stopped as on a timeout. */
int tlm_hooks__command(const tlm_spec_hook *hk, const tlm_hooks_item *it, char *const *env_base,
		       const atomic_int *abort_now, char **out, char *why, size_t whycap);

/* POSTs it to a webhook with its retries: 0 when a 2xx answered; else
 * TLM_ERROR with why.  *attempts: how many were made. */
int tlm_hooks__webhook(const tlm_spec_hook *hk, const tlm_hooks_item *it,
		       const atomic_int *abort_now, int *attempts, char *why, size_t whycap);

/* Monotonic milliseconds. */
long long tlm_hooks__now_ms(void);

#endif
