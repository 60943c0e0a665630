/* /v1/teams/{team}/tasks and /v1/tasks/{id}/complete.  Every status change
 * goes through tlm_srv__task_update (store, event, runner). */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "server/fields.h"
#include "server/runner.h"
#include "server/server_internal.h"

static const char *const task_types[] = { "general", "research", "implementation",
					  "review",  "testing",  "hello",
					  NULL };
static const char *const task_states[] = { "pending", "running", "completed",
					   "failed",  "blocked", NULL };

static const tlm_field task_fields[] = {
	{ "subject", TLM_F_STRING, 512, 1, NULL },
	{ "description", TLM_F_STRING, 4096, 0, NULL },
	{ "assigneeAgentId", TLM_F_STRING, 256, 0, NULL },
	{ "blockedBy", TLM_F_STRINGS, 10000, 0, NULL },
	{ "type", TLM_F_STRING, 32, 0, task_types },
	{ NULL, 0, 0, 0, NULL },
};

static const tlm_field task_update_fields[] = {
	{ "subject", TLM_F_STRING, 512, 0, NULL },
	{ "description", TLM_F_STRING, 4096, 0, NULL },
	{ "assigneeAgentId", TLM_F_STRING, 256, 0, NULL },
	{ "blockedBy", TLM_F_STRINGS, 10000, 0, NULL },
	{ "type", TLM_F_STRING, 32, 0, task_types },
	{ "status", TLM_F_STRING, 32, 0, task_states },
	{ "statusMessage", TLM_F_STRING, 4096, 0, NULL },
	{ "note", TLM_F_STRING, 4096, 0,
	  NULL }, /* why a client ended it (upstream keeps any key) */
	{ NULL, 0, 0, 0, NULL },
};

static const char *str(const json_t *doc, const char *key)
{
	const char *s = json_string_value(json_object_get(doc, key));

	return s != NULL ? s : "";
}

static void answer_task(tlm_srv_response *res, int rc, json_t *task, int status)
{
	if (rc == TLM_ENOTFOUND)
		tlm_srv__error(res, 404, "task not found");
	else if (rc != 0)
		tlm_srv__error(res, 500, "store failure");
	else
		tlm_srv__json(res, status, json_pack("{s:O}", "task", task));
}

/* Publishes {"task": task} on subject; text: task as the store wrote it. */
static void publish_task(tlm_server *srv, const char *subject, const json_t *task, const char *text)
{
	size_t len;
	char *payload = text != NULL ? tlm_srv__wrap("task", text, &len) : NULL;

	if (payload != NULL)
		tlm_srv__publish_text(srv, subject, payload, len);
	else
		tlm_srv__publish(srv, subject, json_pack("{s:O}", "task", task));
	free(payload);
}

/* The events upstream publishes for a new task (docs/contract.md §7). */
static void publish_created(tlm_server *srv, const json_t *task, const char *text)
{
	char subject[256];
	const char *type = str(task, "type"), *id = str(task, "id");

	publish_task(srv, "hi.tasks.created", task, text);
	snprintf(subject, sizeof(subject), "hi.myrmidon.%s.%s", type, id);
	tlm_srv__publish(srv, subject,
			 json_pack("{s:s,s:s,s:O,s:O,s:s,s:O?}", "task_id", id, "team_id",
				   str(task, "teamId"), "subject", json_object_get(task, "subject"),
				   "description", json_object_get(task, "description"), "type",
				   type, "assignee", json_object_get(task, "assigneeAgentId")));
	snprintf(subject, sizeof(subject), "hi.myrmidon.pipeline.%s.task.%s", type, id);
	publish_task(srv, subject, task, text);
}

void tlm_api_task_create(tlm_server *srv, const tlm_srv_request *req, tlm_srv_response *res)
{
	json_t *body = tlm_srv__body_object(req, res), *doc = NULL, *task = NULL;
	char *text = NULL;
	int rc;

	if (body == NULL || (doc = tlm_srv__fields(body, task_fields, res)) == NULL)
		goto done;
	/* Upstream does not check the team; a task in no team could never be
	 * listed, so we answer 404 (docs/serve.md). */
	if (tlm_store_exists(srv->store, TLM_STORE_TEAMS, req->params[0]) != 0) {
		tlm_srv__error(res, 404, "team not found");
		goto done;
	}
	if (json_object_get(doc, "type") == NULL)
		json_object_set_new(doc, "type", json_string("general"));
	if (json_object_get(doc, "blockedBy") == NULL)
		json_object_set_new(doc, "blockedBy", json_array());
	if (json_object_get(doc, "description") == NULL)
		json_object_set_new(doc, "description", json_string(""));
	json_object_set_new(doc, "status", json_string("pending"));
	json_object_set_new(doc, "completedAt", json_null());
	rc = tlm_store_insert_dump(srv->store, TLM_STORE_TASKS, req->params[0], doc, &task, &text);
	answer_task(res, rc, task, 201);
	if (rc == 0) {
		publish_created(srv, task, text);
		tlm_runner_wake(srv->runner);
	}
done:
	free(text);
	json_decref(task);
	json_decref(doc);
	json_decref(body);
}

