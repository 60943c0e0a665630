/* The store: one SQLite table of JSON documents, indexed by what the API
 * looks things up by.  SQLite gives persistence (--state) and correct paging
 * (ORDER BY id LIMIT/OFFSET) without a hand-written data structure. */
#include <openssl/rand.h>
#include <pthread.h>
#include <stdint.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "server/store.h"

#define STMT_CACHE 32
/* Parsed documents kept, by a hash of kind and id (a later one with the
 * same hash takes the place): reading a document back from SQLite and
 * parsing it again was most of what a status change or a runner scan cost.
 * Bounded, so memory does not grow with the store. */
#define DOC_CACHE 1024

struct tlm_store {
	sqlite3 *db;
	pthread_mutex_t lock;
	int unique_names;
	long long seq; /* creation order; kept here: MAX(seq) per insert would scan */
	/* Prepared statements, by the address of their SQL text (a literal):
	 * preparing costs more than running most of them.  Under lock. */
	struct {
		const char *sql;
		sqlite3_stmt *q;
	} cache[STMT_CACHE];
	/* Documents as last written, parsed (see doc_slot).  Under lock. */
	struct cached_doc {
		int kind;
		char *id;    /* NULL: empty */
		json_t *doc; /* the store's own copy: only copies are handed out */
	} docs[DOC_CACHE];
};

static const char schema[] =
	"CREATE TABLE IF NOT EXISTS docs ("
	"  kind INTEGER NOT NULL, id TEXT NOT NULL, scope TEXT, name TEXT,"
	"  assignee TEXT, seq INTEGER NOT NULL, doc TEXT NOT NULL,"
	"  PRIMARY KEY (kind, id));"
	"CREATE INDEX IF NOT EXISTS docs_name ON docs (kind, name, seq);"
	"CREATE INDEX IF NOT EXISTS docs_scope ON docs (kind, scope, id);"
	"CREATE INDEX IF NOT EXISTS docs_assignee ON docs (kind, assignee, seq);"
	"CREATE INDEX IF NOT EXISTS docs_status ON docs (kind, json_extract(doc, '$.status'));"
	/* The runner's questions, "who has work?" and "what may this agent
	 * start?", answered from an index of the tasks in play alone (partial:
	 * finished tasks are not in it), in creation order.  It replaces an
	 * index of every task by assignee and status, which made each scan
	 * probe every online agent. */
	"CREATE INDEX IF NOT EXISTS docs_in_play ON docs (assignee, seq)"
	"  WHERE kind = 2 AND json_extract(doc, '$.status') IN ('pending', 'running');"
	"DROP INDEX IF EXISTS docs_assignee_status;";

/* The condition docs_in_play is made of, as the queries must spell it. */
#define IN_PLAY "kind = 2 AND json_extract(doc, '$.status') IN ('pending', 'running')"

