/* Tolerant parsers for control-plane replies and task events, both contract
 * generations (v1 and v2).  Every input is capped at TLM_CLIENT_MAX_BODY before
 * jansson sees it, and no error message quotes the input: replies may carry
 * secrets, and jansson's own error text does quote it, so only its line and
 * column are used. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "client/client_internal.h"
#include "util/json.h"

/* Parses body into *root (a new reference).  what names the input in messages. */
static int load_json(json_t **root, const char *body, size_t len, const char *what, tlm_error *err)
{
	json_error_t jerr;
	int oom;

	*root = NULL;
	if (len > TLM_CLIENT_MAX_BODY)
		return tlm_error_set(err, TLM_ETOOBIG, "%s is %zu bytes, over the %zu-byte limit",
				     what, len, TLM_CLIENT_MAX_BODY);
	if (body == NULL || len == 0)
		return tlm_error_set(err, TLM_EINVALID, "%s is empty", what);
	*root = tlm_json_loadb(body, len, 0, &jerr, &oom);
	if (oom)
		return tlm_error_set(err, TLM_ERROR, "%s: out of memory", what);
	if (*root == NULL)
		return tlm_error_set(err, TLM_EINVALID, "%s is not valid JSON (line %d, column %d)",
				     what, jerr.line, jerr.column);
	return 0;
}

/* The body the transport parsed already (pre: an object or array), or
 * load_json's parse of the raw text, with its message on failure: a reply
 * is parsed once however many layers read it. */
static int load_pre(json_t **root, const json_t *pre, const char *body, size_t len,
		    const char *what, tlm_error *err)
{
	if (pre != NULL && (json_is_object(pre) || json_is_array(pre))) {
		*root = json_incref((json_t *)pre);
		return 0;
	}
	return load_json(root, body, len, what, err);
}

static const char *json_type_word(const json_t *v)
{
	switch (json_typeof(v)) {
	case JSON_OBJECT: return "an object";
	case JSON_ARRAY: return "an array";
	case JSON_STRING: return "a string";
	case JSON_INTEGER: return "an integer";
	case JSON_REAL: return "a number";
	case JSON_TRUE:
	case JSON_FALSE: return "a boolean";
	default: return "null";
	}
}

/* Copies obj[key] into *out when it is a string; absent or null leaves NULL.
 * A value of another type is refused: a number where an id belongs means we
 * misread the reply, and guessing would record the wrong resource. */
static int take_string(char **out, const json_t *obj, const char *kind, const char *key,
		       tlm_error *err)
{
	const json_t *v = json_object_get(obj, key);

	*out = NULL;
	if (v == NULL || json_is_null(v))
		return 0;
	if (!json_is_string(v))
		return tlm_error_set(err, TLM_EINVALID, "%s \"%s\" is %s, not a string", kind, key,
				     json_type_word(v));
	*out = strdup(json_string_value(v));
	if (*out == NULL)
		return tlm_error_set(err, TLM_ERROR, "out of memory");
	return 0;
}

void tlm_client__resource_clear(tlm_client_resource *r)
{
	if (r == NULL)
		return;
	free(r->id);
	free(r->name);
	free(r->status);
	free(r->team_id);
	json_decref(r->object);
	memset(r, 0, sizeof(*r));
}

/* Fills out from a resource object.  The id may be missing only when the caller
 * has another source for it (the agent create reply's top-level "id"). */
