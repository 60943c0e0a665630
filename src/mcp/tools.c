/* The tool table: each tool's name, description, arguments and output
 * schema in one place, so tools/list and the checks of tools/call can never
 * disagree (docs/mcp.md, "Tools").  The action tools exist only with
 * --allow-actions: without it they are not listed, and a call says how to
 * enable them. */
#include <stdio.h>
#include <string.h>

#include "mcp/mcp_internal.h"

/* The names of tlm_run_state_name, in its order (tests/integration/mcp
 * compares them). */
static const char *const run_states[TLM_RUN_STATE_COUNT + 1] = {
	"pending", "provisioning", "running",         "tearing_down", "completed",
	"failed",  "cancelled",    "teardown_failed", "queued",       NULL
};

#define ARG_RUN_OPT                                                                                \
	{                                                                                          \
		"run", TLM_MCP_ARG_STRING, 0, 0, 0,                                                \
			"the run's id (8 letters and digits); default: the newest run", NULL       \
	}
#define ARG_RUN                                                                                    \
	{                                                                                          \
		"run", TLM_MCP_ARG_STRING, 1, 0, 0, "the run's id (8 letters and digits)", NULL    \
	}
#define ARG_PATH(req)                                                                              \
	{                                                                                          \
		"path", TLM_MCP_ARG_STRING, req, 0, 0,                                             \
			"the workflow file (YAML), absolute or relative to the server's root",     \
			NULL                                                                       \
	}
#define ARG_TEXT                                                                                   \
	{                                                                                          \
		"text", TLM_MCP_ARG_STRING, 0, 0, 0,                                               \
			"the workflow's YAML itself, instead of a path", NULL                      \
	}
#define ARG_WAIT(def)                                                                              \
	{                                                                                          \
		"wait_seconds", TLM_MCP_ARG_INT, 0, 0, TLM_MCP_WAIT_MAX_S,                         \
			"how long to wait for it to end (default " #def ")", NULL                  \
	}

static const char runs_schema[] =
	"{\"type\":\"object\",\"properties\":{\"runs\":{\"type\":\"array\",\"items\":{\"type\":"
	"\"object\"}},\"truncated\":{\"type\":\"boolean\"}},\"required\":[\"runs\"]}";
static const char status_schema[] =
	"{\"type\":\"object\",\"properties\":{\"run\":{\"type\":\"object\"},\"resources\":{"
	"\"type\":\"array\"},\"tasks\":{\"type\":\"array\"},\"leftovers\":{\"type\":\"integer\"},"
	"\"audit\":{\"type\":\"array\"},\"truncated\":{\"type\":\"object\"}},\"required\":["
	"\"run\",\"resources\",\"tasks\",\"leftovers\",\"audit\"]}";
static const char output_schema[] =
	"{\"type\":\"object\",\"properties\":{\"run\":{\"type\":\"string\"},\"team\":{\"type\":"
	"\"string\"},\"subject\":{\"type\":\"string\"},\"attempt\":{\"type\":\"integer\"},"
	"\"attempts\":{\"type\":\"integer\"},\"status\":{\"type\":\"string\"},\"ended\":{"
	"\"type\":[\"string\",\"null\"]},\"said\":{},\"notes\":{\"type\":\"array\",\"items\":{"
	"\"type\":\"string\"}}},\"required\":[\"run\",\"team\",\"subject\",\"attempt\","
	"\"status\"]}";
static const char validate_schema[] =
	"{\"type\":\"object\",\"properties\":{\"file\":{\"type\":\"string\"},\"valid\":{\"type\":"
	"\"boolean\"},\"errors\":{\"type\":\"array\",\"items\":{\"type\":\"object\","
	"\"properties\":{\"location\":{\"type\":\"string\"},\"line\":{\"type\":\"integer\"},"
	"\"col\":{\"type\":\"integer\"},\"rule\":{\"type\":\"string\"},\"message\":{\"type\":"
	"\"string\"}}}},\"error_count\":{\"type\":\"integer\"}},\"required\":[\"file\","
	"\"valid\",\"errors\",\"error_count\"]}";
static const char plan_schema[] =
	"{\"type\":\"object\",\"properties\":{\"workflow\":{\"type\":\"object\"},\"waves\":{"
	"\"type\":\"array\"}}}";
static const char started_schema[] =
	"{\"type\":\"object\",\"properties\":{\"run\":{\"type\":\"string\"},\"pid\":{\"type\":"
	"\"integer\"},\"state\":{\"type\":\"string\"},\"workflow\":{\"type\":\"string\"}},"
	"\"required\":[\"run\",\"state\"]}";
static const char cancel_schema[] =
	"{\"type\":\"object\",\"properties\":{\"run\":{\"type\":\"string\"},\"how\":{\"type\":"
	"\"string\"},\"state\":{\"type\":\"string\"}},\"required\":[\"run\",\"how\",\"state\"]}";
static const char teardown_schema[] =
	"{\"type\":\"object\",\"properties\":{\"run\":{\"type\":\"string\"},\"pid\":{\"type\":"
	"\"integer\"},\"finished\":{\"type\":\"boolean\"},\"state\":{\"type\":\"string\"},"
	"\"leftovers\":{\"type\":\"integer\"}},\"required\":[\"run\",\"finished\",\"state\"]}";

