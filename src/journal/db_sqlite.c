/* The SQLite backend of db.h: a thin layer over sqlite3 that adds the two
 * functions the journal's SQL relies on, tlm_now() and tlm_age_ms(ts). */
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "journal/db.h"
#include "journal/db_ops.h"
#include "util/clock.h"

/* Another process (`status`, a second run) may hold the write lock briefly;
 * waiting this long beats failing a write the engine cannot do without. */
#define BUSY_TIMEOUT_MS 10000

typedef struct lite {
	tlm_db base;
	sqlite3 *db;
	int nomem; /* the last failure was one of our own allocations */
} lite;

typedef struct lite_stmt {
	tlm_db_stmt base;
	sqlite3_stmt *q;
	int nomem; /* a binding could not be copied: the next step fails */
} lite_stmt;

static sqlite3 *h(tlm_db *db)
{
	return ((lite *)db)->db;
}

static sqlite3_stmt *s(tlm_db_stmt *q)
{
	return ((lite_stmt *)q)->q;
}

static void fn_now(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
	char buf[TLM_UTC_NOW_MAX];

	(void)argc;
	(void)argv;
	tlm_utc_now(buf, sizeof(buf));
	sqlite3_result_text(ctx, buf, -1, SQLITE_TRANSIENT);
}

/* Milliseconds since an ISO-8601 UTC time as tlm_now() writes it, never
 * negative (a clock stepped back reads "just now"); -1 for NULL or junk. */
static void fn_age_ms(sqlite3_context *ctx, int argc, sqlite3_value **argv)
{
	const unsigned char *t = sqlite3_value_text(argv[0]);
	struct timespec now;
	struct tm tm;
	int ms = 0;
	long long then, age;
	const char *rest;

	(void)argc;
	memset(&tm, 0, sizeof(tm));
	if (t == NULL || (rest = strptime((const char *)t, "%Y-%m-%dT%H:%M:%S", &tm)) == NULL) {
		sqlite3_result_int64(ctx, -1);
		return;
	}
	if (rest[0] == '.')
		ms = atoi(rest + 1) % 1000;
	clock_gettime(CLOCK_REALTIME, &now);
	then = (long long)timegm(&tm) * 1000 + ms;
	age = (long long)now.tv_sec * 1000 + now.tv_nsec / 1000000 - then;
	sqlite3_result_int64(ctx, age < 0 ? 0 : age);
}

static int lite_exec(tlm_db *db, const char *sql)
{
	((lite *)db)->nomem = 0;
	return sqlite3_exec(h(db), sql, NULL, NULL, NULL) == SQLITE_OK ? 0 : TLM_DB_FAIL;
}

static int lite_begin(tlm_db *db)
{
	return lite_exec(db, "BEGIN IMMEDIATE");
}

static int lite_in_tx(const tlm_db *db)
{
	return !sqlite3_get_autocommit(((const lite *)db)->db);
}

static int lite_prepare(tlm_db *db, const char *sql, tlm_db_stmt **out)
{
	lite_stmt *q = calloc(1, sizeof(*q));

	*out = NULL;
	((lite *)db)->nomem = q == NULL;
	if (q == NULL)
		return TLM_DB_FAIL;
	if (sqlite3_prepare_v2(h(db), sql, -1, &q->q, NULL) != SQLITE_OK) {
		free(q);
		return TLM_DB_FAIL;
	}
	q->base.db = db;
	*out = &q->base;
	return 0;
}

static void lite_finalize(tlm_db_stmt *q)
{
	sqlite3_finalize(s(q));
	free(q);
}

static void lite_reset(tlm_db_stmt *q)
{
	sqlite3_reset(s(q));
}

static void lite_clear(tlm_db_stmt *q)
{
	sqlite3_reset(s(q));
	sqlite3_clear_bindings(s(q));
}

static void lite_bind_text(tlm_db_stmt *q, int i, const char *v)
{
	int rc = v == NULL ? sqlite3_bind_null(s(q), i)
			   : sqlite3_bind_text(s(q), i, v, -1, SQLITE_TRANSIENT);

	/* A parameter left unbound would be a silent NULL in the row (one the
	 * statement does not use, SQLITE_RANGE, is no loss). */
	((lite_stmt *)q)->nomem |= rc != SQLITE_OK && rc != SQLITE_RANGE;
}

