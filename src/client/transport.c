/* The libcurl engine of the control-plane client: one multi handle driven by
 * the caller's thread, our own FIFO above max_in_flight, and retries kept in a
 * list sorted by due time so that a backoff never blocks other transfers.
 * At the end, the synchronous helpers built on it: creating an agent exactly
 * once despite lost replies, and walking a paged list.
 * Verdicts come from tlm_client__classify(); a create with an unknown outcome
 * goes back to the caller rather than out again (docs/lessons.md #3). */
#include <assert.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>
#include <curl/curl.h>

#include "client/client_internal.h"
#include "client/sync.h"
#include "util/crashpoint.h"
#include "util/json.h"
#include "util/opts.h"
#include "telemachy/client.h"
#include "telemachy/metrics.h"

typedef struct tlm_req tlm_req;

struct tlm_req {
	tlm_client *c;
	CURL *easy;
	struct curl_slist *hdrs;
	char method[8];
	char *path;
	char *url;
	char *body;        /* NULL: no body */
	unsigned sendings; /* of this transfer, by libcurl (once_only) */
	tlm_client_kind kind;
	tlm_client_cb cb;
	void *ctx;
	tlm_backoff bo;
	unsigned attempts;
	char *buf; /* reply, capped at TLM_CLIENT_MAX_BODY */
	size_t len, cap;
	int too_big;
	int raw_reply;                /* the caller reads the reply's text: not parsed here */
	long retry_after;             /* from the header, -1 when absent */
	char errbuf[CURL_ERROR_SIZE]; /* curl's detail of a failed transfer (TLS) */
	uint64_t due_ms;              /* when sleeping before a retry, or a timer's time */
	tlm_client_timer_cb timer;    /* non-NULL: a timer (tlm_client_after), no request */
	uint64_t stamp;               /* opts.stamp when queued: what the gate is asked with */
	tlm_req *next;
};

struct tlm_client {
	CURLM *multi;
	char *base_url;
	char *auth;        /* "Authorization: Bearer ..." or NULL */
	char *owner;       /* "X-Telemachy-Owner: RUN/EPOCH" or NULL */
	char *traceparent; /* "traceparent: 00-..." or NULL */
	char *ca_file;
	char *cert_file, *key_file; /* the client certificate (mTLS), or NULL */
	char host[256];             /* base_url's host, for messages */
	tlm_client_opts opts;
	tlm_backoff_opts bo_opts;
	tlm_req *wait_head, *wait_tail; /* FIFO, not yet started */
	tlm_req *sleeping;              /* sorted by due_ms */
	tlm_req *active;                /* on the wire (for tlm_client_free) */
	unsigned in_flight;
	unsigned waiting;       /* requests in the wait_head list */
	uint64_t delivered;     /* callbacks made so far */
	double tokens;          /* client-side rate limit (opts.rate_rps > 0) */
	uint64_t tokens_ms;     /* when tokens was last refilled */
	tlm_error closed;       /* code != 0: the gate refused; nothing is sent any more */
	int cancelling;         /* tlm_client_cancel_all is telling callbacks: no new requests */
	tlm_client_reach reach; /* does the control plane answer (tlm_client_reach_get) */
	char date_seen[48];     /* the Date header reach.server_date was read from */
};

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static char *dupstr(const char *s)
{
	size_t n = strlen(s) + 1;
	char *p = malloc(n);

	if (p != NULL)
		memcpy(p, s, n);
	return p;
}

static int host_is_loopback(const char *host)
{
	return strcasecmp(host, "localhost") == 0 || strncmp(host, "127.", 4) == 0 ||
	       strcmp(host, "[::1]") == 0 || strcmp(host, "::1") == 0;
}

/* Scheme and TLS policy.  The URL itself is never quoted back in full (it may
 * carry credentials in its userinfo); the host is. */
