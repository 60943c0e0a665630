/* The PostgreSQL backend of db.h, over libpq (docs/distributed.md).  Each
 * step runs the statement in text format, by name once the cache keeps it
 * (server_name); ?N in the journal's SQL becomes $N here.  There is no
 * reconnection: a journal whose connection is gone can no longer prove it
 * holds its runs, so every call fails from then on and the engine stops
 * (the fencing rule).
 *
 * A queued step (tlm_db_step_queued) inside a transaction is sent in
 * libpq's pipeline mode without waiting for its result; the next call that
 * waits for the database reads the queued results first and fails with the
 * first queued failure (docs/internals/journal.md, "Queued writes on
 * PostgreSQL").  So a batch's writes cost one round trip together. */
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "journal/db.h"
#include "journal/db_ops.h"

/* The journal's statements use at most a handful of parameters. */
#define MAX_PARAMS 16
#define MSG_MAX    512
/* Queued writes read back at once, at most: their results wait in the
 * server's and the kernel's buffers until then, and a blocking connection
 * that never reads could fill them. */
#define QUEUED_MAX 128

/* pg_type OIDs of the parameter types we send (catalog/pg_type.h). */
#define INT8OID 20
#define TEXTOID 25

typedef struct pg {
	tlm_db base;
	PGconn *conn;
	long long changes;
	int queued;             /* queued writes whose results are not read yet */
	unsigned int nprepared; /* statements prepared on the server */
	tlm_db_errclass errclass;
	char msg[MSG_MAX];
} pg;

typedef struct pg_stmt {
	tlm_db_stmt base;
	char *sql;
	int nparams;
	char *values[MAX_PARAMS];
	Oid types[MAX_PARAMS];
	PGresult *res;
	int row, nrows;
	int nomem;    /* a binding could not be copied: the next step fails */
	int prepared; /* on the server, as name, with ptypes */
	char name[24];
	Oid ptypes[MAX_PARAMS];
} pg_stmt;

static pg *P(tlm_db *db)
{
	return (pg *)db;
}

static pg_stmt *S(tlm_db_stmt *q)
{
	return (pg_stmt *)q;
}

/* Keeps libpq's message (one line, no trailing newline) and its class. */
static int fail(pg *p, const PGresult *res)
{
	const char *m = res != NULL ? PQresultErrorMessage(res) : PQerrorMessage(p->conn);
	const char *state = res != NULL ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
	size_t n;

	snprintf(p->msg, sizeof(p->msg), "%s", m != NULL && m[0] ? m : "PostgreSQL failed");
	n = strcspn(p->msg, "\n");
	p->msg[n] = '\0';
	if (PQstatus(p->conn) != CONNECTION_OK)
		p->errclass = TLM_DB_ELOST;
	else if (state != NULL && strcmp(state, "23505") == 0)
		p->errclass = TLM_DB_EUNIQUE;
	else if (state != NULL && strcmp(state, "23503") == 0)
		p->errclass = TLM_DB_EFOREIGN_KEY;
	else if (state != NULL && strncmp(state, "23", 2) == 0)
		p->errclass = TLM_DB_ECONSTRAINT;
	else if (state != NULL && strncmp(state, "08", 2) == 0)
		p->errclass = TLM_DB_ELOST;
	else
		p->errclass = TLM_DB_EOTHER;
	return TLM_DB_FAIL;
}

/* Reads the results of the queued writes: 0, or the first failure's
 * message and class.  The pipeline ends either way (a failure aborts every
 * queued write after it, and the transaction with them). */
static int drain(pg *p)
{
	int rc = 0, nulls = 0;

	if (p->queued == 0)
		return 0;
	p->queued = 0;
	if (PQpipelineSync(p->conn) != 1)
		return fail(p, NULL);
	/* Each write's result and a NULL, then the sync's own; two NULLs in a
	 * row mean the connection has nothing more to give. */
	while (nulls < 2) {
		PGresult *res = PQgetResult(p->conn);
		ExecStatusType st = PQresultStatus(res);

		nulls = res == NULL ? nulls + 1 : 0;
		if (res != NULL && rc == 0 && st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK &&
		    st != PGRES_PIPELINE_SYNC && st != PGRES_PIPELINE_ABORTED)
			rc = fail(p, res);
		PQclear(res);
		if (st == PGRES_PIPELINE_SYNC)
			break;
	}
	if (PQexitPipelineMode(p->conn) != 1 && rc == 0)
		rc = fail(p, NULL);
	return rc;
}

static int pg_exec(tlm_db *db, const char *sql)
{
	pg *p = P(db);
	PGresult *res;
	ExecStatusType st;
	int rc = 0;

	/* A ROLLBACK runs even after a queued write failed: it is how the
	 * caller recovers. */
	if (drain(p) != 0 && strcmp(sql, "ROLLBACK") != 0)
		return TLM_DB_FAIL;
	res = PQexec(p->conn, sql);
	st = PQresultStatus(res);
	if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK)
		rc = fail(p, res);
	PQclear(res);
	return rc;
}

