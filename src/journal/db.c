/* db.h's calls, handed to the backend that opened the database. */
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "journal/db_ops.h"

void tlm_db_close(tlm_db *db)
{
	size_t i;

	if (db == NULL)
		return;
	for (i = 0; i < db->ncache; i++) {
		db->ops->finalize(db->cache[i].q);
		free(db->cache[i].sql);
	}
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

int tlm_db_tx_usable(const tlm_db *db)
{
	return db->ops->tx_usable(db);
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

/* The journal runs a few dozen distinct statements thousands of times:
 * parsing each again was a fifth of the engine's CPU (docs/performance.md).
 * Prepared statements are kept by their text, up to TLM_DB_CACHE_MAX; one
 * in use is never handed out twice (a nested use gets a fresh one). */
static unsigned long hash_sql(const char *sql)
{
	unsigned long h = 5381;

	while (*sql)
		h = h * 33 + (unsigned char)*sql++;
	return h;
}

static void cache_add(tlm_db *db, const char *sql, unsigned long h, tlm_db_stmt *q)
{
	char *copy;

	if (db->ncache == TLM_DB_CACHE_MAX || (copy = strdup(sql)) == NULL)
		return; /* uncached: finalized as before */
	db->cache[db->ncache].sql = copy;
	db->cache[db->ncache].hash = h;
	db->cache[db->ncache++].q = q;
	q->cached = 1;
}

int tlm_db_prepare(tlm_db *db, const char *sql, tlm_db_stmt **out)
{
	unsigned long h = hash_sql(sql);
	size_t i;

	for (i = 0; i < db->ncache; i++) {
		tlm_db_cached *c = &db->cache[i];

		if (c->hash == h && !c->q->busy && strcmp(c->sql, sql) == 0) {
			c->q->busy = 1;
			*out = c->q;
			return 0;
		}
	}
	if (db->ops->prepare(db, sql, out) != 0)
		return TLM_DB_FAIL;
	(*out)->busy = 1;
	cache_add(db, sql, h, *out);
	return 0;
}

void tlm_db_finalize(tlm_db_stmt *q)
{
	if (q == NULL)
		return;
	q->busy = 0;
	if (q->cached)
		q->db->ops->clear(q);
	else
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

int tlm_db_step_queued(tlm_db_stmt *q)
{
	if (q->db->ops->step_queued != NULL)
		return q->db->ops->step_queued(q);
	return q->db->ops->step(q) == TLM_DB_FAIL ? TLM_DB_FAIL : TLM_DB_DONE;
}

void tlm_db_push(tlm_db *db)
{
	if (db->ops->push != NULL)
		db->ops->push(db);
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
