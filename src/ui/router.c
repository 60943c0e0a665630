/* Paths to handlers (docs/ui.md, "Routes"), and the response helpers.
 * Paths arrive undecoded; each segment is percent-decoded on its own and
 * checked, so "%2F" inside a subject stays part of it. */
#include <jansson.h>
#include <microhttpd.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "ui/ui_internal.h"

static int hexval(char c)
{
	return c >= '0' && c <= '9'   ? c - '0'
	       : c >= 'a' && c <= 'f' ? c - 'a' + 10
	       : c >= 'A' && c <= 'F' ? c - 'A' + 10
				      : -1;
}

char *tlm_ui__decode(const char *s, size_t len)
{
	return tlm_ui__decode_max(s, len, TLM_JOURNAL_NAME_MAX);
}

char *tlm_ui__decode_max(const char *s, size_t len, size_t max)
{
	char *out;
	size_t i, n = 0;
	int hi, lo;

	if (len > 3 * max || (out = malloc(len + 1)) == NULL)
		return NULL;
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c == '%') {
			if (i + 2 >= len)
				goto bad;
			if ((hi = hexval(s[i + 1])) < 0 || (lo = hexval(s[i + 2])) < 0)
				goto bad;
			c = (unsigned char)(hi * 16 + lo);
			i += 2;
		}
		if (c < 0x20 || c == 0x7f)
			goto bad;
		out[n++] = (char)c;
	}
	if (n > max)
		goto bad;
	out[n] = '\0';
	return out;
bad:
	free(out);
	return NULL;
}

const char *tlm_ui__query(const tlm_ui_req *r, const char *name, char *buf, size_t size)
{
	const char *v = MHD_lookup_connection_value(r->c, MHD_GET_ARGUMENT_KIND, name);
	char *dec;

	if (v == NULL || (dec = tlm_ui__decode(v, strlen(v))) == NULL)
		return NULL;
	snprintf(buf, size, "%s", dec);
	free(dec);
	return buf;
}

void tlm_ui__take(tlm_ui_resp *res, unsigned status, const char *type, char *text, size_t len)
{
	free(res->body);
	res->status = status;
	res->type = type;
	res->body = text;
	res->len = len;
}

void tlm_ui__json(tlm_ui_resp *res, unsigned status, json_t *doc)
{
	char *text = doc != NULL ? json_dumps(doc, JSON_COMPACT) : NULL;

	json_decref(doc);
	if (text == NULL) {
		tlm_ui__take(res, 500, "application/json", strdup("{\"error\":\"out of memory\"}"),
			     25);
		return;
	}
	tlm_ui__take(res, status, "application/json", text, strlen(text));
}

void tlm_ui__error(tlm_ui_resp *res, unsigned status, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	tlm_ui__json(res, status, json_pack("{s:s, s:i}", "error", msg, "status", (int)status));
}

void tlm_ui__resp_clear(tlm_ui_resp *res)
{
	free(res->body);
	free(res->location);
	free(res->cookie);
	memset(res, 0, sizeof(*res));
}

/* Splits the path into decoded segments; -1 when one is bad. */
static int split(const char *path, char **parts, size_t *n)
{
	const char *p = path, *slash;

	*n = 0;
	if (*p != '/')
		return -1;
	p++;
	while (*p != '\0') {
		slash = strchr(p, '/');
		if (*n == TLM_UI_PARTS_MAX)
			return -1;
		if ((parts[*n] = tlm_ui__decode(p, slash ? (size_t)(slash - p) : strlen(p))) ==
		    NULL)
			return -1;
		(*n)++;
		if (slash == NULL)
			break;
		p = slash + 1;
	}
	return 0;
}

static int method_is(tlm_ui_req *r, tlm_ui_resp *res, const char *allowed)
{
	if (strcmp(r->method, allowed) == 0 ||
	    (strcmp(allowed, "GET") == 0 && strcmp(r->method, "HEAD") == 0))
		return 1;
	res->allow = strcmp(allowed, "GET") == 0 ? "GET, HEAD" : allowed;
	tlm_ui__error(res, 405, "%s is not allowed here; use %s", r->method, allowed);
	return 0;
}

static void asset(tlm_ui_resp *res, const char *text, const char *type)
{
	size_t n = strlen(text);
	char *copy = malloc(n + 1);

	if (copy == NULL) {
		tlm_ui__error(res, 500, "out of memory");
		return;
	}
	memcpy(copy, text, n + 1);
	tlm_ui__take(res, 200, type, copy, n);
	res->cache = 1;
}

/* A small icon, so that browsers asking for one get it (a 404 would be a
 * console error). */
static const char icon_svg[] = "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 16 16\">"
			       "<rect width=\"16\" height=\"16\" rx=\"3\" fill=\"#24292f\"/>"
			       "<path d=\"M4 4h8v2H9v6H7V6H4z\" fill=\"#ffffff\"/></svg>";

static int is(char **parts, size_t n, size_t i, const char *s)
{
	return i < n && strcmp(parts[i], s) == 0;
}

