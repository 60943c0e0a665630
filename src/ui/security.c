/* Who may use the dashboard (docs/ui.md, "Security"): the Host header must
 * name this server (a DNS rebinding page cannot pass it), an access token
 * when one is set (Authorization: Bearer, or the cookie the login form
 * sets), and every POST must come from this very origin and carry the
 * per-process CSRF token.  Every response gets headers that forbid inline
 * script, framing, sniffing and referrers. */
#include <arpa/inet.h>
#include <microhttpd.h>
#include <openssl/crypto.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "ui/ui_internal.h"
#include "util/secret.h"

#define CSP                                                                                        \
	"default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "                \
	"connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"

int tlm_ui__secret_eq(const char *a, const char *b)
{
	size_t n;

	if (a == NULL || b == NULL || (n = strlen(a)) != strlen(b))
		return 0;
	return CRYPTO_memcmp(a, b, n) == 0;
}

/* Splits "name[:port]" / "[v6][:port]": name into buf (brackets kept),
 * *port the port text or NULL.  -1 when malformed or too long. */
static int split_host(const char *host, char *buf, size_t size, const char **port)
{
	const char *end;
	size_t n;

	if (host[0] == '[') {
		if ((end = strchr(host, ']')) == NULL)
			return -1;
		end++;
		if (*end != '\0' && *end != ':')
			return -1;
	} else {
		end = strchr(host, ':');
		if (end == NULL)
			end = host + strlen(host);
	}
	n = (size_t)(end - host);
	if (n == 0 || n >= size)
		return -1;
	memcpy(buf, host, n);
	buf[n] = '\0';
	*port = *end == ':' ? end + 1 : NULL;
	return 0;
}

static int is_ip_literal(const char *name)
{
	unsigned char tmp[sizeof(struct in6_addr)];
	char v6[64];
	size_t n = strlen(name);

	if (name[0] == '[' && n > 2 && n - 2 < sizeof(v6)) {
		memcpy(v6, name + 1, n - 2);
		v6[n - 2] = '\0';
		return inet_pton(AF_INET6, v6, tmp) == 1;
	}
	return inet_pton(AF_INET, name, tmp) == 1;
}

int tlm_ui__host_ok(const tlm_ui *ui, const char *host)
{
	char name[256], bound[160], ours[16];
	const char *port, *bport;

	if (host == NULL || split_host(host, name, sizeof(name), &port) != 0 ||
	    split_host(ui->bound, bound, sizeof(bound), &bport) != 0)
		return 0;
	snprintf(ours, sizeof(ours), "%u", (unsigned)tlm_addr_port(&ui->addr));
	/* A port, when given, is ours (a browser always sends it but for 80
	 * and 443). */
	if (port != NULL && strcmp(port, ours) != 0)
		return 0;
	if (tlm_addr_host_is_loopback(name))
		return 1;
	if (ui->o.host_name != NULL && strcasecmp(name, ui->o.host_name) == 0)
		return 1;
	if (strcasecmp(name, bound) == 0)
		return 1;
	/* 0.0.0.0 or [::]: any of the machine's addresses, by number. */
	return ui->wildcard && is_ip_literal(name);
}

static const char *header(const tlm_ui_req *r, const char *name)
{
	return MHD_lookup_connection_value(r->c, MHD_HEADER_KIND, name);
}

/* The access token the request shows, if any (a cookie's value is
 * percent-encoded when it is set: pages.c). */
static int token_ok(const tlm_ui_req *r)
{
	const char *auth = header(r, MHD_HTTP_HEADER_AUTHORIZATION);
	const char *cookie = MHD_lookup_connection_value(r->c, MHD_COOKIE_KIND, TLM_UI_COOKIE);
	char *dec;
	int ok = 0;

	if (auth != NULL && strncasecmp(auth, "Bearer ", 7) == 0)
		return tlm_ui__secret_eq(auth + 7, r->ui->token);
	if (cookie != NULL &&
	    (dec = tlm_ui__decode_max(cookie, strlen(cookie), TLM_SECRET_KEY_MAX)) != NULL) {
		ok = tlm_ui__secret_eq(dec, r->ui->token);
		free(dec);
	}
	return ok;
}

