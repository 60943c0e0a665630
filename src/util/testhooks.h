/* Test hooks: crash points, allocation faults and test-only settings exist
 * only in builds configured with -DTLM_TEST_HOOKS=ON (the test suite's
 * build).  A release build ignores every TLM_CRASH_*, TLM_ALLOC_* and
 * TLM_TEST_* variable, so nothing in a user's environment can make a
 * production binary kill itself or fail on purpose.  Internal. */
#ifndef TLM_UTIL_TESTHOOKS_H
#define TLM_UTIL_TESTHOOKS_H

#include <stdlib.h>

/* getenv(name) in a build with test hooks, NULL otherwise. */
static inline const char *tlm_testhook_env(const char *name)
{
#ifdef TLM_TEST_HOOKS
	return getenv(name);
#else
	(void)name;
	return NULL;
#endif
}

/* 1 when this build has test hooks (for `telemachy version`). */
static inline int tlm_testhooks_enabled(void)
{
#ifdef TLM_TEST_HOOKS
	return 1;
#else
	return 0;
#endif
}

#endif
