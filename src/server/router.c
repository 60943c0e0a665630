/* The request pipeline: fault injection, rate limit, auth (or, without a
 * key on loopback, the Host and Origin check), then the route table.  Auth
 * runs before routing, as upstream does, so unknown paths answer 401 without
 * a key; unmatched paths are 404 with an empty body. */
#include <openssl/crypto.h>
#include <string.h>
#include <time.h>

#include "server/addr.h"
#include "server/chaos.h"
#include "server/ratelimit.h"
#include "server/server_internal.h"

typedef struct route {
	const char *method;
	const char *pattern; /* "{}" matches one path segment */
	tlm_srv_handler handler;
} route;

/* Specific patterns before general ones of the same length. */
static const route routes[] = {
	{ "GET", "/health", tlm_api_health },
	{ "GET", "/v1/health", tlm_api_health },
	{ "GET", "/v1/version", tlm_api_version },
	{ "POST", "/v1/agents", tlm_api_agent_create },
	{ "GET", "/v1/agents", tlm_api_agent_list },
	{ "GET", "/v1/agents/by-name/{}", tlm_api_agent_by_name },
	{ "GET", "/v1/agents/{}", tlm_api_agent_get },
	{ "PATCH", "/v1/agents/{}", tlm_api_agent_patch },
	{ "DELETE", "/v1/agents/{}", tlm_api_agent_delete },
	{ "POST", "/v1/agents/{}/start", tlm_api_agent_start },
	{ "POST", "/v1/agents/{}/stop", tlm_api_agent_stop },
	{ "POST", "/v1/teams", tlm_api_team_create },
	{ "GET", "/v1/teams", tlm_api_team_list },
	{ "GET", "/v1/teams/{}", tlm_api_team_get },
	{ "PUT", "/v1/teams/{}", tlm_api_team_put },
	{ "DELETE", "/v1/teams/{}", tlm_api_team_delete },
	{ "POST", "/v1/teams/{}/tasks", tlm_api_task_create },
	{ "GET", "/v1/teams/{}/tasks", tlm_api_task_list },
	{ "GET", "/v1/teams/{}/tasks/{}", tlm_api_task_get },
	{ "GET", "/v1/teams/{}/tasks/{}/output", tlm_api_task_output },
	{ "PUT", "/v1/teams/{}/tasks/{}", tlm_api_task_update },
	{ "PATCH", "/v1/teams/{}/tasks/{}", tlm_api_task_update },
	{ "POST", "/v1/tasks/{}/complete", tlm_api_task_complete },
	{ "GET", "/v1/chaos", tlm_api_chaos_list },
	{ "POST", "/v1/chaos/{}", tlm_api_chaos_add },
	{ "DELETE", "/v1/chaos/{}", tlm_api_chaos_remove },
};

#define MAX_SEGMENTS 8

/* Splits a path into at most MAX_SEGMENTS segments, in place ("/" -> NUL).
 * Returns the count, or -1 for a path that no route can match. */
static int split(char *path, char **seg)
{
	int n = 0;

	if (*path != '/')
		return -1;
	while (*path == '/') {
		*path++ = '\0';
		if (n == MAX_SEGMENTS)
			return -1;
		seg[n++] = path;
		path += strcspn(path, "/");
	}
	return n;
}

/* Does the pattern's i-th segment match? "{}" matches any non-empty one. */
static int match(const char *pattern, char **seg, int n, const char **params)
{
	int i = 0, np = 0;

	while (*pattern == '/' && i < n) {
		size_t len = strcspn(++pattern, "/");

		if (len == 2 && strncmp(pattern, "{}", 2) == 0) {
			if (*seg[i] == '\0' || np == TLM_SRV_MAX_PARAMS)
				return 0;
			params[np++] = seg[i];
		} else if (strlen(seg[i]) != len || strncmp(pattern, seg[i], len) != 0) {
			return 0;
		}
		pattern += len;
		i++;
	}
	return *pattern == '\0' && i == n;
}

void tlm_srv__route(tlm_server *srv, const tlm_srv_request *req, tlm_srv_response *res)
{
	char copy[2048], *seg[MAX_SEGMENTS];
	tlm_srv_request r = *req;
	int n, path_known = 0;
	size_t i;

	if (strlen(req->path) >= sizeof(copy)) {
		res->status = 404;
		return;
	}
	strcpy(copy, req->path);
	n = split(copy, seg);
	for (i = 0; n > 0 && i < sizeof(routes) / sizeof(routes[0]); i++) {
		if (!match(routes[i].pattern, seg, n, r.params))
			continue;
		path_known = 1;
		if (strcmp(routes[i].method, req->method) == 0) {
			routes[i].handler(srv, &r, res);
			return;
		}
	}
	/* Upstream answers 404 to a wrong method too; a 405 says more, and
	 * the contract allows it for the built-in server (docs/serve.md). */
	res->status = path_known ? 405 : 404;
	if (path_known)
		tlm_srv__error(res, 405, "method %s not allowed on %s", req->method, req->path);
}

