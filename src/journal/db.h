/* The journal's database, whichever it is (docs/internals/journal.md,
 * "Backends"): SQLite on this host (db_sqlite.c) or PostgreSQL shared by many
 * (db_pg.c).  The journal writes its SQL once, in the dialect both accept:
 * numbered parameters ?1..?N, the functions tlm_now() and tlm_age_ms(ts)
 * (each backend provides them), "user" quoted, ON CONFLICT ... DO, and no
 * rowid tricks beyond the column the PostgreSQL schema names rowid. */
#ifndef TLM_JOURNAL_DB_H
#define TLM_JOURNAL_DB_H

#include <stddef.h>

typedef struct tlm_db tlm_db;
typedef struct tlm_db_stmt tlm_db_stmt;

/* tlm_db_step's answers; anything else is an error (tlm_db_errmsg). */
#define TLM_DB_ROW  1
#define TLM_DB_DONE 0
#define TLM_DB_FAIL (-1)

typedef enum tlm_db_errclass {
	TLM_DB_EOTHER = 0,
	TLM_DB_EUNIQUE,      /* a unique or primary key constraint */
	TLM_DB_EFOREIGN_KEY, /* a foreign key constraint */
	TLM_DB_ECONSTRAINT,  /* any other constraint (CHECK, NOT NULL) */
	TLM_DB_ELOST,        /* the connection is gone (PostgreSQL) */
} tlm_db_errclass;

typedef enum tlm_db_kind { TLM_DB_SQLITE, TLM_DB_POSTGRES } tlm_db_kind;

/* Opens the SQLite file at path (read-only: never creates, never writes). */
int tlm_db_open_sqlite(tlm_db **out, const char *path, int readonly, char *msg, size_t size);

/* Connects to PostgreSQL with a libpq connection string or URI; *label gets a
 * printable name of the database without any password (user@host:port/db). */
int tlm_db_open_pg(tlm_db **out, const char *conninfo, int readonly, char **label, char *msg,
		   size_t size);

void tlm_db_close(tlm_db *db);
tlm_db_kind tlm_db_which(const tlm_db *db);

/* Runs one or more statements without parameters; 0 or TLM_DB_FAIL. */
int tlm_db_exec(tlm_db *db, const char *sql);

/* Starts a write transaction that serialises with every other writer
 * (SQLite: BEGIN IMMEDIATE; PostgreSQL: BEGIN, the row locks come from
 * tlm_db_for_update). */
int tlm_db_begin(tlm_db *db);
int tlm_db_commit(tlm_db *db);
void tlm_db_rollback(tlm_db *db); /* no-op outside a transaction */
/* 1: a transaction is open and takes statements (on PostgreSQL, not after
 * a statement failed in it). */
int tlm_db_tx_usable(const tlm_db *db);

/* " FOR UPDATE" on PostgreSQL (locks the rows a SELECT reads until the
 * transaction ends), "" on SQLite (the whole database is locked already). */
const char *tlm_db_for_update(const tlm_db *db);

/* " FOR UPDATE SKIP LOCKED" on PostgreSQL: rows another transaction holds
 * are passed over, so workers polling at once each get different work. */
const char *tlm_db_skip_locked(const tlm_db *db);

/* PostgreSQL: NOTIFY channel with payload (delivered at commit); SQLite:
 * nothing.  0 or TLM_DB_FAIL. */
int tlm_db_notify(tlm_db *db, const char *channel, const char *payload);

int tlm_db_prepare(tlm_db *db, const char *sql, tlm_db_stmt **out);
void tlm_db_finalize(tlm_db_stmt *q);
void tlm_db_reset(tlm_db_stmt *q); /* forgets the result; bindings stay */

/* Parameters are numbered from 1; text is copied.  NULL text binds NULL. */
void tlm_db_bind_text(tlm_db_stmt *q, int i, const char *s);
void tlm_db_bind_int64(tlm_db_stmt *q, int i, long long v);

/* TLM_DB_ROW, TLM_DB_DONE or TLM_DB_FAIL. */
int tlm_db_step(tlm_db_stmt *q);

/* Runs a write whose rows and changes the caller never reads: TLM_DB_DONE
 * or TLM_DB_FAIL.  On PostgreSQL inside a transaction it is queued in
 * libpq's pipeline and not waited for; its failure fails the next call that
 * waits for the database (COMMIT at the latest), with its message and
 * class, and leaves the transaction unusable.  Elsewhere it is a step. */
int tlm_db_step_queued(tlm_db_stmt *q);

/* Sends queued writes (tlm_db_step_queued) without waiting for them. */
void tlm_db_push(tlm_db *db);

/* Columns from 0, valid until the next step or reset.  Text is NULL for SQL
 * NULL; integers read 0 there, and booleans read 0 or 1. */
const char *tlm_db_column_text(tlm_db_stmt *q, int i);
long long tlm_db_column_int64(tlm_db_stmt *q, int i);
int tlm_db_column_is_null(tlm_db_stmt *q, int i);

/* Rows the last INSERT, UPDATE or DELETE changed. */
long long tlm_db_changes(tlm_db *db);

const char *tlm_db_errmsg(tlm_db *db);
tlm_db_errclass tlm_db_errclass_last(tlm_db *db);

/* The socket the backend delivers notifications on, or -1 (SQLite). */
int tlm_db_socket(tlm_db *db);

/* PostgreSQL: LISTEN channel (an identifier we choose, never user text). */
int tlm_db_listen(tlm_db *db, const char *channel);

/* Reads pending notifications without blocking; calls cb(payload, ctx) for
 * each on channel.  0, or TLM_DB_FAIL when the connection is gone. */
int tlm_db_notifications(tlm_db *db, void (*cb)(const char *payload, void *ctx), void *ctx);

#endif
