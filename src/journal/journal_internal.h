/* Shared by the files of src/journal/: the handle and the error helpers. */
#ifndef TLM_JOURNAL_INTERNAL_H
#define TLM_JOURNAL_INTERNAL_H

#include <sqlite3.h>

#include "telemachy/journal.h"
#include "util/procid.h"

typedef struct tlm_journal_held {
	char run_id[TLM_JOURNAL_RUN_ID_LEN + 1];
	long long epoch;
} tlm_journal_held;

struct tlm_journal {
	sqlite3 *db;
	char *path;             /* the database file, named in every message */
	tlm_proc_id self;       /* this process, as owners are recorded */
	tlm_journal_held *held; /* the runs this handle holds (a run; reconcile: many) */
	size_t nheld, capheld;
	sqlite3_stmt *epoch_q; /* the fence check's SELECT, prepared once */
};

/* SQL for the current time, as every row stores it: ISO-8601 UTC, milliseconds. */
#define TLM_JOURNAL__NOW "strftime('%Y-%m-%dT%H:%M:%fZ', 'now')"

/* Room for a host name (owner_host, audit host), terminator included. */
#define TLM_JOURNAL__HOST_MAX 256

/* This machine's name into buf (empty if unknown), always terminated. */
void tlm_journal__hostname(char *buf, size_t size);

/* Fails with a message naming the database, what was being done and SQLite's
 * own words; maps constraint failures to TLM_ECONFLICT. */
int tlm_journal__db_error(tlm_journal *j, tlm_error *err, const char *what);

/* Prepares sql, failing through tlm_journal__db_error. */
int tlm_journal__prepare(tlm_journal *j, const char *sql, sqlite3_stmt **q, tlm_error *err);

/* Checks a caller's string: non-NULL, non-empty, at most max bytes. */
int tlm_journal__check_text(tlm_journal *j, const char *s, size_t max, const char *what,
			    tlm_error *err);

/* Checks a run id has the shape tlm_journal_run_new gives. */
int tlm_journal__check_run_id(tlm_journal *j, const char *run_id, tlm_error *err);

/* Creates dir and its missing parents 0700; a non-directory in the way fails. */
int tlm_journal__make_dir(const char *dir, tlm_error *err);

/* Creates (or tightens) the database file at path with mode 0600 before
 * SQLite opens it, so it is never readable by others, even for an instant. */
int tlm_journal__make_db_file(const char *path, tlm_error *err);

/* Brings the schema up to TLM_JOURNAL_SCHEMA_VERSION. */
int tlm_journal__migrate(tlm_journal *j, tlm_error *err);

/* A fenced write: BEGIN IMMEDIATE, then the check that this handle still
 * holds run_id at the journal's current epoch (else TLM_EFENCED, or
 * TLM_ENOTFOUND for an unknown run), with the transaction rolled back on
 * failure.  The caller runs its statements and ends with
 * tlm_journal__end(j, rc, what, err), which commits on rc == 0 (the fsync)
 * and rolls back otherwise; it returns the final rc. */
int tlm_journal__begin(tlm_journal *j, const char *run_id, tlm_error *err);
int tlm_journal__end(tlm_journal *j, int rc, const char *what, tlm_error *err);

/* Records that this handle holds run_id at epoch (claim, run_new). */
int tlm_journal__hold(tlm_journal *j, const char *run_id, long long epoch, tlm_error *err);

#endif
