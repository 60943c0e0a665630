/* What a backend of db.h provides: one table of operations per backend. */
#ifndef TLM_JOURNAL_DB_OPS_H
#define TLM_JOURNAL_DB_OPS_H

#include "journal/db.h"

typedef struct tlm_db_ops {
	tlm_db_kind kind;
	const char *for_update;
	const char *skip_locked;
	void (*close)(tlm_db *db);
	int (*exec)(tlm_db *db, const char *sql);
	int (*begin)(tlm_db *db);
	int (*in_tx)(const tlm_db *db);
	int (*tx_usable)(const tlm_db *db);
	int (*prepare)(tlm_db *db, const char *sql, tlm_db_stmt **out);
	void (*finalize)(tlm_db_stmt *q);
	void (*reset)(tlm_db_stmt *q);
	void (*clear)(tlm_db_stmt *q); /* reset, and every parameter unbound */
	void (*bind_text)(tlm_db_stmt *q, int i, const char *s);
	void (*bind_int64)(tlm_db_stmt *q, int i, long long v);
	int (*step)(tlm_db_stmt *q);
	int (*step_queued)(tlm_db_stmt *q); /* NULL: step */
	void (*push)(tlm_db *db);           /* NULL: nothing to send */
	const char *(*column_text)(tlm_db_stmt *q, int i);
	long long (*column_int64)(tlm_db_stmt *q, int i);
	int (*column_is_null)(tlm_db_stmt *q, int i);
	long long (*changes)(tlm_db *db);
	const char *(*errmsg)(tlm_db *db);
	tlm_db_errclass (*errclass)(tlm_db *db);
	/* PostgreSQL only; NULL elsewhere. */
	int (*socket)(tlm_db *db);
	int (*listen)(tlm_db *db, const char *channel);
	int (*notifications)(tlm_db *db, void (*cb)(const char *payload, void *ctx), void *ctx);
} tlm_db_ops;

/* The statement cache (db.c): prepared statements kept by their SQL text. */
#define TLM_DB_CACHE_MAX 96

typedef struct tlm_db_cached {
	char *sql;
	unsigned long hash;
	tlm_db_stmt *q;
} tlm_db_cached;

struct tlm_db {
	const tlm_db_ops *ops;
	tlm_db_cached cache[TLM_DB_CACHE_MAX];
	size_t ncache;
};

struct tlm_db_stmt {
	tlm_db *db;
	int cached; /* in db's cache: finalize hands it back */
	int busy;   /* handed out by tlm_db_prepare, not finalized yet */
};

#endif