static int check_url(const char *url, int require_tls, char *host_out, size_t host_size, int *https,
		     tlm_error *err)
{
	CURLU *u = curl_url();
	char *scheme = NULL, *host = NULL;
	int rc = 0;

	if (u == NULL)
		return tlm_error_set(err, TLM_ERROR, "out of memory");
	if (curl_url_set(u, CURLUPART_URL, url, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
	    curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK) {
		rc = tlm_error_set(err, TLM_EINVALID, "client: base_url is not a valid URL");
		goto done;
	}
	/* Paths are appended to the base: a query or a fragment there would
	 * swallow them (and often holds a key, which is not repeated here). */
	if (strpbrk(url, "?#") != NULL) {
		rc = tlm_error_set(err, TLM_EINVALID,
				   "client: the control plane URL must not have a query or a "
				   "fragment (give the key in AGAMEMNON_API_KEY or _FILE)");
		goto done;
	}
	snprintf(host_out, host_size, "%s", host);
	*https = strcasecmp(scheme, "https") == 0;
	if (*https)
		goto done;
	if (strcasecmp(scheme, "http") != 0) {
		rc = tlm_error_set(err, TLM_EINVALID,
				   "client: base_url scheme \"%s\" is not http or https", scheme);
		goto done;
	}
	if (require_tls && !host_is_loopback(host))
		rc = tlm_error_set(err, TLM_EINVALID,
				   "client: plain http:// to non-loopback host \"%s\" refused "
				   "(require_tls): use https:// or turn require_tls off",
				   host);
done:
	curl_free(scheme);
	curl_free(host);
	curl_url_cleanup(u);
	return rc;
}

/* A file the TLS layer reads on every connection: an unreadable one is a
 * bad setting, told now rather than as a failed handshake.  The message
 * names the file, never its content. */
static int check_readable(const char *what, const char *path, tlm_error *err)
{
	if (path == NULL || access(path, R_OK) == 0)
		return 0;
	return tlm_error_set(err, TLM_EINVALID, "client: %s %s: %s", what, path, strerror(errno));
}

/* The TLS files: a certificate without its key (or the reverse) is a
 * mistake, never "no client certificate".  Only https:// reads them, so
 * only then must they be readable (a CA file in the environment does not
 * stop a run on the in-process, plain loopback, control plane). */
static int check_tls_files(const tlm_client_opts *opts, int https, tlm_error *err)
{
	int rc;

	if ((opts->cert_file == NULL) != (opts->key_file == NULL))
		return tlm_error_set(err, TLM_EINVALID,
				     "client: a client certificate needs its key and the key its "
				     "certificate (both PEM files, or neither)");
	if (!https)
		return 0;
	if ((rc = check_readable("CA file", opts->ca_file, err)) != 0 ||
	    (rc = check_readable("client certificate", opts->cert_file, err)) != 0)
		return rc;
	return check_readable("client key", opts->key_file, err);
}

static int copy_opt(char **dst, const char *src)
{
	return src == NULL || (*dst = dupstr(src)) != NULL ? 0 : -1;
}

int tlm_client_new(tlm_client **out, const tlm_client_opts *opts, tlm_error *err)
{
	tlm_client *c = NULL;
	size_t n;
	int rc = 0, https = 0;

	assert(out != NULL && opts != NULL);
	*out = NULL;
	if ((rc = tlm_opts_version_check(opts->version, TLM_CLIENT_OPTS_VERSION, "client",
					 "TLM_CLIENT_OPTS_INIT", err)) != 0)
		return rc;
	if (opts->base_url == NULL || opts->base_url[0] == '\0')
		return tlm_error_set(err, TLM_EINVALID, "client: base_url is required");
	if (opts->max_in_flight == 0)
		return tlm_error_set(err, TLM_EINVALID, "client: max_in_flight must be at least 1");
	if (opts->api_key != NULL && strpbrk(opts->api_key, "\r\n") != NULL)
		return tlm_error_set(err, TLM_EINVALID,
				     "client: the API key contains a line break");
	c = calloc(1, sizeof(*c));
	if (c == NULL)
		return tlm_error_set(err, TLM_ERROR, "out of memory");
	rc = check_url(opts->base_url, opts->require_tls, c->host, sizeof(c->host), &https, err);
	if (rc == 0)
		rc = check_tls_files(opts, https, err);
	if (rc != 0)
		goto done;
	c->opts = *opts;
	c->base_url = dupstr(opts->base_url);
	c->multi = curl_multi_init();
	if (c->base_url == NULL || c->multi == NULL) {
		rc = tlm_error_set(err, TLM_ERROR, "out of memory");
		goto done;
	}
	n = strlen(c->base_url);
	while (n > 0 && c->base_url[n - 1] == '/')
		c->base_url[--n] = '\0';
	if (opts->api_key != NULL) {
		n = strlen(opts->api_key) + sizeof("Authorization: Bearer ");
		c->auth = malloc(n);
		if (c->auth == NULL) {
			rc = tlm_error_set(err, TLM_ERROR, "out of memory");
			goto done;
		}
		snprintf(c->auth, n, "Authorization: Bearer %s", opts->api_key);
	}
	/* Only a well-formed value becomes a header: it goes on the wire
	 * as it is, so a CR or LF in it must never reach curl. */
	if (opts->traceparent != NULL) {
		char buf[128];

		if (strlen(opts->traceparent) != 55 ||
		    strspn(opts->traceparent, "0123456789abcdef-") != 55) {
			rc = tlm_error_set(err, TLM_EINVALID, "client: malformed traceparent");
			goto done;
		}
		snprintf(buf, sizeof(buf), "traceparent: %s", opts->traceparent);
		if ((c->traceparent = dupstr(buf)) == NULL) {
			rc = tlm_error_set(err, TLM_ERROR, "out of memory");
			goto done;
		}
	}
	if (copy_opt(&c->ca_file, opts->ca_file) != 0 ||
	    copy_opt(&c->cert_file, opts->cert_file) != 0 ||
	    copy_opt(&c->key_file, opts->key_file) != 0) {
		rc = tlm_error_set(err, TLM_ERROR, "out of memory");
		goto done;
	}
	/* The copies are ours; do not keep the caller's pointers around. */
	c->opts.base_url = c->base_url;
	c->opts.api_key = NULL;
	c->opts.ca_file = c->ca_file;
	c->opts.cert_file = c->cert_file;
	c->opts.key_file = c->key_file;
	c->opts.traceparent = NULL; /* c->traceparent is the header */
	c->bo_opts.base_ms = opts->retry_base_ms;
	c->bo_opts.cap_ms = opts->retry_cap_ms;
	c->bo_opts.max_total_ms = opts->retry_max_total_ms;
	c->bo_opts.max_attempts = opts->retry_max_attempts == 0 ? 1 : opts->retry_max_attempts;
	/* Upstream has a listen backlog of 5 and 8 workers (docs/contract.md §1): the connection
	 * count follows max_in_flight, never more. */
	curl_multi_setopt(
		c->multi, CURLMOPT_MAX_TOTAL_CONNECTIONS,
		(long)(opts->max_connections != 0 && opts->max_connections < opts->max_in_flight
			       ? opts->max_connections
			       : opts->max_in_flight));
	if (opts->rate_rps < 0 || isnan(opts->rate_rps)) {
		rc = tlm_error_set(err, TLM_EINVALID, "client: rate_rps must not be negative");
		goto done;
	}
	if (c->opts.rate_burst == 0)
		c->opts.rate_burst = opts->rate_rps < 1 ? 1 : (unsigned)opts->rate_rps;
	c->tokens = c->opts.rate_burst;
	c->tokens_ms = now_ms();
	*out = c;
	c = NULL;
done:
	tlm_client_free(c);
	return rc;
}

static void req_reset_transfer(tlm_req *r)
{
	if (r->easy != NULL) {
		curl_multi_remove_handle(r->c->multi, r->easy);
		curl_easy_cleanup(r->easy);
		r->easy = NULL;
	}
	curl_slist_free_all(r->hdrs);
	r->hdrs = NULL;
	free(r->buf);
	r->buf = NULL;
	r->len = r->cap = 0;
	r->too_big = 0;
	r->retry_after = -1;
	r->sendings = 0;
}

static void req_free(tlm_req *r)
{
	if (r == NULL)
		return;
	req_reset_transfer(r);
	free(r->path);
	free(r->url);
	free(r->body);
	free(r);
}

static void deliver(tlm_req *r, tlm_client_outcome outcome, int rc, long status, tlm_error *err);

/* Tells every request of list that it is dropped, then frees it. */
static void cancel_list(tlm_req *r)
{
	tlm_error err = TLM_ERROR_INIT;

	while (r != NULL) {
		tlm_req *next = r->next;
		tlm_client_timer_cb timer = r->timer;
		void *ctx = r->ctx;

		r->next = NULL;
		if (timer != NULL) {
			req_free(r);
			timer(ctx, 1);
		} else {
			tlm_error_set(&err, TLM_ECANCELLED, "%s %s: dropped: the client stopped",
				      r->method, r->path);
			deliver(r, TLM_CLIENT_CANCELLED, TLM_ECANCELLED, 0, &err);
		}
		r = next;
	}
}

void tlm_client_cancel_all(tlm_client *c)
{
	tlm_req *active, *waiting, *sleeping;

	if (c == NULL)
		return;
	c->cancelling = 1;
	/* Detached first: a callback must find no list to walk or add to. */
	active = c->active;
	waiting = c->wait_head;
	sleeping = c->sleeping;
	c->active = c->wait_head = c->wait_tail = c->sleeping = NULL;
	c->in_flight = c->waiting = 0;
	cancel_list(active);
	cancel_list(waiting);
	cancel_list(sleeping);
	c->cancelling = 0;
}

void tlm_client_free(tlm_client *c)
{
	if (c == NULL)
		return;
	tlm_client_cancel_all(c);
	c->cancelling = 1;
	if (c->multi != NULL)
		curl_multi_cleanup(c->multi);
	if (c->auth != NULL) {
		/* Do not leave the key in freed memory. */
		volatile char *p = c->auth;

		while (*p != '\0')
			*p++ = '\0';
		free(c->auth);
	}
	free(c->base_url);
	free(c->ca_file);
	free(c->cert_file);
	free(c->key_file);
	free(c->owner);
	free(c->traceparent);
	free(c);
}

int tlm_client_set_owner(tlm_client *c, const char *run_id, long long epoch, tlm_error *err)
{
	char buf[128];
	char *p;

	snprintf(buf, sizeof(buf), "X-Telemachy-Owner: %.16s/%lld", run_id, epoch);
	if ((p = dupstr(buf)) == NULL)
		return tlm_error_set(err, TLM_ERROR, "out of memory");
	free(c->owner);
	c->owner = p;
	return 0;
}

static size_t on_body(char *data, size_t size, size_t nmemb, void *ud)
{
	tlm_req *r = ud;
	size_t n = size * nmemb;
	char *p;

	if (r->len + n > TLM_CLIENT_MAX_BODY) {
		r->too_big = 1;
		return 0; /* aborts the transfer: CURLE_WRITE_ERROR */
	}
	if (r->len + n + 1 > r->cap) {
		size_t want = r->cap == 0 ? 4096 : r->cap;
		while (want < r->len + n + 1)
			want *= 2;
		if (want > TLM_CLIENT_MAX_BODY + 1)
			want = TLM_CLIENT_MAX_BODY + 1;
		p = realloc(r->buf, want);
		if (p == NULL)
			return 0;
		r->buf = p;
		r->cap = want;
	}
	memcpy(r->buf + r->len, data, n);
	r->len += n;
	r->buf[r->len] = '\0';
	return n;
}

static size_t on_header(char *data, size_t size, size_t nmemb, void *ud)
{
	tlm_req *r = ud;
	size_t n = size * nmemb;
	static const char name[] = "retry-after:";
	static const char date[] = "date:";

	if (n > sizeof(name) - 1 && strncasecmp(data, name, sizeof(name) - 1) == 0) {
		char value[32];
		size_t vl = n - (sizeof(name) - 1);

		if (vl >= sizeof(value))
			vl = sizeof(value) - 1;
		memcpy(value, data + sizeof(name) - 1, vl);
		value[vl] = '\0';
		/* trim spaces and CRLF */
		while (vl > 0 &&
		       (value[vl - 1] == '\r' || value[vl - 1] == '\n' || value[vl - 1] == ' '))
			value[--vl] = '\0';
		r->retry_after = tlm_client__parse_retry_after(value + strspn(value, " \t"));
	} else if (n > sizeof(date) - 1 && n < 128 &&
		   strncasecmp(data, date, sizeof(date) - 1) == 0) {
		char value[128];
		size_t vl;
		time_t t;

		memcpy(value, data + sizeof(date) - 1, n - (sizeof(date) - 1));
		value[n - (sizeof(date) - 1)] = '\0';
		value[strcspn(value, "\r\n")] = '\0';
		/* It changes once a second: parsed only when it did. */
		vl = strlen(value);
		if (vl < sizeof(r->c->date_seen) && memcmp(value, r->c->date_seen, vl + 1) == 0)
			return n;
		if ((t = curl_getdate(value, NULL)) > 0) {
			r->c->reach.server_date = (int64_t)t;
			if (vl < sizeof(r->c->date_seen))
				memcpy(r->c->date_seen, value, vl + 1);
		}
	}
	return n;
}

/* libcurl sends a request again by itself, on a new connection, when the
 * kept-alive one it was sent on closes before any reply: for a create the
 * server may have committed, a twin (docs/lessons.md #3).  It asks this
 * before each sending; a create is sent once, and a second ask fails the
 * transfer, whose outcome is then unknown (looked up by name, create.c). */
static int once_only(void *ud, char *conn_primary_ip, char *conn_local_ip, int conn_primary_port,
		     int conn_local_port)
{
	tlm_req *r = ud;

	(void)conn_primary_ip;
	(void)conn_local_ip;
	(void)conn_primary_port;
	(void)conn_local_port;
	return r->sendings++ == 0 ? CURL_PREREQFUNC_OK : CURL_PREREQFUNC_ABORT;
}

static int req_start(tlm_req *r, tlm_error *err)
{
	tlm_client *c = r->c;
	char point[64];
	CURL *e;
	int rc = 0;

	snprintf(point, sizeof(point), "send %s %.48s", r->method, r->path);
	tlm_crashpoint(point);
	req_reset_transfer(r);
	e = curl_easy_init();
	if (e == NULL)
		return tlm_error_set(err, TLM_ERROR, "out of memory");
	r->easy = e;
	r->hdrs = curl_slist_append(r->hdrs, "Accept: application/json");
	/* No 100-continue round trip: upstream does not answer it. */
	r->hdrs = curl_slist_append(r->hdrs, "Expect:");
	/* Bodiless POSTs too: curl would otherwise announce a form. */
	if (r->body != NULL || (strcmp(r->method, "GET") != 0 && strcmp(r->method, "DELETE") != 0))
		r->hdrs = curl_slist_append(r->hdrs, "Content-Type: application/json");
	if (c->auth != NULL)
		r->hdrs = curl_slist_append(r->hdrs, c->auth);
	if (c->owner != NULL)
		r->hdrs = curl_slist_append(r->hdrs, c->owner);
	if (c->traceparent != NULL)
		r->hdrs = curl_slist_append(r->hdrs, c->traceparent);
	if (r->hdrs == NULL) {
		rc = tlm_error_set(err, TLM_ERROR, "out of memory");
		goto done;
	}
	curl_easy_setopt(e, CURLOPT_URL, r->url);
	curl_easy_setopt(e, CURLOPT_HTTPHEADER, r->hdrs);
	curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(e, CURLOPT_PRIVATE, (char *)r);
	curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
	curl_easy_setopt(e, CURLOPT_WRITEDATA, r);
	curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(e, CURLOPT_HEADERDATA, r);
	curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, c->opts.timeout_ms);
	curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, c->opts.connect_timeout_ms);
	curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
	/* Paths are built from percent-encoded ids (tlm_client_path): never let
	 * curl squash dot segments into another path. */
	curl_easy_setopt(e, CURLOPT_PATH_AS_IS, 1L);
	curl_easy_setopt(e, CURLOPT_TCP_NODELAY, 1L);
	/* A connection idle for longer is not reused: servers close idle ones
	 * after a few seconds (upstream's uvicorn after 5), and a create sent
	 * as the server closes its connection has an unknown outcome. */
	curl_easy_setopt(e, CURLOPT_MAXAGE_CONN, 3L);
	if (c->ca_file != NULL)
		curl_easy_setopt(e, CURLOPT_CAINFO, c->ca_file);
	/* mTLS: curl reads both files (PEM) on each handshake; an http://
	 * URL ignores them. */
	if (c->cert_file != NULL) {
		curl_easy_setopt(e, CURLOPT_SSLCERT, c->cert_file);
		curl_easy_setopt(e, CURLOPT_SSLKEY, c->key_file);
	}
	r->errbuf[0] = '\0';
	curl_easy_setopt(e, CURLOPT_ERRORBUFFER, r->errbuf);
	if (c->opts.fresh_connection) {
		curl_easy_setopt(e, CURLOPT_FRESH_CONNECT, 1L);
		curl_easy_setopt(e, CURLOPT_FORBID_REUSE, 1L);
	}
	/* A create is sent once (once_only), so creates share the kept-alive
	 * connections like every other request; its body goes with its
	 * headers, in one write. */
	if (r->kind == TLM_CLIENT_POST_CREATE) {
		curl_easy_setopt(e, CURLOPT_PREREQFUNCTION, once_only);
		curl_easy_setopt(e, CURLOPT_PREREQDATA, r);
	}
	/* Content-Length always, 0 for bodiless POST/PUT/PATCH (docs/contract.md §1). */
	if (strcmp(r->method, "GET") != 0 && strcmp(r->method, "DELETE") != 0) {
		curl_easy_setopt(e, CURLOPT_POSTFIELDS, r->body != NULL ? r->body : "");
		curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE,
				 (curl_off_t)(r->body != NULL ? strlen(r->body) : 0));
	} else if (r->body != NULL) {
		curl_easy_setopt(e, CURLOPT_POSTFIELDS, r->body);
		curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(r->body));
	}
	if (strcmp(r->method, "POST") != 0)
		curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, r->method);
	if (curl_multi_add_handle(c->multi, e) != CURLM_OK) {
		rc = tlm_error_set(err, TLM_ERROR, "client: cannot add a transfer");
		goto done;
	}
	r->attempts++;
	c->in_flight++;
	r->next = c->active;
	c->active = r;
