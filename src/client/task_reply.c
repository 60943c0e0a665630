/*
 * The id in a task create's reply, read without building a document
 * (docs/internals/client.md#reading-without-a-tree): the engine creates every
 * task of a workflow and needs only the id of each reply.
 *
 * It answers only where tlm_client__parse_task (src/client/parse.c) would
 * succeed, and with the same id: the reply is an object; the task is the
 * object under "task", or the reply itself when "task" is absent or null
 * (contract v1); in it "id" is a non-empty string, and "status" and
 * "teamId" are strings, null or absent.  Anything else is declined, and
 * the jansson reader then says what is wrong.  A later duplicate key
 * replaces an earlier one, as in jansson's tree.  tests/fuzz/fuzz_client.c
 * checks the two readings against each other.
 */
#include <stdlib.h>
#include <string.h>

#include "client/client_internal.h"

enum { KEY_TASK = 1, KEY_ID, KEY_STATUS, KEY_TEAMID };
static const char *const names[] = { "task", "id", "status", "teamId" };

/* What the last value of each field was, in one candidate object; ABSENT
 * when there was none.  The id's text is kept. */
#define ABSENT -1
typedef struct fields {
	int type[KEY_TEAMID + 1]; /* by key code: [KEY_ID], [KEY_STATUS], [KEY_TEAMID] */
	char *id;
} fields;

typedef struct reader {
	int task_type; /* of the last "task", or ABSENT */
	fields root, task;
} reader;

static void fields_reset(fields *f)
{
	free(f->id);
	f->id = NULL;
	for (int i = 0; i <= KEY_TEAMID; i++)
		f->type[i] = ABSENT;
}

static int on_value(void *ctx, int depth, const int *key, tlm_scan_type type,
		    const unsigned char *s, size_t len)
{
	reader *r = ctx;
	int k = key[depth];
	fields *f;

	if (depth == 1 && k == KEY_TASK) {
		r->task_type = (int)type; /* a new "task" replaces the old */
		fields_reset(&r->task);
		return 0;
	}
	if (depth == 2 && key[1] != KEY_TASK)
		return 0;
	if (k != KEY_ID && k != KEY_STATUS && k != KEY_TEAMID)
		return 0;
	f = depth == 1 ? &r->root : &r->task;
	f->type[k] = (int)type;
	if (k != KEY_ID)
		return 0;
	free(f->id);
	f->id = type == TLM_SCAN_STRING ? strndup((const char *)s, len) : NULL;
	return type == TLM_SCAN_STRING && f->id == NULL;
}

static int string_or_none(int type)
{
	return type == ABSENT || type == TLM_SCAN_NULL || type == TLM_SCAN_STRING;
}

/* The fields parse_task would read, or NULL where it would fail. */
static fields *chosen(reader *r)
{
	fields *f;

	if (r->task_type == ABSENT || r->task_type == TLM_SCAN_NULL)
		f = &r->root;
	else if (r->task_type == TLM_SCAN_OBJECT)
		f = &r->task;
	else
		return NULL;
	if (f->type[KEY_ID] != TLM_SCAN_STRING || f->id == NULL || f->id[0] == '\0' ||
	    !string_or_none(f->type[KEY_STATUS]) || !string_or_none(f->type[KEY_TEAMID]))
		return NULL;
	return f;
}

int tlm_client__task_reply_id_fast(const char *body, size_t len, char **id)
{
	reader r;
	tlm_scan_visitor v = { names, sizeof(names) / sizeof(names[0]), on_value, &r };
	fields *f;
	int is_object, rc;

	*id = NULL;
	memset(&r, 0, sizeof(r));
	r.task_type = ABSENT;
	fields_reset(&r.root);
	fields_reset(&r.task);
	rc = tlm_client__scan(body, len, &v, &is_object);
	if (rc == TLM_SCAN_STOPPED)
		rc = TLM_FAST_NOMEM;
	else if (rc != TLM_SCAN_READ || !is_object || (f = chosen(&r)) == NULL)
		rc = TLM_FAST_DECLINED;
	else {
		*id = f->id;
		f->id = NULL;
		rc = TLM_FAST_FOUND;
	}
	fields_reset(&r.root);
	fields_reset(&r.task);
	return rc;
}
