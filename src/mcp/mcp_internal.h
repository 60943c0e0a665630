/* Inside the MCP server (include/telemachy/mcp.h): the session, the tool
 * table and what the tools share.  docs/mcp.md is the contract. */
#ifndef TLM_MCP_INTERNAL_H
#define TLM_MCP_INTERNAL_H

#include <jansson.h>

#include "telemachy/journal.h"
#include "telemachy/mcp.h"

/* JSON-RPC 2.0 error codes (docs/mcp.md, "Errors"). */
#define TLM_MCP_PARSE_ERROR      -32700
#define TLM_MCP_INVALID_REQUEST  -32600
#define TLM_MCP_METHOD_NOT_FOUND -32601
#define TLM_MCP_INVALID_PARAMS   -32602
#define TLM_MCP_INTERNAL_ERROR   -32603

typedef enum {
	TLM_MCP_NEW = 0,     /* nothing but initialize and ping */
	TLM_MCP_INITIALIZED, /* initialize answered */
	TLM_MCP_READY        /* notifications/initialized received */
} tlm_mcp_phase;

struct tlm_mcp {
	tlm_mcp_opts o;
	char *root_real; /* realpath of o.root, or NULL */
	tlm_mcp_phase phase;
	const char *version; /* the negotiated protocol revision (static) */
};

/* What a tool call produced: a result (structuredContent), or a failure the
 * model should see (isError), or a protocol error for the caller. */
typedef struct tlm_mcp_out {
	json_t *result;    /* structuredContent (an object), owned */
	char *text;        /* the failure's text (isError), malloc'd */
	int rpc_code;      /* != 0: answer with this JSON-RPC error instead */
	char rpc_msg[512]; /* its message */
} tlm_mcp_out;

typedef enum { TLM_MCP_ARG_STRING, TLM_MCP_ARG_INT } tlm_mcp_arg_type;

/* One argument of a tool: its inputSchema entry and its check. */
typedef struct tlm_mcp_arg {
	const char *name;
	tlm_mcp_arg_type type;
	int required;
	long min, max; /* integers */
	const char *description;
	const char *const *choices; /* strings: the allowed values (NULL-terminated), or NULL */
} tlm_mcp_arg;

#define TLM_MCP_ARGS_MAX 5

typedef int (*tlm_mcp_tool_fn)(tlm_mcp *m, json_t *args, tlm_mcp_out *out);

typedef struct tlm_mcp_tool {
	const char *name;
	const char *title;
	const char *description;
	int action;      /* needs --allow-actions */
	int destructive; /* annotations.destructiveHint */
	tlm_mcp_arg args[TLM_MCP_ARGS_MAX];
	const char *output_schema; /* JSON text */
	tlm_mcp_tool_fn fn;
} tlm_mcp_tool;

/* rpc.c ---------------------------------------------------------------- */
int tlm_mcp__set_failure(tlm_mcp_out *out, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

/* tools.c -------------------------------------------------------------- */
/* The tools/list result for this session (new reference). */
json_t *tlm_mcp__tools_list(const tlm_mcp *m);
/* tools/call: the tool named name with args (an object). */
int tlm_mcp__tools_call(tlm_mcp *m, const char *name, json_t *args, tlm_mcp_out *out);

/* tools_read.c: the journal's runs ---------------------------------------- */
int tlm_mcp__list_runs(tlm_mcp *m, json_t *args, tlm_mcp_out *out);
int tlm_mcp__run_status(tlm_mcp *m, json_t *args, tlm_mcp_out *out);
int tlm_mcp__task_output(tlm_mcp *m, json_t *args, tlm_mcp_out *out);
/* Opens the journal without creating one: *j NULL (and 0) when there is
 * none yet.  A failure is set in out. */
int tlm_mcp__journal_open(tlm_mcp *m, tlm_journal **j, tlm_mcp_out *out);

/* tools_spec.c: workflow files ----------------------------------------- */
int tlm_mcp__validate_workflow(tlm_mcp *m, json_t *args, tlm_mcp_out *out);
int tlm_mcp__plan_workflow(tlm_mcp *m, json_t *args, tlm_mcp_out *out);
/* Reads args' "path" (under the root) or "text": *text malloc'd, *name the
 * name for messages (malloc'd: the file's real path, or "inline").  A
 * failure is set in out (TLM_ERROR returned). */
int tlm_mcp__spec_source(tlm_mcp *m, json_t *args, int allow_text, char **text, size_t *len,
			 char **name, tlm_mcp_out *out);

/* tools_action.c: run, cancel, teardown --------------------------------- */
int tlm_mcp__run_workflow(tlm_mcp *m, json_t *args, tlm_mcp_out *out);
int tlm_mcp__cancel_run(tlm_mcp *m, json_t *args, tlm_mcp_out *out);
int tlm_mcp__teardown_run(tlm_mcp *m, json_t *args, tlm_mcp_out *out);

#endif