static int fill_resource(tlm_client_resource *out, const char *kind, json_t *obj, int need_id,
			 tlm_error *err)
{
	int rc;

	memset(out, 0, sizeof(*out));
	if (!json_is_object(obj)) {
		rc = tlm_error_set(err, TLM_EINVALID, "%s is %s, not an object", kind,
				   obj ? json_type_word(obj) : "missing");
		goto done;
	}
	if ((rc = take_string(&out->id, obj, kind, "id", err)) != 0)
		goto done;
	if (out->id != NULL && out->id[0] == '\0') {
		rc = tlm_error_set(err, TLM_EINVALID, "%s \"id\" is empty", kind);
		goto done;
	}
	if (need_id && out->id == NULL) {
		rc = tlm_error_set(err, TLM_EINVALID, "%s has no \"id\"", kind);
		goto done;
	}
	if (strcmp(kind, "task") != 0 &&
	    (rc = take_string(&out->name, obj, kind, "name", err)) != 0)
		goto done;
	if (strcmp(kind, "team") != 0 &&
	    (rc = take_string(&out->status, obj, kind, "status", err)) != 0)
		goto done;
	if (strcmp(kind, "task") == 0 &&
	    (rc = take_string(&out->team_id, obj, kind, "teamId", err)) != 0)
		goto done;
	json_incref(obj);
	out->object = obj;
done:
	if (rc != 0)
		tlm_client__resource_clear(out);
	return rc;
}

int tlm_client__resource_from_json(tlm_client_resource *out, const char *kind, json_t *obj,
				   tlm_error *err)
{
	return fill_resource(out, kind, obj, 1, err);
}

/* {"<key>":X} gives X; a bare resource (no key, or v1's stray "<key>":null)
 * gives root itself.  Anything else under key is a shape we do not know. */
static int unwrap(json_t **inner, json_t *root, const char *key, tlm_error *err)
{
	json_t *v;

	*inner = NULL;
	if (!json_is_object(root))
		return tlm_error_set(err, TLM_EINVALID, "%s reply is %s, not an object", key,
				     json_type_word(root));
	v = json_object_get(root, key);
	if (v == NULL || json_is_null(v))
		*inner = root;
	else if (json_is_object(v))
		*inner = v;
	else
		return tlm_error_set(err, TLM_EINVALID, "%s reply has \"%s\" as %s, not an object",
				     key, key, json_type_word(v));
	return 0;
}

static int parse_wrapped(tlm_client_resource *out, const char *kind, const json_t *pre,
			 const char *body, size_t len, tlm_error *err)
{
	json_t *root = NULL, *inner;
	int rc;

	memset(out, 0, sizeof(*out));
	if ((rc = load_pre(&root, pre, body, len, "reply", err)) != 0)
		goto done;
	if ((rc = unwrap(&inner, root, kind, err)) != 0)
		goto done;
	rc = fill_resource(out, kind, inner, 1, err);
done:
	json_decref(root);
	return rc;
}

static int agent_create(tlm_client_resource *out, const json_t *pre, const char *body, size_t len,
			tlm_error *err)
{
	json_t *root = NULL, *inner;
	char *top_id = NULL;
	int rc;

	memset(out, 0, sizeof(*out));
	if ((rc = load_pre(&root, pre, body, len, "reply", err)) != 0)
		goto done;
	if ((rc = unwrap(&inner, root, "agent", err)) != 0)
		goto done;
	if (inner != root && (rc = take_string(&top_id, root, "agent reply", "id", err)) != 0)
		goto done;
	if ((rc = fill_resource(out, "agent", inner, top_id == NULL, err)) != 0)
		goto done;
	if (top_id != NULL && top_id[0] == '\0') {
		rc = tlm_error_set(err, TLM_EINVALID, "agent reply \"id\" is empty");
		goto done;
	}
	if (top_id != NULL && out->id == NULL) {
		out->id = top_id;
		top_id = NULL;
	} else if (top_id != NULL && strcmp(top_id, out->id) != 0) {
		/* Two ids for one create: recording either could orphan the other. */
		rc = tlm_error_set(err, TLM_EINVALID,
				   "agent reply has two different ids (top level and agent)");
		goto done;
	}
done:
	if (rc != 0)
		tlm_client__resource_clear(out);
	free(top_id);
	json_decref(root);
	return rc;
}

int tlm_client__parse_agent_create(tlm_client_resource *out, const char *body, size_t len,
				   tlm_error *err)
{
	return agent_create(out, NULL, body, len, err);
}

