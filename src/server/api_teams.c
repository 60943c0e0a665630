/* /v1/teams: create (with agentIds), get, list, put, delete. */
#include "server/fields.h"
#include "server/server_internal.h"

static const tlm_field team_fields[] = {
	{ "name", TLM_F_STRING, 256, 1, NULL },
	{ "agentIds", TLM_F_STRINGS, 10000, 0, NULL },
	{ NULL, 0, 0, 0, NULL },
};

static const tlm_field team_put_fields[] = {
	{ "name", TLM_F_STRING, 256, 0, NULL },
	{ "agentIds", TLM_F_STRINGS, 10000, 0, NULL },
	{ NULL, 0, 0, 0, NULL },
};

static void answer_team(tlm_srv_response *res, int rc, json_t *team, int status)
{
	if (rc == TLM_ENOTFOUND)
		tlm_srv__error(res, 404, "team not found");
	else if (rc != 0)
		tlm_srv__error(res, 500, "store failure");
	else
		tlm_srv__json(res, status, json_pack("{s:O}", "team", team));
}

void tlm_api_team_create(tlm_server *srv, const tlm_srv_request *req, tlm_srv_response *res)
{
	json_t *body = tlm_srv__body_object(req, res), *doc, *team = NULL;
	int rc;

	if (body == NULL || (doc = tlm_srv__fields(body, team_fields, res)) == NULL) {
		json_decref(body);
		return;
	}
	if (json_object_get(doc, "agentIds") == NULL)
		json_object_set_new(doc, "agentIds", json_array());
	rc = tlm_store_insert(srv->store, TLM_STORE_TEAMS, NULL, doc, &team);
	answer_team(res, rc, team, 201);
	if (rc == 0)
		tlm_srv__publish(srv, "hi.agents.team.created", json_incref(res->body));
	json_decref(team);
	json_decref(doc);
	json_decref(body);
}

void tlm_api_team_list(tlm_server *srv, const tlm_srv_request *req, tlm_srv_response *res)
{
	size_t limit, offset, total;
	json_t *items;

	if (tlm_srv__paging(req, res, &limit, &offset) != 0)
		return;
	if (tlm_store_list(srv->store, TLM_STORE_TEAMS, NULL, limit, offset, &items, &total) != 0) {
		tlm_srv__error(res, 500, "store failure");
		return;
	}
	tlm_srv__json(res, 200,
		      json_pack("{s:o,s:I,s:I,s:I}", "teams", items, "total", (json_int_t)total,
				"limit", (json_int_t)limit, "offset", (json_int_t)offset));
}

void tlm_api_team_get(tlm_server *srv, const tlm_srv_request *req, tlm_srv_response *res)
{
	json_t *team = NULL;
	int rc = tlm_store_get(srv->store, TLM_STORE_TEAMS, NULL, req->params[0], &team);

	answer_team(res, rc, team, 200);
	json_decref(team);
}

void tlm_api_team_put(tlm_server *srv, const tlm_srv_request *req, tlm_srv_response *res)
{
	json_t *body = tlm_srv__body_object(req, res), *patch, *team = NULL;
	int rc;

	if (body == NULL || (patch = tlm_srv__fields(body, team_put_fields, res)) == NULL) {
		json_decref(body);
		return;
	}
	rc = tlm_store_patch(srv->store, TLM_STORE_TEAMS, NULL, req->params[0], patch, &team);
	answer_team(res, rc, team, 200);
	if (rc == 0)
		tlm_srv__publish(srv, "hi.agents.team.updated", json_incref(team));
	json_decref(team);
	json_decref(patch);
	json_decref(body);
}

/* The team's tasks survive, as upstream. */
void tlm_api_team_delete(tlm_server *srv, const tlm_srv_request *req, tlm_srv_response *res)
{
	int rc = tlm_store_delete(srv->store, TLM_STORE_TEAMS, req->params[0]);

	if (rc != 0) {
		answer_team(res, rc, NULL, 200);
		return;
	}
	tlm_srv__json(res, 200, json_pack("{s:s}", "deleted", req->params[0]));
	tlm_srv__publish(srv, "hi.agents.team.deleted", json_pack("{s:s}", "id", req->params[0]));
}
