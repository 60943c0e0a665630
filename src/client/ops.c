/* Asynchronous operations over several requests: a paged list and a lookup
 * by name.  Each one is a small state machine whose steps are request
 * callbacks and timers on the client's own loop, so a caller that drives the
 * loop (the engine) keeps turning — heartbeat, signals, cancel requests —
 * for however long the operation takes.  The synchronous helpers at the end
 * are these operations driven to their end, for one-shot commands. */
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <curl/curl.h>

#include "client/client_internal.h"
#include "client/sync.h"
#include "telemachy/client.h"

static uint64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* ---- paged lists -------------------------------------------------------- */

typedef struct list_op {
	tlm_client *c;
	char *path;
	tlm_client_pager pager;
	tlm_client_item_cb each;
	tlm_client_done_cb done;
	void *ctx;
	size_t items, max_items;
	long max_ms;
	uint64_t deadline;
} list_op;

static void list_end(list_op *op, int rc, const tlm_error *err)
{
	tlm_client_done_cb done = op->done;
	void *ctx = op->ctx;

	tlm_client__pager_clear(&op->pager);
	free(op->path);
	free(op);
	done(ctx, rc, err);
}

static int list_next(list_op *op, tlm_error *err);

/* Feeds one page's items to the caller; 0 to go on, else the walk's end. */
static int list_items(list_op *op, json_t *items, tlm_error *err)
{
	json_t *it;
	size_t i;
	int rc;

	json_array_foreach(items, i, it)
	{
		if (++op->items > op->max_items)
			return tlm_error_set(err, TLM_ETOOBIG,
					     "GET %s: more than %zu items; refusing to go on",
					     op->path, op->max_items);
		if ((rc = op->each(op->ctx, it)) != 0)
			return rc;
	}
	return 0;
}

static void on_page(void *ctx, const tlm_client_result *res)
{
	list_op *op = ctx;
	tlm_error err = TLM_ERROR_INIT;
	json_t *items = NULL;
	int more = 0, rc;

	if (res->outcome != TLM_CLIENT_DONE) {
		list_end(op, res->rc != 0 ? res->rc : TLM_ERROR, res->err);
		return;
	}
	rc = tlm_client__pager_feed_res(&op->pager, res, &items, &more, &err);
	if (rc == 0)
		rc = list_items(op, items, &err);
	json_decref(items);
	if (rc == 0 && more && mono_ms() > op->deadline)
		rc = tlm_error_set(&err, TLM_ETIMEOUT, "GET %s: paging took over %ld ms; giving up",
				   op->path, op->max_ms);
	if (rc == 0 && more && (rc = list_next(op, &err)) == 0)
		return;
	if (rc < 0 && err.code == 0) /* an item callback's own failure */
		tlm_error_set(&err, rc, "GET %s: the walk stopped: %s", op->path,
			      rc == TLM_ERROR ? "out of memory" : tlm_error_name(rc));
	list_end(op, rc, rc < 0 ? &err : NULL);
}

static int list_next(list_op *op, tlm_error *err)
{
	size_t n = strlen(op->path) + 64;
	char *url = malloc(n);
	int rc;

	if (url == NULL)
		return tlm_error_set(err, TLM_ERROR, "out of memory");
	snprintf(url, n, "%s%climit=%zu&offset=%zu", op->path, strchr(op->path, '?') ? '&' : '?',
		 op->pager.limit, op->pager.offset);
	rc = tlm_client_submit(op->c, "GET", url, NULL, TLM_CLIENT_GET, on_page, op, err);
	free(url);
	return rc;
}

int tlm_client_list(tlm_client *c, const char *path, const char *key, tlm_client_item_cb each,
		    tlm_client_done_cb done, void *ctx, tlm_error *err)
{
	list_op *op;
	int rc;

	assert(c != NULL && path != NULL && key != NULL && each != NULL && done != NULL);
	if ((op = calloc(1, sizeof(*op))) == NULL || (op->path = strdup(path)) == NULL) {
		free(op);
		return tlm_error_set(err, TLM_ERROR, "out of memory");
	}
	op->c = c;
	op->each = each;
	op->done = done;
	op->ctx = ctx;
	tlm_client__list_bounds(c, &op->max_items, &op->max_ms);
	op->deadline = mono_ms() + (uint64_t)op->max_ms;
	tlm_client__pager_init(&op->pager, key, 100);
	if ((rc = list_next(op, err)) != 0) {
		tlm_client__pager_clear(&op->pager);
		free(op->path);
		free(op);
	}
	return rc;
}

/* ---- lookups by name ---------------------------------------------------- */

typedef struct find_op {
	tlm_client *c;
	tlm_client_res kind;
	char *name;
	long settle_ms; /* > 0 until the second look is scheduled */
	char *id;       /* a team list's match */
	tlm_client_found_cb cb;
	void *ctx;
} find_op;