done:
	return rc;
}

static int submit(tlm_client *c, const char *method, const char *path, const char *json_body,
		  tlm_client_kind kind, int raw_reply, tlm_client_cb cb, void *ctx, tlm_error *err)
{
	tlm_req *r;
	size_t n;
	int rc = 0;

	assert(c != NULL && method != NULL && path != NULL && cb != NULL);
	if (c->cancelling)
		return tlm_error_set(err, TLM_ECANCELLED, "client: stopping: no new requests");
	if (strlen(method) >= sizeof(r->method) || path[0] != '/')
		return tlm_error_set(err, TLM_EINVALID, "client: bad method or path");
	if (json_body != NULL && strlen(json_body) > TLM_CLIENT_MAX_BODY)
		return tlm_error_set(err, TLM_ETOOBIG, "client: request body over 1 MiB");
	r = calloc(1, sizeof(*r));
	if (r == NULL)
		return tlm_error_set(err, TLM_ERROR, "out of memory");
	r->c = c;
	snprintf(r->method, sizeof(r->method), "%s", method);
	r->kind = kind;
	r->raw_reply = raw_reply;
	r->cb = cb;
	r->ctx = ctx;
	r->retry_after = -1;
	r->path = dupstr(path);
	n = strlen(c->base_url) + strlen(path) + 1;
	r->url = malloc(n);
	if (json_body != NULL)
		r->body = dupstr(json_body);
	if (r->path == NULL || r->url == NULL || (json_body != NULL && r->body == NULL)) {
		req_free(r);
		rc = tlm_error_set(err, TLM_ERROR, "out of memory");
		goto done;
	}
	snprintf(r->url, n, "%s%s", c->base_url, path);
	tlm_client__backoff_init(&r->bo, &c->bo_opts, NULL, NULL);
	r->stamp = c->opts.stamp != NULL ? c->opts.stamp(c->opts.gate_ctx) : 0;
	if (c->wait_tail != NULL)
		c->wait_tail->next = r;
	else
		c->wait_head = r;
	c->wait_tail = r;
	c->waiting++;
done:
	return rc;
}