void tlm_api_task_list(tlm_server *srv, const tlm_srv_request *req, tlm_srv_response *res)
{
	size_t limit, offset, total;
	json_t *items;

	if (tlm_srv__paging(req, res, &limit, &offset) != 0)
		return;
	if (tlm_store_list(srv->store, TLM_STORE_TASKS, req->params[0], limit, offset, &items,
			   &total) != 0) {
		tlm_srv__error(res, 500, "store failure");
		return;
	}
	tlm_srv__json(res, 200,
		      json_pack("{s:o,s:I,s:I,s:I}", "tasks", items, "total", (json_int_t)total,
				"limit", (json_int_t)limit, "offset", (json_int_t)offset));
}

void tlm_api_task_get(tlm_server *srv, const tlm_srv_request *req, tlm_srv_response *res)
{
	json_t *task = NULL;
	int rc = tlm_store_get(srv->store, TLM_STORE_TASKS, req->params[0], req->params[1], &task);

	answer_task(res, rc, task, 200);
	json_decref(task);
}

void tlm_api_task_update(tlm_server *srv, const tlm_srv_request *req, tlm_srv_response *res)
{
	json_t *body = tlm_srv__body_object(req, res), *patch, *task = NULL;
	int rc;

	if (body == NULL || (patch = tlm_srv__fields(body, task_update_fields, res)) == NULL) {
		json_decref(body);
		return;
	}
	rc = tlm_srv__task_update(srv, req->params[0], req->params[1], patch, &task);
	answer_task(res, rc, task, 200);
	json_decref(task);
	json_decref(patch);
	json_decref(body);
}

void tlm_api_task_complete(tlm_server *srv, const tlm_srv_request *req, tlm_srv_response *res)
{
	json_t *patch = json_pack("{s:s}", "status", "completed");
	int rc = tlm_srv__task_update(srv, NULL, req->params[0], patch, NULL);

	json_decref(patch);
	if (rc != 0)
		answer_task(res, rc, NULL, 200);
	else
		tlm_srv__json(res, 200,
			      json_pack("{s:b,s:s}", "completed", 1, "task_id", req->params[0]));
}

/* GET /v1/teams/{team}/tasks/{task}/output?stream=stdout|stderr&offset=N:
 * the task's log from byte N on, at most OUTPUT_CHUNK bytes, as text
 * (bytes that are not UTF-8 become '?'), with the next offset and whether
 * the task has ended: what `telemachy logs -f` follows (docs/serve.md).
 * Not upstream's: its tasks have no output. */
#define OUTPUT_CHUNK 65536

/* Whether a task's program can write no more (its status is terminal). */
static int ended(const char *status)
{
	static const char *const words[] = { "completed", "failed", "cancelled",
					     "canceled",  "error",  "timed_out" };
	size_t i;

	for (i = 0; status != NULL && i < sizeof(words) / sizeof(words[0]); i++)
		if (strcmp(status, words[i]) == 0)
			return 1;
	return 0;
}

static json_t *read_chunk(const char *path, size_t offset, size_t *got)
{
	char *buf = malloc(OUTPUT_CHUNK);
	ssize_t n = -1;
	json_t *v;
	int fd;

	*got = 0;
	if (buf == NULL)
		return NULL;
	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) >= 0) {
		n = pread(fd, buf, OUTPUT_CHUNK, (off_t)offset);
		close(fd);
	}
	*got = n > 0 ? (size_t)n : 0;
	/* Same length in, same length out: the client counts offsets in it. */
	for (size_t i = 0; i < *got; i++)
		if (buf[i] == '\0')
			buf[i] = '?';
	if ((v = json_stringn(buf, *got)) == NULL) {
		for (size_t i = 0; i < *got; i++)
			if ((unsigned char)buf[i] >= 0x80)
				buf[i] = '?';
		v = json_stringn(buf, *got);
	}
	free(buf);
	return v;
}

void tlm_api_task_output(tlm_server *srv, const tlm_srv_request *req, tlm_srv_response *res)
{
	const char *stream = tlm_srv__query(req, "stream"), *off = tlm_srv__query(req, "offset");
	json_t *task = NULL, *data;
	char path[4096], *end = NULL;
	unsigned long long offset = 0;
	size_t got;
	int rc;

	if (stream == NULL)
		stream = "stdout";
	if ((strcmp(stream, "stdout") != 0 && strcmp(stream, "stderr") != 0) ||
	    (off != NULL &&
	     (off[0] < '0' || off[0] > '9' || (offset = strtoull(off, &end, 10), *end != '\0')))) {
		tlm_srv__error(res, 400, "stream must be stdout or stderr, offset a whole number");
		return;
	}
	rc = tlm_store_get(srv->store, TLM_STORE_TASKS, req->params[0], req->params[1], &task);
	if (rc != 0) {
		answer_task(res, rc, NULL, 200);
		return;
	}
	/* The store's own id names the file: never a path from the request. */
	snprintf(path, sizeof(path), "%s/logs/%s.%s", srv->state_dir, str(task, "id"),
		 strcmp(stream, "stdout") == 0 ? "out" : "err");
	data = read_chunk(path, (size_t)offset, &got);
	tlm_srv__json(res, 200,
		      json_pack("{s:s, s:o, s:I, s:b}", "stream", stream, "data",
				data != NULL ? data : json_string(""), "offset",
				(json_int_t)(offset + got), "done", ended(str(task, "status"))));
	json_decref(task);
}