int tlm_ui__check(const tlm_ui_req *r, tlm_ui_resp *res)
{
	if (!tlm_ui__host_ok(r->ui, header(r, MHD_HTTP_HEADER_HOST))) {
		tlm_ui__error(res, 421,
			      "this server does not answer to that Host (see docs/ui.md, --host)");
		return -1;
	}
	if (r->ui->token == NULL || strcmp(r->path, "/login") == 0 ||
	    strncmp(r->path, "/static/", 8) == 0 || token_ok(r))
		return 0;
	if (strncmp(r->path, "/api/", 5) == 0 || strcmp(r->method, "GET") != 0)
		tlm_ui__error(res, 401, "an access token is required (Authorization: Bearer)");
	else
		tlm_ui__page_login((tlm_ui_req *)r, res, NULL);
	return -1;
}

/* The request comes from this very origin: Origin is scheme://Host, or,
 * from a browser, "null" with Sec-Fetch-Site: same-origin.  A browser
 * sends "null" for a page whose Referrer-Policy is no-referrer (ours:
 * the Fetch standard's "serializing a request origin"); Sec-Fetch-Site is a
 * header no page can set, so a cross-site request cannot claim it. */
static int origin_ok(const tlm_ui_req *r)
{
	const char *origin = header(r, "Origin"), *host = header(r, MHD_HTTP_HEADER_HOST);
	const char *site = header(r, "Sec-Fetch-Site");
	const char *scheme = r->ui->tls.cert != NULL ? "https://" : "http://";
	size_t n = strlen(scheme);

	if (origin != NULL && strcmp(origin, "null") == 0)
		return site != NULL && strcmp(site, "same-origin") == 0;
	return origin != NULL && host != NULL && strncasecmp(origin, scheme, n) == 0 &&
	       strcasecmp(origin + n, host) == 0;
}

int tlm_ui__check_post(const tlm_ui_req *r, tlm_ui_resp *res)
{
	const char *h = header(r, "X-CSRF-Token");
	char *field = NULL;
	int ok;

	if (!origin_ok(r)) {
		tlm_ui__error(res, 403, "the Origin header must be this server's own origin");
		return -1;
	}
	if (h == NULL)
		field = tlm_ui__form_field(r->body, "csrf");
	ok = tlm_ui__secret_eq(h != NULL ? h : field != NULL ? field : "", r->ui->csrf);
	free(field);
	if (!ok) {
		tlm_ui__error(res, 403, "missing or wrong CSRF token (reload the page)");
		return -1;
	}
	return 0;
}

char *tlm_ui__form_field(const char *body, const char *name)
{
	size_t n = strlen(name);
	const char *p = body, *end;

	while (p != NULL && *p != '\0') {
		end = strchr(p, '&');
		if (strncmp(p, name, n) == 0 && p[n] == '=') {
			const char *v = p + n + 1;
			size_t len = end != NULL ? (size_t)(end - v) : strlen(v);
			char *copy = strndup(v, len), *dec;
			size_t i;

			if (copy == NULL)
				return NULL;
			for (i = 0; copy[i] != '\0'; i++) /* forms encode spaces as '+' */
				if (copy[i] == '+')
					copy[i] = ' ';
			dec = tlm_ui__decode_max(copy, strlen(copy), TLM_SECRET_KEY_MAX);
			free(copy);
			return dec;
		}
		p = end != NULL ? end + 1 : NULL;
	}
	return NULL;
}

void tlm_ui__headers(void *mhd_response, const tlm_ui_resp *res)
{
	struct MHD_Response *m = mhd_response;

	if (res->type != NULL)
		MHD_add_response_header(m, MHD_HTTP_HEADER_CONTENT_TYPE, res->type);
	MHD_add_response_header(m, "Content-Security-Policy", CSP);
	MHD_add_response_header(m, "X-Content-Type-Options", "nosniff");
	MHD_add_response_header(m, "X-Frame-Options", "DENY");
	MHD_add_response_header(m, "Referrer-Policy", "no-referrer");
	MHD_add_response_header(m, "Cross-Origin-Opener-Policy", "same-origin");
	MHD_add_response_header(m, "Cross-Origin-Resource-Policy", "same-origin");
	MHD_add_response_header(m, MHD_HTTP_HEADER_CACHE_CONTROL,
				res->cache ? "no-cache" : "no-store");
	if (res->location != NULL)
		MHD_add_response_header(m, MHD_HTTP_HEADER_LOCATION, res->location);
	if (res->cookie != NULL)
		MHD_add_response_header(m, MHD_HTTP_HEADER_SET_COOKIE, res->cookie);
	if (res->allow != NULL)
		MHD_add_response_header(m, MHD_HTTP_HEADER_ALLOW, res->allow);
}
