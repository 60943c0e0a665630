/* Starting another telemachy command in the background, detached from the
 * caller (a long-lived server that must not collect zombies or share its
 * terminal).  Internal to the library. */
#ifndef TLM_UTIL_SPAWN_H
#define TLM_UTIL_SPAWN_H

#include <sys/types.h>

#include "telemachy/error.h"

/* Runs path with argv (NULL-terminated; argv[0] its name) in a new session,
 * as a grandchild the caller never has to wait for: stdin from /dev/null,
 * stdout and stderr appended to log_path (created 0600; NULL: /dev/null),
 * the environment inherited.  Secrets must come through the environment or
 * files, never argv (other users can read argv).  *pid: the grandchild's pid.
 * Returns 0 once path was executed, or TLM_ERROR with why (including exec's
 * own failure, e.g. ENOENT). */
int tlm_spawn_detached(const char *path, char *const argv[], const char *log_path, pid_t *pid,
		       tlm_error *err);

#endif