int tlm_client_submit(tlm_client *c, const char *method, const char *path, const char *json_body,
		      tlm_client_kind kind, tlm_client_cb cb, void *ctx, tlm_error *err)
{
	return submit(c, method, path, json_body, kind, 0, cb, ctx, err);
}

int tlm_client__submit_raw(tlm_client *c, const char *method, const char *path,
			   const char *json_body, tlm_client_kind kind, tlm_client_cb cb, void *ctx,
			   tlm_error *err)
{
	return submit(c, method, path, json_body, kind, 1, cb, ctx, err);
}

static tlm_xfer map_curl(CURLcode cc, CURL *e)
{
	curl_off_t connect_time = 0;
	long new_conns = 0;

	switch (cc) {
	case CURLE_OK: return TLM_XFER_OK;
	case CURLE_COULDNT_CONNECT: return TLM_XFER_CONNECT_REFUSED;
	case CURLE_COULDNT_RESOLVE_HOST:
	case CURLE_COULDNT_RESOLVE_PROXY: return TLM_XFER_RESOLVE;
	case CURLE_OPERATION_TIMEDOUT:
		/* Not connected yet means not sent.  A reused connection has no
		 * connect of its own (connect time 0, no new connection): it was
		 * connected, so the request may have been processed — taking it
		 * for "not sent" would post a create twice. */
		curl_easy_getinfo(e, CURLINFO_CONNECT_TIME_T, &connect_time);
		curl_easy_getinfo(e, CURLINFO_NUM_CONNECTS, &new_conns);
		return connect_time == 0 && new_conns > 0 ? TLM_XFER_CONNECT_TIMEOUT
							  : TLM_XFER_TIMEOUT;
	case CURLE_GOT_NOTHING: return TLM_XFER_EMPTY_REPLY;
	case CURLE_RECV_ERROR: return TLM_XFER_RESET;
	case CURLE_SEND_ERROR: return TLM_XFER_SEND_ERROR;
	/* once_only refused a second sending of a create: its connection
	 * died after the request went out. */
	case CURLE_ABORTED_BY_CALLBACK: return TLM_XFER_RESET;
	case CURLE_SSL_CONNECT_ERROR: return TLM_XFER_TLS_HANDSHAKE;
	case CURLE_PEER_FAILED_VERIFICATION:
	case CURLE_SSL_CACERT_BADFILE:
	case CURLE_SSL_CERTPROBLEM:
	case CURLE_SSL_CIPHER:
	case CURLE_SSL_ISSUER_ERROR:
	case CURLE_SSL_CRL_BADFILE:
	case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
	case CURLE_SSL_INVALIDCERTSTATUS:
	case CURLE_SSL_CLIENTCERT:
	case CURLE_SSL_ENGINE_NOTFOUND:
	case CURLE_SSL_ENGINE_SETFAILED:
	case CURLE_SSL_ENGINE_INITFAILED: return TLM_XFER_TLS_REFUSED;
	default: return TLM_XFER_OTHER;
	}
}