static int pg_begin(tlm_db *db)
{
	return pg_exec(db, "BEGIN");
}

static int pg_in_tx(const tlm_db *db)
{
	return PQtransactionStatus(((const pg *)db)->conn) != PQTRANS_IDLE;
}

/* Not after a failed statement: the transaction takes none any more.
 * While writes are queued libpq reports the connection busy; whether one
 * of them failed is learnt by the next call that reads their results. */
static int pg_tx_usable(const tlm_db *db)
{
	const pg *p = (const pg *)db;
	PGTransactionStatusType st = PQtransactionStatus(p->conn);

	return st == PQTRANS_INTRANS || (p->queued > 0 && st == PQTRANS_ACTIVE);
}

/* ?N -> $N outside quoted text; everything else is copied. */
static char *translate(const char *sql, int *nparams)
{
	size_t n = strlen(sql);
	char *out = malloc(n + 1), *o = out;
	char quote = 0;
	int max = 0;

	if (out == NULL)
		return NULL;
	for (; *sql; sql++) {
		if (quote != 0) {
			quote = *sql == quote ? 0 : quote;
		} else if (*sql == '\'' || *sql == '"') {
			quote = *sql;
		} else if (*sql == '?' && sql[1] >= '0' && sql[1] <= '9') {
			int v = atoi(sql + 1);

			max = v > max ? v : max;
			*o++ = '$';
			continue;
		}
		*o++ = *sql;
	}
	*o = '\0';
	*nparams = max;
	return out;
}

static int pg_prepare(tlm_db *db, const char *sql, tlm_db_stmt **out)
{
	pg_stmt *q = calloc(1, sizeof(*q));

	*out = NULL;
	if (q == NULL || (q->sql = translate(sql, &q->nparams)) == NULL ||
	    q->nparams > MAX_PARAMS) {
		snprintf(P(db)->msg, sizeof(P(db)->msg), "cannot prepare a statement");
		P(db)->errclass = TLM_DB_EOTHER;
		if (q != NULL)
			free(q->sql);
		free(q);
		return TLM_DB_FAIL;
	}
	/* An unbound parameter is a NULL; typing it as text lets "?1 IS NULL OR
	 * x = ?1" be planned (every optional parameter the journal has is text). */
	for (int i = 0; i < MAX_PARAMS; i++)
		q->types[i] = TEXTOID;
	q->base.db = db;
	*out = &q->base;
	return 0;
}

static void pg_reset(tlm_db_stmt *q)
{
	PQclear(S(q)->res);
	S(q)->res = NULL;
	S(q)->row = S(q)->nrows = 0;
}

static void pg_clear(tlm_db_stmt *q)
{
	int i;

	pg_reset(q);
	for (i = 0; i < MAX_PARAMS; i++) {
		free(S(q)->values[i]);
		S(q)->values[i] = NULL;
		S(q)->types[i] = TEXTOID; /* as pg_prepare leaves it: the statement is reused */
	}
	S(q)->nomem = 0;
}

static void pg_finalize(tlm_db_stmt *q)
{
	pg_clear(q);
	free(S(q)->sql);
	free(q);
}

static void set_param(tlm_db_stmt *q, int i, char *v, Oid type, int copied)
{
	S(q)->nomem |= !copied;
	if (i < 1 || i > MAX_PARAMS) {
		free(v);
		return;
	}
	free(S(q)->values[i - 1]);
	S(q)->values[i - 1] = v;
	S(q)->types[i - 1] = type;
}

static void pg_bind_text(tlm_db_stmt *q, int i, const char *v)
{
	char *copy = v != NULL ? strdup(v) : NULL;

	set_param(q, i, copy, TEXTOID, v == NULL || copy != NULL);
}

static void pg_bind_int64(tlm_db_stmt *q, int i, long long v)
{
	char buf[24];

	snprintf(buf, sizeof(buf), "%lld", v);
	char *copy = strdup(buf);

	set_param(q, i, copy, INT8OID, copy != NULL);
}

/* A kept statement is prepared on the server at its first run, with that
 * run's parameter types, and runs by name after: parsing and planning every
 * write again was a third of PostgreSQL's time for a run
 * (docs/performance.md).  A run with other types, a statement the cache
 * does not keep, or one that cannot be prepared now (writes queued, a
 * failed prepare) goes unnamed, as before; the run then reports any error. */
