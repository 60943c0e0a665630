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

int tlm_srv__task_update(tlm_server *srv, const char *scope, const char *task_id,
			 const json_t *patch, json_t **out)
{
	json_t *task = NULL;
	char subject[600];
	int rc = tlm_store_patch(srv->store, TLM_STORE_TASKS, scope, task_id, patch, &task);

	if (rc != 0)
		return rc;
	snprintf(subject, sizeof(subject), "hi.tasks.%s.%s.updated",
		 json_string_value(json_object_get(task, "teamId")), task_id);
	tlm_srv__publish(srv, subject, json_pack("{s:O}", "task", task));
	tlm_runner_wake(srv->runner);
	if (out != NULL)
		*out = task;
	else
		json_decref(task);
	return 0;
}

/* The runner and external workers report through here. */
static int set_status(void *ctx, const char *task_id, const char *status, const char *message)
{
	json_t *patch = json_pack("{s:s}", "status", status);
	int rc;

	if (message != NULL)
		json_object_set_new(patch, "statusMessage", json_string(message));
	rc = tlm_srv__task_update(ctx, NULL, task_id, patch, NULL);
	json_decref(patch);
	return rc;
}

static void on_worker_report(void *ctx, const char *task_id, const char *status)
{
	set_status(ctx, task_id, status, NULL);
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

static int start_parts(tlm_server *srv, const tlm_server_opts *o, tlm_error *err)
{
	tlm_runner_hooks hooks = { set_status, srv };
	char logs[4096];
	size_t i;
	int rc;

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
	if (o->api_key != NULL && *o->api_key && (srv->api_key = strdup(o->api_key)) == NULL)
		return tlm_error_set(err, TLM_ERROR, "out of memory");
	if ((rc = make_state_dir(srv, o->state_dir, err)) != 0 ||
	    (rc = tlm_store_open(&srv->store, o->state_path, o->unique_names, err)) != 0)
		return rc;
	snprintf(logs, sizeof(logs), "%s/logs", srv->state_dir);
	if ((rc = tlm_runner_new(&srv->runner, srv->store, logs, &hooks, err)) != 0)
		return rc;
	if (o->nats_url != NULL && *o->nats_url &&
	    (rc = tlm_events_new(&srv->events, o->nats_url, on_worker_report, srv, err)) != 0)
		return rc;
	return tlm_http_start(&srv->http, srv, o->listen ? o->listen : "127.0.0.1:0", o->threads,
			      &srv->port, err);
}

int tlm_server_start(tlm_server **out, const tlm_server_opts *opts, tlm_error *err)
{
	tlm_server *srv = calloc(1, sizeof(*srv));
	int rc;

	*out = NULL;
	if (srv == NULL)
		return tlm_error_set(err, TLM_ERROR, "out of memory");
	rc = start_parts(srv, opts, err);
	if (rc != 0) {
		tlm_server_stop(srv);
		return rc;
	}
	snprintf(srv->url, sizeof(srv->url), "http://%s:%u",
		 opts->listen && opts->listen[0] == '[' ? "[::1]" : "127.0.0.1", srv->port);
	tlm_srv__apply_windows(srv); /* a --fault refuse starts at once */
	*out = srv;
	return 0;
}

unsigned short tlm_server_port(const tlm_server *srv)
{
	return srv->port;
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
	/* Our own temporary directory: its logs die with the server. */
	if (srv->own_state_dir && srv->state_dir != NULL)
		(void)tlm_rmtree(srv->state_dir);
	free(srv->state_dir);
	free(srv->api_key);
	free(srv);
}
