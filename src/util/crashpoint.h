/* Test-only crash points: with TLM_CRASH_AT=k in the environment the process
 * kills itself (SIGKILL, no cleanup of any kind) at the k-th point it passes,
 * so the crash test can stop the engine between any two journal writes or
 * requests (docs/internals/recovery.md).  TLM_CRASH_LOG=FILE appends one line
 * per point ("k what"), which is how the test learns how many points a run
 * has.  TLM_CRASH_ON=PREFIX (and TLM_CRASH_ON_NTH=n, default 1) kills at the
 * n-th point whose name starts with PREFIX instead: the order of points of
 * concurrent requests varies between runs, a name does not.  Without these
 * variables a point costs one branch, and a build without test hooks
 * (util/testhooks.h) never reads them.  Internal. */
#ifndef TLM_UTIL_CRASHPOINT_H
#define TLM_UTIL_CRASHPOINT_H

/* Counts one point; what names it ("journal intent", "send POST /v1/agents"). */
void tlm_crashpoint(const char *what);

#endif