static void find_end(find_op *op, int rc, const char *id, const tlm_error *err)
{
	tlm_client_found_cb cb = op->cb;
	void *ctx = op->ctx;

	cb(ctx, rc, id, err);
	free(op->id);
	free(op->name);
	free(op);
}

static int find_look(find_op *op, tlm_error *err);

static void find_again(void *ctx, int cancelled)
{
	find_op *op = ctx;
	tlm_error err = TLM_ERROR_INIT;
	int rc = cancelled ? tlm_error_set(&err, TLM_ECANCELLED, "lookup of %s dropped", op->name)
			   : find_look(op, &err);

	if (rc != 0)
		find_end(op, rc, NULL, &err);
}

/* Not found: believed only after the settle wait (once). */
static void find_missing(find_op *op)
{
	tlm_error err = TLM_ERROR_INIT;
	long settle = op->settle_ms;
	int rc;

	op->settle_ms = 0;
	if (settle <= 0) {
		tlm_error_set(&err, TLM_ENOTFOUND, "no %s named %s",
			      op->kind == TLM_CLIENT_AGENT ? "agent" : "team", op->name);
		find_end(op, TLM_ENOTFOUND, NULL, &err);
		return;
	}
	if ((rc = tlm_client_after(op->c, settle, find_again, op, &err)) != 0)
		find_end(op, rc, NULL, &err);
}

static void on_agent(void *ctx, const tlm_client_result *res)
{
	find_op *op = ctx;
	tlm_client_resource r = TLM_CLIENT_RESOURCE_INIT;
	tlm_error err = TLM_ERROR_INIT;
	int rc;

	if (res->outcome != TLM_CLIENT_CANCELLED && res->status == 404) {
		find_missing(op);
		return;
	}
	if (res->outcome != TLM_CLIENT_DONE) {
		find_end(op, res->rc != 0 ? res->rc : TLM_ERROR, NULL, res->err);
		return;
	}
	rc = tlm_client__res_resource(&r, "agent", res, &err);
	find_end(op, rc, rc == 0 ? r.id : NULL, &err);
	tlm_client__resource_clear(&r);
}

static int match_team(void *ctx, json_t *item)
{
	find_op *op = ctx;
	const char *name = json_string_value(json_object_get(item, "name"));
	const char *id = json_string_value(json_object_get(item, "id"));

	if (name == NULL || id == NULL || strcmp(name, op->name) != 0)
		return 0;
	op->id = strdup(id);
	return op->id != NULL ? 1 : TLM_ERROR; /* stop paging: found */
}

static void on_teams(void *ctx, int rc, const tlm_error *err)
{
	find_op *op = ctx;

	if (rc == 1)
		find_end(op, 0, op->id, NULL);
	else if (rc == 0)
		find_missing(op);
	else
		find_end(op, rc, NULL, err);
}

static int find_look(find_op *op, tlm_error *err)
{
	char *esc, *path;
	size_t n;
	int rc;

	if (op->kind == TLM_CLIENT_TEAM)
		return tlm_client_list(op->c, "/v1/teams", "teams", match_team, on_teams, op, err);
	esc = curl_easy_escape(NULL, op->name, 0);
	n = esc != NULL ? strlen(esc) + sizeof("/v1/agents/by-name/") : 0;
	if (esc == NULL || (path = malloc(n)) == NULL) {
		curl_free(esc);
		return tlm_error_set(err, TLM_ERROR, "out of memory");
	}
	snprintf(path, n, "/v1/agents/by-name/%s", esc);
	rc = tlm_client_submit(op->c, "GET", path, NULL, TLM_CLIENT_GET, on_agent, op, err);
	curl_free(esc);
	free(path);
	return rc;
}

int tlm_client_find_start(tlm_client *c, tlm_client_res kind, const char *name, long settle_ms,
			  tlm_client_found_cb cb, void *ctx, tlm_error *err)
{
	find_op *op;
	int rc;

	assert(c != NULL && name != NULL && cb != NULL);
	if ((op = calloc(1, sizeof(*op))) == NULL || (op->name = strdup(name)) == NULL) {
		free(op);
		return tlm_error_set(err, TLM_ERROR, "out of memory");
	}
	op->c = c;
	op->kind = kind;
	op->settle_ms = settle_ms;
	op->cb = cb;
	op->ctx = ctx;
	if ((rc = find_look(op, err)) != 0) {
		free(op->name);
		free(op);
	}
	return rc;
}

/* ---- the same, driven to their end ------------------------------------- */

typedef struct wait_op {
	int done, rc;
	char *id;
	tlm_error err;
} wait_op;

static void wait_done(void *ctx, int rc, const tlm_error *err)
{
	wait_op *w = ctx;

	w->done = 1;
	w->rc = rc;
	if (rc < 0 && err != NULL)
		w->err = *err;
}

