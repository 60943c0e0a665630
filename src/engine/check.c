/* What `telemachy doctor` asks of the control plane and NATS (docs/doctor.md):
 * the preflight's questions (setup.c), each bounded by the caller's timeout
 * and tried once, with what came back kept for a report instead of ending a
 * run.  The client is configured as a run's would be, so a setting that
 * breaks a run breaks this check too. */
#include <stdio.h>
#include <string.h>

#include "engine/engine_internal.h"
#include "util/redact.h"

int tlm_engine_check_control_plane(const tlm_engine_opts *o, long timeout_ms,
				   tlm_engine_cp_check *out, tlm_error *err)
{
	tlm_client_opts co = TLM_CLIENT_OPTS_INIT;
	tlm_client_reach reach;
	tlm_client *c = NULL;
	char shown[512];
	int rc;

	memset(out, 0, sizeof(*out));
	if ((rc = tlm_eng__opts_check(o, err)) != 0)
		return rc;
	tlm_eng__client_opts(o, o->control_plane, 0, 1, &co);
	co.timeout_ms = timeout_ms;
	co.connect_timeout_ms = timeout_ms;
	/* One attempt: a doctor reports what it sees; a run's retries would
	 * stretch an unreachable control plane past the timeout asked for. */
	co.retry_max_attempts = 1;
	co.rate_rps = 0;
	if ((rc = tlm_client_new(&c, &co, err)) != 0)
		return rc;
	/* The preflight's request: it needs the key in v2 and exists in v1. */
	rc = tlm_client_get(c, "/v1/agents?limit=1", NULL, &out->status, err);
	tlm_client_reach_get(c, &reach);
	out->server_date = reach.server_date;
	tlm_client_free(c);
	if (rc != 0 && out->status == 0) {
		/* The URL may carry a password: never shown as given. */
		tlm_redact_url(shown, sizeof(shown), o->control_plane);
		out->unreachable = 1;
		if (strstr(err->message, shown) == NULL) {
			tlm_error inner = *err;

			tlm_error_set(err, rc, "%s: %s", shown, inner.message);
		}
	}
	return rc;
}

int tlm_engine_check_nats(const tlm_engine_opts *o, long timeout_ms, tlm_error *err)
{
	tlm_watcher_opts wo = TLM_WATCHER_OPTS_INIT;
	tlm_watcher *w = NULL;
	int rc;

	if ((rc = tlm_eng__opts_check(o, err)) != 0)
		return rc;
	wo.url = o->nats_url;
	wo.creds_file = o->nats_creds_file;
	wo.token = o->nats_token;
	wo.ca_file = o->nats_ca_file;
	wo.cert_file = o->nats_cert_file;
	wo.key_file = o->nats_key_file;
	wo.connect_timeout_ms = timeout_ms;
	rc = tlm_watcher_new(&w, &wo, err);
	tlm_watcher_free(w);
	return rc;
}