static void lite_bind_int64(tlm_db_stmt *q, int i, long long v)
{
	int rc = sqlite3_bind_int64(s(q), i, (sqlite3_int64)v);

	((lite_stmt *)q)->nomem |= rc != SQLITE_OK && rc != SQLITE_RANGE;
}

static int lite_step(tlm_db_stmt *q)
{
	((lite *)q->db)->nomem = ((lite_stmt *)q)->nomem;
	if (((lite_stmt *)q)->nomem)
		return TLM_DB_FAIL;
	switch (sqlite3_step(s(q))) {
	case SQLITE_ROW: return TLM_DB_ROW;
	case SQLITE_DONE: return TLM_DB_DONE;
	default: return TLM_DB_FAIL;
	}
}

static const char *lite_column_text(tlm_db_stmt *q, int i)
{
	return (const char *)sqlite3_column_text(s(q), i);
}

static long long lite_column_int64(tlm_db_stmt *q, int i)
{
	return (long long)sqlite3_column_int64(s(q), i);
}

static int lite_column_is_null(tlm_db_stmt *q, int i)
{
	return sqlite3_column_type(s(q), i) == SQLITE_NULL;
}

static long long lite_changes(tlm_db *db)
{
	return sqlite3_changes(h(db));
}

static const char *lite_errmsg(tlm_db *db)
{
	return ((lite *)db)->nomem ? "out of memory" : sqlite3_errmsg(h(db));
}

static tlm_db_errclass lite_errclass(tlm_db *db)
{
	switch (sqlite3_extended_errcode(h(db))) {
	case SQLITE_CONSTRAINT_PRIMARYKEY:
	case SQLITE_CONSTRAINT_UNIQUE: return TLM_DB_EUNIQUE;
	case SQLITE_CONSTRAINT_FOREIGNKEY: return TLM_DB_EFOREIGN_KEY;
	default:
		return sqlite3_errcode(h(db)) == SQLITE_CONSTRAINT ? TLM_DB_ECONSTRAINT
								   : TLM_DB_EOTHER;
	}
}

static void lite_close(tlm_db *db)
{
	sqlite3_close(h(db));
	free(db);
}

static const tlm_db_ops lite_ops = {
	.kind = TLM_DB_SQLITE,
	.for_update = "",
	.skip_locked = "",
	.close = lite_close,
	.exec = lite_exec,
	.begin = lite_begin,
	.in_tx = lite_in_tx,
	.tx_usable = lite_in_tx,
	.prepare = lite_prepare,
	.finalize = lite_finalize,
	.reset = lite_reset,
	.clear = lite_clear,
	.bind_text = lite_bind_text,
	.bind_int64 = lite_bind_int64,
	.step = lite_step,
	.column_text = lite_column_text,
	.column_int64 = lite_column_int64,
	.column_is_null = lite_column_is_null,
	.changes = lite_changes,
	.errmsg = lite_errmsg,
	.errclass = lite_errclass,
};

int tlm_db_open_sqlite(tlm_db **out, const char *path, int readonly, char *msg, size_t size)
{
	int flags = (readonly ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE) | SQLITE_OPEN_NOMUTEX;
	lite *l = calloc(1, sizeof(*l));

	*out = NULL;
	if (l == NULL) {
		snprintf(msg, size, "out of memory");
		return TLM_DB_FAIL;
	}
	l->base.ops = &lite_ops;
	if (sqlite3_open_v2(path, &l->db, flags, NULL) != SQLITE_OK ||
	    sqlite3_create_function(l->db, "tlm_now", 0, SQLITE_UTF8, NULL, fn_now, NULL, NULL) !=
		    SQLITE_OK ||
	    sqlite3_create_function(l->db, "tlm_age_ms", 1, SQLITE_UTF8, NULL, fn_age_ms, NULL,
				    NULL) != SQLITE_OK) {
		snprintf(msg, size, "%s", l->db ? sqlite3_errmsg(l->db) : "out of memory");
		lite_close(&l->base);
		return TLM_DB_FAIL;
	}
	sqlite3_extended_result_codes(l->db, 0);
	sqlite3_busy_timeout(l->db, BUSY_TIMEOUT_MS);
	*out = &l->base;
	return 0;
}
