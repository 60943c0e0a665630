/*
 * The status of a task event, read without building a document
 * (docs/internals/events.md#reading-an-events-status).  Every status change
 * of every task arrives as an event whose payload is the whole task
 * document, and all the watcher needs of it is one string.
 *
 * The places a status may come from and their order are those of
 * tlm_client__event_status_json (docs/contract.md §7), and so is the rule
 * that a later duplicate key replaces an earlier one: each new value at a
 * place forgets what the place held.  tests/fuzz/fuzz_event.c checks the
 * two readings against each other.
 */
#include <stdlib.h>
#include <string.h>

#include "client/client_internal.h"

/* The places, in precedence order; the key codes of tlm_client__scan. */
enum source { SRC_TASK, SRC_ROOT, SRC_DATA, SRC_NEW, SRC_COUNT };
enum { KEY_TASK = 1, KEY_STATUS, KEY_DATA, KEY_NEWSTATUS };
static const char *const names[] = { "task", "status", "data", "newStatus" };

typedef struct reader {
	char *found[SRC_COUNT];
} reader;

/* Which place a value at depth with these keys fills, or -1; *is_status
 * says whether the value itself is the status (else it is the object that
 * would hold one, and only forgets the old). */
static int place_of(int depth, const int *key, int *is_status)
{
	*is_status = depth == 2 || key[1] == KEY_STATUS || key[1] == KEY_NEWSTATUS;
	if (depth == 1) {
		switch (key[1]) {
		case KEY_TASK: return SRC_TASK;
		case KEY_STATUS: return SRC_ROOT;
		case KEY_DATA: return SRC_DATA;
		case KEY_NEWSTATUS: return SRC_NEW;
		default: return -1;
		}
	}
	if (key[2] != KEY_STATUS)
		return -1;
	return key[1] == KEY_TASK ? SRC_TASK : key[1] == KEY_DATA ? SRC_DATA : -1;
}

static int on_value(void *ctx, int depth, const int *key, tlm_scan_type type,
		    const unsigned char *s, size_t len)
{
	reader *r = ctx;
	int is_status, src = place_of(depth, key, &is_status);

	if (src < 0)
		return 0;
	free(r->found[src]);
	r->found[src] = NULL;
	/* Only a non-empty string is a status; anything else is none. */
	if (!is_status || type != TLM_SCAN_STRING || len == 0)
		return 0;
	r->found[src] = strndup((const char *)s, len);
	return r->found[src] == NULL;
}

int tlm_client__event_status_fast(const char *payload, size_t len, char **status)
{
	reader r = { { NULL } };
	tlm_scan_visitor v = { names, sizeof(names) / sizeof(names[0]), on_value, &r };
	int is_object, rc = tlm_client__scan(payload, len, &v, &is_object);

	*status = NULL;
	if (rc == TLM_SCAN_READ)
		rc = TLM_FAST_NONE;
	else
		rc = rc == TLM_SCAN_STOPPED ? TLM_FAST_NOMEM : TLM_FAST_DECLINED;
	for (int i = 0; i < SRC_COUNT; i++) {
		if (rc == TLM_FAST_NONE && r.found[i] != NULL) {
			*status = r.found[i];
			rc = TLM_FAST_FOUND;
		} else {
			free(r.found[i]);
		}
	}
	return rc;
}
