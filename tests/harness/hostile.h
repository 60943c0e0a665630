/* Harness: a hostile Agamemnon-compatible control plane, in the test's own
 * process (libmicrohttpd, one thread, a free loopback port).  It speaks
 * enough of the contract (docs/contract.md §6) for `telemachy run`,
 * `teardown`, `reconcile` and `status` to work against it, and misbehaves
 * on purpose, as the test chooses: ids that are not plain, ids no path can
 * hold, two resources under one id, endless or huge listings, replies over
 * 1 MiB or not JSON, names and messages that try to drive the terminal.  No
 * real server does this on purpose; a test double is the only way to be
 * sure the engine survives it (docs/design.md §11).
 *
 * It sees every request on its raw path (nothing decoded), and checks each
 * one about a resource: the id must be exactly the percent-encoding the
 * client promises (include/telemachy/client.h, tlm_client_path) of an id it
 * gave.  Anything else is a "miss": recorded, and answered 404. */
#ifndef TLM_TEST_HARNESS_HOSTILE_H
#define TLM_TEST_HARNESS_HOSTILE_H

#include <stddef.h>

#define TLM_H_HOSTILE_IDS 8

typedef struct tlm_h_hostile_opts {
	/* The id of the n-th agent / team created (NULL: "agent-N", "team-N"). */
	const char *agent_ids[TLM_H_HOSTILE_IDS];
	const char *team_ids[TLM_H_HOSTILE_IDS];
	/* Every agent created gets the first agent's id.  Requests by id reach
	 * the first resource that had it (as a server whose index maps an id
	 * to one record): once it is deleted, that id is 404 while the other
	 * one is still listed. */
	int same_agent_id;
	/* Each agent is listed a second time, as NAME-dup, under its own id. */
	int dup_name;
	/* Agent creates are carried out but answered 201 with a body that is
	 * not JSON (1) or one of more than 1 MiB (2). */
	int create_reply;
	/* Task creates likewise: carried out, answered 201 with a body that
	 * is not JSON (1), or whose task has a number for an id (2). */
	int task_create_reply;
	/* Tasks are created in this status (NULL: "completed"), with this
	 * statusMessage (NULL: none). */
	const char *task_status, *task_message;
	/* Listed besides the agents: a stray agent of the first run seen (its
	 * name "tlm-RUN-a-" followed by this text, its id "stray" followed by
	 * it) that requests can reach and delete. */
	const char *stray_suffix;
	/* Listed after the real agents and teams: this many agents of other
	 * runs (tlm-fill0000-a-N), which no request may address. */
	size_t filler;
	/* Listings never end: every page is full of new items and "total" is
	 * always larger. */
	int endless;
	/* > 0: the requested limit is ignored; pages hold this many items. */
	size_t page_max;
} tlm_h_hostile_opts;

typedef struct tlm_h_hostile tlm_h_hostile;

/* Starts one on a free port of 127.0.0.1 (fails the test otherwise). */
tlm_h_hostile *tlm_h_hostile_start(const tlm_h_hostile_opts *o);
void tlm_h_hostile_stop(tlm_h_hostile *h);

/* "http://127.0.0.1:PORT" */
const char *tlm_h_hostile_url(const tlm_h_hostile *h);

/* Requests that named no id the server gave, or one not exactly encoded. */
size_t tlm_h_hostile_misses(tlm_h_hostile *h);

/* How many requests arrived as "METHOD RAWPATH" (path without the query). */
size_t tlm_h_hostile_count(tlm_h_hostile *h, const char *method, const char *raw_path);

/* Agents (kind "agents") or teams ("teams") not deleted, duplicates listed
 * under NAME-dup included; filler not counted. */
size_t tlm_h_hostile_live(tlm_h_hostile *h, const char *kind);

/* List pages served, and items listed in them. */
size_t tlm_h_hostile_pages(tlm_h_hostile *h, size_t *items);

/* Every request seen, one "METHOD RAWPATH" per line (list pages left out),
 * for failure messages; caller frees. */
char *tlm_h_hostile_log(tlm_h_hostile *h);

/* The percent-encoding of id exactly as tlm_client_path makes it (letters,
 * digits and "-._~" kept, every other byte %XX), into out. */
void tlm_h_pct(char *out, size_t cap, const char *id);

#endif
