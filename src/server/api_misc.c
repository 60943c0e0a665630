/* Health, version, and the fault-injection API. */
#include <stdlib.h>

#include "server/chaos.h"
#include "server/events.h"
#include "server/server_internal.h"

/* Health says the truth about NATS: "disabled" without --nats, else the
 * connection's state and the event counters. */
void tlm_api_health(tlm_server *srv, const tlm_srv_request *req, tlm_srv_response *res)
{
	uint64_t published = 0, dropped = 0;
	json_t *nats;

	(void)req;
	if (srv->events == NULL) {
		nats = json_pack("{s:s}", "state", "disabled");
	} else {
		tlm_events_stats(srv->events, &published, &dropped);
		nats = json_pack("{s:s,s:I,s:I,s:b}", "state", tlm_events_state(srv->events),
				 "published", (json_int_t)published, "dropped", (json_int_t)dropped,
				 "paused", tlm_chaos_nats_off(srv->chaos));
	}
	tlm_srv__json(res, 200,
		      json_pack("{s:s,s:s,s:s,s:o}", "status", "ok", "name", "telemachy", "version",
				TLM_VERSION, "nats", nats));
}

void tlm_api_version(tlm_server *srv, const tlm_srv_request *req, tlm_srv_response *res)
{
	(void)srv;
	(void)req;
	tlm_srv__json(res, 200,
		      json_pack("{s:s,s:s,s:s}", "name", "telemachy", "version", TLM_VERSION, "api",
				"agamemnon-v2"));
}

void tlm_api_chaos_list(tlm_server *srv, const tlm_srv_request *req, tlm_srv_response *res)
{
	(void)req;
	tlm_srv__json(res, 200, tlm_chaos_list(srv->chaos));
}

/* Window faults take effect at once: refuse closes the listener now. */
void tlm_api_chaos_add(tlm_server *srv, const tlm_srv_request *req, tlm_srv_response *res)
{
	tlm_error err = TLM_ERROR_INIT;
	json_t *params = req->body_len ? tlm_srv__body_object(req, res) : json_object();
	char *id = NULL;

	if (params == NULL)
		return;
	if (tlm_chaos_add(srv->chaos, req->params[0], params, &id, &err) != 0) {
		tlm_srv__error(res, 400, "%s", err.message);
	} else {
		tlm_srv__json(res, 201, json_pack("{s:s,s:s}", "id", id, "type", req->params[0]));
		tlm_srv__apply_windows(srv);
	}
	free(id);
	json_decref(params);
}

void tlm_api_chaos_remove(tlm_server *srv, const tlm_srv_request *req, tlm_srv_response *res)
{
	if (tlm_chaos_remove(srv->chaos, req->params[0]) != 0) {
		tlm_srv__error(res, 404, "no fault %s", req->params[0]);
		return;
	}
	tlm_srv__json(res, 200, json_pack("{s:s}", "deleted", req->params[0]));
	tlm_srv__apply_windows(srv);
}