static void sleep_insert(tlm_client *c, tlm_req *r)
{
	tlm_req **pp = &c->sleeping;

	while (*pp != NULL && (*pp)->due_ms <= r->due_ms)
		pp = &(*pp)->next;
	r->next = *pp;
	*pp = r;
}

/* Reports r to its owner and frees it.  A 2xx whose reply cannot be read
 * (not JSON, or no memory to parse it) still means the server acted: a
 * create's outcome is then unknown (its id is not known: the caller looks
 * the name up), anything else is done and the caller reads raw if it needs
 * to. */
static void deliver(tlm_req *r, tlm_client_outcome outcome, int rc, long status, tlm_error *err)
{
	tlm_client_result res;
	json_error_t jerr;
	int oom = 0;

	memset(&res, 0, sizeof(res));
	res.outcome = outcome;
	res.rc = rc;
	res.status = status;
	res.raw = r->buf != NULL ? r->buf : "";
	res.raw_len = r->len;
	res.attempts = r->attempts;
	res.err = err;
	if (r->len > 0 && !r->raw_reply)
		res.body = tlm_json_loadb(r->buf, r->len, JSON_DECODE_ANY, &jerr, &oom);
	if (outcome == TLM_CLIENT_DONE && r->len > 0 && res.body == NULL && !r->raw_reply &&
	    r->kind == TLM_CLIENT_POST_CREATE) {
		res.outcome = TLM_CLIENT_UNKNOWN;
		res.rc = tlm_error_set(err, TLM_ERROR, "%s %s: HTTP %ld: the reply %s", r->method,
				       r->path, status,
				       oom ? "could not be read: out of memory" : "is not JSON");
	}
	r->c->delivered++;
	r->cb(r->ctx, &res);
	json_decref(res.body);
	req_free(r);
}

/* Why a transfer failed, into text: curl's one-line name of the code, and
 * for TLS its detail ("SSL certificate problem: unable to get local issuer
 * certificate", "could not load PEM client certificate from FILE"), which
 * names the host or the files but never their content.  Only for TLS: other
 * details may quote the URL.  Bytes outside printable ASCII become '?'. */
static void failure_text(char *text, size_t size, const tlm_req *r, CURLcode cc, tlm_xfer xfer)
{
	size_t n, i;

	if ((xfer != TLM_XFER_TLS_HANDSHAKE && xfer != TLM_XFER_TLS_REFUSED) ||
	    r->errbuf[0] == '\0') {
		snprintf(text, size, "%s", curl_easy_strerror(cc));
		return;
	}
	n = (size_t)snprintf(text, size, "TLS with %.80s failed: ", r->c->host);
	for (i = 0; r->errbuf[i] != '\0' && n + 1 < size; i++)
		text[n++] = r->errbuf[i] >= ' ' && r->errbuf[i] < 0x7f ? r->errbuf[i] : '?';
	text[n] = '\0';
}

/* One finished attempt tells whether the control plane answers: any HTTP
 * reply says yes, a transport failure no.  Only changes are counted, so the
 * engine says it once per outage, not once per request. */