void tlm_store_now(char *buf, size_t size)
{
	time_t t = time(NULL);
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(buf, size, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

#define UUID_POOL 512 /* random bytes fetched at once: 32 UUIDs */

/* A random (version 4) UUID, like upstream's ids.  The bytes come from
 * RAND_bytes in batches, kept per thread: one call per id cost more than the
 * rest of an insert (OpenSSL looks its generator up and locks it each time). */
static int new_uuid(char out[37])
{
	static _Thread_local unsigned char pool[UUID_POOL];
	static _Thread_local size_t left;
	unsigned char b[16];

	if (left < sizeof(b)) {
		if (RAND_bytes(pool, sizeof(pool)) != 1)
			return -1;
		left = sizeof(pool);
	}
	left -= sizeof(b);
	memcpy(b, pool + left, sizeof(b));
	memset(pool + left, 0, sizeof(b)); /* handed out: not kept */
	b[6] = (unsigned char)((b[6] & 0x0f) | 0x40);
	b[8] = (unsigned char)((b[8] & 0x3f) | 0x80);
	snprintf(out, 37, "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
		 b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12],
		 b[13], b[14], b[15]);
	return 0;
}

static int db_error(tlm_store *st, tlm_error *err, const char *what)
{
	return tlm_error_set(err, TLM_ERROR, "store: %s: %s", what, sqlite3_errmsg(st->db));
}

static int read_seq(tlm_store *st)
{
	sqlite3_stmt *q;
	int rc;

	if (sqlite3_prepare_v2(st->db, "SELECT COALESCE(MAX(seq), 0) FROM docs", -1, &q, NULL) !=
	    SQLITE_OK)
		return -1;
	rc = sqlite3_step(q) == SQLITE_ROW ? 0 : -1;
	st->seq = sqlite3_column_int64(q, 0);
	sqlite3_finalize(q);
	return rc;
}

int tlm_store_open(tlm_store **out, const char *path, int unique_names, tlm_error *err)
{
	tlm_store *st = calloc(1, sizeof(*st));
	int rc;

	*out = NULL;
	if (st == NULL)
		return tlm_error_set(err, TLM_ERROR, "out of memory");
	pthread_mutex_init(&st->lock, NULL);
	st->unique_names = unique_names;
	rc = sqlite3_open_v2(path ? path : ":memory:", &st->db,
			     SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
			     NULL);
	if (rc != SQLITE_OK) {
		rc = tlm_error_set(err, TLM_ERROR, "store: cannot open %s: %s",
				   path ? path : "memory",
				   st->db ? sqlite3_errmsg(st->db) : "out of memory");
		tlm_store_close(st);
		return rc;
	}
	/* A restarted server must keep what it acknowledged. */
	if (sqlite3_exec(st->db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;", NULL, NULL,
			 NULL) != SQLITE_OK ||
	    sqlite3_exec(st->db, schema, NULL, NULL, NULL) != SQLITE_OK) {
		rc = db_error(st, err, path ? path : "memory");
		tlm_store_close(st);
		return rc;
	}
	if (read_seq(st) != 0) {
		rc = db_error(st, err, "reading the store");
		tlm_store_close(st);
		return rc;
	}
	*out = st;
	return 0;
}

void tlm_store_close(tlm_store *st)
{
	if (st == NULL)
		return;
	for (size_t i = 0; i < STMT_CACHE; i++)
		sqlite3_finalize(st->cache[i].q);
	for (size_t i = 0; i < DOC_CACHE; i++) {
		free(st->docs[i].id);
		json_decref(st->docs[i].doc);
	}
	sqlite3_close(st->db);
	pthread_mutex_destroy(&st->lock);
	free(st);
}

/* Prepares sql (or takes it from the cache: sql must be a string literal)
 * and binds the NULL-terminated text arguments (NULL entries bind SQL NULL
 * up to nargs).  Give it back with release(). */
static sqlite3_stmt *prepare(tlm_store *st, const char *sql, int nargs, const char *const *args)
{
	sqlite3_stmt *q = NULL;
	int i, slot = -1;

	for (i = 0; i < STMT_CACHE; i++) {
		if (st->cache[i].sql == sql) {
			q = st->cache[i].q;
			break;
		}
		if (st->cache[i].sql == NULL && slot < 0)
			slot = i;
	}
	if (q == NULL) {
		if (sqlite3_prepare_v3(st->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &q, NULL) !=
		    SQLITE_OK)
			return NULL;
		if (slot >= 0) {
			st->cache[slot].sql = sql;
			st->cache[slot].q = q;
		}
	}
	for (i = 0; i < nargs; i++)
		sqlite3_bind_text(q, i + 1, args[i], -1, SQLITE_STATIC);
	return q;
}

/* Done with a statement from prepare(): reset for its next use, or
 * finalized when the cache had no room for it. */
static void release(tlm_store *st, sqlite3_stmt *q)
{
	size_t i;

	if (q == NULL)
		return;
	for (i = 0; i < STMT_CACHE; i++) {
		if (st->cache[i].q == q) {
			sqlite3_reset(q);
			sqlite3_clear_bindings(q);
			return;
		}
	}
	sqlite3_finalize(q);
}

static int same_str(const char *a, const char *b)
{
	return a == b || (a != NULL && b != NULL && strcmp(a, b) == 0);
}

/* ---- the document cache (DOC_CACHE); every write keeps it exact ---- */

static struct cached_doc *doc_slot(tlm_store *st, int kind, const char *id)
{
	uint32_t h = 2166136261u ^ (uint32_t)kind; /* FNV-1a */

	for (; *id; id++)
		h = (h ^ (unsigned char)*id) * 16777619u;
	return &st->docs[h % DOC_CACHE];
}

/* The cached document of kind and id, or NULL. */
static const json_t *cache_find(tlm_store *st, int kind, const char *id)
{
	struct cached_doc *c = doc_slot(st, kind, id);

	return c->id != NULL && c->kind == kind && strcmp(c->id, id) == 0 ? c->doc : NULL;
}

static void cache_clear(struct cached_doc *c)
{
	free(c->id);
	json_decref(c->doc);
	c->id = NULL;
	c->doc = NULL;
}

/* Forgets what is cached of kind and id (it changed or is gone). */
static void cache_forget(tlm_store *st, int kind, const char *id)
{
	if (id != NULL && cache_find(st, kind, id) != NULL)
		cache_clear(doc_slot(st, kind, id));
}

/* Keeps a copy of doc, which is what the store now holds for its id. */
static void cache_put(tlm_store *st, int kind, const json_t *doc)
{
	const char *id = json_string_value(json_object_get(doc, "id"));
	struct cached_doc *c;
	json_t *copy;
	char *key;

	if (id == NULL)
		return;
	c = doc_slot(st, kind, id);
	copy = json_deep_copy(doc);
	key = strdup(id);
	cache_clear(c); /* whatever it held, also when out of memory now */
	if (copy == NULL || key == NULL) {
		json_decref(copy);
		free(key);
		return;
	}
	c->kind = kind;
	c->id = key;
	c->doc = copy;
}

/* A row's document: a copy of the cached one when its id (column idcol,
 * < 0: none) is cached, else parsed from column 0 (and then cached when
 * kind >= 0).  NULL when corrupt or out of memory. */
static json_t *row_doc(tlm_store *st, sqlite3_stmt *q, int kind, int idcol)
{
	const char *id = idcol >= 0 ? (const char *)sqlite3_column_text(q, idcol) : NULL;
	const json_t *hit = id != NULL && kind >= 0 ? cache_find(st, kind, id) : NULL;
	json_t *doc;

	if (hit != NULL)
		return json_deep_copy(hit);
	doc = json_loads((const char *)sqlite3_column_text(q, 0), 0, NULL);
	if (doc != NULL && id != NULL && kind >= 0)
		cache_put(st, kind, doc);
	return doc;
}

/* Runs a query returning a doc column (0), and for a query of one kind
 * (kind >= 0) the id (column 1): every row goes into an array. */
static int fetch_docs_of(tlm_store *st, sqlite3_stmt *q, int kind, json_t **items, tlm_error *err)
{
	json_t *arr = json_array();
	int rc;

	while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
		json_t *doc = row_doc(st, q, kind, kind >= 0 ? 1 : -1);

		if (doc == NULL || json_array_append_new(arr, doc) != 0) {
			json_decref(arr);
			return tlm_error_set(err, TLM_ERROR, "store: corrupt document");
		}
	}
	if (rc != SQLITE_DONE) {
		json_decref(arr);
		return db_error(st, err, "query");
	}
	*items = arr;
	return 0;
}

