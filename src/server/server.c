/* The built-in control plane's lifecycle and the one path every task change
 * takes (store, then event, then runner). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "server/chaos.h"
#include "server/events.h"
#include "server/ratelimit.h"
#include "server/runner.h"
#include "server/server_internal.h"
#include "util/fs.h"
#include "util/secret.h"

int tlm_srv__task_update(tlm_server *srv, const char *scope, const char *task_id,
			 const json_t *patch, json_t **out)
{
	json_t *task = NULL;
	char subject[600], *text = NULL, *payload;
	size_t len;
	int rc = tlm_store_patch_dump(srv->store, TLM_STORE_TASKS, scope, task_id, patch, &task,
				      &text);

	if (rc != 0)
		return rc;
	snprintf(subject, sizeof(subject), "hi.tasks.%s.%s.updated",
		 json_string_value(json_object_get(task, "teamId")), task_id);
	/* {"task": task}, from the text the store wrote. */
	payload = tlm_srv__wrap("task", text, &len);
	if (payload != NULL)
		tlm_srv__publish_text(srv, subject, payload, len);
	else
		tlm_srv__publish(srv, subject, json_pack("{s:O}", "task", task));
	free(payload);
	free(text);
	tlm_runner_wake(srv->runner);
	if (out != NULL)
		*out = task;
	else
		json_decref(task);
	return 0;
}

/* The runner and external workers report through here. */
static int set_status(void *ctx, const char *task_id, const char *status, const char *message,
		      const json_t *result)
{
	json_t *patch = json_pack("{s:s}", "status", status);
	int rc;

	if (message != NULL)
		json_object_set_new(patch, "statusMessage", json_string(message));
	if (result != NULL)
		json_object_set(patch, "result", (json_t *)result);
	rc = tlm_srv__task_update(ctx, NULL, task_id, patch, NULL);
	json_decref(patch);
	return rc;
}

static void on_worker_report(void *ctx, const char *task_id, const char *status)
{
	set_status(ctx, task_id, status, NULL, NULL);
}

void tlm_srv__apply_windows(tlm_server *srv)
{
	double left = tlm_chaos_refuse_remaining(srv->chaos);

	/* No listener (requests made in process, tests/fuzz): nothing to close. */
	if (left > 0 && srv->http != NULL)
		tlm_http_refuse(srv->http, left);
}

/* Task logs go under the state directory, which we create when none is given. */
static int make_state_dir(tlm_server *srv, const char *dir, tlm_error *err)
{
	char logs[4096];

	if (dir != NULL) {
		srv->state_dir = strdup(dir);
		if (mkdir(dir, 0700) != 0 && errno != EEXIST)
			return tlm_error_set(err, TLM_ERROR, "state dir %s: %s", dir,
					     strerror(errno));
	} else {
		srv->state_dir = strdup("/tmp/telemachy-serve-XXXXXX");
		if (srv->state_dir == NULL || mkdtemp(srv->state_dir) == NULL)
			return tlm_error_set(err, TLM_ERROR, "cannot create a state dir: %s",
					     strerror(errno));
		srv->own_state_dir = 1;
	}
	snprintf(logs, sizeof(logs), "%s/logs", srv->state_dir);
	if (mkdir(logs, 0700) != 0 && errno != EEXIST)
		return tlm_error_set(err, TLM_ERROR, "%s: %s", logs, strerror(errno));
	return 0;
}

/* Any agent runs any program it is given: a server that others can reach
 * without a key is remote code execution for them.  So, before binding,
 * anything but loopback needs a key, or the operator's explicit word. */
static int check_exposure(const tlm_addr *addr, const tlm_server_opts *o, tlm_error *err)
{
	char where[160];

	if (tlm_addr_is_loopback(addr) || o->api_key != NULL || o->insecure_no_auth)
		return 0;
	tlm_addr_format(addr, where, sizeof(where));
	return tlm_error_set(
		err, TLM_EINVALID,
		"refusing to listen on %s without an API key: whoever reaches it could "
		"run programs on this machine; set --api-key-file (or "
		"AGAMEMNON_API_KEY_FILE), listen on loopback, or pass "
		"--insecure-no-auth if that is really meant",
		where);
}

static int start_events(tlm_server *srv, const tlm_server_opts *o, tlm_error *err)
{
	tlm_events_opts eo = TLM_EVENTS_OPTS_INIT;

	eo.url = o->nats_url;
	eo.ca_file = o->nats_ca_file;
	eo.cert_file = o->nats_cert_file;
	eo.key_file = o->nats_key_file;
	eo.creds_file = o->nats_creds_file;
	eo.token = o->nats_token;
	return tlm_events_new_opts(&srv->events, &eo, on_worker_report, srv, err);
}