int tlm_client__parse_agent(tlm_client_resource *out, const char *body, size_t len, tlm_error *err)
{
	return parse_wrapped(out, "agent", NULL, body, len, err);
}

int tlm_client__parse_team(tlm_client_resource *out, const char *body, size_t len, tlm_error *err)
{
	return parse_wrapped(out, "team", NULL, body, len, err);
}

int tlm_client__parse_task(tlm_client_resource *out, const char *body, size_t len, tlm_error *err)
{
	return parse_wrapped(out, "task", NULL, body, len, err);
}

int tlm_client__res_agent_create(tlm_client_resource *out, const tlm_client_result *res,
				 tlm_error *err)
{
	return agent_create(out, res->body, res->raw, res->raw_len, err);
}

int tlm_client__res_resource(tlm_client_resource *out, const char *kind,
			     const tlm_client_result *res, tlm_error *err)
{
	return parse_wrapped(out, kind, res->body, res->raw, res->raw_len, err);
}

int tlm_client__res_task_id(const tlm_client_result *res, char **id, tlm_error *err)
{
	tlm_client_resource k = TLM_CLIENT_RESOURCE_INIT;
	int rc = tlm_client__task_reply_id_fast(res->raw, res->raw_len, id);

	if (rc == TLM_FAST_FOUND)
		return 0;
	if (rc == TLM_FAST_NOMEM)
		return tlm_error_set(err, TLM_ERROR, "out of memory");
	if ((rc = parse_wrapped(&k, "task", res->body, res->raw, res->raw_len, err)) == 0) {
		*id = k.id;
		k.id = NULL;
	}
	tlm_client__resource_clear(&k);
	return rc;
}

/* ---- paging ------------------------------------------------------------ */

void tlm_client__pager_init(tlm_client_pager *p, const char *key, size_t limit)
{
	memset(p, 0, sizeof(*p));
	p->key = key;
	p->limit = limit ? limit : 100;
}

void tlm_client__pager_clear(tlm_client_pager *p)
{
	if (p == NULL)
		return;
	json_decref(p->first);
	p->first = NULL;
	p->done = 1;
}

/* Reads an optional non-negative integer; null counts as absent. */
static int take_count(json_int_t *out, int *present, const json_t *root, const char *key,
		      tlm_error *err)
{
	const json_t *v = json_object_get(root, key);

	*present = 0;
	*out = 0;
	if (v == NULL || json_is_null(v))
		return 0;
	if (!json_is_integer(v) || json_integer_value(v) < 0)
		return tlm_error_set(err, TLM_EINVALID, "list reply \"%s\" is not a count", key);
	*out = json_integer_value(v);
	*present = 1;
	return 0;
}

/* Is item the first item of the first page again?  By id when both have one
 * (other fields may change between two requests); otherwise by content, so
 * that a server ignoring offset whose items have no id is caught too (found
 * by fuzzing: it was paged 100,000 times, tests/fuzz/corpus/client). */
static int same_item(const json_t *item, const json_t *first)
{
	const char *a = json_string_value(json_object_get(item, "id"));
	const char *b = json_string_value(json_object_get(first, "id"));

	if (a != NULL && b != NULL)
		return strcmp(a, b) == 0;
	return json_equal(item, first);
}

static int pager_feed(tlm_client_pager *p, const json_t *pre, const char *body, size_t len,
		      json_t **items, int *more, tlm_error *err);

int tlm_client__pager_feed(tlm_client_pager *p, const char *body, size_t len, json_t **items,
			   int *more, tlm_error *err)
{
	return pager_feed(p, NULL, body, len, items, more, err);
}

int tlm_client__pager_feed_res(tlm_client_pager *p, const tlm_client_result *res, json_t **items,
			       int *more, tlm_error *err)
{
	return pager_feed(p, res->body, res->raw, res->raw_len, items, more, err);
}

