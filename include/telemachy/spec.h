/*
 * telemachy — the workflow spec (apiVersion telemachy/v1).
 *
 * tlm_spec_load() turns a YAML file into a validated, immutable model.  All
 * strings and arrays of a spec live in one arena owned by the spec, so the
 * whole model is released by tlm_spec_free().  References are resolved: a
 * task's assignee is an index into agents[], its dependencies are indices into
 * the flat tasks[] array (grouped by team, see tlm_spec_team.first_task).
 *
 * Input limits (documented in docs/spec.md): document size, node count,
 * nesting depth and diagnostics count are capped; YAML aliases are refused (no alias expansion,
 * so no "billion laughs"); a file holds exactly one document.
 */
#ifndef TELEMACHY_SPEC_H
#define TELEMACHY_SPEC_H

#include <stddef.h>
#include <stdint.h>

#include "telemachy/error.h"

#define TLM_SPEC_API_VERSION "telemachy/v1"
#define TLM_SPEC_MAX_BYTES   ((size_t)64 << 20) /* 64 MiB of YAML */
#define TLM_SPEC_MAX_DEPTH   64                 /* nested collections */
#define TLM_SPEC_MAX_DIAGS   1000               /* reported errors per file */
/* Nodes (scalars, lists, maps): at most one per TLM_SPEC_NODE_BYTES of the
 * file, or TLM_SPEC_NODES_MIN in a smaller file; a map that is a list item
 * (a would-be agent, team or task, which costs a model entry) counts as
 * TLM_SPEC_ITEM_MAP_NODES.  Keeps memory proportional to the file's size. */
#define TLM_SPEC_NODE_BYTES      8
#define TLM_SPEC_NODES_MIN       131072
#define TLM_SPEC_ITEM_MAP_NODES  4
#define TLM_SPEC_NAME_MAX        63   /* agent / team names */
#define TLM_SPEC_SUBJECT_MAX     512  /* control-plane limit */
#define TLM_SPEC_DESCRIPTION_MAX 4096 /* control-plane limit */
#define TLM_SPEC_RETRIES_MAX     100
#define TLM_SPEC_CPUS_MIN        1
#define TLM_SPEC_CPUS_MAX        256

/* What a run can send and journal (docs/spec.md, "Limits of the control
 * plane and the journal"): a spec over one of these validates no more, since
 * it could not run.  Lengths are bytes of UTF-8. */
#define TLM_SPEC_WORKFLOW_NAME_MAX 255               /* the journal's names */
#define TLM_SPEC_PROGRAM_MAX       1024              /* agent "program" (contract v2) */
#define TLM_SPEC_MODEL_MAX         256               /* agent "model" (built-in control plane) */
#define TLM_SPEC_WORKING_DIR_MAX   4096              /* "workingDirectory" (built-in) */
#define TLM_SPEC_IMAGE_MAX         1024              /* docker "image" (built-in) */
#define TLM_SPEC_ARGS_MAX          1000              /* "programArgs" entries (built-in) */
#define TLM_SPEC_ENV_MAX           1000              /* "env" entries (built-in) */
#define TLM_SPEC_MEMBERS_MAX       10000             /* a team's "agentIds" (built-in) */
#define TLM_SPEC_BLOCKED_BY_MAX    10000             /* a task's "blockedBy" (built-in) */
#define TLM_SPEC_REQUEST_MAX       ((size_t)1 << 20) /* a request body (contract v2) */

/* 1-based position in the source file; 0:0 when the place is the file itself. */
typedef struct tlm_pos {
	uint32_t line;
	uint32_t col;
} tlm_pos;

typedef enum tlm_runtime { TLM_RUNTIME_LOCAL = 0, TLM_RUNTIME_DOCKER } tlm_runtime;

typedef enum tlm_teardown {
	TLM_TEARDOWN_ON_COMPLETION = 0,
	TLM_TEARDOWN_ON_FAILURE,
	TLM_TEARDOWN_ALWAYS,
	TLM_TEARDOWN_NEVER
} tlm_teardown;

typedef struct tlm_spec_kv {
	const char *key;
	const char *value;
	tlm_pos pos;
} tlm_spec_kv;

typedef struct tlm_spec_agent {
	const char *name;
	tlm_pos pos;
	const char *program; /* default "claude-code" */
	const char **args;
	size_t nargs;
	const char *model;       /* NULL when unset */
	const char *working_dir; /* default "/tmp" */
	tlm_runtime runtime;
	const char *docker_image; /* NULL unless runtime is docker */
	int cpus;                 /* default 2 */
	const char *memory;       /* as written, default "4g" */
	uint64_t memory_bytes;
	tlm_spec_kv *env;
	size_t nenv;
} tlm_spec_agent;

typedef struct tlm_spec_task {
	const char *subject;
	tlm_pos pos;
	const char *description;
	size_t team;  /* index into teams[] */
	size_t agent; /* index into agents[] (resolved assign_to) */
	size_t *deps; /* indices into tasks[], deduplicated, no self */
	size_t ndeps;
	long timeout_seconds; /* 0 = no per-task timeout */
	int retries;          /* default 0 */
} tlm_spec_task;

typedef struct tlm_spec_team {
	const char *name;
	tlm_pos pos;
	size_t *agents; /* indices into agents[] */
	size_t nagents;
	size_t first_task; /* this team's tasks are tasks[first_task ..] */
	size_t ntasks;
} tlm_spec_team;