static int start_parts(tlm_server *srv, const tlm_server_opts *o, tlm_error *err)
{
	tlm_runner_hooks hooks = { set_status, srv, o->no_exec };
	tlm_http_opts ho;
	double timeout;
	char logs[4096];
	tlm_addr addr;
	size_t i;
	int rc;

	/* First: a bad address is a usage error, found before anything starts;
	 * so are TLS files that cannot serve. */
	if ((rc = tlm_addr_parse(&addr, o->listen ? o->listen : "127.0.0.1:0", err)) != 0 ||
	    (rc = check_exposure(&addr, o, err)) != 0 ||
	    (rc = tlm_tls_load(&srv->tls, o->tls_cert_file, o->tls_key_file, o->tls_client_ca_file,
			       err)) != 0)
		return rc;
	srv->upstream_agent_fields = o->upstream_agent_fields;
	if (tlm_chaos_new(&srv->chaos) != 0)
		return tlm_error_set(err, TLM_ERROR, "out of memory");
	for (i = 0; i < o->nfaults; i++) {
		char *id = NULL;

		rc = tlm_chaos_add_spec(srv->chaos, o->faults[i], &id, err);
		free(id);
		if (rc != 0)
			return rc;
	}
	if (o->rate_rps > 0 &&
	    (srv->ratelimit = tlm_ratelimit_new(
		     o->rate_rps,
		     o->rate_burst ? o->rate_burst : (unsigned)(2 * o->rate_rps + 0.5))) == NULL)
		return tlm_error_set(err, TLM_ERROR, "out of memory");
	/* A blank key would mean no auth while the caller asked for auth. */
	if (o->api_key != NULL && (rc = tlm_secret_check_key(o->api_key, "api_key", err)) != 0)
		return rc;
	if (o->api_key != NULL && (srv->api_key = strdup(o->api_key)) == NULL)
		return tlm_error_set(err, TLM_ERROR, "out of memory");
	if (o->request_log != NULL &&
	    (rc = tlm_reqlog_open(&srv->reqlog, o->request_log, err)) != 0)
		return rc;
	if ((rc = make_state_dir(srv, o->state_dir, err)) != 0 ||
	    (rc = tlm_store_open(&srv->store, o->state_path, o->unique_names, err)) != 0)
		return rc;
	snprintf(logs, sizeof(logs), "%s/logs", srv->state_dir);
	if ((rc = tlm_runner_new(&srv->runner, srv->store, logs, &hooks, o->pass_env, err)) != 0)
		return rc;
	if (o->nats_url != NULL && *o->nats_url && (rc = start_events(srv, o, err)) != 0)
		return rc;
	/* Loopback without a key: the network cannot reach us, but a web page
	 * in a local browser can (DNS rebinding), so Host and Origin are
	 * checked (docs/serve.md, Security).  With a key, the key does it.
	 * Set before the first request can come. */
	srv->guard_host = srv->api_key == NULL && tlm_addr_is_loopback(&addr);
	ho.threads = o->threads ? o->threads : 8;
	ho.max_conns = o->max_connections ? o->max_connections : 1024;
	ho.max_per_ip = o->max_connections_per_ip;
	ho.backlog = o->backlog ? o->backlog : 128;
	/* A day at most: the conversion to milliseconds must not overflow. */
	timeout = o->request_timeout > 0 ? o->request_timeout : 10;
	ho.request_timeout_ms = (unsigned)((timeout < 86400 ? timeout : 86400) * 1000);
	ho.tls = srv->tls.cert != NULL ? &srv->tls : NULL;
	ho.warn = o->warn;
	ho.warn_ctx = o->warn_ctx;
	return tlm_http_start(&srv->http, srv, &addr, &ho, &srv->bound, err);
}

int tlm_server_start(tlm_server **out, const tlm_server_opts *opts, tlm_error *err)
{
	tlm_server *srv = calloc(1, sizeof(*srv));
	char plain[sizeof(srv->url) - 1]; /* room for the "s" */
	int rc;

	*out = NULL;
	if (srv == NULL)
		return tlm_error_set(err, TLM_ERROR, "out of memory");
	rc = start_parts(srv, opts, err);
	if (rc != 0) {
		tlm_server_stop(srv);
		return rc;
	}
	tlm_addr_url(&srv->bound, plain, sizeof(plain));
	/* "http://HOST:PORT" with the scheme we really speak. */
	snprintf(srv->url, sizeof(srv->url), "%s%s", srv->tls.cert != NULL ? "https" : "http",
		 plain + 4);
	tlm_addr_format(&srv->bound, srv->address, sizeof(srv->address));
	tlm_srv__apply_windows(srv); /* a --fault refuse starts at once */
	*out = srv;
	return 0;
}

unsigned short tlm_server_port(const tlm_server *srv)
{
	return tlm_addr_port(&srv->bound);
}

const char *tlm_server_address(const tlm_server *srv)
{
	return srv->address;
}

unsigned tlm_server_max_connections(const tlm_server *srv)
{
	return tlm_http_max_connections(srv->http);
}

int tlm_server_loopback(const tlm_server *srv)
{
	return tlm_addr_is_loopback(&srv->bound);
}

const char *tlm_server_url(const tlm_server *srv)
{
	return srv->url;
}

/* HTTP first (no new requests), then the runner (kills processes), then
 * events (flush), then the store. */
void tlm_server_stop(tlm_server *srv)
{
	if (srv == NULL)
		return;
	tlm_http_stop(srv->http);
	tlm_runner_free(srv->runner);
	tlm_events_free(srv->events);
	tlm_store_close(srv->store);
	tlm_ratelimit_free(srv->ratelimit);
	tlm_chaos_free(srv->chaos);
	tlm_reqlog_close(srv->reqlog);
	/* Our own temporary directory: its logs die with the server. */
	if (srv->own_state_dir && srv->state_dir != NULL)
		(void)tlm_rmtree(srv->state_dir);
	free(srv->state_dir);
	free(srv->api_key);
	tlm_tls_clear(&srv->tls); /* after the daemons: they used it */
	free(srv);
}