static int pager_feed(tlm_client_pager *p, const json_t *pre, const char *body, size_t len,
		      json_t **items, int *more, tlm_error *err)
{
	json_t *root = NULL, *arr;
	json_int_t total, limit, offset;
	int has_total, has_limit, has_offset, rc;
	size_t n, eff_limit;
	json_t *first;

	*items = NULL;
	*more = 0;
	if (p->done)
		return tlm_error_set(err, TLM_EINVALID, "paging over \"%s\" has already ended",
				     p->key);
	if ((rc = load_pre(&root, pre, body, len, "list reply", err)) != 0)
		goto done;
	if (!json_is_object(root)) {
		rc = tlm_error_set(err, TLM_EINVALID, "list reply is %s, not an object",
				   json_type_word(root));
		goto done;
	}
	arr = json_object_get(root, p->key);
	if (!json_is_array(arr)) {
		rc = tlm_error_set(err, TLM_EINVALID, "list reply has no \"%s\" array", p->key);
		goto done;
	}
	if ((rc = take_count(&total, &has_total, root, "total", err)) != 0 ||
	    (rc = take_count(&limit, &has_limit, root, "limit", err)) != 0 ||
	    (rc = take_count(&offset, &has_offset, root, "offset", err)) != 0)
		goto done;
	(void)offset;
	(void)has_offset;
	n = json_array_size(arr);
	first = n ? json_array_get(arr, 0) : NULL;

	/* A server that ignores offset (v1) sends page one again: without this
	 * check a full first page would be fetched forever. */
	if (p->pages > 0 && first != NULL && p->first != NULL && same_item(first, p->first)) {
		*items = json_array();
		if (*items == NULL)
			rc = tlm_error_set(err, TLM_ERROR, "out of memory");
		p->pages++;
		p->done = 1;
		goto done;
	}
	if (p->pages == 0 && first != NULL)
		p->first = json_incref(first);
	p->pages++;
	p->offset += n;
	if (n == 0)
		*more = 0; /* whatever total says: an empty page can only repeat */
	else if (has_total)
		*more = (json_int_t)p->offset < total;
	else {
		/* v1: no total.  A page longer than asked means the server ignored
		 * limit and sent everything. */
		eff_limit = (has_limit && limit > 0) ? (size_t)limit : p->limit;
		*more = n == eff_limit;
	}
	if (*more && p->pages >= TLM_CLIENT_MAX_PAGES) {
		*more = 0;
		rc = tlm_error_set(err, TLM_ETOOBIG, "list of \"%s\" exceeds %d pages", p->key,
				   TLM_CLIENT_MAX_PAGES);
		goto done;
	}
	json_incref(arr);
	*items = arr;
done:
	if (rc != 0 || !*more)
		p->done = 1;
	if (rc != 0) {
		json_decref(*items);
		*items = NULL;
		*more = 0;
	}
	json_decref(root);
	return rc;
}

/* ---- error bodies ------------------------------------------------------ */

/* Appends src[0..n) to out, escaping everything outside printable ASCII, and
 * "..." when cut; out always ends up NUL-terminated. */
static void escape_into(char *out, size_t cap, const char *src, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	size_t o = 0, i, take = n > TLM_CLIENT_ERRTEXT_MAX ? TLM_CLIENT_ERRTEXT_MAX : n;
	char tmp[5];
	size_t tl;

	for (i = 0; i < take; i++) {
		unsigned char c = (unsigned char)src[i];

		if (c == '\n')
			memcpy(tmp, "\\n", tl = 2);
		else if (c == '\r')
			memcpy(tmp, "\\r", tl = 2);
		else if (c == '\t')
			memcpy(tmp, "\\t", tl = 2);
		else if (c == '\\')
			memcpy(tmp, "\\\\", tl = 2);
		else if (c < 0x20 || c >= 0x7f) {
			tmp[0] = '\\';
			tmp[1] = 'x';
			tmp[2] = hex[c >> 4];
			tmp[3] = hex[c & 15];
			tl = 4;
		} else {
			tmp[0] = (char)c;
			tl = 1;
		}
		if (o + tl + 1 > cap)
			break;
		memcpy(out + o, tmp, tl);
		o += tl;
	}
	if (i < n && o + 4 <= cap) {
		memcpy(out + o, "...", 3);
		o += 3;
	}
	out[o] = '\0';
}

