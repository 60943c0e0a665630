/* Helpers every handler uses: JSON answers, errors, the body, paging. */
#include <errno.h>
#include <microhttpd.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/chaos.h"
#include "server/events.h"
#include "server/server_internal.h"

void tlm_srv__json(tlm_srv_response *res, int status, json_t *body)
{
	json_decref(res->body);
	res->status = status;
	res->body = body;
}

void tlm_srv__error(tlm_srv_response *res, int status, const char *fmt, ...)
{
	char msg[512], *p;
	json_t *text;
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	/* A message may quote a path or a value the client sent, which need not
	 * be UTF-8 (or was cut inside a character): a JSON string must be, and
	 * the answer lost its body (found by fuzzing, tests/fuzz/corpus/server).
	 * Such a message keeps its ASCII. */
	if ((text = json_string(msg)) == NULL) {
		for (p = msg; *p; p++)
			if ((unsigned char)*p >= 0x80)
				*p = '?';
		text = json_string(msg);
	}
	tlm_srv__json(res, status, json_pack("{s:o}", "error", text));
}

json_t *tlm_srv__body_object(const tlm_srv_request *req, tlm_srv_response *res)
{
	json_error_t jerr;
	json_t *body;

	if (req->body_len == 0) {
		tlm_srv__error(res, 400, "a JSON object body is required");
		return NULL;
	}
	body = json_loadb(req->body, req->body_len, JSON_REJECT_DUPLICATES, &jerr);
	if (body == NULL) {
		tlm_srv__error(res, 400, "invalid JSON: %s (line %d, column %d)", jerr.text,
			       jerr.line, jerr.column);
		return NULL;
	}
	if (!json_is_object(body)) {
		json_decref(body);
		tlm_srv__error(res, 400, "the body must be a JSON object");
		return NULL;
	}
	return body;
}

/* A request made in process (tests/fuzz/fuzz_server.c) has no connection,
 * hence no query arguments. */
const char *tlm_srv__query(const tlm_srv_request *req, const char *name)
{
	if (req->conn == NULL)
		return NULL;
	return MHD_lookup_connection_value((struct MHD_Connection *)req->conn,
					   MHD_GET_ARGUMENT_KIND, name);
}

static int parse_size(const char *s, size_t *out)
{
	char *end;
	unsigned long long v;

	if (s == NULL || *s < '0' || *s > '9')
		return -1;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (errno != 0 || *end != '\0')
		return -1;
	*out = (size_t)v;
	return 0;
}

int tlm_srv__paging(const tlm_srv_request *req, tlm_srv_response *res, size_t *limit,
		    size_t *offset)
{
	const char *l = tlm_srv__query(req, "limit"), *o = tlm_srv__query(req, "offset");

	*limit = 100;
	*offset = 0;
	if ((l != NULL && parse_size(l, limit) != 0) || (o != NULL && parse_size(o, offset) != 0)) {
		tlm_srv__error(res, 400, "limit and offset must be non-negative integers");
		return -1;
	}
	if (*limit < 1)
		*limit = 1;
	if (*limit > 1000)
		*limit = 1000;
	return 0;
}

/* The nats-off fault is a window that ends by itself, so it is read here, at
 * each publish, rather than switched on and off by timers. */
void tlm_srv__publish(tlm_server *srv, const char *subject, json_t *payload)
{
	if (srv->events == NULL) {
		json_decref(payload);
		return;
	}
	tlm_events_pause(srv->events, tlm_chaos_nats_off(srv->chaos));
	tlm_events_publish(srv->events, subject, payload);
}

void tlm_srv__publish_text(tlm_server *srv, const char *subject, const char *text, size_t len)
{
	if (srv->events == NULL)
		return;
	tlm_events_pause(srv->events, tlm_chaos_nats_off(srv->chaos));
	tlm_events_publish_text(srv->events, subject, text, len);
}

char *tlm_srv__wrap(const char *key, const char *doc_text, size_t *len)
{
	size_t k = strlen(key), n = strlen(doc_text);
	char *out = malloc(k + n + 6);

	if (out == NULL)
		return NULL;
	/* {"key":doc}, as json_dumps(JSON_COMPACT) writes {s:O}. */
	out[0] = '{';
	out[1] = '"';
	memcpy(out + 2, key, k);
	memcpy(out + 2 + k, "\":", 2);
	memcpy(out + 4 + k, doc_text, n);
	out[4 + k + n] = '}';
	out[5 + k + n] = '\0';
	*len = k + n + 5;
	return out;
}