static int fetch_docs(tlm_store *st, sqlite3_stmt *q, json_t **items, tlm_error *err)
{
	return fetch_docs_of(st, q, -1, items, err);
}

/* The first document a query returns, TLM_ENOTFOUND if none. */
static int fetch_one(tlm_store *st, sqlite3_stmt *q, int kind, json_t **out, tlm_error *err)
{
	json_t *items = NULL;
	int rc = fetch_docs_of(st, q, kind, &items, err);

	if (rc == 0 && json_array_size(items) == 0)
		rc = tlm_error_set(err, TLM_ENOTFOUND, "not found");
	if (rc == 0)
		*out = json_incref(json_array_get(items, 0));
	json_decref(items);
	return rc;
}

/* Runs a SELECT doc query with text arguments; the caller holds the lock.
 * one: the first document or TLM_ENOTFOUND; else an array of all of them.
 * kind >= 0: the query selects "doc, id" of that kind (see fetch_docs_of). */
static int query_locked(tlm_store *st, const char *sql, int nargs, const char *const *args, int one,
			int kind, json_t **out)
{
	sqlite3_stmt *q = prepare(st, sql, nargs, args);
	int rc;

	if (q == NULL)
		return TLM_ERROR;
	rc = one ? fetch_one(st, q, kind, out, NULL) : fetch_docs_of(st, q, kind, out, NULL);
	release(st, q);
	return rc;
}

static int query(tlm_store *st, const char *sql, int nargs, const char *const *args, int one,
		 int kind, json_t **out)
{
	int rc;

	pthread_mutex_lock(&st->lock);
	rc = query_locked(st, sql, nargs, args, one, kind, out);
	pthread_mutex_unlock(&st->lock);
	return rc;
}

