/* Before anything is created: the client for the control plane the caller
 * gives (an in-process one, or the one named by AGAMEMNON_URL), the journal,
 * and the preflight that proves the control plane answers and accepts our
 * key and that NATS is connected (docs/design.md §4).  And after the run,
 * their release. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "engine/engine_internal.h"
#include "util/fs.h"
#include "util/redact.h"
#include "util/testhooks.h"

static void wake(void *ctx)
{
	tlm_client_wakeup(ctx);
}

void tlm_eng__client_opts(const tlm_engine_opts *o, const char *url, int ours,
			  unsigned max_in_flight, tlm_client_opts *co)
{
	const char *v;

	co->base_url = url;
	/* Ours has a key too: the CLI's in-process server wants a random one
	 * (docs/security.md). */
	co->api_key = o->api_key;
	co->max_in_flight = max_in_flight;
	/* Keep-alive everywhere: against a backlog of 5, fresh connections
	 * for every request overflow the listen queue and each dropped one
	 * waits out a 1 s SYN retransmit, while the keep-alive stall reported
	 * for upstream did not show with this client.  At most 4 at once:
	 * creates still open a connection each (transport.c), and 8 connects
	 * at once overflowed that queue where 4 never did (docs/agamemnon.md,
	 * "Connection policy"). */
	co->fresh_connection = o->fresh_connection > 0;
	co->max_connections = o->max_connections;
	if (co->max_connections == 0)
		co->max_connections = ours ? 0 : 4;
	co->require_tls = o->require_tls;
	co->ca_file = o->ca_file;
	co->cert_file = o->client_cert_file;
	co->key_file = o->client_key_file;
	if (o->request_timeout_ms > 0)
		co->timeout_ms = o->request_timeout_ms;
	co->rate_rps = o->rate_rps;
	co->rate_burst = o->rate_burst;
	co->traceparent = o->traceparent;
	/* Paging bounds a test can reach in seconds (test builds only). */
	if ((v = tlm_testhook_env("TLM_TEST_LIST_MAX_ITEMS")) != NULL)
		co->list_max_items = (size_t)strtoul(v, NULL, 10);
	if ((v = tlm_testhook_env("TLM_TEST_LIST_MAX_MS")) != NULL)
		co->list_max_ms = strtol(v, NULL, 10);
}

int tlm_eng__setup(eng *e, tlm_error *err)
{
	tlm_client_opts co = TLM_CLIENT_OPTS_INIT;
	const char *state = e->o->state_dir;
	char tmpl[] = "/tmp/telemachy-dry-run-XXXXXX";
	int rc;

	if (e->o->control_plane == NULL)
		return tlm_error_set(err, TLM_EINVALID, "engine: no control plane was given");
	if (e->o->dry_run) {
		if (mkdtemp(tmpl) == NULL || (e->tmp_dir = strdup(tmpl)) == NULL)
			return tlm_error_set(err, TLM_ERROR,
					     "dry run: cannot make a temporary directory");
		state = e->tmp_dir;
	}
	if ((rc = tlm_journal_open(&e->j, state, err)) != 0)
		return rc;
	/* A dry run changes nothing and its journal is thrown away: its run
	 * has no place in the audit log (docs/audit.md). */
	if (e->o->dry_run && (rc = tlm_journal_set_audit_log(e->j, NULL, err)) != 0)
		return rc;
	if ((rc = tlm_journal_set_batching(e->j, 1, err)) != 0)
		return rc;
	tlm_eng__client_opts(e->o, e->o->control_plane, e->o->in_process, e->maxc, &co);
	tlm_eng__client_hooks(e, &co);
	return tlm_client_new(&e->c, &co, err);
}

/* A GET that needs auth in v2 and exists in v1, with a short retry budget:
 * an unreachable control plane is reported in seconds, not minutes. */
static int check_control_plane(eng *e, tlm_error *err)
{
	tlm_client_opts co = TLM_CLIENT_OPTS_INIT;
	tlm_client *c = NULL;
	const char *url = e->o->control_plane;
	tlm_error cerr = TLM_ERROR_INIT;
	char shown[512];
	long status = 0;
	int rc;

	tlm_eng__client_opts(e->o, url, e->o->in_process, e->maxc, &co);
	co.max_in_flight = 1;
	co.timeout_ms = 10000;
	co.retry_max_attempts = 4;
	co.retry_max_total_ms = 5000;
	co.rate_rps = 0;
	if ((rc = tlm_client_new(&c, &co, err)) != 0)
		return rc;
	rc = tlm_client_get(c, "/v1/agents?limit=1", NULL, &status, &cerr);
	tlm_client_free(c);
	if (rc == 0)
		return 0;
	/* The URL may carry a password: never printed as given. */
	tlm_redact_url(shown, sizeof(shown), url);
	if (status == 401)
		return tlm_error_set(
			err, TLM_EINVALID,
			"control plane %s rejected the API key (HTTP 401): set AGAMEMNON_API_KEY or AGAMEMNON_API_KEY_FILE",
			shown);
	/* A 403 is not always about the key: a server that verifies client
	 * certificates says why it refused (ours: none was sent). */
	if (status == 403)
		return tlm_error_set(
			err, TLM_EINVALID,
			"control plane %s refused the request: %s (check the API key, or "
			"AGAMEMNON_CLIENT_CERT and _KEY)",
			shown, cerr.message);
	return tlm_error_set(err, TLM_ERROR, "control plane %s unreachable: %s", shown,
			     cerr.message);
}

int tlm_eng__preflight(eng *e, tlm_error *err)
{
	tlm_watcher_opts wo = TLM_WATCHER_OPTS_INIT;
	int rc;

	if ((rc = check_control_plane(e, err)) != 0)
		return rc;
	if (e->o->nats_url == NULL || e->o->dry_run)
		return 0;
	wo.url = e->o->nats_url;
	wo.creds_file = e->o->nats_creds_file;
	wo.token = e->o->nats_token;
	/* NATS has TLS settings of its own: the control plane's CA need not
	 * be the one that signed the NATS server's certificate. */
	wo.ca_file = e->o->nats_ca_file;
	wo.cert_file = e->o->nats_cert_file;
	wo.key_file = e->o->nats_key_file;
	wo.wake = wake;
	wo.wake_ctx = e->c;
	return tlm_watcher_new(&e->w, &wo, err);
}

void tlm_eng__cleanup(eng *e)
{
	/* What NATS delivered, for -v: whether events carried the run or the
	 * REST reconcile had to. */
	if (e->w != NULL) {
		tlm_watcher_stats st;

		tlm_watcher_stats_get(e->w, &st);
		tlm_eng__log(e, TLM_ENGINE_DEBUG,
			     "NATS: %llu task events received (%llu queued, %llu ignored, "
			     "%llu dropped), %llu reconnects",
			     (unsigned long long)st.received, (unsigned long long)st.queued,
			     (unsigned long long)st.ignored, (unsigned long long)st.dropped,
			     (unsigned long long)st.reconnects);
	}
	/* The watcher goes first: its callbacks wake the client. */
	tlm_watcher_free(e->w);
	e->w = NULL;
	tlm_client_free(e->c);
	e->c = NULL;
	if (e->j != NULL && e->nunwritten > 0)
		tlm_eng__write_unwritten(e); /* close commits them */
	tlm_journal_close(e->j);
	e->j = NULL;
	if (e->tmp_dir != NULL)
		(void)tlm_rmtree(e->tmp_dir);
	free(e->tmp_dir);
	e->tmp_dir = NULL;
}