/* Hooks (docs/hooks.md): what runs when a task or the run ends. */
typedef enum tlm_hook_event {
	TLM_HOOK_TASK_COMPLETED = 0,
	TLM_HOOK_TASK_FAILED, /* failed or timed out (the payload's status says which) */
	TLM_HOOK_TASK_SKIPPED,
	TLM_HOOK_RUN_COMPLETED,
	TLM_HOOK_RUN_FAILED, /* failed, timed out, or teardown left resources */
	TLM_HOOK_RUN_CANCELLED,
	TLM_HOOK_TEARDOWN_FAILED,
	TLM_HOOK_EVENTS /* how many there are */
} tlm_hook_event;

#define TLM_SPEC_HOOKS_MAX            64  /* entries of "hooks" (and --hook) */
#define TLM_SPEC_HOOK_ARGS_MAX        256 /* a command's argv entries */
#define TLM_SPEC_HOOK_TIMEOUT_DEFAULT 30  /* seconds */
#define TLM_SPEC_HOOK_TIMEOUT_MAX     600
#define TLM_SPEC_HOOK_URL_MAX         2048

/* One hook: exactly one of argv (a command) and url (a webhook). */
typedef struct tlm_spec_hook {
	tlm_hook_event event;
	tlm_pos pos;
	const char **argv; /* NULL for a webhook; argv[0] is looked up in PATH */
	size_t nargv;
	const char *url;         /* https://, or http:// to a loopback host */
	const char *secret_file; /* webhook: HMAC-SHA256 key file, or NULL */
	long timeout_seconds;    /* default TLM_SPEC_HOOK_TIMEOUT_DEFAULT */
} tlm_spec_hook;

typedef struct tlm_spec {
	const char *path;        /* as given to the loader */
	const char *name;        /* metadata.name */
	const char *description; /* NULL when unset */
	tlm_spec_kv *labels;     /* other scalar metadata keys */
	size_t nlabels;
	tlm_spec_agent *agents;
	size_t nagents;
	tlm_spec_team *teams;
	size_t nteams;
	tlm_spec_task *tasks;
	size_t ntasks;
	tlm_teardown teardown;
	long timeout_seconds;    /* 0 = no workflow timeout */
	struct tlm_arena *arena; /* owns everything above, and the hooks */
	/* Last: a program built against older headers still finds the
	 * fields above where it expects them (docs/library.md). */
	tlm_spec_hook *hooks;
	size_t nhooks;
} tlm_spec;

/* One problem found in a spec. */
typedef struct tlm_diag {
	tlm_pos pos;
	const char *rule; /* stable identifier, e.g. "unknown-key" */
	char *message;    /* owned by the tlm_diags */
} tlm_diag;

/* The problems found in one file, sorted by position after a load. */
typedef struct tlm_diags {
	tlm_diag *items;
	size_t count;
	size_t capacity;
	size_t dropped; /* errors beyond TLM_SPEC_MAX_DIAGS */
} tlm_diags;

#define TLM_DIAGS_INIT                                                                             \
	{                                                                                          \
		NULL, 0, 0, 0                                                                      \
	}

/* Loads and validates the workflow at path.  0: *out is a valid spec (caller
 * frees with tlm_spec_free).  TLM_EINVALID: the spec breaks rules, every error
 * found is in diags.  Other codes (TLM_ENOTFOUND, TLM_ETOOBIG, TLM_ERROR) mean
 * the file could not be read; err says why.  *out is NULL on any failure. */
int tlm_spec_load(tlm_spec **out, const char *path, tlm_diags *diags, tlm_error *err);

/* Reads the workflow file at path as tlm_spec_load does, for a caller that
 * also needs the text (`run` journals it): a regular file of at most
 * TLM_SPEC_MAX_BYTES, never blocking (a FIFO or a device is an error, not a
 * wait).  0: *text (NUL-terminated, caller frees) and *len.  Otherwise the
 * codes of tlm_spec_load's unreadable file, *text NULL. */
int tlm_spec_read(char **text, size_t *len, const char *path, tlm_error *err);

/* As tlm_spec_load, from a buffer; name is used in messages and as path. */
int tlm_spec_parse(tlm_spec **out, const char *name, const char *buf, size_t len, tlm_diags *diags,
		   tlm_error *err);

/* Frees a spec and everything it owns; NULL is a no-op. */
void tlm_spec_free(tlm_spec *spec);

/* Releases the messages held by diags and resets it to empty. */
void tlm_diags_clear(tlm_diags *diags);

/* Names of the enums as written in specs ("docker", "on_failure"). */
const char *tlm_runtime_name(tlm_runtime r);
const char *tlm_teardown_name(tlm_teardown t);

/* A hook event's name as written in specs ("task_completed"), or "?". */
const char *tlm_hook_event_name(tlm_hook_event e);
/* The event named name: 0, or TLM_EINVALID. */
int tlm_hook_event_parse(const char *name, tlm_hook_event *out);

/* Whether url may be a webhook's: http:// or https:// with a host and no
 * user:password, and https:// unless the host is loopback (127.0.0.0/8,
 * [::1], localhost).  0, or TLM_EINVALID with why (a sentence) in why[n]. */
int tlm_hook_url_check(const char *url, char *why, size_t n);

/* The JSON Schema (2020-12) of the spec, as a static NUL-terminated string. */
const char *tlm_spec_json_schema(void);

#endif