/* One document by kind and id, within a scope (a team) when given. */
static int get_locked(tlm_store *st, tlm_store_kind kind, const char *scope, const char *id,
		      json_t **out)
{
	const json_t *hit = cache_find(st, (int)kind, id);
	char k[4];
	const char *args[] = { k, id, scope };

	if (hit != NULL) {
		/* The scope column holds the document's teamId. */
		if (scope != NULL &&
		    !same_str(scope, json_string_value(json_object_get(hit, "teamId"))))
			return TLM_ENOTFOUND;
		*out = json_deep_copy(hit);
		return *out != NULL ? 0 : TLM_ERROR;
	}
	snprintf(k, sizeof(k), "%d", (int)kind);
	return query_locked(
		st,
		scope ? "SELECT doc, id FROM docs WHERE kind = ? AND id = ? AND scope = ?"
		      : "SELECT doc, id FROM docs WHERE kind = ? AND id = ?",
		scope ? 3 : 2, args, 1, (int)kind, out);
}

static const char *str_or_null(const json_t *doc, const char *key)
{
	return json_string_value(json_object_get(doc, key));
}

/* The keys whose values are also index columns (scope, name, assignee). */
static const char *const index_keys[] = { "teamId", "name", "assigneeAgentId" };
#define NINDEX_KEYS (sizeof(index_keys) / sizeof(index_keys[0]))

/* Writes a new doc (insert or replace) with its index columns; text is doc
 * as compact JSON. */
static int put_doc(tlm_store *st, tlm_store_kind kind, const json_t *doc, const char *text,
		   long long seq, tlm_error *err)
{
	sqlite3_stmt *q;
	size_t i;
	int rc = 0;

	q = prepare(st,
		    "INSERT OR REPLACE INTO docs (kind, id, scope, name, assignee, seq, doc) "
		    "VALUES (?, ?, ?, ?, ?, ?, ?)",
		    0, NULL);
	if (q == NULL)
		return db_error(st, err, "prepare");
	sqlite3_bind_int(q, 1, (int)kind);
	sqlite3_bind_text(q, 2, str_or_null(doc, "id"), -1, SQLITE_STATIC);
	for (i = 0; i < NINDEX_KEYS; i++)
		sqlite3_bind_text(q, 3 + (int)i, str_or_null(doc, index_keys[i]), -1,
				  SQLITE_STATIC);
	sqlite3_bind_int64(q, 6, seq);
	sqlite3_bind_text(q, 7, text, -1, SQLITE_STATIC);
	if (sqlite3_step(q) != SQLITE_DONE)
		rc = db_error(st, err, "write");
	release(st, q);
	if (rc == 0)
		cache_put(st, (int)kind, doc);
	else
		cache_forget(st, (int)kind, str_or_null(doc, "id"));
	return rc;
}

/* Rewrites a changed doc in place.  Its row keeps its rowid and seq, and the
 * indexes on scope, name and assignee are left alone unless one of those
 * changed (was: their values before the change): deleting and re-inserting
 * the row and its six index entries made a status change cost more than the
 * rest of the request. */
static int update_doc(tlm_store *st, tlm_store_kind kind, const json_t *doc,
		      const char *const was[NINDEX_KEYS], const char *text)
{
	const char *id = str_or_null(doc, "id");
	int moved = 0, n = 0, rc = 0;
	sqlite3_stmt *q;
	size_t i;

	for (i = 0; i < NINDEX_KEYS; i++)
		moved |= !same_str(was[i], str_or_null(doc, index_keys[i]));
	q = prepare(st,
		    moved ? "UPDATE docs SET scope = ?, name = ?, assignee = ?, doc = ? WHERE "
			    "kind = ? AND id = ?"
			  : "UPDATE docs SET doc = ? WHERE kind = ? AND id = ?",
		    0, NULL);
	if (q == NULL)
		return TLM_ERROR;
	for (i = 0; moved && i < NINDEX_KEYS; i++)
		sqlite3_bind_text(q, ++n, str_or_null(doc, index_keys[i]), -1, SQLITE_STATIC);
	sqlite3_bind_text(q, ++n, text, -1, SQLITE_STATIC);
	sqlite3_bind_int(q, ++n, (int)kind);
	sqlite3_bind_text(q, ++n, id, -1, SQLITE_STATIC);
	if (sqlite3_step(q) != SQLITE_DONE)
		rc = TLM_ERROR;
	else if (sqlite3_changes(st->db) == 0)
		rc = TLM_ENOTFOUND; /* gone since it was read: nothing was written */
	release(st, q);
	if (rc == 0)
		cache_put(st, (int)kind, doc);
	else
		cache_forget(st, (int)kind, id);
	return rc;
}