static void wait_found(void *ctx, int rc, const char *id, const tlm_error *err)
{
	wait_op *w = ctx;

	wait_done(ctx, rc, err);
	if (rc == 0 && (w->id = strdup(id)) == NULL)
		w->rc = tlm_error_set(&w->err, TLM_ERROR, "out of memory");
}

/* Runs c until w is done; bounded by the requests' timeouts, the retry
 * budget and the paging bounds. */
static int wait_for(tlm_client *c, wait_op *w, tlm_error *err)
{
	int rc = 0;

	while (rc == 0 && !w->done) {
		rc = tlm_client_run(c, -1, err);
		if (rc == 0 && !w->done && tlm_client_pending(c) == 0)
			rc = tlm_error_set(err, TLM_ERROR, "client: an operation ended unreported");
	}
	if (rc != 0)
		return rc;
	if (w->rc < 0 && err != NULL)
		*err = w->err;
	return w->rc;
}

/* The caller's item callback and context, behind the wait. */
typedef struct list_wait {
	wait_op w; /* first: wait_done sees a wait_op */
	tlm_client_item_cb cb;
	void *ctx;
} list_wait;

static int each_item(void *ctx, json_t *item)
{
	list_wait *lw = ctx;

	return lw->cb(lw->ctx, item);
}

int tlm_client_list_all(tlm_client *c, const char *path, const char *key, tlm_client_item_cb cb,
			void *ctx, tlm_error *err)
{
	list_wait lw = { { 0, 0, NULL, TLM_ERROR_INIT }, cb, ctx };
	int rc = tlm_client_list(c, path, key, each_item, wait_done, &lw, err);

	return rc != 0 ? rc : wait_for(c, &lw.w, err);
}

int tlm_client__find_settled(tlm_client *c, tlm_client_res kind, const char *name, long settle_ms,
			     char **id_out, tlm_error *err)
{
	wait_op w = { 0, 0, NULL, TLM_ERROR_INIT };
	int rc;

	*id_out = NULL;
	rc = tlm_client_find_start(c, kind, name, settle_ms, wait_found, &w, err);
	if (rc == 0)
		rc = wait_for(c, &w, err);
	if (rc == 0)
		*id_out = w.id;
	else
		free(w.id);
	return rc;
}

int tlm_client_find(tlm_client *c, tlm_client_res kind, const char *name, char **id_out,
		    tlm_error *err)
{
	assert(c != NULL && name != NULL && id_out != NULL);
	return tlm_client__find_settled(c, kind, name, 0, id_out, err);
}

/* ---- paths -------------------------------------------------------------- */

static int append(char *out, size_t cap, size_t *n, const char *s)
{
	size_t len = strlen(s);

	if (*n + len >= cap)
		return TLM_ETOOBIG;
	memcpy(out + *n, s, len + 1);
	*n += len;
	return 0;
}

static int append_id(char *out, size_t cap, size_t *n, const char *id)
{
	static const char hex[] = "0123456789ABCDEF";
	const unsigned char *p;

	if (id[0] == '\0' || strcmp(id, ".") == 0 || strcmp(id, "..") == 0)
		return TLM_EINVALID;
	for (p = (const unsigned char *)id; *p != '\0'; p++) {
		int plain = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
			    (*p >= '0' && *p <= '9') || *p == '-' || *p == '.' || *p == '_' ||
			    *p == '~';

		if (*n + (plain ? 1 : 3) >= cap)
			return TLM_ETOOBIG;
		if (plain) {
			out[(*n)++] = (char)*p;
		} else {
			out[(*n)++] = '%';
			out[(*n)++] = hex[*p >> 4];
			out[(*n)++] = hex[*p & 15];
		}
	}
	out[*n] = '\0';
	return 0;
}

int tlm_client_path(char *out, size_t cap, const char *p1, const char *id1, const char *p2,
		    const char *id2, const char *p3, tlm_error *err)
{
	size_t n = 0;
	int rc;

	if (cap == 0)
		return tlm_error_set(err, TLM_ETOOBIG, "client: no room for a path");
	out[0] = '\0';
	rc = append(out, cap, &n, p1);
	if (rc == 0)
		rc = append_id(out, cap, &n, id1);
	if (rc == 0 && p2 != NULL)
		rc = append(out, cap, &n, p2);
	if (rc == 0 && id2 != NULL)
		rc = append_id(out, cap, &n, id2);
	if (rc == 0 && p3 != NULL)
		rc = append(out, cap, &n, p3);
	if (rc == TLM_EINVALID)
		return tlm_error_set(err, rc,
				     "an id that cannot be put in a URL (empty, \".\" or \"..\")");
	if (rc != 0)
		return tlm_error_set(err, rc, "a request path longer than %zu bytes", cap - 1);
	return 0;
}