static const char *server_name(pg_stmt *q)
{
	pg *p = P(q->base.db);
	PGresult *res;
	int ok;

	if (q->prepared)
		return memcmp(q->ptypes, q->types, sizeof(q->types)) == 0 ? q->name : NULL;
	if (!q->base.cached || p->queued > 0)
		return NULL;
	snprintf(q->name, sizeof(q->name), "tlm_%u", ++p->nprepared);
	res = PQprepare(p->conn, q->name, q->sql, q->nparams, q->types);
	ok = PQresultStatus(res) == PGRES_COMMAND_OK;
	PQclear(res);
	if (!ok)
		return NULL;
	q->prepared = 1;
	memcpy(q->ptypes, q->types, sizeof(q->types));
	return q->name;
}

static int run(pg_stmt *q)
{
	pg *p = P(q->base.db);
	const char *name;
	ExecStatusType st;

	if (q->nomem) {
		snprintf(p->msg, sizeof(p->msg), "out of memory");
		p->errclass = TLM_DB_EOTHER;
		return TLM_DB_FAIL;
	}
	if (drain(p) != 0)
		return TLM_DB_FAIL;
	if ((name = server_name(q)) != NULL)
		q->res = PQexecPrepared(p->conn, name, q->nparams, (const char *const *)q->values,
					NULL, NULL, 0);
	else
		q->res = PQexecParams(p->conn, q->sql, q->nparams, q->types,
				      (const char *const *)q->values, NULL, NULL, 0);
	st = PQresultStatus(q->res);
	if (st == PGRES_TUPLES_OK) {
		q->nrows = PQntuples(q->res);
		q->row = -1;
		return 0;
	}
	if (st == PGRES_COMMAND_OK) {
		const char *n = PQcmdTuples(q->res);

		p->changes = n != NULL && n[0] ? atoll(n) : 0;
		return 0;
	}
	fail(p, q->res);
	pg_reset(&q->base);
	return TLM_DB_FAIL;
}

static int pg_step(tlm_db_stmt *base)
{
	pg_stmt *q = S(base);

	if (q->res == NULL && run(q) != 0)
		return TLM_DB_FAIL;
	if (q->row + 1 < q->nrows) {
		q->row++;
		return TLM_DB_ROW;
	}
	q->row = q->nrows;
	return TLM_DB_DONE;
}

/* Outside a transaction a statement is its own transaction and its
 * failure must be known now: it runs as any other. */
static int pg_step_queued(tlm_db_stmt *base)
{
	pg_stmt *q = S(base);
	pg *p = P(base->db);
	const char *name;
	int sent;

	if (q->nomem || (p->queued == 0 && PQtransactionStatus(p->conn) != PQTRANS_INTRANS))
		return pg_step(base) == TLM_DB_FAIL ? TLM_DB_FAIL : TLM_DB_DONE;
	name = server_name(q); /* before the pipeline: a prepare waits for its answer */
	if (p->queued == 0 && PQenterPipelineMode(p->conn) != 1)
		return fail(p, NULL);
	if (name != NULL)
		sent = PQsendQueryPrepared(p->conn, name, q->nparams,
					   (const char *const *)q->values, NULL, NULL, 0);
	else
		sent = PQsendQueryParams(p->conn, q->sql, q->nparams, q->types,
					 (const char *const *)q->values, NULL, NULL, 0);
	if (sent != 1) {
		fail(p, NULL);
		p->queued++; /* the drain ends the pipeline */
		(void)drain(p);
		return TLM_DB_FAIL;
	}
	if (++p->queued == QUEUED_MAX && drain(p) != 0)
		return TLM_DB_FAIL;
	return TLM_DB_DONE;
}

/* The server runs what it receives and keeps the results until the drain
 * asks for them; a failed send is learnt by the drain. */
static void pg_push(tlm_db *db)
{
	if (P(db)->queued > 0)
		(void)PQflush(P(db)->conn);
}

static int in_row(pg_stmt *q, int i)
{
	return q->res != NULL && q->row >= 0 && q->row < q->nrows && i >= 0 &&
	       i < PQnfields(q->res);
}

static const char *pg_column_text(tlm_db_stmt *base, int i)
{
	pg_stmt *q = S(base);

	if (!in_row(q, i) || PQgetisnull(q->res, q->row, i))
		return NULL;
	return PQgetvalue(q->res, q->row, i);
}

static long long pg_column_int64(tlm_db_stmt *q, int i)
{
	const char *v = pg_column_text(q, i);

	if (v == NULL)
		return 0;
	if (strcmp(v, "t") == 0 || strcmp(v, "f") == 0) /* booleans */
		return v[0] == 't';
	return strtoll(v, NULL, 10);
}

static int pg_column_is_null(tlm_db_stmt *q, int i)
{
	return pg_column_text(q, i) == NULL;
}

static long long pg_changes(tlm_db *db)
{
	return P(db)->changes;
}