static int name_taken(tlm_store *st, const char *name)
{
	const char *args[] = { name };
	sqlite3_stmt *q = prepare(st, "SELECT 1 FROM docs WHERE kind = 0 AND name = ?", 1, args);
	int taken = q != NULL && sqlite3_step(q) == SQLITE_ROW;

	release(st, q);
	return taken;
}

/* Hands text to *out when the write (rc) succeeded and the caller wants
 * it, else frees it. */
static void give_text(int rc, char *text, char **out)
{
	if (rc == 0 && out != NULL)
		*out = text;
	else
		free(text);
}

int tlm_store_insert_dump(tlm_store *st, tlm_store_kind kind, const char *scope, const json_t *doc,
			  json_t **out, char **text)
{
	json_t *d = json_deep_copy(doc);
	char id[37], now[32], *dump = NULL;
	tlm_error *err = NULL;
	int rc;

	if (text != NULL)
		*text = NULL;
	if (d == NULL || new_uuid(id) != 0) {
		json_decref(d);
		return TLM_ERROR;
	}
	tlm_store_now(now, sizeof(now));
	json_object_set_new(d, "id", json_string(id));
	if (kind == TLM_STORE_TASKS && scope != NULL)
		json_object_set_new(d, "teamId", json_string(scope));
	json_object_set_new(d, "createdAt", json_string(now));
	json_object_set_new(d, "updatedAt", json_string(now));
	/* Serialised outside the lock: other requests need not wait for it. */
	if ((dump = json_dumps(d, JSON_COMPACT)) == NULL) {
		json_decref(d);
		return TLM_ERROR;
	}
	pthread_mutex_lock(&st->lock);
	if (kind == TLM_STORE_AGENTS && st->unique_names && str_or_null(d, "name") &&
	    name_taken(st, str_or_null(d, "name")))
		rc = TLM_ECONFLICT;
	else
		rc = put_doc(st, kind, d, dump, ++st->seq, err);
	pthread_mutex_unlock(&st->lock);
	if (rc == 0 && out != NULL)
		*out = json_incref(d);
	give_text(rc, dump, text);
	json_decref(d);
	return rc;
}

int tlm_store_insert(tlm_store *st, tlm_store_kind kind, const char *scope, const json_t *doc,
		     json_t **out)
{
	return tlm_store_insert_dump(st, kind, scope, doc, out, NULL);
}

int tlm_store_get(tlm_store *st, tlm_store_kind kind, const char *scope, const char *id,
		  json_t **out)
{
	int rc;

	pthread_mutex_lock(&st->lock);
	rc = get_locked(st, kind, scope, id, out);
	pthread_mutex_unlock(&st->lock);
	return rc;
}

/* Steps sql (parameters: kind, id) once; the caller holds the lock and
 * releases *q (NULL when it could not be prepared).  0 on a row,
 * TLM_ENOTFOUND, or TLM_ERROR. */
static int step_by_id(tlm_store *st, const char *sql, tlm_store_kind kind, const char *id,
		      sqlite3_stmt **q)
{
	if ((*q = prepare(st, sql, 0, NULL)) == NULL)
		return TLM_ERROR;
	sqlite3_bind_int(*q, 1, (int)kind);
	sqlite3_bind_text(*q, 2, id, -1, SQLITE_STATIC);
	switch (sqlite3_step(*q)) {
	case SQLITE_ROW: return 0;
	case SQLITE_DONE: return TLM_ENOTFOUND;
	default: return TLM_ERROR;
	}
}

int tlm_store_exists(tlm_store *st, tlm_store_kind kind, const char *id)
{
	sqlite3_stmt *q;
	int rc;

	pthread_mutex_lock(&st->lock);
	/* The primary key index alone answers: no document is read. */
	rc = step_by_id(st, "SELECT 1 FROM docs WHERE kind = ? AND id = ?", kind, id, &q);
	release(st, q);
	pthread_mutex_unlock(&st->lock);
	return rc;
}

