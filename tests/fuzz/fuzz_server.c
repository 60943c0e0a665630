/*
 * libFuzzer target for the built-in control plane's request handling
 * (src/server): requests go to the router (tlm_srv__route), the entry the
 * HTTP layer calls with a method, a path and a body once a request is
 * complete, in process and without sockets.
 *
 * An input is up to 8 requests separated by "\n---\n"; each is a line
 * "METHOD PATH" and then the body.  Each input gets a fresh server (an
 * in-memory store and an empty fault table), so a sequence can create and
 * then read, patch or delete, and nothing carries over to the next input.
 * There is no agent runner (nothing is ever executed, whatever program an
 * input names), no NATS and no HTTP listener; faults added through
 * /v1/chaos are stored but not applied (a delay would only slow the fuzzer).
 *
 * Besides memory errors and undefined behaviour, it checks what docs/serve.md
 * promises of every answer: a real HTTP status; a body, when there is one,
 * that is a JSON object and can be written out; an error status (other than
 * 404 for an unknown path) with {"error": "..."}.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server/chaos.h"
#include "server/server_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                                \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			fprintf(stderr, "fuzz_server: broken promise: %s (%s:%d)\n", #cond,        \
				__FILE__, __LINE__);                                               \
			abort();                                                                   \
		}                                                                                  \
	} while (0)

#define MAX_REQUESTS 8
#define SEPARATOR    "\n---\n"

static void check_response(const tlm_srv_response *res)
{
	char *text;

	CHECK(res->status >= 100 && res->status <= 599);
	if (res->body == NULL) {
		/* Empty bodies: an unknown path, and nothing else that errs. */
		CHECK(res->status < 400 || res->status == 404);
		return;
	}
	CHECK(json_is_object(res->body));
	text = json_dumps(res->body, JSON_COMPACT);
	CHECK(text != NULL);
	free(text);
	if (res->status >= 400)
		CHECK(json_is_string(json_object_get(res->body, "error")));
}

/* Runs one "METHOD PATH\nBODY" request. */
static void one_request(tlm_server *srv, const char *text, size_t len)
{
	const char *nl = memchr(text, '\n', len), *sp;
	size_t head = nl ? (size_t)(nl - text) : len;
	char *line = malloc(head + 1);
	tlm_srv_response res = { 500, NULL, 0 };
	tlm_srv_request req;

	CHECK(line != NULL);
	memcpy(line, text, head);
	line[head] = '\0';
	sp = strchr(line, ' ');
	memset(&req, 0, sizeof(req));
	if (sp == NULL || strlen(line) != head) {
		free(line); /* no method, or a NUL in the line: not an HTTP request */
		return;
	}
	line[sp - line] = '\0';
	req.method = line;
	req.path = sp + 1;
	/* The HTTP layer's URL has no query string (it is read through the
	 * connection, which in-process requests do not have). */
	line[head] = '\0';
	if (strchr(req.path, '?') != NULL)
		*strchr(sp + 1, '?') = '\0';
	req.body = nl ? nl + 1 : "";
	req.body_len = nl ? len - head - 1 : 0;
	if (req.body_len > TLM_SRV_BODY_MAX) {
		free(line); /* answered 413 by the HTTP layer */
		return;
	}
	tlm_srv__route(srv, &req, &res);
	if (getenv("FUZZ_SERVER_TRACE") != NULL) { /* tests/fuzz/README.md */
		char *dump = res.body ? json_dumps(res.body, JSON_COMPACT) : NULL;

		fprintf(stderr, "%s %s (%zu bytes) -> %d %s\n", req.method, req.path, req.body_len,
			res.status, dump ? dump : "(no body)");
		free(dump);
	}
	check_response(&res);
	json_decref(res.body);
	free(line);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *p = (const char *)data, *end = p + size;
	tlm_server *srv = calloc(1, sizeof(*srv));
	tlm_error err = TLM_ERROR_INIT;
	int n;

	CHECK(srv != NULL);
	CHECK(tlm_store_open(&srv->store, NULL, 0, &err) == 0);
	CHECK(tlm_chaos_new(&srv->chaos) == 0);
	for (n = 0; n < MAX_REQUESTS && p < end; n++) {
		const char *sep = memmem(p, (size_t)(end - p), SEPARATOR, strlen(SEPARATOR));
		size_t len = sep ? (size_t)(sep - p) : (size_t)(end - p);

		one_request(srv, p, len);
		p += len + (sep ? strlen(SEPARATOR) : 0);
	}
	tlm_chaos_free(srv->chaos);
	tlm_store_close(srv->store);
	free(srv);
	return 0;
}