void tlm_client__error_text(char *out, size_t cap, const char *body, size_t len)
{
	json_t *root = NULL, *v = NULL;
	const char *text = body;
	size_t n = len;

	if (cap == 0)
		return;
	if (body == NULL || len == 0) {
		snprintf(out, cap, "(empty body)");
		return;
	}
	if (len <= TLM_CLIENT_MAX_BODY)
		root = json_loadb(body, len, JSON_ALLOW_NUL, NULL);
	if (json_is_object(root)) {
		v = json_object_get(root, "error");
		if (!json_is_string(v) || json_string_length(v) == 0)
			v = json_object_get(root, "detail");
		if (json_is_string(v) && json_string_length(v) > 0) {
			text = json_string_value(v);
			n = json_string_length(v);
		}
	}
	escape_into(out, cap, text, n);
	json_decref(root);
}

long tlm_client__parse_retry_after(const char *value)
{
	long s = 0;
	const char *p = value;

	if (p == NULL)
		return -1;
	while (*p == ' ' || *p == '\t')
		p++;
	if (*p < '0' || *p > '9')
		return -1;
	for (; *p >= '0' && *p <= '9'; p++) {
		if (s < 86400)
			s = s * 10 + (*p - '0');
	}
	while (*p == ' ' || *p == '\t')
		p++;
	if (*p != '\0')
		return -1;
	return s > 86400 ? 86400 : s;
}

long tlm_client__body_retry_after(const char *body, size_t len)
{
	json_t *root = NULL;
	const json_t *v;
	long s = -1;

	if (body == NULL || len == 0 || len > TLM_CLIENT_MAX_BODY)
		return -1;
	root = json_loadb(body, len, 0, NULL);
	v = json_object_get(root, "retry_after_seconds");
	if (json_is_integer(v) && json_integer_value(v) >= 0)
		s = json_integer_value(v) > 86400 ? 86400 : (long)json_integer_value(v);
	json_decref(root);
	return s;
}

int tlm_client__http_code(int http_status)
{
	if (http_status >= 200 && http_status < 300)
		return 0;
	switch (http_status) {
	case 404: return TLM_ENOTFOUND;
	case 409: return TLM_ECONFLICT;
	case 429: return TLM_ERATELIMIT;
	case 408:
	case 504: return TLM_ETIMEOUT;
	case 413: return TLM_ETOOBIG;
	default: break;
	}
	if (http_status >= 400 && http_status < 500)
		return TLM_EINVALID;
	return TLM_ERROR;
}

/* ---- task status and events --------------------------------------------- */

tlm_task_state tlm_client__task_state(const char *status)
{
	static const char *const active[] = { "pending", "running", "blocked", "in_progress" };
	static const char *const failed[] = { "failed", "cancelled", "canceled", "error",
					      "timed_out" };
	size_t i;

	if (status == NULL)
		return TLM_TASK_UNKNOWN;
	/* Case-insensitive: other emitters are not bound by upstream's spelling,
	 * and missing a "COMPLETED" would hang a run. */
	if (strcasecmp(status, "completed") == 0)
		return TLM_TASK_COMPLETED;
	for (i = 0; i < sizeof(failed) / sizeof(failed[0]); i++)
		if (strcasecmp(status, failed[i]) == 0)
			return TLM_TASK_FAILED;
	for (i = 0; i < sizeof(active) / sizeof(active[0]); i++)
		if (strcasecmp(status, active[i]) == 0)
			return TLM_TASK_ACTIVE;
	return TLM_TASK_UNKNOWN;
}

int tlm_client__status_is_terminal(const char *status)
{
	tlm_task_state s = tlm_client__task_state(status);

	return s == TLM_TASK_COMPLETED || s == TLM_TASK_FAILED;
}