int tlm_store_status(tlm_store *st, tlm_store_kind kind, const char *id, char *buf, size_t size,
		     const char **status)
{
	const json_t *hit;
	sqlite3_stmt *q;
	int rc;

	*status = NULL;
	pthread_mutex_lock(&st->lock);
	if ((hit = cache_find(st, (int)kind, id)) != NULL) {
		if (json_is_string(json_object_get(hit, "status")) && size > 0) {
			snprintf(buf, size, "%s", str_or_null(hit, "status"));
			*status = buf;
		}
		pthread_mutex_unlock(&st->lock);
		return 0;
	}
	/* SQLite reads the one field: no document is built to look at it. */
	rc = step_by_id(st,
			"SELECT json_extract(doc, '$.status') FROM docs WHERE kind = ? AND id = ?",
			kind, id, &q);
	if (rc == 0 && sqlite3_column_type(q, 0) == SQLITE_TEXT && size > 0) {
		snprintf(buf, size, "%s", (const char *)sqlite3_column_text(q, 0));
		*status = buf;
	}
	release(st, q);
	pthread_mutex_unlock(&st->lock);
	return rc;
}

int tlm_store_find_agent(tlm_store *st, const char *name, json_t **out)
{
	const char *args[] = { name };

	return query(st, "SELECT doc FROM docs WHERE kind = 0 AND name = ? ORDER BY seq LIMIT 1", 1,
		     args, 1, -1, out);
}

static int count_docs(tlm_store *st, const char *const *args, int nargs, size_t *total)
{
	sqlite3_stmt *q =
		prepare(st,
			nargs == 2 ? "SELECT COUNT(*) FROM docs WHERE kind = ? AND scope = ?"
				   : "SELECT COUNT(*) FROM docs WHERE kind = ?",
			nargs, args);
	int rc = q != NULL && sqlite3_step(q) == SQLITE_ROW ? 0 : TLM_ERROR;

	if (rc == 0)
		*total = (size_t)sqlite3_column_int64(q, 0);
	release(st, q);
	return rc;
}

int tlm_store_count_status(tlm_store *st, tlm_store_kind kind, const char *status, size_t *n)
{
	char k[4];
	const char *args[] = { k, status };
	sqlite3_stmt *q;
	int rc;

	snprintf(k, sizeof(k), "%d", (int)kind);
	pthread_mutex_lock(&st->lock);
	q = prepare(
		st,
		"SELECT COUNT(*) FROM docs WHERE kind = ? AND json_extract(doc, '$.status') = ?", 2,
		args);
	rc = q != NULL && sqlite3_step(q) == SQLITE_ROW ? 0 : TLM_ERROR;
	if (rc == 0)
		*n = (size_t)sqlite3_column_int64(q, 0);
	release(st, q);
	pthread_mutex_unlock(&st->lock);
	return rc;
}

int tlm_store_list(tlm_store *st, tlm_store_kind kind, const char *scope, size_t limit,
		   size_t offset, json_t **items, size_t *total)
{
	char k[4];
	const char *args[] = { k, scope };
	int nargs = scope ? 2 : 1, rc;
	sqlite3_stmt *q;

	snprintf(k, sizeof(k), "%d", (int)kind);
	pthread_mutex_lock(&st->lock);
	rc = count_docs(st, args, nargs, total);
	q = rc ? NULL
	       : prepare(st,
			 scope ? "SELECT doc FROM docs WHERE kind = ? AND scope = ? ORDER BY id "
				 "LIMIT ? OFFSET ?"
			       : "SELECT doc FROM docs WHERE kind = ? ORDER BY id LIMIT ? OFFSET ?",
			 nargs, args);
	if (q != NULL) {
		sqlite3_bind_int64(q, nargs + 1, (sqlite3_int64)limit);
		sqlite3_bind_int64(q, nargs + 2, (sqlite3_int64)offset);
		rc = fetch_docs(st, q, items, NULL);
	} else {
		rc = TLM_ERROR;
	}
	release(st, q);
	pthread_mutex_unlock(&st->lock);
	return rc;
}