static const char *pg_errmsg(tlm_db *db)
{
	return P(db)->msg;
}

static tlm_db_errclass pg_errclass(tlm_db *db)
{
	return P(db)->errclass;
}

static int pg_socket(tlm_db *db)
{
	return PQsocket(P(db)->conn);
}

static int pg_listen(tlm_db *db, const char *channel)
{
	char sql[96];

	snprintf(sql, sizeof(sql), "LISTEN %s", channel);
	return pg_exec(db, sql);
}

static int pg_notifications(tlm_db *db, void (*cb)(const char *payload, void *ctx), void *ctx)
{
	pg *p = P(db);
	PGnotify *n;

	if (drain(p) != 0 || PQconsumeInput(p->conn) != 1)
		return fail(p, NULL);
	while ((n = PQnotifies(p->conn)) != NULL) {
		cb(n->extra, ctx);
		PQfreemem(n);
	}
	return 0;
}

static void pg_close(tlm_db *db)
{
	PQfinish(P(db)->conn);
	free(db);
}

static const tlm_db_ops pg_ops = {
	.kind = TLM_DB_POSTGRES,
	.for_update = " FOR UPDATE",
	.skip_locked = " FOR UPDATE SKIP LOCKED",
	.close = pg_close,
	.exec = pg_exec,
	.begin = pg_begin,
	.in_tx = pg_in_tx,
	.tx_usable = pg_tx_usable,
	.prepare = pg_prepare,
	.finalize = pg_finalize,
	.reset = pg_reset,
	.clear = pg_clear,
	.bind_text = pg_bind_text,
	.bind_int64 = pg_bind_int64,
	.step = pg_step,
	.step_queued = pg_step_queued,
	.push = pg_push,
	.column_text = pg_column_text,
	.column_int64 = pg_column_int64,
	.column_is_null = pg_column_is_null,
	.changes = pg_changes,
	.errmsg = pg_errmsg,
	.errclass = pg_errclass,
	.socket = pg_socket,
	.listen = pg_listen,
	.notifications = pg_notifications,
};

/* user@host:port/dbname: what messages name instead of the connection
 * string, which may carry a password. */
static char *make_label(PGconn *c)
{
	const char *host = PQhost(c), *port = PQport(c), *db = PQdb(c), *user = PQuser(c);
	size_t n = sizeof("postgresql://@:/") + strlen(host ? host : "") +
		   strlen(port ? port : "") + strlen(db ? db : "") + strlen(user ? user : "");
	char *s = malloc(n);

	if (s != NULL)
		snprintf(s, n, "postgresql://%s@%s:%s/%s", user ? user : "", host ? host : "",
			 port ? port : "", db ? db : "");
	return s;
}

static void ignore_notice(void *arg, const char *message)
{
	(void)arg;
	(void)message;
}

/* A lost peer is noticed within seconds, not the kernel's two hours; a lock
 * held by a stalled process fails a statement instead of hanging it. */
static const char *const defaults_k[] = {
	"connect_timeout",     "keepalives",       "keepalives_idle",
	"keepalives_interval", "keepalives_count", "tcp_user_timeout",
	"application_name",    "dbname",           NULL
};

int tlm_db_open_pg(tlm_db **out, const char *conninfo, int readonly, char **label, char *msg,
		   size_t size)
{
	const char *vals[] = { "5", "1", "5", "2", "3", "10000", "telemachy", conninfo, NULL };
	pg *p = calloc(1, sizeof(*p));

	*out = NULL;
	*label = NULL;
	if (p == NULL) {
		snprintf(msg, size, "out of memory");
		return TLM_DB_FAIL;
	}
	p->base.ops = &pg_ops;
	/* expand_dbname: the caller's string is parsed as a connection string,
	 * and what it sets overrides the defaults listed before it. */
	p->conn = PQconnectdbParams(defaults_k, vals, 1);
	/* The server's notices ("already exists, skipping") are not ours to
	 * print: libpq would write them to stderr. */
	if (p->conn != NULL)
		PQsetNoticeProcessor(p->conn, ignore_notice, NULL);
	if (p->conn == NULL || PQstatus(p->conn) != CONNECTION_OK ||
	    pg_exec(&p->base, readonly ? "SET lock_timeout = '10s';"
					 " SET default_transaction_read_only = on"
				       : "SET lock_timeout = '10s'") != 0 ||
	    (*label = make_label(p->conn)) == NULL) {
		const char *m = p->conn ? PQerrorMessage(p->conn) : "out of memory";

		snprintf(msg, size, "%s", p->msg[0] ? p->msg : m);
		msg[strcspn(msg, "\n")] = '\0';
		free(*label);
		*label = NULL;
		pg_close(&p->base);
		return TLM_DB_FAIL;
	}
	*out = &p->base;
	return 0;
}