static void route_api(tlm_ui_req *r, tlm_ui_resp *res, char **p, size_t n)
{
	/* p[0] "api", p[1] "runs" */
	if (n == 2 && is(p, n, 1, "runs")) {
		if (method_is(r, res, "GET"))
			tlm_ui__api_runs(r, res);
		return;
	}
	if (n == 2 && is(p, n, 1, "csrf")) {
		if (method_is(r, res, "GET"))
			tlm_ui__json(res, 200, json_pack("{s:s}", "csrf", r->ui->csrf));
		return;
	}
	if (n < 3 || !is(p, n, 1, "runs")) {
		tlm_ui__error(res, 404, "no such route");
		return;
	}
	if (!tlm_ui__run_id_ok(p[2])) {
		tlm_ui__error(res, 400, "a run id is 8 lowercase letters and digits");
		return;
	}
	if (n == 3) {
		if (method_is(r, res, "GET"))
			tlm_ui__api_run(r, res, p[2]);
	} else if (n == 4 && is(p, n, 3, "graph")) {
		if (method_is(r, res, "GET"))
			tlm_ui__api_graph(r, res, p[2]);
	} else if (n == 7 && is(p, n, 3, "tasks") && is(p, n, 6, "output")) {
		if (method_is(r, res, "GET"))
			tlm_ui__api_output(r, res, p[2], p[4], p[5]);
	} else if (n == 4 &&
		   (is(p, n, 3, "cancel") || is(p, n, 3, "teardown") || is(p, n, 3, "resume"))) {
		if (method_is(r, res, "POST") && tlm_ui__check_post(r, res) == 0)
			tlm_ui__action(r, res, p[2], p[3], 0);
	} else {
		tlm_ui__error(res, 404, "no such route");
	}
}

static void route_pages(tlm_ui_req *r, tlm_ui_resp *res, char **p, size_t n)
{
	if (n == 0) {
		if (method_is(r, res, "GET"))
			tlm_ui__page_runs(r, res, 0);
	} else if (n == 2 && is(p, n, 0, "static") &&
		   (is(p, n, 1, "app.css") || is(p, n, 1, "app.js"))) {
		if (method_is(r, res, "GET"))
			asset(res, is(p, n, 1, "app.css") ? tlm__ui_css : tlm__ui_js,
			      is(p, n, 1, "app.css") ? "text/css; charset=utf-8"
						     : "text/javascript; charset=utf-8");
	} else if ((n == 1 && is(p, n, 0, "favicon.ico")) ||
		   (n == 2 && is(p, n, 0, "static") && is(p, n, 1, "icon.svg"))) {
		if (method_is(r, res, "GET"))
			asset(res, icon_svg, "image/svg+xml");
	} else if (n == 1 && is(p, n, 0, "login")) {
		if (strcmp(r->method, "GET") == 0)
			tlm_ui__page_login(r, res, NULL);
		else if (method_is(r, res, "POST") && tlm_ui__check_post(r, res) == 0)
			tlm_ui__page_login(r, res, "");
	} else if (n == 2 && is(p, n, 0, "fragment") && is(p, n, 1, "runs")) {
		if (method_is(r, res, "GET"))
			tlm_ui__page_runs(r, res, 1);
	} else if (n >= 2 && (is(p, n, 0, "runs") || is(p, n, 0, "fragment")) &&
		   !tlm_ui__run_id_ok(is(p, n, 0, "runs") ? p[1]
				      : n > 2             ? p[2]
							  : "")) {
		tlm_ui__html_error(res, 400, "A run id is 8 lowercase letters and digits.");
	} else if (n == 2 && is(p, n, 0, "runs")) {
		if (method_is(r, res, "GET"))
			tlm_ui__page_run(r, res, p[1], 0);
	} else if (n == 3 && is(p, n, 0, "fragment") && is(p, n, 1, "runs")) {
		if (method_is(r, res, "GET"))
			tlm_ui__page_run(r, res, p[2], 1);
	} else if (n == 3 && is(p, n, 0, "runs") &&
		   (is(p, n, 2, "cancel") || is(p, n, 2, "teardown") || is(p, n, 2, "resume"))) {
		if (method_is(r, res, "POST") && tlm_ui__check_post(r, res) == 0)
			tlm_ui__action(r, res, p[1], p[2], 1);
	} else {
		tlm_ui__html_error(res, 404, "No such page.");
	}
}

void tlm_ui__route(tlm_ui_req *r, tlm_ui_resp *res)
{
	char *parts[TLM_UI_PARTS_MAX];
	size_t n = 0, i;

	memset(parts, 0, sizeof(parts));
	if (split(r->path, parts, &n) != 0) {
		tlm_ui__error(res, 400,
			      "the path has a bad segment (escapes, control bytes, length)");
	} else if (n >= 1 && strcmp(parts[0], "api") == 0) {
		route_api(r, res, parts, n);
	} else {
		route_pages(r, res, parts, n);
	}
	for (i = 0; i < TLM_UI_PARTS_MAX; i++)
		free(parts[i]);
}