static void note_reach(tlm_client *c, const tlm_req *r, tlm_xfer xfer, const char *text)
{
	int down = xfer != TLM_XFER_OK;

	if (xfer == TLM_XFER_TLS_REFUSED || down == c->reach.down)
		return;
	c->reach.down = down;
	c->reach.changes++;
	c->reach.since_ms = now_ms();
	if (down)
		snprintf(c->reach.why, sizeof(c->reach.why), "%s %.120s: %.100s", r->method,
			 r->path, text);
}

void tlm_client_reach_get(const tlm_client *c, tlm_client_reach *out)
{
	assert(c != NULL && out != NULL);
	*out = c->reach;
}

/* Every attempt, by route template (docs/metrics.md). */
static void note_metrics(tlm_req *r, long status)
{
	curl_off_t us = 0;

	curl_easy_getinfo(r->easy, CURLINFO_TOTAL_TIME_T, &us);
	tlm_metrics_client_request(r->method, r->path, status, us > 0 ? (uint64_t)us : 0);
}

static void finish(tlm_client *c, tlm_req *r, CURLcode cc)
{
	tlm_error err = TLM_ERROR_INIT;
	/* Room for a TLS detail that names a file (failure_text). */
	char text[TLM_CLIENT_ERRTEXT_MAX + 400];
	long status = 0, ra;
	tlm_xfer xfer;
	tlm_verdict v;
	uint64_t delay;
	int rc, code;

	tlm_req **pp = &c->active;

	/* The server has acted; we have not yet: the lost-reply crash. */
	snprintf(text, sizeof(text), "reply %s %.48s", r->method, r->path);
	tlm_crashpoint(text);
	while (*pp != NULL && *pp != r)
		pp = &(*pp)->next;
	if (*pp == r)
		*pp = r->next;
	r->next = NULL;
	c->in_flight--;
	curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &status);
	note_metrics(r, status);
	if (cc != CURLE_OK && r->too_big) {
		note_reach(c, r, TLM_XFER_OK, "");
		/* The server acted and answered; only its answer is lost.  For a
		 * create that is an unknown outcome, resolved by name: it may
		 * exist (unless the status itself says it was refused). */
		v = tlm_client__classify((tlm_http_method)r->kind, TLM_XFER_OK, (int)status);
		req_reset_transfer(r);
		if (r->kind == TLM_CLIENT_POST_CREATE && v != TLM_VERDICT_PERMANENT) {
			tlm_error_set(
				&err, TLM_ERROR,
				"%s %s: reply over 1 MiB, transfer aborted: the create may have happened",
				r->method, r->path);
			deliver(r, TLM_CLIENT_UNKNOWN, TLM_ERROR, status, &err);
			return;
		}
		tlm_error_set(&err, TLM_ETOOBIG, "%s %s: reply over 1 MiB, transfer aborted",
			      r->method, r->path);
		deliver(r, TLM_CLIENT_FAILED, TLM_ETOOBIG, status, &err);
		return;
	}
	xfer = map_curl(cc, r->easy);
	if (xfer != TLM_XFER_OK)
		status = 0;
	v = tlm_client__classify((tlm_http_method)r->kind, xfer, (int)status);
	code = xfer == TLM_XFER_OK ? tlm_client__http_code((int)status) : TLM_ERROR;
	/* The words of a failure only: a success's body is parsed once, by
	 * deliver. */
	text[0] = '\0';
	if (xfer != TLM_XFER_OK)
		failure_text(text, sizeof(text), r, cc, xfer);
	else if (v != TLM_VERDICT_SUCCESS && v != TLM_VERDICT_GONE)
		tlm_client__error_text(text, sizeof(text), r->buf, r->len);
	note_reach(c, r, xfer, text);
	switch (v) {
	case TLM_VERDICT_SUCCESS: deliver(r, TLM_CLIENT_DONE, 0, status, &err); return;
	case TLM_VERDICT_GONE: deliver(r, TLM_CLIENT_GONE, 0, status, &err); return;
	case TLM_VERDICT_UNKNOWN:
		tlm_error_set(&err, TLM_ERROR,
			      "%s %s: unknown outcome (%s): the create may have happened",
			      r->method, r->path, text);
		deliver(r, TLM_CLIENT_UNKNOWN, TLM_ERROR, status, &err);
		return;
	case TLM_VERDICT_PERMANENT:
		if (xfer == TLM_XFER_OK)
			tlm_error_set(&err, code, "%s %s: HTTP %ld: %s", r->method, r->path, status,
				      text);
		else
			tlm_error_set(&err, code, "%s %s: %s", r->method, r->path, text);
		deliver(r, TLM_CLIENT_FAILED, code, status, &err);
		return;
	case TLM_VERDICT_RETRY: break;
	}
	ra = r->retry_after;
	if (ra < 0 && status == 429)
		ra = tlm_client__body_retry_after(r->buf, r->len);
	rc = tlm_client__backoff_next(&r->bo, ra, &delay, &err);
	if (rc != 0) {
		char why[TLM_ERROR_MSG_MAX];

		snprintf(why, sizeof(why), "%s", err.message);
		if (xfer == TLM_XFER_OK)
			tlm_error_set(&err, code, "%s %s: HTTP %ld: %s (%s)", r->method, r->path,
				      status, text, why);
		else
			tlm_error_set(&err, code, "%s %s: %s (%s)", r->method, r->path, text, why);
		deliver(r, TLM_CLIENT_FAILED, code, status, &err);
		return;
	}
	req_reset_transfer(r);
	r->due_ms = now_ms() + delay;
	tlm_metrics_client_retry();
	sleep_insert(c, r);
}

/* The client-side token bucket: 1 when a request may start now (a token is
 * taken), else 0 and *wait_ms until the next token. */
static int take_token(tlm_client *c, uint64_t now, long *wait_ms)
{
	double rps = c->opts.rate_rps;

	if (rps <= 0)
		return 1;
	c->tokens += (double)(now - c->tokens_ms) * rps / 1000.0;
	if (c->tokens > c->opts.rate_burst)
		c->tokens = c->opts.rate_burst;
	c->tokens_ms = now;
	if (c->tokens >= 1) {
		c->tokens -= 1;
		return 1;
	}
	*wait_ms = (long)ceil((1 - c->tokens) * 1000.0 / rps);
	return 0;
}

