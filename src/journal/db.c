/* db.h's calls, handed to the backend that opened the database. */
#include <stddef.h>

#include "journal/db_ops.h"

void tlm_db_close(tlm_db *db)
{
	if (db != NULL)
		db->ops->close(db);
}

tlm_db_kind tlm_db_which(const tlm_db *db)
{
	return db->ops->kind;
}

int tlm_db_exec(tlm_db *db, const char *sql)
{
	return db->ops->exec(db, sql);
}

int tlm_db_begin(tlm_db *db)
{
	return db->ops->begin(db);
}

int tlm_db_commit(tlm_db *db)
{
	return db->ops->exec(db, "COMMIT");
}

void tlm_db_rollback(tlm_db *db)
{
	if (db->ops->in_tx(db))
		(void)db->ops->exec(db, "ROLLBACK");
}

int tlm_db_in_tx(const tlm_db *db)
{
	return db->ops->in_tx(db);
}

const char *tlm_db_for_update(const tlm_db *db)
{
	return db->ops->for_update;
}

const char *tlm_db_skip_locked(const tlm_db *db)
{
	return db->ops->skip_locked;
}

int tlm_db_notify(tlm_db *db, const char *channel, const char *payload)
{
	tlm_db_stmt *q = NULL;
	int rc;

	if (db->ops->kind != TLM_DB_POSTGRES)
		return 0;
	if (tlm_db_prepare(db, "SELECT pg_notify(?1, ?2)", &q) != 0)
		return TLM_DB_FAIL;
	tlm_db_bind_text(q, 1, channel);
	tlm_db_bind_text(q, 2, payload);
	rc = tlm_db_step(q) == TLM_DB_ROW ? 0 : TLM_DB_FAIL;
	tlm_db_finalize(q);
	return rc;
}

int tlm_db_prepare(tlm_db *db, const char *sql, tlm_db_stmt **out)
{
	return db->ops->prepare(db, sql, out);
}

void tlm_db_finalize(tlm_db_stmt *q)
{
	if (q != NULL)
		q->db->ops->finalize(q);
}

void tlm_db_reset(tlm_db_stmt *q)
{
	q->db->ops->reset(q);
}

void tlm_db_bind_text(tlm_db_stmt *q, int i, const char *s)
{
	q->db->ops->bind_text(q, i, s);
}

void tlm_db_bind_int64(tlm_db_stmt *q, int i, long long v)
{
	q->db->ops->bind_int64(q, i, v);
}

int tlm_db_step(tlm_db_stmt *q)
{
	return q->db->ops->step(q);
}

const char *tlm_db_column_text(tlm_db_stmt *q, int i)
{
	return q->db->ops->column_text(q, i);
}

long long tlm_db_column_int64(tlm_db_stmt *q, int i)
{
	return q->db->ops->column_int64(q, i);
}

int tlm_db_column_is_null(tlm_db_stmt *q, int i)
{
	return q->db->ops->column_is_null(q, i);
}

long long tlm_db_changes(tlm_db *db)
{
	return db->ops->changes(db);
}

const char *tlm_db_errmsg(tlm_db *db)
{
	return db->ops->errmsg(db);
}

tlm_db_errclass tlm_db_errclass_last(tlm_db *db)
{
	return db->ops->errclass(db);
}

int tlm_db_socket(tlm_db *db)
{
	return db->ops->socket != NULL ? db->ops->socket(db) : -1;
}

int tlm_db_listen(tlm_db *db, const char *channel)
{
	return db->ops->listen != NULL ? db->ops->listen(db, channel) : 0;
}

int tlm_db_notifications(tlm_db *db, void (*cb)(const char *payload, void *ctx), void *ctx)
{
	return db->ops->notifications != NULL ? db->ops->notifications(db, cb, ctx) : 0;
}
