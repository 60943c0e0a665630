/* Harness: one crash trial.  `telemachy run` is SIGKILLed at its k-th crash
 * point (TLM_CRASH_AT, src/util/crashpoint.h) against an external `telemachy
 * serve`; the control plane is then checked against the journal, the run is
 * recovered (`resume` or `teardown`) and the control plane is checked again
 * (docs/recovery.md, "How this is tested").
 *
 * A trial never fails the cmocka test for a broken invariant: it returns what
 * it found, so the caller can name the workflow, k and the point.  Only a
 * harness error (the server unreachable, a temporary dir that cannot be made)
 * fails the test at once. */
#ifndef TLM_TEST_HARNESS_CRASH_H
#define TLM_TEST_HARNESS_CRASH_H

#include <stddef.h>

#include "harness/pg.h"
#include "harness/serve.h"

typedef enum tlm_h_recovery {
	TLM_H_RESUME,
	TLM_H_TEARDOWN,
} tlm_h_recovery;

const char *tlm_h_recovery_name(tlm_h_recovery r);

/* The crash points of one crash-free run, in order: names[i] is point i + 1
 * ("send POST /v1/agents", "journal intent", ...), as TLM_CRASH_LOG wrote it. */
typedef struct tlm_h_points {
	size_t n;
	char **names;
	int exit_code; /* of the counting run (0 expected) */
	char *err;     /* its stderr */
} tlm_h_points;

/* The name of point k (1-based) or "(after the last point)". */
const char *tlm_h_point_name(const tlm_h_points *p, long k);
void tlm_h_points_free(tlm_h_points *p);

typedef struct tlm_h_crash_result {
	long k;
	char point[160];       /* the point the run died at (its crash log's last line) */
	int crashed;           /* the run died of SIGKILL (exit 137) */
	int run_exit;          /* the run's exit code (128 + signal) */
	char run_id[64];       /* the journaled run, "" when there was none */
	long leftovers_before; /* `status` leftovers before recovery (-1: no run) */
	long server_before;    /* tlm-<run>- resources on the server before recovery */
	long duplicates;       /* names held twice by the server (before and after recovery) */
	long unaccounted;      /* server resources the journal did not account for */
	int recovery_exit;     /* exit code of resume/teardown; -1 when none ran */
	long left_after;       /* tlm-<run>- resources left after recovery */
	long orphans_after;    /* `reconcile` orphans of the run after recovery */
	char run_state[32];    /* the journal's run state before recovery ("" if none) */
	long elapsed_ms;       /* the whole trial */
	int failed;            /* any of the above is wrong (msg says what) */
	char *msg;             /* what was wrong, with the commands' stderr ("" if nothing) */
} tlm_h_crash_result;

void tlm_h_crash_result_free(tlm_h_crash_result *r);

/* A fault added over REST (`POST /v1/chaos/TYPE`) for one run, written as for
 * `telemachy serve --fault`: "drop:route=POST /v1/agents",
 * "fail:route=POST /v1/agents,status=503,count=2".  Returns the fault's id
 * (caller frees); tlm_h_fault_remove deletes it. */
char *tlm_h_fault_add(const tlm_h_serve *s, const char *spec);
void tlm_h_fault_remove(const tlm_h_serve *s, const char *id);

/* Runs file against s without crashing, with TLM_CRASH_LOG, and reads the
 * points.  fault (may be NULL) is added for that run only, as in a trial. */
/* From now on every trial journals in a fresh database of pg instead of a
 * state directory (the crash walk on the PostgreSQL backend). */
void tlm_h_crash_use_pg(tlm_h_pg *pg);

void tlm_h_crash_count(const tlm_h_serve *s, const char *file, const char *fault, tlm_h_points *p);

/* One trial: fault (may be NULL) is added, file is run with TLM_CRASH_AT=k
 * and its own state dir, then (if it crashed) the invariant is checked and
 * the run recovered with rec; the fault is removed at the end.  A k past the
 * last point is a run that ends by itself: it must exit 0 and leave nothing.
 * Every command is bounded by timeout_ms.  settle_ms (0: none) is waited
 * after the recovery before the server is checked, so that a create the
 * server was still holding (a `delay` fault) has landed by then. */
void tlm_h_crash_trial(const tlm_h_serve *s, const char *file, const char *fault, long k,
		       tlm_h_recovery rec, int timeout_ms, int settle_ms, tlm_h_crash_result *res);

/* Allocation failures (src/cli/alloc_faults.c): how many allocations a
 * fault-free run of file makes (TLM_ALLOC_LOG), with fault added for it. */
long tlm_h_alloc_count(const tlm_h_serve *s, const char *file, const char *fault);

/* One allocation trial: file run against s with TLM_ALLOC_FAIL_AT=k (and
 * fault).  The run must exit 0..4 — never a crash — and, when it fails, say
 * "out of memory"; every resource on the server must be accounted for by the
 * journal, no name held twice; a failed run is torn down (without the
 * fault) and must leave nothing, and reconcile find no orphan of it. */
void tlm_h_alloc_trial(const tlm_h_serve *s, const char *file, const char *fault, long k,
		       int timeout_ms, tlm_h_crash_result *res);

#endif