/* Fires a due timer: off the list first, so its callback may add more. */
static void fire(tlm_client *c, tlm_req *r)
{
	tlm_client_timer_cb cb = r->timer;
	void *ctx = r->ctx;

	(void)c;
	req_free(r);
	cb(ctx, 0);
}

/* Whether the caller's gate lets the waiting requests go out (the
 * engine's fencing check: a process that lost its run sends nothing more;
 * and its group commit, which may hold them a few ms: *hold_ms).  A
 * refusal closes the client for good. */
static int gate_open(tlm_client *c, uint64_t stamp, long *hold_ms)
{
	int rc;

	if (c->closed.code != 0 || c->opts.gate == NULL)
		return c->closed.code == 0;
	rc = c->opts.gate(c->opts.gate_ctx, stamp, &c->closed);
	if (rc > 0 && c->closed.code == 0) {
		*hold_ms = rc;
		return 0;
	}
	if (rc != 0 && c->closed.code == 0)
		c->closed.code = TLM_ERROR;
	return c->closed.code == 0;
}

/* The caller's hook before a wait of wait_ms; it may shorten the wait. */
static long before_wait(tlm_client *c, long wait_ms)
{
	long w = c->opts.before_wait != NULL ? c->opts.before_wait(c->opts.gate_ctx, wait_ms)
					     : wait_ms;

	return w >= 0 && w < wait_ms ? w : wait_ms;
}

/* Starts waiting requests (retries that are due first) up to max_in_flight
 * and the rate limit, and fires due timers.  A request that cannot even
 * start is reported at once.  Returns how long to wait for the next token
 * (-1: no wait needed). */
static long start_more(tlm_client *c)
{
	uint64_t now = now_ms(), cleared = 0;
	long token_wait = -1;
	int asked = 0;

	/* Due retries go to the head of the FIFO: they are the oldest work. */
	while (c->closed.code == 0 && c->sleeping != NULL && c->sleeping->due_ms <= now) {
		tlm_req *r = c->sleeping;

		c->sleeping = r->next;
		r->next = NULL;
		if (r->timer != NULL) {
			fire(c, r);
			continue;
		}
		r->next = c->wait_head;
		c->wait_head = r;
		if (c->wait_tail == NULL)
			c->wait_tail = r;
		c->waiting++;
	}
	/* The gate is asked once for the burst, and again only for a request
	 * stamped higher than those it let go: what it checks (the run is
	 * still ours, what they depend on committed) holds for the rest.  A
	 * held request holds those behind it (FIFO). */
	while (c->wait_head != NULL && c->in_flight < c->opts.max_in_flight) {
		tlm_req *r = c->wait_head;
		tlm_error err = TLM_ERROR_INIT;

		if ((!asked || r->stamp > cleared) && !gate_open(c, r->stamp, &token_wait))
			return token_wait;
		asked = 1;
		cleared = r->stamp > cleared ? r->stamp : cleared;
		if (!take_token(c, now, &token_wait))
			break;
		c->wait_head = r->next;
		if (c->wait_head == NULL)
			c->wait_tail = NULL;
		c->waiting--;
		r->next = NULL;
		if (req_start(r, &err) != 0)
			deliver(r, TLM_CLIENT_FAILED, err.code, 0, &err);
	}
	return token_wait;
}

int tlm_client_after(tlm_client *c, long ms, tlm_client_timer_cb cb, void *ctx, tlm_error *err)
{
	tlm_req *r;

	assert(c != NULL && cb != NULL);
	if (c->cancelling)
		return tlm_error_set(err, TLM_ECANCELLED, "client: stopping: no new timers");
	if ((r = calloc(1, sizeof(*r))) == NULL)
		return tlm_error_set(err, TLM_ERROR, "out of memory");
	r->c = c;
	r->timer = cb;
	r->ctx = ctx;
	r->due_ms = now_ms() + (uint64_t)(ms > 0 ? ms : 0);
	sleep_insert(c, r);
	return 0;
}

/* Lowers *wait to the next due timer, and to the next due retry when a
 * slot is free for it (a retry that cannot start yet must not spin us). */
static void next_due(const tlm_client *c, long *wait)
{
	uint64_t now = now_ms();
	const tlm_req *r;

	for (r = c->sleeping; r != NULL; r = r->next) {
		long until;

		if (r->timer == NULL && c->in_flight >= c->opts.max_in_flight)
			continue;
		until = r->due_ms > now ? (long)(r->due_ms - now) : 0;
		if (until < *wait)
			*wait = until;
		break; /* sorted: the first eligible one is the soonest */
	}
}

static int idle(const tlm_client *c)
{
	return c->in_flight == 0 && c->wait_head == NULL && c->sleeping == NULL;
}

/* One round: start what may start, let curl work, report what finished.
 * *wait gets the longest poll that misses nothing (capped by its input). */
static int pump(tlm_client *c, long *wait, tlm_error *err)
{
	long token_wait;
	int running = 0, left;
	CURLMsg *m;

	start_more(c);
	if (c->closed.code != 0) {
		if (err != NULL)
			*err = c->closed;
		return c->closed.code;
	}
	if (curl_multi_perform(c->multi, &running) != CURLM_OK)
		return tlm_error_set(err, TLM_ERROR, "client: curl_multi_perform failed");
	while ((m = curl_multi_info_read(c->multi, &left)) != NULL) {
		tlm_req *r = NULL;

		if (m->msg != CURLMSG_DONE)
			continue;
		curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&r);
		finish(c, r, m->data.result);
	}
	token_wait = start_more(c);
	if (token_wait >= 0 && token_wait < *wait)
		*wait = token_wait;
	next_due(c, wait);
	return 0;
}

int tlm_client_step(tlm_client *c, long max_wait_ms, tlm_error *err)
{
	long wait = max_wait_ms < 0 ? 0 : max_wait_ms;
	uint64_t delivered = c->delivered;
	int rc;

	assert(c != NULL);
	if ((rc = pump(c, &wait, err)) != 0)
		return rc;
	/* A reply can be read in the same pump that sent its request (our own
	 * server answers within microseconds): the caller acts on it before
	 * any wait, or a whole max_wait_ms is lost. */
	if (c->delivered != delivered)
		return 0;
	wait = before_wait(c, wait);
	if (curl_multi_poll(c->multi, NULL, 0, (int)wait, NULL) != CURLM_OK)
		return tlm_error_set(err, TLM_ERROR, "client: curl_multi_poll failed");
	return pump(c, &wait, err);
}