void tlm_client__event_clear(tlm_client_event *ev)
{
	if (ev == NULL)
		return;
	free(ev->team_id);
	free(ev->task_id);
	free(ev->status);
	memset(ev, 0, sizeof(*ev));
}

/* A non-empty string at obj[key], else NULL.  Wrong types are skipped, not
 * errors: the next source in the precedence list may still answer. */
static const char *status_at(const json_t *obj, const char *key)
{
	const json_t *v = json_object_get(obj, key);

	return (json_is_string(v) && json_string_length(v) > 0) ? json_string_value(v) : NULL;
}

const char *tlm_client__event_status_json(const json_t *root)
{
	const char *s;

	if (!json_is_object(root))
		return NULL;
	if ((s = status_at(json_object_get(root, "task"), "status")) != NULL)
		return s;
	if ((s = status_at(root, "status")) != NULL)
		return s;
	if ((s = status_at(json_object_get(root, "data"), "status")) != NULL)
		return s;
	return status_at(root, "newStatus");
}

static const char *verb_status(const char *verb)
{
	if (strcmp(verb, "completed") == 0)
		return "completed";
	if (strcmp(verb, "failed") == 0)
		return "failed";
	if (strcmp(verb, "started") == 0)
		return "running";
	return NULL;
}

int tlm_client__parse_event(tlm_client_event *out, const char *subject, const char *payload,
			    size_t len, tlm_error *err)
{
	const char *tok[6], *p, *status;
	size_t toklen[6], ntok = 0;
	char verb[32], *fast = NULL;
	json_t *root = NULL;
	int rc = 0, oom;

	memset(out, 0, sizeof(*out));
	if (subject == NULL)
		return tlm_error_set(err, TLM_ENOTFOUND, "no subject");
	/* hi.tasks.<team>.<task>.<verb>: exactly five non-empty tokens. */
	for (p = subject; ntok < 6;) {
		const char *dot = strchr(p, '.');

		tok[ntok] = p;
		toklen[ntok] = dot ? (size_t)(dot - p) : strlen(p);
		ntok++;
		if (dot == NULL)
			break;
		p = dot + 1;
	}
	if (ntok != 5 || toklen[0] != 2 || strncmp(tok[0], "hi", 2) != 0 || toklen[1] != 5 ||
	    strncmp(tok[1], "tasks", 5) != 0 || toklen[2] == 0 || toklen[3] == 0 ||
	    toklen[4] == 0 || toklen[4] >= sizeof(verb)) {
		rc = tlm_error_set(err, TLM_ENOTFOUND, "not a task event subject");
		goto done;
	}
	memcpy(verb, tok[4], toklen[4]);
	verb[toklen[4]] = '\0';
	if (len > TLM_CLIENT_MAX_BODY) {
		rc = tlm_error_set(err, TLM_ETOOBIG, "event payload is %zu bytes, over the limit",
				   len);
		goto done;
	}
	/* A payload we cannot read still has a verb worth knowing. */
	if (payload != NULL && len > 0 &&
	    tlm_client__event_status_fast(payload, len, &fast) < 0) /* declined, or no memory */
		root = tlm_json_loadb(payload, len, 0, NULL, &oom);
	status = fast != NULL ? fast : tlm_client__event_status_json(root);
	if (status == NULL)
		status = verb_status(verb);
	if (status == NULL) {
		rc = tlm_error_set(err, TLM_ENOTFOUND, "task event \"%s\" carries no status", verb);
		goto done;
	}
	out->team_id = strndup(tok[2], toklen[2]);
	out->task_id = strndup(tok[3], toklen[3]);
	out->status = strdup(status);
	if (out->team_id == NULL || out->task_id == NULL || out->status == NULL) {
		rc = tlm_error_set(err, TLM_ERROR, "out of memory");
		goto done;
	}
	out->state = tlm_client__task_state(out->status);
done:
	if (rc != 0)
		tlm_client__event_clear(out);
	json_decref(root);
	free(fast);
	return rc;
}
