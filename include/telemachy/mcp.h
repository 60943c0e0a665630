/* telemachy mcp: a Model Context Protocol server over stdio, so an AI
 * assistant can read the journal's runs, validate and plan workflow files
 * and, when allowed, start, cancel and tear down runs (docs/mcp.md).
 *
 * One JSON-RPC 2.0 message per line on the input, one per line on the
 * output, nothing else on the output.  Everything a tool shows comes from
 * the report module (the same JSON as `list` / `status --output json`), the
 * spec loader and the plan; the action tools start the real `telemachy run`
 * and `teardown` commands detached, and ask a live owner to cancel through
 * the journal as `telemachy cancel` does. */
#ifndef TELEMACHY_MCP_H
#define TELEMACHY_MCP_H

#include <stddef.h>

#include "telemachy/error.h"

/* Caps (docs/mcp.md, "Limits"). */
#define TLM_MCP_LINE_MAX   ((size_t)4 << 20) /* one message, newline excluded */
#define TLM_MCP_FILE_MAX   ((size_t)4 << 20) /* a workflow file or inline text */
#define TLM_MCP_LIST_MAX   1000              /* runs, resources, tasks, audit entries shown */
#define TLM_MCP_OUTPUT_MAX 16384             /* default cap of a task's stdout / stderr shown */
#define TLM_MCP_WAIT_MAX_S 600               /* the longest wait_seconds an action takes */

/* The protocol revision answered to a client that asks for one this server
 * does not know (the newest it implements). */
#define TLM_MCP_PROTOCOL_LATEST "2025-11-25"

/* The layout of tlm_mcp_opts; raised when a field is added (at the end). */
#define TLM_MCP_OPTS_VERSION 1u

typedef struct tlm_mcp_opts {
	unsigned version;        /* TLM_MCP_OPTS_VERSION (the INIT macro sets it) */
	const char *journal;     /* --state-dir / --journal; NULL: TELEMACHY_JOURNAL or default */
	const char *root;        /* workflow files only under this directory; NULL: anywhere */
	int allow_actions;       /* also run_workflow, cancel_run, teardown_run */
	const char *exe;         /* the telemachy binary the actions start */
	const char *action_log;  /* where started commands write (appended, 0600); NULL: nowhere */
	long run_wait_ms;        /* how long run_workflow waits for the new run in the journal */
	const char *server_name; /* serverInfo.name */
	const char *server_version; /* serverInfo.version */
} tlm_mcp_opts;

#define TLM_MCP_OPTS_INIT                                                                          \
	{                                                                                          \
		TLM_MCP_OPTS_VERSION, NULL, NULL, 0, "/proc/self/exe", NULL, 15000, "telemachy",   \
			"0"                                                                        \
	}

/* One session's state (lifecycle, negotiated version, options). */
typedef struct tlm_mcp tlm_mcp;

/* A session with opts (copied; the strings must outlive it).  0 or
 * TLM_ERROR (out of memory, or root is not a directory). */
int tlm_mcp_new(tlm_mcp **out, const tlm_mcp_opts *opts, tlm_error *err);
void tlm_mcp_free(tlm_mcp *m);

/* Handles one message (the text of one line, without its newline; len
 * bytes, not NUL-terminated).  *reply: the line to send back, malloc'd, no
 * newline, or NULL when nothing is to be sent (a notification, a response).
 * Returns 0, or TLM_ERROR when out of memory. */
int tlm_mcp_handle(tlm_mcp *m, const char *msg, size_t len, char **reply, tlm_error *err);

/* The reply to a line longer than TLM_MCP_LINE_MAX (malloc'd, no newline). */
char *tlm_mcp_oversize_reply(void);

/* Serves the session on in_fd / out_fd until end of input: every line
 * handled in turn, each reply written as one line.  0 at end of input;
 * TLM_ERROR when reading or writing failed (e.g. the client went away
 * without closing our input first). */
int tlm_mcp_serve(tlm_mcp *m, int in_fd, int out_fd, tlm_error *err);

#endif
