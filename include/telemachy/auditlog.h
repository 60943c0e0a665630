/*
 * telemachy — the audit log file (docs/audit.md).
 *
 * An append-only JSONL file, one record per state change, each record
 * carrying the SHA-256 of the line before it (`prev`) and of itself
 * (`hash`), so an edit, a deleted line or a reordering shows up when the
 * chain is checked (tlm_auditlog_verify, `telemachy audit verify`).
 *
 * Several processes may append to one file: every append takes an exclusive
 * flock(2) on it while it reads the last line's hash and writes its own, so
 * the chain never forks.  Each record is fsynced before the append returns.
 * Records never carry secrets: callers pass names, states and short
 * details only (docs/security.md).
 */
#ifndef TELEMACHY_AUDITLOG_H
#define TELEMACHY_AUDITLOG_H

#include "telemachy/error.h"

#define TLM_AUDITLOG_VERSION      1
#define TLM_AUDITLOG_LINE_MAX     (64 * 1024) /* a longer line is not a record */
#define TLM_AUDITLOG_DETAIL_MAX   1024        /* details are cut (at a UTF-8 boundary) */
#define TLM_AUDITLOG_LOCK_WAIT_MS 10000       /* how long an append waits for the lock */
#define TLM_AUDITLOG_HASH_HEX     64

typedef struct tlm_auditlog tlm_auditlog;

/* What one record says changed; NULL fields are written as JSON null. */
typedef struct tlm_auditlog_event {
	const char *run_id;   /* NULL: about no run */
	const char *workflow; /* the run's workflow name; NULL: unknown */
	const char *kind;     /* "run", "agent", "team", "task", "owner", "action" */
	const char *name;     /* the run id, resource name, "team/subject#attempt", ... */
	const char *from;     /* the state before; NULL: none (new) or an action */
	const char *to;       /* the state after; NULL for an action */
	const char *action;   /* "takeover", "cancel-request", "teardown", ...; NULL: a change */
	const char *detail;   /* free text, never a secret; NULL: none */
} tlm_auditlog_event;

/* Opens (creating, mode 0600) the audit log at path for appending.  A
 * symlink, a directory or any non-regular file is TLM_EINVALID: the file
 * must be the one the operator named, not something it points to.  The
 * message always names path. */
int tlm_auditlog_open(tlm_auditlog **out, const char *path, tlm_error *err);

/* Closes; NULL is a no-op. */
void tlm_auditlog_free(tlm_auditlog *a);

/* The path as given to tlm_auditlog_open (owned by a). */
const char *tlm_auditlog_path(const tlm_auditlog *a);

/* Appends one record for ev, stamped with the time (UTC, ms) and the actor
 * (login name, host, pid), chained to the file's last line, and fsynced.
 * Waits at most TLM_AUDITLOG_LOCK_WAIT_MS for the lock (TLM_ETIMEOUT).  A
 * last line that is not a record (torn, edited, too long) is TLM_EINVALID:
 * appending after it would chain onto something unverifiable. */
int tlm_auditlog_append(tlm_auditlog *a, const tlm_auditlog_event *ev, tlm_error *err);

/* What verify found wrong first. */
typedef enum tlm_auditlog_flaw {
	TLM_AUDITLOG_INTACT = 0,
	TLM_AUDITLOG_NOT_RECORD, /* not JSON, or no well-formed prev/hash */
	TLM_AUDITLOG_TOO_LONG,   /* longer than TLM_AUDITLOG_LINE_MAX */
	TLM_AUDITLOG_BAD_HASH,   /* hash does not match the record: edited */
	TLM_AUDITLOG_BAD_PREV,   /* prev is not the previous line's hash */
	TLM_AUDITLOG_TORN        /* the last line has no newline: a torn write */
} tlm_auditlog_flaw;

typedef struct tlm_auditlog_report {
	long records; /* records read and found intact before the flaw */
	long line;    /* the first bad line (1-based); 0 when intact */
	tlm_auditlog_flaw flaw;
	char why[160]; /* e.g. "hash does not match its record (edited?)" */
	char last_hash[TLM_AUDITLOG_HASH_HEX + 1]; /* of the last intact record */
} tlm_auditlog_report;

/* Reads path line by line and checks every record and the chain.  Returns 0
 * when the file could be read (out->flaw says whether it is intact), or an
 * error (TLM_ENOTFOUND, TLM_ERROR) when it could not. */
int tlm_auditlog_verify(const char *path, tlm_auditlog_report *out, tlm_error *err);

#endif