static const tlm_mcp_tool tools[] = {
	{ "list_runs",
	  "List runs",
	  "The runs in telemachy's journal, newest first: id, workflow, state, owner, control "
	  "plane, live resources (the JSON of `telemachy list --output json`).",
	  0,
	  0,
	  { { "state", TLM_MCP_ARG_STRING, 0, 0, 0, "only runs in this state", run_states },
	    { "workflow", TLM_MCP_ARG_STRING, 0, 0, 0, "only runs of this workflow name", NULL },
	    { "limit", TLM_MCP_ARG_INT, 0, 1, TLM_MCP_LIST_MAX,
	      "at most this many runs (default 100)", NULL } },
	  runs_schema,
	  tlm_mcp__list_runs },
	{ "run_status",
	  "Show a run",
	  "One run as the journal has it: state, owner, resources, task attempts, leftovers and "
	  "audit trail (the JSON of `telemachy status --output json`).",
	  0,
	  0,
	  { ARG_RUN_OPT },
	  status_schema,
	  tlm_mcp__run_status },
	{ "task_output",
	  "Show a task's output",
	  "How a task attempt of a run ended, as the journal keeps it: with the built-in control "
	  "plane its exit status and the last 4 KiB of its stdout and stderr (as `telemachy "
	  "logs`).",
	  0,
	  0,
	  { ARG_RUN,
	    { "team", TLM_MCP_ARG_STRING, 1, 0, 0, "the task's team", NULL },
	    { "subject", TLM_MCP_ARG_STRING, 1, 0, 0, "the task's subject", NULL },
	    { "attempt", TLM_MCP_ARG_INT, 0, 1, 1000, "the attempt (default: the last one)", NULL },
	    { "max_bytes", TLM_MCP_ARG_INT, 0, 256, 1 << 20,
	      "keep at most the last this many bytes of stdout and of stderr (default 16384)",
	      NULL } },
	  output_schema,
	  tlm_mcp__task_output },
	{ "validate_workflow",
	  "Validate a workflow",
	  "Check a workflow (a file, or its YAML text) against the telemachy/v1 rules: every "
	  "error with FILE:LINE:COL, as `telemachy validate` reports them.",
	  0,
	  0,
	  { ARG_PATH(0), ARG_TEXT },
	  validate_schema,
	  tlm_mcp__validate_workflow },
	{ "plan_workflow",
	  "Plan a workflow",
	  "What a run of a workflow (a file, or its YAML text) would create: agents, teams, and "
	  "the tasks in submission waves (the JSON of `telemachy plan --output json`). Contacts "
	  "nothing.",
	  0,
	  0,
	  { ARG_PATH(0), ARG_TEXT },
	  plan_schema,
	  tlm_mcp__plan_workflow },
	{ "run_workflow",
	  "Run a workflow",
	  "Start `telemachy run FILE` in the background: it provisions the workflow's agents and "
	  "teams, runs its tasks and tears down. Returns the new run's id once the journal has it; "
	  "follow it with run_status.",
	  1,
	  0,
	  { ARG_PATH(1) },
	  started_schema,
	  tlm_mcp__run_workflow },
	{ "cancel_run",
	  "Cancel a run",
	  "Ask a run's live owner to cancel it through the journal (audited, as `telemachy "
	  "cancel`); it stops submitting and tears down by the run's policy. Waits for the run to "
	  "end.",
	  1,
	  1,
	  { ARG_RUN, ARG_WAIT(30) },
	  cancel_schema,
	  tlm_mcp__cancel_run },
	{ "teardown_run",
	  "Tear down a run",
	  "Delete everything the journal knows of a run whose owner is gone (`telemachy teardown "
	  "RUN`). Refused while the owner is alive: cancel it instead.",
	  1,
	  1,
	  { ARG_RUN, ARG_WAIT(60) },
	  teardown_schema,
	  tlm_mcp__teardown_run },
};

#define NTOOLS (sizeof(tools) / sizeof(tools[0]))

static json_t *input_schema(const tlm_mcp_tool *t)
{
	json_t *props = json_object(), *req = json_array(), *p, *e;
	const tlm_mcp_arg *a;
	size_t i, k;
	int bad = props == NULL || req == NULL;

	for (i = 0; i < TLM_MCP_ARGS_MAX && t->args[i].name != NULL; i++) {
		a = &t->args[i];
		p = json_pack("{s:s, s:s}", "type",
			      a->type == TLM_MCP_ARG_INT ? "integer" : "string", "description",
			      a->description);
		if (p != NULL && a->type == TLM_MCP_ARG_INT) {
			bad |= json_object_set_new(p, "minimum", json_integer(a->min));
			bad |= json_object_set_new(p, "maximum", json_integer(a->max));
		}
		if (p != NULL && a->choices != NULL) {
			e = json_array();
			for (k = 0; a->choices[k] != NULL; k++)
				bad |= json_array_append_new(e, json_string(a->choices[k]));
			bad |= json_object_set_new(p, "enum", e);
		}
		bad |= json_object_set_new(props, a->name, p);
		if (a->required)
			bad |= json_array_append_new(req, json_string(a->name));
	}
	if (bad) {
		json_decref(props);
		json_decref(req);
		return NULL;
	}
	return json_pack("{s:s, s:o, s:o, s:b}", "type", "object", "properties", props, "required",
			 req, "additionalProperties", 0);
}

