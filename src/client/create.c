/* Creating a named resource exactly once although replies get lost
 * (docs/lessons.md #3), synchronously, for one-shot commands and tests: a
 * create whose outcome is unknown is never sent again before the name has
 * been looked up (ops.c).  The engine does the same asynchronously. */
#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <curl/curl.h>

#include "client/client_internal.h"
#include "client/sync.h"
#include "util/json.h"
#include "telemachy/client.h"

typedef int (*parse_fn)(tlm_client_resource *out, const char *body, size_t len, tlm_error *err);

/* Takes the id out of a parsed reply. */
static int take_id(parse_fn parse, const sync_res *s, char **id, tlm_error *err)
{
	tlm_client_resource res = TLM_CLIENT_RESOURCE_INIT;
	int rc = parse(&res, s->raw, s->len, err);

	if (rc == 0) {
		*id = res.id;
		res.id = NULL;
	}
	tlm_client__resource_clear(&res);
	return rc;
}

/* After an unknown outcome: adopt what exists.  A 404 right away does not
 * prove the create did not happen — the server may still be working on it
 * (that is how the request timed out) — so look again after settle_ms. */
static int resolve(tlm_client *c, tlm_client_res kind, const char *name, long settle_ms,
		   char **id_out, tlm_error *err)
{
	return tlm_client__find_settled(c, kind, name, settle_ms, id_out, err);
}

/* One POST.  0 with *id, TLM_ENOTFOUND-free: the caller sees UNKNOWN as
 * *unknown = 1 and rc 0 without an id. */
static int post_once(tlm_client *c, tlm_client_res kind, const char *text, char **id_out,
		     int *unknown, tlm_error *err)
{
	const char *path = kind == TLM_CLIENT_AGENT ? "/v1/agents" : "/v1/teams";
	parse_fn parse =
		kind == TLM_CLIENT_AGENT ? tlm_client__parse_agent_create : tlm_client__parse_team;
	sync_res s;
	int rc;

	*unknown = 0;
	rc = tlm_client__sync_req(c, "POST", path, text, TLM_CLIENT_POST_CREATE, &s, err);
	if (rc != 0)
		return rc;
	if (s.outcome == TLM_CLIENT_DONE) {
		rc = take_id(parse, &s, id_out, err);
	} else if (s.outcome == TLM_CLIENT_UNKNOWN) {
		*unknown = 1;
	} else {
		rc = s.rc != 0 ? s.rc : TLM_ERROR;
		if (err != NULL)
			*err = s.err;
	}
	tlm_client__sync_clear(&s);
	return rc;
}

int tlm_client_create(tlm_client *c, tlm_client_res kind, const char *name, const json_t *body,
		      tlm_client_lookup lookup, char **id_out, tlm_error *err)
{
	tlm_backoff bo;
	json_t *obj = NULL;
	char *text = NULL;
	uint64_t delay;
	int rc = 0, unknown = 0;

	assert(c != NULL && name != NULL && id_out != NULL);
	*id_out = NULL;
	obj = body != NULL ? json_deep_copy(body) : json_object();
	if (obj == NULL || !json_is_object(obj) ||
	    json_object_set_new(obj, "name", json_string(name)) != 0 ||
	    (text = tlm_json_dump_body(obj)) == NULL) {
		rc = tlm_error_set(err, TLM_EINVALID, "create %s: body must be a JSON object",
				   name);
		goto done;
	}
	tlm_client__backoff_init(&bo, tlm_client__backoff_opts(c), NULL, NULL);
	if (lookup != TLM_CLIENT_POST_FIRST) {
		rc = resolve(c, kind, name,
			     lookup == TLM_CLIENT_LOOKUP_FIRST ? tlm_client__timeout_ms(c) : 0,
			     id_out, err);
		if (rc != TLM_ENOTFOUND)
			goto done;
	}
	for (;;) {
		rc = post_once(c, kind, text, id_out, &unknown, err);
		if (rc != 0 || !unknown)
			goto done;
		/* What slips through (a server slower than settle) is found by
		 * name at teardown and reconcile, which delete every resource
		 * with the run's names, not only the recorded ids. */
		rc = resolve(c, kind, name, tlm_client__timeout_ms(c), id_out, err);
		if (rc != TLM_ENOTFOUND)
			goto done;
		rc = tlm_client__backoff_next(&bo, -1, &delay, err);
		if (rc != 0)
			goto done;
		tlm_client__wait_ms(c, delay);
	}
done:
	free(text);
	json_decref(obj);
	return rc;
}

int tlm_client_create_agent(tlm_client *c, const char *name, const json_t *body, char **id_out,
			    tlm_error *err)
{
	return tlm_client_create(c, TLM_CLIENT_AGENT, name, body, TLM_CLIENT_POST_FIRST, id_out,
				 err);
}
