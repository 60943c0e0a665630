/* /v1/agents: create, get, by-name, list, patch, start, stop, delete. */
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "server/fields.h"
#include "server/runner.h"
#include "server/server_internal.h"

#define NAME_MAX_LEN 256
#define LIST_MAX     1000

static const tlm_field agent_fields[] = {
	{ "name", TLM_F_STRING, NAME_MAX_LEN, 1, NULL },
	{ "label", TLM_F_STRING, NAME_MAX_LEN, 0, NULL },
	{ "program", TLM_F_STRING, 1024, 0, NULL },
	{ "programArgs", TLM_F_STRINGS, LIST_MAX, 0, NULL },
	{ "workingDirectory", TLM_F_STRING, 4096, 0, NULL },
	{ "taskDescription", TLM_F_STRING, 4096, 0, NULL },
	{ "tags", TLM_F_STRINGS, LIST_MAX, 0, NULL },
	{ "owner", TLM_F_STRING, NAME_MAX_LEN, 0, NULL },
	{ "role", TLM_F_STRING, NAME_MAX_LEN, 0, NULL },
	{ "host", TLM_F_STRING, NAME_MAX_LEN, 0, NULL },
	/* Ours, beyond the contract: docker settings, model, environment. */
	{ "model", TLM_F_STRING, NAME_MAX_LEN, 0, NULL },
	{ "image", TLM_F_STRING, 1024, 0, NULL },
	{ "cpus", TLM_F_INT, 256, 0, NULL },
	{ "memory", TLM_F_STRING, 32, 0, NULL },
	{ "env", TLM_F_OBJECT, LIST_MAX, 0, NULL },
	{ NULL, 0, 0, 0, NULL }
};

/* Patching may also set the status; nothing is required. */
static const char *const agent_states[] = { "online", "offline", NULL };

static const char *str(const json_t *doc, const char *key, const char *dflt)
{
	const char *s = json_string_value(json_object_get(doc, key));

	return s != NULL ? s : dflt;
}

/* Appends s to buf as one NATS subject token: '.', '*', '>', white space and
 * control bytes (CR/LF could inject protocol lines) and non-ASCII bytes
 * become '_'.  host and name are at most 256 bytes (validated), buf 600. */
static void append_token(char *buf, size_t size, const char *s)
{
	size_t n = strlen(buf);

	for (; *s && n + 1 < size; s++)
		buf[n++] =
			(unsigned char)*s <= ' ' || (unsigned char)*s >= 0x7f || strchr(".*>", *s)
				? '_'
				: *s;
	buf[n] = '\0';
}

/* hi.agents.<host>.<name>.<verb> */
static void publish_agent(tlm_server *srv, const json_t *agent, const char *verb, json_t *payload)
{
	char subject[600] = "hi.agents.";

	append_token(subject, sizeof(subject), str(agent, "host", "local"));
	strcat(subject, ".");
	append_token(subject, sizeof(subject), str(agent, "name", "unknown"));
	snprintf(subject + strlen(subject), sizeof(subject) - strlen(subject), ".%s", verb);
	tlm_srv__publish(srv, subject, payload);
}

void tlm_api_agent_create(tlm_server *srv, const tlm_srv_request *req, tlm_srv_response *res)
{
	json_t *body = tlm_srv__body_object(req, res), *doc, *agent = NULL;
	int rc;

	if (body == NULL || (doc = tlm_srv__fields(body, agent_fields, res)) == NULL) {
		json_decref(body);
		return;
	}
	/* As upstream does (--upstream-agent-fields): the keys beyond the
	 * contract's are dropped without a word. */
	if (srv->upstream_agent_fields) {
		static const char *const ours[] = { "model", "image", "cpus", "memory", "env" };
		size_t i;

		for (i = 0; i < sizeof(ours) / sizeof(ours[0]); i++)
			json_object_del(doc, ours[i]);
	}
	json_object_set_new(doc, "status", json_string("offline"));
	rc = tlm_store_insert(srv->store, TLM_STORE_AGENTS, NULL, doc, &agent);
	if (rc == TLM_ECONFLICT)
		tlm_srv__error(res, 409, "an agent named \"%s\" exists", str(doc, "name", ""));
	else if (rc != 0)
		tlm_srv__error(res, 500, "store failure");
	else {
		tlm_srv__json(
			res, 201,
			json_pack("{s:O,s:O}", "agent", agent, "id", json_object_get(agent, "id")));
		publish_agent(srv, agent, "created", json_incref(res->body));
	}
	json_decref(agent);
	json_decref(doc);
	json_decref(body);
}

void tlm_api_agent_list(tlm_server *srv, const tlm_srv_request *req, tlm_srv_response *res)
{
	size_t limit, offset, total;
	json_t *items;

	if (tlm_srv__paging(req, res, &limit, &offset) != 0)
		return;
	if (tlm_store_list(srv->store, TLM_STORE_AGENTS, NULL, limit, offset, &items, &total) !=
	    0) {
		tlm_srv__error(res, 500, "store failure");
		return;
	}
	tlm_srv__json(res, 200,
		      json_pack("{s:o,s:I,s:I,s:I}", "agents", items, "total", (json_int_t)total,
				"limit", (json_int_t)limit, "offset", (json_int_t)offset));
}

