/*
 * libFuzzer target for the control-plane client's reply parsers
 * (src/client/parse.c): arbitrary bytes as a reply body.  The first byte picks
 * the parser, the rest is the input, so one corpus covers them all:
 *
 *   0 agent create reply   1 agent reply   2 team reply   3 task reply
 *   4 a list, paged: the same page fed until the pager stops
 *   5 error text (the next byte is the output buffer's size)
 *   6 Retry-After header value   7 retry_after_seconds of a 429 body
 *
 * Besides memory errors and undefined behaviour, it checks the promises of
 * src/client/client_internal.h: a parsed resource has a non-empty id when
 * one is needed and owns NUL-terminated strings; no parse error quotes the
 * body (a reply may carry secrets: the marker "s3cr3t" in the input must not
 * reach a message); paging always ends; error text is printable ASCII within
 * its buffer; retry delays are -1 or 0..86400 seconds.  And the fast
 * reading of a task create's id never answers where the parser would not,
 * nor with another id.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client/client_internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                                \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			fprintf(stderr, "fuzz_client: broken promise: %s (%s:%d)\n", #cond,        \
				__FILE__, __LINE__);                                               \
			abort();                                                                   \
		}                                                                                  \
	} while (0)

#define SECRET "s3cr3t"

static size_t touch(const char *s)
{
	return s ? strlen(s) : 0;
}

static void check_error(int rc, const tlm_error *err)
{
	if (rc == 0)
		return;
	CHECK(rc < 0);
	CHECK(err->message[0] != '\0');
	CHECK(strstr(err->message, SECRET) == NULL);
}

static void check_resource(int rc, const tlm_client_resource *r, const tlm_error *err, int is_task)
{
	check_error(rc, err);
	if (rc != 0) {
		/* Nothing owned after a failure. */
		CHECK(r->id == NULL && r->name == NULL && r->status == NULL && r->team_id == NULL &&
		      r->object == NULL);
		return;
	}
	CHECK(r->id != NULL && touch(r->id) > 0);
	CHECK(json_is_object(r->object));
	touch(r->status);
	if (is_task)
		CHECK(r->name == NULL);
	else
		CHECK(r->team_id == NULL);
	touch(r->name);
	touch(r->team_id);
}

/* The fast reading of a create's id (src/client/task_reply.c) answers only
 * where the parser succeeded, and with its id. */
static void check_task_id(const char *body, size_t len, int rc, const tlm_client_resource *r)
{
	char *id = NULL;
	int fast = tlm_client__task_reply_id_fast(body, len, &id);

	CHECK(fast == TLM_FAST_FOUND || fast == TLM_FAST_DECLINED || fast == TLM_FAST_NOMEM);
	CHECK((fast == TLM_FAST_FOUND) == (id != NULL));
	if (fast == TLM_FAST_FOUND)
		CHECK(rc == 0 && strcmp(id, r->id) == 0);
	free(id);
}

static void fuzz_resource(int which, const char *body, size_t len)
{
	tlm_client_resource r = TLM_CLIENT_RESOURCE_INIT;
	tlm_error err = TLM_ERROR_INIT;
	int rc;

	switch (which) {
	case 0: rc = tlm_client__parse_agent_create(&r, body, len, &err); break;
	case 1: rc = tlm_client__parse_agent(&r, body, len, &err); break;
	case 2: rc = tlm_client__parse_team(&r, body, len, &err); break;
	default: rc = tlm_client__parse_task(&r, body, len, &err); break;
	}
	check_resource(rc, &r, &err, which == 3);
	if (which == 3)
		check_task_id(body, len, rc, &r);
	tlm_client__resource_clear(&r);
	CHECK(r.id == NULL && r.object == NULL);
}

/* A server that answers every page with this body: paging must end, and
 * each item taken must be an array. */
static void fuzz_pager(const char *body, size_t len)
{
	static const char *const keys[] = { "agents", "teams", "tasks" };
	tlm_client_pager p;
	size_t limit = len > 0 ? (unsigned char)body[0] % 4 : 0, feeds = 0, before;
	int more = 1;

	tlm_client__pager_init(&p, keys[len % 3], limit);
	while (more) {
		tlm_error err = TLM_ERROR_INIT;
		json_t *items = NULL;
		int rc;

		before = p.offset;
		rc = tlm_client__pager_feed(&p, body, len, &items, &more, &err);
		check_error(rc, &err);
		feeds++;
		if (rc != 0) {
			CHECK(items == NULL && more == 0 && p.done);
		} else {
			size_t i;

			CHECK(json_is_array(items));
			for (i = 0; i < json_array_size(items); i++)
				CHECK(json_array_get(items, i) != NULL);
			if (more)
				CHECK(p.offset > before); /* progress, or it would never end */
		}
		json_decref(items);
		/* The same page twice is caught on the second feed. */
		CHECK(feeds <= 2 || !more);
	}
	CHECK(p.done);
	tlm_client__pager_clear(&p);
}

static void fuzz_error_text(const char *body, size_t len)
{
	size_t cap = len > 0 ? (unsigned char)body[0] : 0, i, n;
	char *out;

	if (len > 0) {
		body++;
		len--;
	}
	out = malloc(cap + 1);
	CHECK(out != NULL);
	out[cap] = 'Z'; /* must stay: nothing written past cap */
	tlm_client__error_text(out, cap, body, len);
	CHECK(out[cap] == 'Z');
	if (cap > 0) {
		n = strnlen(out, cap);
		CHECK(n < cap);
		/* No control or non-ASCII byte can forge a log line. */
		for (i = 0; i < n; i++)
			CHECK(out[i] >= 0x20 && out[i] < 0x7f);
	}
	free(out);
}

static void fuzz_retry(int which, const char *body, size_t len)
{
	long s;

	if (which == 6) {
		char *value = malloc(len + 1);

		CHECK(value != NULL);
		memcpy(value, body, len);
		value[len] = '\0';
		s = tlm_client__parse_retry_after(value);
		free(value);
	} else {
		s = tlm_client__body_retry_after(body, len);
	}
	CHECK(s == -1 || (s >= 0 && s <= 86400));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *body = (const char *)data + 1;
	size_t len = size > 0 ? size - 1 : 0;
	int which;

	if (size == 0)
		return 0;
	which = data[0] % 8;
	if (which <= 3)
		fuzz_resource(which, body, len);
	else if (which == 4)
		fuzz_pager(body, len);
	else if (which == 5)
		fuzz_error_text(body, len);
	else
		fuzz_retry(which, body, len);
	return 0;
}