/* The merge itself: patch wins, except the keys that identify the document. */
static void merge(json_t *doc, const json_t *patch, tlm_store_kind kind)
{
	static const char *const fixed[] = { "id", "teamId", "createdAt", NULL };
	const char *was = json_string_value(json_object_get(doc, "status"));
	int was_completed = was != NULL && strcmp(was, "completed") == 0;
	json_t *keep = json_object();
	const char *const *k;
	const char *now_status;
	char now[32];

	for (k = fixed; *k; k++)
		if (json_object_get(doc, *k))
			json_object_set(keep, *k, json_object_get(doc, *k));
	json_object_update(doc, (json_t *)patch);
	json_object_update(doc, keep);
	json_decref(keep);
	tlm_store_now(now, sizeof(now));
	json_object_set_new(doc, "updatedAt", json_string(now));
	now_status = json_string_value(json_object_get(doc, "status"));
	if (kind == TLM_STORE_TASKS && !was_completed && now_status != NULL &&
	    strcmp(now_status, "completed") == 0)
		json_object_set_new(doc, "completedAt", json_string(now));
}

/* Merges patch into doc (read under the lock) and writes it back; *dump:
 * the new text. */
static int patch_locked(tlm_store *st, tlm_store_kind kind, json_t *doc, const json_t *patch,
			char **dump)
{
	json_t *was[NINDEX_KEYS];
	const char *was_str[NINDEX_KEYS];
	size_t i;
	int rc;

	/* Held: the merge may free the values it replaces. */
	for (i = 0; i < NINDEX_KEYS; i++) {
		was[i] = json_incref(json_object_get(doc, index_keys[i]));
		was_str[i] = json_string_value(was[i]);
	}
	merge(doc, patch, kind);
	*dump = json_dumps(doc, JSON_COMPACT);
	rc = *dump != NULL ? update_doc(st, kind, doc, was_str, *dump) : TLM_ERROR;
	for (i = 0; i < NINDEX_KEYS; i++)
		json_decref(was[i]);
	return rc;
}

int tlm_store_patch_dump(tlm_store *st, tlm_store_kind kind, const char *scope, const char *id,
			 const json_t *patch, json_t **out, char **text)
{
	json_t *doc = NULL;
	char *dump = NULL;
	int rc;

	pthread_mutex_lock(&st->lock);
	rc = get_locked(st, kind, scope, id, &doc);
	if (rc == 0)
		rc = patch_locked(st, kind, doc, patch, &dump);
	pthread_mutex_unlock(&st->lock);
	if (rc == 0 && out != NULL)
		*out = json_incref(doc);
	give_text(rc, dump, text);
	json_decref(doc);
	return rc;
}

int tlm_store_patch(tlm_store *st, tlm_store_kind kind, const char *scope, const char *id,
		    const json_t *patch, json_t **out)
{
	return tlm_store_patch_dump(st, kind, scope, id, patch, out, NULL);
}

int tlm_store_delete(tlm_store *st, tlm_store_kind kind, const char *id)
{
	char k[4];
	const char *args[] = { k, id };
	sqlite3_stmt *q;
	int rc;

	snprintf(k, sizeof(k), "%d", (int)kind);
	pthread_mutex_lock(&st->lock);
	cache_forget(st, (int)kind, id);
	q = prepare(st, "DELETE FROM docs WHERE kind = ? AND id = ?", 2, args);
	rc = q != NULL && sqlite3_step(q) == SQLITE_DONE ? 0 : TLM_ERROR;
	if (rc == 0 && sqlite3_changes(st->db) == 0)
		rc = TLM_ENOTFOUND;
	release(st, q);
	pthread_mutex_unlock(&st->lock);
	return rc;
}

int tlm_store_agent_tasks(tlm_store *st, const char *agent_id, json_t **items)
{
	const char *args[] = { agent_id };

	/* Only what the runner acts on: parsing every task the agent ever had
	 * at every scan made a run's cost grow with the square of its tasks. */
	return query(st,
		     "SELECT doc, id FROM docs INDEXED BY docs_in_play WHERE " IN_PLAY
		     " AND assignee = ? ORDER BY seq",
		     1, args, 0, TLM_STORE_TASKS, items);
}

int tlm_store_agents_with_work(tlm_store *st, json_t **items)
{
	return query(st,
		     /* From the assignees of the tasks in play to their agents:
		      * a probe per online agent at every scan cost more than the
		      * rest of the scan. */
		     "SELECT a.doc, a.id FROM docs a INDEXED BY sqlite_autoindex_docs_1 WHERE"
		     " a.kind = 0 AND a.id IN (SELECT assignee FROM docs INDEXED BY docs_in_play"
		     " WHERE " IN_PLAY ") AND json_extract(a.doc, '$.status') = 'online'"
		     " ORDER BY a.seq",
		     0, NULL, 0, TLM_STORE_AGENTS, items);
}