/* Answers {"agent":A} or 404 for a lookup result. */
static void answer_agent(tlm_srv_response *res, int rc, json_t *agent)
{
	if (rc == TLM_ENOTFOUND)
		tlm_srv__error(res, 404, "agent not found");
	else if (rc != 0)
		tlm_srv__error(res, 500, "store failure");
	else
		tlm_srv__json(res, 200, json_pack("{s:o}", "agent", agent));
}

void tlm_api_agent_by_name(tlm_server *srv, const tlm_srv_request *req, tlm_srv_response *res)
{
	json_t *agent = NULL;
	int rc = tlm_store_find_agent(srv->store, req->params[0], &agent);

	answer_agent(res, rc, agent);
}

void tlm_api_agent_get(tlm_server *srv, const tlm_srv_request *req, tlm_srv_response *res)
{
	json_t *agent = NULL;
	int rc = tlm_store_get(srv->store, TLM_STORE_AGENTS, NULL, req->params[0], &agent);

	/* Two statements: argument evaluation order must not decide. */
	answer_agent(res, rc, agent);
}

static tlm_field patch_fields[sizeof(agent_fields) / sizeof(agent_fields[0]) + 1];

/* The create fields, none required, plus the status. */
static void init_patch_fields(void)
{
	size_t i;

	for (i = 0; agent_fields[i].key != NULL; i++) {
		patch_fields[i] = agent_fields[i];
		patch_fields[i].required = 0;
	}
	patch_fields[i++] = (tlm_field){ "status", TLM_F_STRING, 16, 0, agent_states };
	patch_fields[i] = (tlm_field){ NULL, 0, 0, 0, NULL };
}

void tlm_api_agent_patch(tlm_server *srv, const tlm_srv_request *req, tlm_srv_response *res)
{
	static pthread_once_t once = PTHREAD_ONCE_INIT;
	json_t *body = tlm_srv__body_object(req, res), *patch, *agent = NULL;
	int rc;

	pthread_once(&once, init_patch_fields);
	if (body == NULL || (patch = tlm_srv__fields(body, patch_fields, res)) == NULL) {
		json_decref(body);
		return;
	}
	rc = tlm_store_patch(srv->store, TLM_STORE_AGENTS, NULL, req->params[0], patch, &agent);
	if (rc == 0) {
		publish_agent(srv, agent, "updated", json_incref(agent));
		/* Only the status matters to the runner (online/offline); other
		 * fields are read when the agent's next task starts.  A wake
		 * makes the runner rescan every agent. */
		if (json_object_get(patch, "status") != NULL)
			tlm_runner_wake(srv->runner);
	}
	answer_agent(res, rc, agent);
	json_decref(patch);
	json_decref(body);
}

/* start/stop: {"id":ID,"status":...}; idempotent. */
static void set_state(tlm_server *srv, const tlm_srv_request *req, tlm_srv_response *res,
		      const char *state)
{
	json_t *patch = json_pack("{s:s}", "status", state), *agent = NULL;
	int rc = tlm_store_patch(srv->store, TLM_STORE_AGENTS, NULL, req->params[0], patch, &agent);

	json_decref(patch);
	if (rc != 0) {
		answer_agent(res, rc, NULL);
		return;
	}
	tlm_srv__json(res, 200,
		      json_pack("{s:O,s:s}", "id", json_object_get(agent, "id"), "status", state));
	/* Upstream publishes on the literal hi.agents.local.unknown.updated; we
	 * name the agent (docs/serve.md). */
	publish_agent(srv, agent, "updated", json_incref(res->body));
	if (strcmp(state, "offline") == 0)
		tlm_runner_stop_agent(srv->runner, req->params[0]);
	else
		tlm_runner_wake(srv->runner);
	json_decref(agent);
}

void tlm_api_agent_start(tlm_server *srv, const tlm_srv_request *req, tlm_srv_response *res)
{
	set_state(srv, req, res, "online");
}

void tlm_api_agent_stop(tlm_server *srv, const tlm_srv_request *req, tlm_srv_response *res)
{
	set_state(srv, req, res, "offline");
}

void tlm_api_agent_delete(tlm_server *srv, const tlm_srv_request *req, tlm_srv_response *res)
{
	json_t *agent = NULL;
	int rc = tlm_store_get(srv->store, TLM_STORE_AGENTS, NULL, req->params[0], &agent);

	if (rc == 0)
		rc = tlm_store_delete(srv->store, TLM_STORE_AGENTS, req->params[0]);
	if (rc != 0) {
		answer_agent(res, rc, NULL);
		json_decref(agent);
		return;
	}
	tlm_runner_stop_agent(srv->runner, req->params[0]);
	tlm_srv__json(res, 200, json_pack("{s:s}", "deleted", req->params[0]));
	publish_agent(srv, agent, "deleted", json_pack("{s:s}", "id", req->params[0]));
	json_decref(agent);
}