static int is_health(const char *path)
{
	return strcmp(path, "/health") == 0 || strcmp(path, "/v1/health") == 0;
}

/* Health and the fault API are never rate limited: a test must always be
 * able to look and to remove its faults. */
static int rate_exempt(const char *path)
{
	return is_health(path) || strncmp(path, "/v1/chaos", 9) == 0;
}

/* Constant-time comparison: the key must not leak through timing. */
static int key_ok(const char *want, const char *given)
{
	size_t n = strlen(want);

	return given != NULL && strlen(given) == n && CRYPTO_memcmp(want, given, n) == 0;
}

/* A present Bearer header alone decides (docs/contract.md §2). */
static int authorized(const char *key, const char *authorization, const char *x_api_key)
{
	if (authorization != NULL)
		return strncmp(authorization, "Bearer ", 7) == 0 && key_ok(key, authorization + 7);
	return key_ok(key, x_api_key);
}

/* A loopback server without a key trusts whoever can connect, which
 * includes any web page a local browser opens: with DNS rebinding the page's
 * own host name resolves to 127.0.0.1, and its requests carry that name in
 * Host; a plain cross-site request carries the page's Origin.  Either is
 * refused, so only clients that mean this machine get through.  Returns 1
 * when res holds the refusal. */
static int foreign(const tlm_srv_request *req, tlm_srv_response *res)
{
	if (req->host != NULL && !tlm_addr_host_is_loopback(req->host)) {
		tlm_srv__error(res, 421,
			       "Host \"%.100s\" is not this server: without an API key it answers "
			       "only requests for localhost, 127.0.0.1 or [::1] (DNS rebinding "
			       "protection)",
			       req->host);
		return 1;
	}
	if (req->origin != NULL && !tlm_addr_origin_is_loopback(req->origin)) {
		tlm_srv__error(res, 403,
			       "cross-origin request from \"%.100s\" refused: without an API key "
			       "only pages of localhost, 127.0.0.1 or [::1] may call this server",
			       req->origin);
		return 1;
	}
	return 0;
}

/* Applies a fault: returns 1 when the request is answered (fail) here. */
static int apply_fault(const tlm_fault_action *f, tlm_srv_response *res, int *drop)
{
	switch (f->type) {
	case TLM_FAULT_DELAY: {
		/* Holds one worker thread, as a slow upstream would. */
		struct timespec ts = { (time_t)(f->delay_ms / 1000u),
				       (long)(f->delay_ms % 1000u) * 1000000L };

		while (nanosleep(&ts, &ts) != 0)
			;
		return 0;
	}
	case TLM_FAULT_DROP: *drop = 1; return 0;
	case TLM_FAULT_FAIL:
		tlm_srv__error(res, f->status, "injected fault: %d", f->status);
		res->retry_after = f->retry_after;
		return 1;
	default: return 0;
	}
}

void tlm_srv__handle(tlm_server *srv, const tlm_srv_request *req, const char *client,
		     const char *authorization, const char *api_key_header, tlm_srv_response *res,
		     int *drop)
{
	tlm_fault_action fault;
	unsigned wait;

	*drop = 0;
	tlm_chaos_check(srv->chaos, req->method, req->path, &fault);
	if (apply_fault(&fault, res, drop))
		return;
	if (srv->ratelimit != NULL && !rate_exempt(req->path) &&
	    (wait = tlm_ratelimit_take(srv->ratelimit, client)) > 0) {
		tlm_srv__json(res, 429,
			      json_pack("{s:s,s:I}", "error", "rate limit exceeded",
					"retry_after_seconds", (json_int_t)wait));
		res->retry_after = wait;
		return;
	}
	if (srv->api_key != NULL && !is_health(req->path) &&
	    !authorized(srv->api_key, authorization, api_key_header)) {
		tlm_srv__error(res, 401, "unauthorized");
		return;
	}
	if (srv->guard_host && !is_health(req->path) && foreign(req, res))
		return;
	tlm_srv__route(srv, req, res);
}