static json_t *tool_json(const tlm_mcp_tool *t)
{
	json_t *out = json_loads(t->output_schema, 0, NULL);

	/* readOnlyHint true: it changes nothing; for an action,
	 * destructiveHint says whether it deletes (cancel, teardown) or only
	 * adds (run); none is idempotent, and every one reaches only
	 * telemachy's own journal and control plane (openWorldHint false). */
	return json_pack("{s:s, s:s, s:s, s:o, s:o, s:{s:s, s:b, s:b, s:b, s:b}}", "name", t->name,
			 "title", t->title, "description", t->description, "inputSchema",
			 input_schema(t), "outputSchema", out, "annotations", "title", t->title,
			 "readOnlyHint", !t->action, "destructiveHint", t->destructive,
			 "idempotentHint", !t->action, "openWorldHint", 0);
}

json_t *tlm_mcp__tools_list(const tlm_mcp *m)
{
	json_t *list = json_array();
	size_t i;

	for (i = 0; list != NULL && i < NTOOLS; i++)
		if (!tools[i].action || m->o.allow_actions)
			if (json_array_append_new(list, tool_json(&tools[i])) != 0) {
				json_decref(list);
				return NULL;
			}
	return list != NULL ? json_pack("{s:o}", "tools", list) : NULL;
}

/* The first thing wrong with args, in msg; 0 when they fit the schema. */
static int check_args(const tlm_mcp_tool *t, json_t *args, char *msg, size_t size)
{
	const tlm_mcp_arg *a = NULL;
	const char *key;
	json_t *v;
	size_t i, k;

	json_object_foreach(args, key, v)
	{
		for (i = 0, a = NULL; i < TLM_MCP_ARGS_MAX && t->args[i].name != NULL; i++)
			if (strcmp(t->args[i].name, key) == 0)
				a = &t->args[i];
		if (a == NULL) {
			snprintf(msg, size, "%s takes no argument \"%.100s\"", t->name, key);
			return -1;
		}
		if (a->type == TLM_MCP_ARG_STRING && !json_is_string(v)) {
			snprintf(msg, size, "%s: %s must be a string", t->name, key);
			return -1;
		}
		if (a->type == TLM_MCP_ARG_INT &&
		    (!json_is_integer(v) || json_integer_value(v) < a->min ||
		     json_integer_value(v) > a->max)) {
			snprintf(msg, size, "%s: %s must be an integer from %ld to %ld", t->name,
				 key, a->min, a->max);
			return -1;
		}
		if (a->choices != NULL) {
			for (k = 0; a->choices[k] != NULL; k++)
				if (strcmp(a->choices[k], json_string_value(v)) == 0)
					break;
			if (a->choices[k] == NULL) {
				snprintf(msg, size,
					 "%s: %s must be one of the values its schema lists",
					 t->name, key);
				return -1;
			}
		}
	}
	for (i = 0; i < TLM_MCP_ARGS_MAX && t->args[i].name != NULL; i++)
		if (t->args[i].required && json_object_get(args, t->args[i].name) == NULL) {
			snprintf(msg, size, "%s needs the argument \"%s\"", t->name,
				 t->args[i].name);
			return -1;
		}
	return 0;
}

int tlm_mcp__tools_call(tlm_mcp *m, const char *name, json_t *args, tlm_mcp_out *out)
{
	const tlm_mcp_tool *t = NULL;
	char msg[256];
	size_t i;

	for (i = 0; i < NTOOLS; i++)
		if (strcmp(tools[i].name, name) == 0)
			t = &tools[i];
	if (t == NULL) {
		out->rpc_code = TLM_MCP_INVALID_PARAMS;
		snprintf(out->rpc_msg, sizeof(out->rpc_msg), "unknown tool: %.200s", name);
		return TLM_ERROR;
	}
	/* Known but disabled: a result the model reads, so that it can tell
	 * the user what to change rather than retry. */
	if (t->action && !m->o.allow_actions)
		return tlm_mcp__set_failure(out,
					    "%s is an action and this server is read-only: start "
					    "it as `telemachy mcp --allow-actions` to enable it",
					    t->name);
	if (check_args(t, args, msg, sizeof(msg)) != 0) {
		/* 2025-11-25 (docs/mcp.md): a tool's input errors are tool
		 * results, so the model sees them and corrects itself; earlier
		 * revisions made them protocol errors. */
		if (strcmp(m->version, TLM_MCP_PROTOCOL_LATEST) == 0)
			return tlm_mcp__set_failure(out, "%s", msg);
		out->rpc_code = TLM_MCP_INVALID_PARAMS;
		snprintf(out->rpc_msg, sizeof(out->rpc_msg), "%s", msg);
		return TLM_ERROR;
	}
	return t->fn(m, args, out);
}
