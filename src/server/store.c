/* The store: one SQLite table of JSON documents, indexed by what the API
 * looks things up by.  SQLite gives persistence (--state) and correct paging
 * (ORDER BY id LIMIT/OFFSET) without a hand-written data structure. */
#include <openssl/rand.h>
#include <pthread.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "server/store.h"

#define STMT_CACHE 32

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
	/* The runner's question, "what may this agent start?", answered from
	 * the index without reading the agent's finished tasks. */
	"CREATE INDEX IF NOT EXISTS docs_assignee_status ON docs"
	"  (kind, assignee, json_extract(doc, '$.status'), seq);";

void tlm_store_now(char *buf, size_t size)
{
	time_t t = time(NULL);
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(buf, size, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* A random (version 4) UUID, like upstream's ids. */
static int new_uuid(char out[37])
{
	unsigned char b[16];

	if (RAND_bytes(b, sizeof(b)) != 1)
		return -1;
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

/* Runs a query returning one doc column: every row goes into an array. */
static int fetch_docs(tlm_store *st, sqlite3_stmt *q, json_t **items, tlm_error *err)
{
	json_t *arr = json_array();
	int rc;

	while ((rc = sqlite3_step(q)) == SQLITE_ROW) {
		json_t *doc = json_loads((const char *)sqlite3_column_text(q, 0), 0, NULL);

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

/* The first document a query returns, TLM_ENOTFOUND if none. */
static int fetch_one(tlm_store *st, sqlite3_stmt *q, json_t **out, tlm_error *err)
{
	json_t *items = NULL;
	int rc = fetch_docs(st, q, &items, err);

	if (rc == 0 && json_array_size(items) == 0)
		rc = tlm_error_set(err, TLM_ENOTFOUND, "not found");
	if (rc == 0)
		*out = json_incref(json_array_get(items, 0));
	json_decref(items);
	return rc;
}

/* Runs a SELECT doc query with text arguments; the caller holds the lock.
 * one: the first document or TLM_ENOTFOUND; else an array of all of them. */
static int query_locked(tlm_store *st, const char *sql, int nargs, const char *const *args, int one,
			json_t **out)
{
	sqlite3_stmt *q = prepare(st, sql, nargs, args);
	int rc;

	if (q == NULL)
		return TLM_ERROR;
	rc = one ? fetch_one(st, q, out, NULL) : fetch_docs(st, q, out, NULL);
	release(st, q);
	return rc;
}

static int query(tlm_store *st, const char *sql, int nargs, const char *const *args, int one,
		 json_t **out)
{
	int rc;

	pthread_mutex_lock(&st->lock);
	rc = query_locked(st, sql, nargs, args, one, out);
	pthread_mutex_unlock(&st->lock);
	return rc;
}

/* One document by kind and id, within a scope (a team) when given. */
static int get_locked(tlm_store *st, tlm_store_kind kind, const char *scope, const char *id,
		      json_t **out)
{
	char k[4];
	const char *args[] = { k, id, scope };

	snprintf(k, sizeof(k), "%d", (int)kind);
	return query_locked(st,
			    scope ? "SELECT doc FROM docs WHERE kind = ? AND id = ? AND scope = ?"
				  : "SELECT doc FROM docs WHERE kind = ? AND id = ?",
			    scope ? 3 : 2, args, 1, out);
}

static const char *str_or_null(const json_t *doc, const char *key)
{
	return json_string_value(json_object_get(doc, key));
}

/* Writes doc (insert or replace) with its index columns. */
static int put_doc(tlm_store *st, tlm_store_kind kind, const json_t *doc, long long seq,
		   tlm_error *err)
{
	char *text = json_dumps(doc, JSON_COMPACT);
	sqlite3_stmt *q;
	int rc = 0;

	if (text == NULL)
		return tlm_error_set(err, TLM_ERROR, "out of memory");
	q = prepare(st,
		    "INSERT OR REPLACE INTO docs (kind, id, scope, name, assignee, seq, doc) "
		    "VALUES (?, ?, ?, ?, ?, ?, ?)",
		    0, NULL);
	if (q == NULL) {
		free(text);
		return db_error(st, err, "prepare");
	}
	sqlite3_bind_int(q, 1, (int)kind);
	sqlite3_bind_text(q, 2, str_or_null(doc, "id"), -1, SQLITE_STATIC);
	sqlite3_bind_text(q, 3, str_or_null(doc, "teamId"), -1, SQLITE_STATIC);
	sqlite3_bind_text(q, 4, str_or_null(doc, "name"), -1, SQLITE_STATIC);
	sqlite3_bind_text(q, 5, str_or_null(doc, "assigneeAgentId"), -1, SQLITE_STATIC);
	sqlite3_bind_int64(q, 6, seq);
	sqlite3_bind_text(q, 7, text, -1, SQLITE_STATIC);
	if (sqlite3_step(q) != SQLITE_DONE)
		rc = db_error(st, err, "write");
	release(st, q);
	free(text);
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

int tlm_store_insert(tlm_store *st, tlm_store_kind kind, const char *scope, const json_t *doc,
		     json_t **out)
{
	json_t *d = json_deep_copy(doc);
	char id[37], now[32];
	tlm_error *err = NULL;
	int rc;

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
	pthread_mutex_lock(&st->lock);
	if (kind == TLM_STORE_AGENTS && st->unique_names && str_or_null(d, "name") &&
	    name_taken(st, str_or_null(d, "name")))
		rc = TLM_ECONFLICT;
	else
		rc = put_doc(st, kind, d, ++st->seq, err);
	pthread_mutex_unlock(&st->lock);
	if (rc == 0 && out != NULL)
		*out = json_incref(d);
	json_decref(d);
	return rc;
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

int tlm_store_find_agent(tlm_store *st, const char *name, json_t **out)
{
	const char *args[] = { name };

	return query(st, "SELECT doc FROM docs WHERE kind = 0 AND name = ? ORDER BY seq LIMIT 1", 1,
		     args, 1, out);
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

static long long doc_seq(tlm_store *st, tlm_store_kind kind, const char *id)
{
	char k[4];
	const char *args[] = { k, id };
	sqlite3_stmt *q;
	long long seq = -1;

	snprintf(k, sizeof(k), "%d", (int)kind);
	q = prepare(st, "SELECT seq FROM docs WHERE kind = ? AND id = ?", 2, args);
	if (q != NULL && sqlite3_step(q) == SQLITE_ROW)
		seq = sqlite3_column_int64(q, 0);
	release(st, q);
	return seq;
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

int tlm_store_patch(tlm_store *st, tlm_store_kind kind, const char *scope, const char *id,
		    const json_t *patch, json_t **out)
{
	json_t *doc = NULL;
	int rc;

	pthread_mutex_lock(&st->lock);
	rc = get_locked(st, kind, scope, id, &doc);
	if (rc == 0) {
		merge(doc, patch, kind);
		rc = put_doc(st, kind, doc, doc_seq(st, kind, id), NULL);
	}
	pthread_mutex_unlock(&st->lock);
	if (rc == 0 && out != NULL)
		*out = json_incref(doc);
	json_decref(doc);
	return rc;
}

int tlm_store_delete(tlm_store *st, tlm_store_kind kind, const char *id)
{
	char k[4];
	const char *args[] = { k, id };
	sqlite3_stmt *q;
	int rc;

	snprintf(k, sizeof(k), "%d", (int)kind);
	pthread_mutex_lock(&st->lock);
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
		     "SELECT doc FROM docs INDEXED BY docs_assignee_status WHERE kind = 2 AND"
		     " assignee = ? AND"
		     " json_extract(doc, '$.status') IN ('pending', 'running') ORDER BY seq",
		     1, args, 0, items);
}

int tlm_store_agents_with_work(tlm_store *st, json_t **items)
{
	return query(st,
		     "SELECT a.doc FROM docs a WHERE a.kind = 0 AND"
		     " json_extract(a.doc, '$.status') = 'online' AND EXISTS (SELECT 1 FROM docs t"
		     " INDEXED BY docs_assignee_status WHERE t.kind = 2 AND t.assignee = a.id AND"
		     " json_extract(t.doc, '$.status') IN ('pending', 'running')) ORDER BY a.seq",
		     0, NULL, 0, items);
}