void tlm_client_wakeup(tlm_client *c)
{
	if (c != NULL)
		(void)curl_multi_wakeup(c->multi);
}

unsigned tlm_client_in_flight(const tlm_client *c)
{
	return c->in_flight;
}

unsigned tlm_client_waiting(const tlm_client *c)
{
	return c->waiting;
}

unsigned tlm_client_waiting_above(const tlm_client *c, uint64_t stamp)
{
	const tlm_req *r;
	unsigned n = 0;

	for (r = c->wait_head; r != NULL; r = r->next)
		n += r->stamp > stamp;
	return n;
}

unsigned tlm_client_pending(const tlm_client *c)
{
	unsigned n = c->in_flight;
	const tlm_req *r;

	for (r = c->wait_head; r != NULL; r = r->next)
		n++;
	for (r = c->sleeping; r != NULL; r = r->next)
		n++;
	return n;
}

int tlm_client_run(tlm_client *c, long timeout_ms, tlm_error *err)
{
	uint64_t start = now_ms(), now;
	long wait;
	int rc;

	assert(c != NULL);
	for (;;) {
		wait = 1000;
		if ((rc = pump(c, &wait, err)) != 0)
			return rc;
		if (idle(c))
			return 0;
		now = now_ms();
		if (timeout_ms >= 0 && now - start >= (uint64_t)timeout_ms)
			return tlm_error_set(err, TLM_ETIMEOUT,
					     "client: requests still pending after %ld ms",
					     timeout_ms);
		if (timeout_ms >= 0 && (long)(start + (uint64_t)timeout_ms - now) < wait)
			wait = (long)(start + (uint64_t)timeout_ms - now);
		wait = before_wait(c, wait);
		if (curl_multi_poll(c->multi, NULL, 0, (int)wait, NULL) != CURLM_OK)
			return tlm_error_set(err, TLM_ERROR, "client: curl_multi_poll failed");
	}
}

/* ---- synchronous helpers ---------------------------------------------- */

static void sync_cb(void *ctx, const tlm_client_result *res)
{
	sync_res *s = ctx;

	s->done = 1;
	s->outcome = res->outcome;
	s->rc = res->rc;
	s->status = res->status;
	s->len = res->raw_len;
	s->raw = malloc(res->raw_len + 1);
	if (s->raw != NULL) {
		memcpy(s->raw, res->raw, res->raw_len);
		s->raw[res->raw_len] = '\0';
	} else if (s->rc == 0) {
		s->outcome = TLM_CLIENT_FAILED;
		s->rc = tlm_error_set(&s->err, TLM_ERROR, "out of memory");
		return;
	}
	if (res->err != NULL && res->rc != 0)
		s->err = *res->err;
}

/* Sends one request and drives the loop until it is done.  Bounded: every
 * attempt has its timeouts and the retries a budget. */
int tlm_client__sync_req(tlm_client *c, const char *method, const char *path, const char *body,
			 tlm_client_kind kind, sync_res *s, tlm_error *err)
{
	int rc;

	memset(s, 0, sizeof(*s));
	rc = tlm_client_submit(c, method, path, body, kind, sync_cb, s, err);
	while (rc == 0 && !s->done)
		rc = tlm_client_run(c, -1, err);
	return rc;
}

void tlm_client__sync_clear(sync_res *s)
{
	free(s->raw);
	s->raw = NULL;
}

/* Waits ms while still driving other queued requests of c (their timeouts
 * and retries keep running); sleeps once nothing else is pending. */
void tlm_client__wait_ms(tlm_client *c, uint64_t ms)
{
	uint64_t end = now_ms() + ms, now;
	struct timespec ts;

	while ((now = now_ms()) < end) {
		if (tlm_client_run(c, (long)(end - now), NULL) == 0) {
			now = now_ms();
			if (now >= end)
				break;
			ts.tv_sec = (time_t)((end - now) / 1000);
			ts.tv_nsec = (long)((end - now) % 1000) * 1000000L;
			(void)before_wait(c, (long)(end - now));
			(void)nanosleep(&ts, NULL); /* a signal only shortens the wait */
		}
	}
}

const tlm_backoff_opts *tlm_client__backoff_opts(const tlm_client *c)
{
	return &c->bo_opts;
}

long tlm_client__timeout_ms(const tlm_client *c)
{
	return c->opts.timeout_ms;
}

int tlm_client_get(tlm_client *c, const char *path, json_t **body_out, long *http_status,
		   tlm_error *err)
{
	sync_res s;
	int rc, oom;

	if (body_out != NULL)
		*body_out = NULL;
	rc = tlm_client__sync_req(c, "GET", path, NULL, TLM_CLIENT_GET, &s, err);
	if (rc != 0)
		return rc;
	if (http_status != NULL)
		*http_status = s.status;
	if (s.outcome != TLM_CLIENT_DONE) {
		rc = s.rc != 0 ? s.rc : TLM_ERROR;
		if (err != NULL)
			*err = s.err;
	} else if (body_out != NULL &&
		   (*body_out = tlm_json_loadb(s.raw, s.len, 0, NULL, &oom)) == NULL) {
		rc = oom ? tlm_error_set(err, TLM_ERROR, "GET %s: out of memory", path)
			 : tlm_error_set(err, TLM_EINVALID, "GET %s: reply is not a JSON object",
					 path);
	}
	tlm_client__sync_clear(&s);
	return rc;
}

void tlm_client__list_bounds(const tlm_client *c, size_t *max_items, long *max_ms)
{
	*max_items = c->opts.list_max_items > 0 ? c->opts.list_max_items
						: (size_t)TLM_CLIENT_LIST_MAX_ITEMS;
	*max_ms = c->opts.list_max_ms > 0 ? c->opts.list_max_ms : TLM_CLIENT_LIST_MAX_MS;
}
