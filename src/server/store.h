/* The control plane's store: agents, teams and tasks as JSON documents in
 * SQLite (":memory:" by default, a file with --state so a restarted server
 * still knows its agents).  Thread-safe: one mutex around every call; the
 * HTTP workers and the agent runner share it.  Documents in and out are
 * jansson objects; the caller owns what it gets (json_decref). */
#ifndef TLM_SERVER_STORE_H
#define TLM_SERVER_STORE_H

#include <jansson.h>
#include <stddef.h>

#include "telemachy/error.h"

typedef struct tlm_store tlm_store;

typedef enum { TLM_STORE_AGENTS = 0, TLM_STORE_TEAMS, TLM_STORE_TASKS } tlm_store_kind;

/* Opens (creating) the store at path, or in memory when path is NULL.
 * unique_names: inserting an agent whose name exists fails TLM_ECONFLICT. */
int tlm_store_open(tlm_store **out, const char *path, int unique_names, tlm_error *err);

/* Closes the store; NULL is a no-op. */
void tlm_store_close(tlm_store *st);

/* Inserts a copy of doc with a new "id" (UUID) and "createdAt"/"updatedAt"
 * set; tasks also get "teamId" = scope.  *out: the stored document. */
int tlm_store_insert(tlm_store *st, tlm_store_kind kind, const char *scope, const json_t *doc,
		     json_t **out);

/* The document with id, TLM_ENOTFOUND if none.  For tasks, scope (team id)
 * may be NULL to find a task by id alone. */
int tlm_store_get(tlm_store *st, tlm_store_kind kind, const char *scope, const char *id,
		  json_t **out);

/* 0 when a document of kind has this id, TLM_ENOTFOUND if none (reads no
 * document). */
int tlm_store_exists(tlm_store *st, tlm_store_kind kind, const char *id);

/* The "status" of the document with id, without building the document:
 * *status points into buf (cut to size - 1 bytes) when it is a string, is
 * NULL otherwise.  TLM_ENOTFOUND if there is no such document. */
int tlm_store_status(tlm_store *st, tlm_store_kind kind, const char *id, char *buf, size_t size,
		     const char **status);

/* Some agent named name (the oldest when names repeat), TLM_ENOTFOUND if none. */
int tlm_store_find_agent(tlm_store *st, const char *name, json_t **out);

/* One page, sorted by id: *items is a new array, *total counts them all.
 * scope restricts tasks to one team (NULL: every document of kind). */
int tlm_store_list(tlm_store *st, tlm_store_kind kind, const char *scope, size_t limit,
		   size_t offset, json_t **items, size_t *total);

/* Shallow-merges patch into the document ("id", "teamId", "createdAt" are
 * kept), sets "updatedAt", and for a task that becomes "completed" sets
 * "completedAt".  *out (may be NULL): the updated document. */
int tlm_store_patch(tlm_store *st, tlm_store_kind kind, const char *scope, const char *id,
		    const json_t *patch, json_t **out);

/* tlm_store_insert and tlm_store_patch, also giving *text (may be NULL): the
 * stored document as json_dumps(JSON_COMPACT) makes it, for the caller to
 * reuse (free it); NULL when the call fails. */
int tlm_store_insert_dump(tlm_store *st, tlm_store_kind kind, const char *scope, const json_t *doc,
			  json_t **out, char **text);
int tlm_store_patch_dump(tlm_store *st, tlm_store_kind kind, const char *scope, const char *id,
			 const json_t *patch, json_t **out, char **text);

/* Deletes; TLM_ENOTFOUND if it did not exist. */
int tlm_store_delete(tlm_store *st, tlm_store_kind kind, const char *id);

/* How many documents of kind have this status (metrics_http.c). */
int tlm_store_count_status(tlm_store *st, tlm_store_kind kind, const char *status, size_t *n);

/* The tasks assigned to agent_id that the runner may act on (pending, or
 * running), in creation order (a new array). */
int tlm_store_agent_tasks(tlm_store *st, const char *agent_id, json_t **items);

/* Every agent whose status is "online" and that has a task it may act on
 * (tlm_store_agent_tasks), in creation order (a new array); indexes make
 * this cost the busy agents only, not every agent at every scan. */
int tlm_store_agents_with_work(tlm_store *st, json_t **items);

/* "YYYY-MM-DDTHH:MM:SSZ" of now into buf (at least 21 bytes). */
void tlm_store_now(char *buf, size_t size);

#endif
