/*
 * libFuzzer target for the NATS task-event parser (tlm_client__parse_event,
 * src/client/parse.c): the input is a subject, a newline, then the payload.
 *
 * Besides memory errors and undefined behaviour, it checks the parser's
 * promises (src/client/client_internal.h): an event is only ever parsed
 * from a subject hi.tasks.<team>.<task>.<verb>, with the team and task
 * taken from it unchanged; it has a non-empty status, and its state is that
 * status's; a failure owns nothing and says why.  And the fast reading of
 * a payload's status (src/client/event_status.c) never differs from
 * jansson's: where it answers, jansson finds the same status or none.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "client/client_internal.h"
#include "util/json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define CHECK(cond)                                                                                \
	do {                                                                                       \
		if (!(cond)) {                                                                     \
			fprintf(stderr, "fuzz_event: broken promise: %s (%s:%d)\n", #cond,         \
				__FILE__, __LINE__);                                               \
			abort();                                                                   \
		}                                                                                  \
	} while (0)

/* The fast reading against jansson's on the same payload. */
static void check_fast(const char *payload, size_t len)
{
	char *fast = NULL;
	int rc = tlm_client__event_status_fast(payload, len, &fast), oom = 0;
	json_t *root;
	const char *ref;

	CHECK(rc == TLM_FAST_FOUND || rc == TLM_FAST_NONE || rc == TLM_FAST_DECLINED ||
	      rc == TLM_FAST_NOMEM);
	CHECK((rc == TLM_FAST_FOUND) == (fast != NULL));
	if (rc == TLM_FAST_FOUND || rc == TLM_FAST_NONE) {
		root = tlm_json_loadb(payload, len, 0, NULL, &oom);
		ref = tlm_client__event_status_json(root);
		if (!oom)
			CHECK(fast == NULL ? ref == NULL : (ref != NULL && strcmp(fast, ref) == 0));
		json_decref(root);
	}
	free(fast);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *nl = memchr(data, '\n', size);
	size_t slen = nl ? (size_t)(nl - (const char *)data) : size;
	const char *payload = nl ? nl + 1 : NULL;
	size_t plen = nl ? size - slen - 1 : 0;
	tlm_client_event ev = TLM_CLIENT_EVENT_INIT;
	tlm_error err = TLM_ERROR_INIT;
	char *subject = malloc(slen + 1), expect[600];
	int rc;

	CHECK(subject != NULL);
	memcpy(subject, data, slen);
	subject[slen] = '\0'; /* a subject is a C string: a NUL ends it early */
	if (payload != NULL && plen > 0 && plen <= TLM_CLIENT_MAX_BODY)
		check_fast(payload, plen);
	rc = tlm_client__parse_event(&ev, subject, payload, plen, &err);
	if (rc != 0) {
		CHECK(rc < 0 && err.message[0] != '\0');
		CHECK(ev.team_id == NULL && ev.task_id == NULL && ev.status == NULL);
	} else {
		CHECK(strncmp(subject, "hi.tasks.", 9) == 0);
		CHECK(ev.team_id && ev.task_id && ev.status);
		CHECK(ev.team_id[0] && ev.task_id[0] && ev.status[0]);
		CHECK(strchr(ev.team_id, '.') == NULL && strchr(ev.task_id, '.') == NULL);
		if (strlen(subject) < sizeof(expect) - 1) {
			snprintf(expect, sizeof(expect), "hi.tasks.%s.%s.", ev.team_id, ev.task_id);
			CHECK(strncmp(subject, expect, strlen(expect)) == 0);
		}
		CHECK(ev.state == tlm_client__task_state(ev.status));
	}
	tlm_client__event_clear(&ev);
	free(subject);
	return 0;
}
