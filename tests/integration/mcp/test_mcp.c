/* `telemachy mcp` through a scripted MCP client (docs/mcp.md): the real
 * binary on pipes, spoken to as the specification's stdio transport has it
 * (one JSON-RPC message per line).  The lifecycle and version negotiation,
 * every JSON-RPC error, the framing limits, every tool with good and bad
 * input — on a journal written through the journal API (with a hostile
 * workflow name) and on real runs against `telemachy serve` for the
 * actions.  Every wait is bounded. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness/harness.h"
#include "harness/run.h"
#include "harness/serve.h"
#include "telemachy/journal.h"

#define REPLY_MS 20000
#define RUN_MS   60000

typedef struct client {
	pid_t pid;
	int to, from; /* its stdin, its stdout */
	char *buf;
	size_t len, cap;
	long next_id;
} client;

/* Each test's server and temporary dir (tlm_h_fixture_setup). */
static tlm_h_fixture *const fx = &tlm_h_fx;

/* Starts TLM_BIN mcp --state-dir DIR/state ARGS... with env ("NAME=VALUE")
 * added to an environment without the engine's variables. */
static void client_start(client *c, const char *const *args, const char *const *env)
{
	int in[2], out[2];
	const char *argv[24];
	char state[512];
	size_t n = 0, i;

	memset(c, 0, sizeof(*c));
	c->next_id = 1;
	snprintf(state, sizeof(state), "%s/state", fx->dir);
	/* TLM_TEST_VALGRIND=1: the server under valgrind (docs/mcp.md, "Tests");
	 * its errors and leaks make it exit 99, which client_close catches. */
	if (getenv("TLM_TEST_VALGRIND") != NULL) {
		argv[n++] = "valgrind";
		argv[n++] = "-q";
		argv[n++] = "--error-exitcode=99";
		argv[n++] = "--leak-check=full";
		argv[n++] = "--errors-for-leak-kinds=definite,indirect";
	}
	argv[n++] = TLM_BIN;
	argv[n++] = "mcp";
	argv[n++] = "--state-dir";
	argv[n++] = state;
	for (i = 0; args != NULL && args[i] != NULL && n < 23; i++)
		argv[n++] = args[i];
	argv[n] = NULL;
	assert_int_equal(pipe2(in, O_CLOEXEC), 0);
	assert_int_equal(pipe2(out, O_CLOEXEC), 0);
	c->pid = fork();
	assert_true(c->pid >= 0);
	if (c->pid == 0) {
		dup2(in[0], 0);
		dup2(out[1], 1);
		unsetenv("TELEMACHY_STATE_DIR");
		unsetenv("TELEMACHY_JOURNAL");
		unsetenv("AGAMEMNON_URL");
		unsetenv("AGAMEMNON_API_KEY");
		unsetenv("NATS_URL");
		for (i = 0; env != NULL && env[i] != NULL; i++)
			putenv((char *)env[i]);
		if (getenv("TLM_TEST_VALGRIND") != NULL)
			setenv("TLM_TEST_MCP_EXE", TLM_BIN, 1);
		execvp(argv[0], (char *const *)argv);
		_exit(127);
	}
	close(in[0]);
	close(out[1]);
	c->to = in[1];
	c->from = out[0];
}

static void send_raw(client *c, const char *p, size_t n)
{
	ssize_t w;

	while (n > 0) {
		w = write(c->to, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		assert_true(w > 0);
		p += w;
		n -= (size_t)w;
	}
}

static void send_line(client *c, const char *line)
{
	send_raw(c, line, strlen(line));
	send_raw(c, "\n", 1);
}

static void send_json(client *c, json_t *msg)
{
	char *s = json_dumps(msg, JSON_COMPACT);

	assert_non_null(s);
	send_line(c, s);
	free(s);
	json_decref(msg);
}

/* The next line the server writes, or NULL at end of output or after
 * timeout_ms; the caller frees it. */
static char *recv_line(client *c, int timeout_ms)
{
	int64_t end = tlm_h_now_ms() + timeout_ms;
	struct pollfd p;
	char *nl, *line;
	ssize_t r;

	for (;;) {
		nl = c->len > 0 ? memchr(c->buf, '\n', c->len) : NULL;
		if (nl != NULL) {
			size_t k = (size_t)(nl - c->buf);

			line = strndup(c->buf, k);
			memmove(c->buf, nl + 1, c->len - k - 1);
			c->len -= k + 1;
			return line;
		}
		p.fd = c->from;
		p.events = POLLIN;
		if (tlm_h_now_ms() >= end || poll(&p, 1, 100) < 0)
			if (tlm_h_now_ms() >= end)
				return NULL;
		if (!(p.revents & (POLLIN | POLLHUP)))
			continue;
		if (c->cap - c->len < 65536) {
			c->cap = c->cap ? c->cap * 2 : 131072;
			c->buf = realloc(c->buf, c->cap);
			assert_non_null(c->buf);
		}
		r = read(c->from, c->buf + c->len, c->cap - c->len);
		if (r == 0)
			return NULL;
		if (r > 0)
			c->len += (size_t)r;
	}
}

/* The next message: one line of one JSON value. */
static json_t *recv_msg(client *c)
{
	char *line = recv_line(c, REPLY_MS);
	json_error_t e;
	json_t *v;

	if (line == NULL)
		fail_msg("no reply from telemachy mcp");
	v = json_loads(line, 0, &e);
	if (v == NULL)
		fail_msg("not JSON (%s): %.300s", e.text, line);
	free(line);
	return v;
}

/* Sends a request and returns its response (checking id and jsonrpc). */
static json_t *request(client *c, const char *method, json_t *params)
{
	long id = c->next_id++;
	json_t *msg =
		json_pack("{s:s, s:i, s:s}", "jsonrpc", "2.0", "id", (int)id, "method", method);
	json_t *r;

	if (params != NULL)
		json_object_set_new(msg, "params", params);
	send_json(c, msg);
	r = recv_msg(c);
	assert_string_equal(tlm_h_str(r, "jsonrpc"), "2.0");
	if (json_integer_value(json_object_get(r, "id")) != id)
		fail_msg("reply to another id: %s", tlm_h_dump(r));
	return r;
}

static void notify(client *c, const char *method)
{
	send_json(c, json_pack("{s:s, s:s}", "jsonrpc", "2.0", "method", method));
}

/* The error code of a response (fails when it is a result). */
static json_int_t error_code(const json_t *r)
{
	json_t *e = json_object_get(r, "error");

	if (e == NULL)
		fail_msg("expected an error: %s", tlm_h_dump(r));
	assert_non_null(json_string_value(json_object_get(e, "message")));
	return json_integer_value(json_object_get(e, "code"));
}

static json_t *result(const json_t *r)
{
	json_t *res = json_object_get(r, "result");

	if (res == NULL)
		fail_msg("expected a result: %s", tlm_h_dump(r));
	return res;
}

static json_t *init_params(const char *version)
{
	return json_pack("{s:s, s:{}, s:{s:s, s:s}}", "protocolVersion", version, "capabilities",
			 "clientInfo", "name", "test_mcp", "version", "1");
}

/* initialize (answered with version) and the initialized notification. */
static void handshake(client *c, const char *version)
{
	json_t *r = request(c, "initialize", init_params(version));

	assert_string_equal(tlm_h_str(result(r), "protocolVersion"), version);
	json_decref(r);
	notify(c, "notifications/initialized");
}

/* A tools/call's response. */
static json_t *call(client *c, const char *tool, json_t *args)
{
	return request(c, "tools/call",
		       json_pack("{s:s, s:o}", "name", tool, "arguments",
				 args != NULL ? args : json_object()));
}

/* The structuredContent of a successful call (checks the text twin). */
static json_t *call_ok(client *c, const char *tool, json_t *args)
{
	json_t *r = call(c, tool, args), *res = result(r), *sc, *text;

	if (json_is_true(json_object_get(res, "isError")))
		fail_msg("%s failed: %s", tool, tlm_h_dump(r));
	sc = json_object_get(res, "structuredContent");
	assert_true(json_is_object(sc));
	text = json_loads(json_string_value(json_object_get(
				  json_array_get(json_object_get(res, "content"), 0), "text")),
			  0, NULL);
	assert_non_null(text);
	assert_true(json_equal(text, sc));
	json_decref(text);
	json_incref(sc);
	json_decref(r);
	return sc;
}

/* The text of a call that failed as a tool (isError). */
static char *call_fail(client *c, const char *tool, json_t *args)
{
	json_t *r = call(c, tool, args), *res = result(r);
	const char *t;
	char *s;

	if (!json_is_true(json_object_get(res, "isError")))
		fail_msg("%s should have failed: %s", tool, tlm_h_dump(r));
	assert_null(json_object_get(res, "structuredContent"));
	t = json_string_value(
		json_object_get(json_array_get(json_object_get(res, "content"), 0), "text"));
	assert_non_null(t);
	s = strdup(t);
	json_decref(r);
	return s;
}

static void assert_fail_has(client *c, const char *tool, json_t *args, const char *needle)
{
	char *t = call_fail(c, tool, args);

	if (strstr(t, needle) == NULL)
		fail_msg("%s: \"%s\" does not say \"%s\"", tool, t, needle);
	free(t);
}

/* Closes its stdin; the exit code (at most 10 s). */
static int client_close(client *c)
{
	int64_t end = tlm_h_now_ms() + 10000;
	int status;
	pid_t w;

	close(c->to);
	while ((w = waitpid(c->pid, &status, WNOHANG)) == 0 && tlm_h_now_ms() < end)
		tlm_h_sleep_ms(20);
	if (w == 0) {
		kill(c->pid, SIGKILL);
		waitpid(c->pid, &status, 0);
		fail_msg("telemachy mcp did not exit at end of input");
	}
	close(c->from);
	free(c->buf);
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* ---- the lifecycle ----------------------------------------------------- */

static void test_handshake(void **state)
{
	client c;
	json_t *r, *res;

	(void)state;
	client_start(&c, NULL, NULL);
	/* Before initialize only ping is answered. */
	r = request(&c, "tools/list", NULL);
	assert_int_equal(error_code(r), -32600);
	json_decref(r);
	r = request(&c, "ping", NULL);
	assert_int_equal(json_object_size(result(r)), 0);
	json_decref(r);
	/* initialize without a version is invalid params */
	r = request(&c, "initialize", json_object());
	assert_int_equal(error_code(r), -32602);
	json_decref(r);
	/* a version the server knows is answered as asked */
	r = request(&c, "initialize", init_params("2025-06-18"));
	res = result(r);
	assert_string_equal(tlm_h_str(res, "protocolVersion"), "2025-06-18");
	assert_true(json_is_false(json_object_get(
		json_object_get(json_object_get(res, "capabilities"), "tools"), "listChanged")));
	assert_string_equal(tlm_h_str(json_object_get(res, "serverInfo"), "name"), "telemachy");
	assert_non_null(
		json_string_value(json_object_get(json_object_get(res, "serverInfo"), "version")));
	assert_null(json_object_get(json_object_get(res, "capabilities"), "resources"));
	json_decref(r);
	/* only once */
	r = request(&c, "initialize", init_params("2025-06-18"));
	assert_int_equal(error_code(r), -32600);
	json_decref(r);
	/* The initialized notification, an unknown one and a cancellation get
	 * no reply: the next line is the ping's. */
	notify(&c, "notifications/initialized");
	notify(&c, "notifications/whatever");
	send_line(&c, "{\"jsonrpc\":\"2.0\",\"method\":\"notifications/cancelled\","
		      "\"params\":{\"requestId\":1,\"reason\":\"x\"}}");
	/* a response (to nothing) is not answered either */
	send_line(&c, "{\"jsonrpc\":\"2.0\",\"id\":99,\"result\":{}}");
	r = request(&c, "ping", NULL);
	assert_int_equal(json_object_size(result(r)), 0);
	json_decref(r);
	assert_int_equal(client_close(&c), 0);

	/* An unknown version is answered with the newest. */
	client_start(&c, NULL, NULL);
	r = request(&c, "initialize", init_params("1999-01-01"));
	assert_string_equal(tlm_h_str(result(r), "protocolVersion"), "2025-11-25");
	json_decref(r);
	assert_int_equal(client_close(&c), 0);

	/* Every revision the server lists is answered as asked. */
	client_start(&c, NULL, NULL);
	handshake(&c, "2024-11-05");
	assert_int_equal(client_close(&c), 0);
	client_start(&c, NULL, NULL);
	handshake(&c, "2025-03-26");
	assert_int_equal(client_close(&c), 0);
}

static void test_errors(void **state)
{
	client c;
	json_t *r;
	char *line, *big;
	size_t n = ((size_t)4 << 20) + 16;

	(void)state;
	client_start(&c, NULL, NULL);
	handshake(&c, "2025-11-25");
	/* parse error: id null */
	send_line(&c, "{\"jsonrpc\": \"2.0\", \"id\": 1, \"method\": ");
	r = recv_msg(&c);
	assert_int_equal(error_code(r), -32700);
	assert_true(json_is_null(json_object_get(r, "id")));
	json_decref(r);
	send_line(&c, "not json at all");
	r = recv_msg(&c);
	assert_int_equal(error_code(r), -32700);
	json_decref(r);
	/* invalid UTF-8, and a NUL byte, are not JSON either */
	send_line(&c, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"\xff\"}");
	r = recv_msg(&c);
	assert_int_equal(error_code(r), -32700);
	json_decref(r);
	send_raw(&c, "{\"jsonrpc\":\"2.0\",\"id\":1,\0\"method\":\"ping\"}\n", 42);
	r = recv_msg(&c);
	assert_int_equal(error_code(r), -32700);
	json_decref(r);
	/* invalid requests */
	send_line(&c, "{\"id\":5,\"method\":\"ping\"}");
	r = recv_msg(&c);
	assert_int_equal(error_code(r), -32600);
	assert_int_equal(json_integer_value(json_object_get(r, "id")), 5);
	json_decref(r);
	send_line(&c, "{\"jsonrpc\":\"2.0\",\"id\":null,\"method\":\"ping\"}");
	r = recv_msg(&c);
	assert_int_equal(error_code(r), -32600);
	json_decref(r);
	send_line(&c, "42");
	r = recv_msg(&c);
	assert_int_equal(error_code(r), -32600);
	json_decref(r);
	/* 2025-11-25 has no batches */
	send_line(&c, "[{\"jsonrpc\":\"2.0\",\"id\":7,\"method\":\"ping\"}]");
	r = recv_msg(&c);
	assert_int_equal(error_code(r), -32600);
	json_decref(r);
	/* method not found; params not an object */
	r = request(&c, "resources/list", NULL);
	assert_int_equal(error_code(r), -32601);
	json_decref(r);
	r = request(&c, "tools/list", json_pack("[i]", 1));
	assert_int_equal(error_code(r), -32602);
	json_decref(r);
	/* tools/call: no name, arguments not an object, unknown tool */
	r = request(&c, "tools/call", json_object());
	assert_int_equal(error_code(r), -32602);
	json_decref(r);
	r = request(&c, "tools/call", json_pack("{s:s, s:i}", "name", "list_runs", "arguments", 3));
	assert_int_equal(error_code(r), -32602);
	json_decref(r);
	r = request(&c, "tools/call", json_pack("{s:s}", "name", "rm_rf"));
	assert_int_equal(error_code(r), -32602);
	json_decref(r);
	/* A line over 4 MiB: one error, and the server goes on. */
	big = malloc(n);
	assert_non_null(big);
	memset(big, 'x', n);
	memcpy(big, "{\"a\":\"", 6);
	send_raw(&c, big, n);
	send_raw(&c, "\"}\n", 3);
	free(big);
	r = recv_msg(&c);
	assert_int_equal(error_code(r), -32600);
	assert_non_null(
		strstr(json_string_value(json_object_get(json_object_get(r, "error"), "message")),
		       "longer than"));
	json_decref(r);
	/* CRLF and empty lines are fine */
	{
		const char crlf[] =
			"\n\r\n{\"jsonrpc\":\"2.0\",\"id\":\"s\",\"method\":\"ping\"}\r\n";

		send_raw(&c, crlf, strlen(crlf));
	}
	r = recv_msg(&c);
	assert_string_equal(tlm_h_str(r, "id"), "s");
	json_decref(r);
	/* Nothing else is on stdout: end of input ends it, exit 0. */
	close(c.to);
	c.to = open("/dev/null", O_WRONLY);
	line = recv_line(&c, REPLY_MS);
	assert_null(line);
	assert_int_equal(client_close(&c), 0);

	/* 2025-03-26 has batches: the replies in one array; notifications
	 * in it get none; initialize may not be in one. */
	client_start(&c, NULL, NULL);
	handshake(&c, "2025-03-26");
	send_line(&c, "[{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"},"
		      "{\"jsonrpc\":\"2.0\",\"method\":\"notifications/x\"},"
		      "{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"nope\"},"
		      "{\"jsonrpc\":\"2.0\",\"id\":3,\"method\":\"initialize\",\"params\":{}}]");
	r = recv_msg(&c);
	assert_true(json_is_array(r));
	assert_int_equal(json_array_size(r), 3);
	assert_int_equal(error_code(json_array_get(r, 1)), -32601);
	assert_int_equal(error_code(json_array_get(r, 2)), -32600);
	json_decref(r);
	send_line(&c, "[]");
	r = recv_msg(&c);
	assert_int_equal(error_code(r), -32600);
	json_decref(r);
	/* before 2025-11-25, bad tool arguments are a protocol error */
	r = call(&c, "list_runs", json_pack("{s:s}", "bogus", "x"));
	assert_int_equal(error_code(r), -32602);
	json_decref(r);
	assert_int_equal(client_close(&c), 0);
}

static int has_tool(const json_t *list, const char *name)
{
	size_t i;

	for (i = 0; i < json_array_size(list); i++)
		if (strcmp(tlm_h_str(json_array_get(list, i), "name"), name) == 0)
			return 1;
	return 0;
}

static void check_tools(const json_t *list, int actions)
{
	static const char *const ro[] = { "list_runs", "run_status", "task_output",
					  "validate_workflow", "plan_workflow" };
	static const char *const act[] = { "run_workflow", "cancel_run", "teardown_run" };
	json_t *t, *ann, *st;
	size_t i;

	assert_int_equal(json_array_size(list), actions ? 8 : 5);
	for (i = 0; i < 5; i++)
		assert_true(has_tool(list, ro[i]));
	for (i = 0; i < 3; i++)
		assert_int_equal(has_tool(list, act[i]), actions);
	json_array_foreach(list, i, t)
	{
		assert_string_equal(tlm_h_str(json_object_get(t, "inputSchema"), "type"), "object");
		assert_string_equal(tlm_h_str(json_object_get(t, "outputSchema"), "type"),
				    "object");
		assert_non_null(json_string_value(json_object_get(t, "description")));
		assert_non_null(json_string_value(json_object_get(t, "title")));
		ann = json_object_get(t, "annotations");
		assert_int_equal(json_is_true(json_object_get(ann, "readOnlyHint")), i < 5 ? 1 : 0);
	}
	/* list_runs' state enum is the journal's names */
	st = json_object_get(
		json_object_get(json_object_get(json_array_get(list, 0), "inputSchema"),
				"properties"),
		"state");
	assert_int_equal(json_array_size(json_object_get(st, "enum")), TLM_RUN_STATE_COUNT);
	for (i = 0; i < TLM_RUN_STATE_COUNT; i++)
		assert_string_equal(
			json_string_value(json_array_get(json_object_get(st, "enum"), i)),
			tlm_run_state_name((tlm_run_state)i));
}

static void test_tools_list(void **state)
{
	const char *const allow[] = { "--allow-actions", NULL };
	client c;
	json_t *r;

	(void)state;
	client_start(&c, NULL, NULL);
	handshake(&c, "2025-11-25");
	r = request(&c, "tools/list", NULL);
	check_tools(json_object_get(result(r), "tools"), 0);
	json_decref(r);
	/* not listed, and a call says how to enable it */
	assert_fail_has(&c, "run_workflow", NULL, "--allow-actions");
	assert_fail_has(&c, "cancel_run", json_pack("{s:s}", "run", "abcdefgh"), "--allow-actions");
	assert_fail_has(&c, "teardown_run", json_pack("{s:s}", "run", "abcdefgh"),
			"--allow-actions");
	assert_int_equal(client_close(&c), 0);

	client_start(&c, allow, NULL);
	handshake(&c, "2025-06-18");
	r = request(&c, "tools/list", json_object());
	check_tools(json_object_get(result(r), "tools"), 1);
	json_decref(r);
	assert_int_equal(client_close(&c), 0);
}

/* ---- workflow files ---------------------------------------------------- */

static const char good_wf[] = "apiVersion: telemachy/v1\n"
			      "metadata: {name: mcp-good}\n"
			      "agents:\n"
			      "  - name: a\n"
			      "    program: /bin/true\n"
			      "    env: {API_TOKEN: s3cr3t-value}\n"
			      "teams:\n"
			      "  - name: t\n"
			      "    agents: [a]\n"
			      "    tasks:\n"
			      "      - {subject: one, description: d}\n"
			      "      - {subject: two, description: d, blocked_by: [one]}\n";

static void test_spec_tools(void **state)
{
	char root[512], outside[512], arg[64], *good, *bad, *t;
	const char *const args[] = { "--root", root, NULL };
	client c;
	json_t *v, *err;
	char *dump;

	(void)state;
	snprintf(root, sizeof(root), "%s/root", fx->dir);
	assert_int_equal(mkdir(root, 0700), 0);
	good = tlm_h_write_file(root, "good.yaml", good_wf);
	bad = tlm_h_write_file(root, "bad.yaml",
			       "apiVersion: telemachy/v1\nmetadata: {name: x}\nagents: 3\n");
	snprintf(outside, sizeof(outside), "%s/outside.yaml", fx->dir);
	free(tlm_h_write_file(fx->dir, "outside.yaml", good_wf));
	snprintf(arg, sizeof(arg), "%s", "link.yaml");
	{
		char link[600];

		snprintf(link, sizeof(link), "%s/link.yaml", root);
		assert_int_equal(symlink(outside, link), 0);
	}
	client_start(&c, args, NULL);
	handshake(&c, "2025-11-25");

	v = call_ok(&c, "validate_workflow", json_pack("{s:s}", "path", good));
	assert_true(json_is_true(json_object_get(v, "valid")));
	assert_int_equal(tlm_h_int(v, "error_count"), 0);
	json_decref(v);
	/* relative to the root */
	v = call_ok(&c, "validate_workflow", json_pack("{s:s}", "path", "bad.yaml"));
	assert_true(json_is_false(json_object_get(v, "valid")));
	err = json_array_get(json_object_get(v, "errors"), 0);
	assert_non_null(strstr(tlm_h_str(err, "location"), "bad.yaml:3:"));
	assert_int_equal(tlm_h_int(err, "line"), 3);
	json_decref(v);
	/* inline text */
	v = call_ok(&c, "validate_workflow", json_pack("{s:s}", "text", good_wf));
	assert_true(json_is_true(json_object_get(v, "valid")));
	json_decref(v);
	v = call_ok(&c, "validate_workflow", json_pack("{s:s}", "text", "metadata: [\n"));
	assert_true(json_is_false(json_object_get(v, "valid")));
	assert_non_null(strstr(
		tlm_h_str(json_array_get(json_object_get(v, "errors"), 0), "location"), "inline:"));
	json_decref(v);
	/* bad input: a tool error the model reads (2025-11-25) */
	assert_fail_has(&c, "validate_workflow", NULL, "either");
	assert_fail_has(&c, "validate_workflow",
			json_pack("{s:s, s:s}", "path", "good.yaml", "text", "x"), "either");
	assert_fail_has(&c, "validate_workflow", json_pack("{s:i}", "path", 3), "string");
	assert_fail_has(&c, "validate_workflow", json_pack("{s:s}", "path", "nope.yaml"),
			"No such file");
	assert_fail_has(&c, "validate_workflow", json_pack("{s:s}", "path", outside),
			"outside the server's root");
	assert_fail_has(&c, "validate_workflow", json_pack("{s:s}", "path", arg),
			"outside the server's root");
	assert_fail_has(&c, "validate_workflow", json_pack("{s:s}", "path", "../outside.yaml"),
			"outside the server's root");
	{
		char sub[600];

		snprintf(sub, sizeof(sub), "%s/sub", root);
		assert_int_equal(mkdir(sub, 0700), 0);
	}
	assert_fail_has(&c, "validate_workflow", json_pack("{s:s}", "path", "sub"),
			"not a regular file");

	/* plan: the waves, env values hidden */
	v = call_ok(&c, "plan_workflow", json_pack("{s:s}", "path", "good.yaml"));
	assert_int_equal(json_array_size(json_object_get(v, "waves")), 2);
	dump = json_dumps(v, JSON_COMPACT);
	assert_null(strstr(dump, "s3cr3t"));
	assert_non_null(strstr(dump, "API_TOKEN"));
	free(dump);
	json_decref(v);
	v = call_ok(&c, "plan_workflow", json_pack("{s:s}", "text", good_wf));
	assert_string_equal(tlm_h_str(json_object_get(v, "workflow"), "name"), "mcp-good");
	json_decref(v);
	t = call_fail(&c, "plan_workflow", json_pack("{s:s}", "path", "bad.yaml"));
	assert_non_null(strstr(t, "not a valid workflow"));
	free(t);
	assert_fail_has(&c, "plan_workflow", json_pack("{s:s}", "junk", "x"), "no argument");
	assert_int_equal(client_close(&c), 0);
	free(good);
	free(bad);
}

/* ---- the journal's runs ------------------------------------------------ */

/* A workflow name no output may break on. */
#define HOSTILE "evil\"\n</script><b>\\u2028\xe2\x80\xa8"

static void write_journal(char run_a[9], char run_b[9])
{
	tlm_error err = TLM_ERROR_INIT;
	tlm_journal *j = NULL;
	char path[512], result[8192], tail[5000];

	snprintf(path, sizeof(path), "%s/state", fx->dir);
	assert_int_equal(tlm_journal_open(&j, path, &err), 0);
	assert_int_equal(tlm_journal_run_new(j, HOSTILE, "spec", run_a, &err), 0);
	assert_int_equal(tlm_journal_run_set_state(j, run_a, TLM_RUN_FAILED, &err), 0);
	assert_int_equal(
		tlm_journal_task_record(j, run_a, "t", "s", 1, "r1", TLM_ATTEMPT_FAILED, &err), 0);
	assert_int_equal(tlm_journal_task_result(j, run_a, "t", "s", 1,
						 "{\"result\":{\"exitCode\":3,\"stdout\":\"first\","
						 "\"stderr\":\"\"}}",
						 &err),
			 0);
	assert_int_equal(
		tlm_journal_task_record(j, run_a, "t", "s", 2, "r2", TLM_ATTEMPT_COMPLETED, &err),
		0);
	memset(tail, 'y', sizeof(tail) - 1);
	tail[sizeof(tail) - 1] = '\0';
	snprintf(result, sizeof(result),
		 "{\"result\":{\"exitCode\":0,\"stdout\":\"%s<end>\",\"stderr\":\"w\\n\"}}", tail);
	assert_int_equal(tlm_journal_task_result(j, run_a, "t", "s", 2, result, &err), 0);
	assert_int_equal(tlm_journal_run_new(j, "plain", "spec", run_b, &err), 0);
	assert_int_equal(tlm_journal_run_set_state(j, run_b, TLM_RUN_COMPLETED, &err), 0);
	tlm_journal_close(j);
}

static void test_journal_tools(void **state)
{
	char a[9], b[9];
	client c;
	json_t *v, *runs, *r;
	char *line;

	(void)state;
	/* no journal yet: no runs, and nothing is created */
	client_start(&c, NULL, NULL);
	handshake(&c, "2025-11-25");
	v = call_ok(&c, "list_runs", NULL);
	assert_int_equal(json_array_size(json_object_get(v, "runs")), 0);
	json_decref(v);
	assert_fail_has(&c, "run_status", NULL, "no runs");
	assert_int_equal(client_close(&c), 0);
	{
		char p[600];
		struct stat st;

		snprintf(p, sizeof(p), "%s/state/journal.db", fx->dir);
		assert_int_not_equal(stat(p, &st), 0);
	}

	write_journal(a, b);
	client_start(&c, NULL, NULL);
	handshake(&c, "2025-11-25");
	/* list_runs: newest first; the hostile name comes back intact */
	v = call_ok(&c, "list_runs", NULL);
	runs = json_object_get(v, "runs");
	assert_int_equal(json_array_size(runs), 2);
	assert_string_equal(tlm_h_str(json_array_get(runs, 0), "id"), b);
	assert_string_equal(tlm_h_str(json_array_get(runs, 1), "workflow"), HOSTILE);
	json_decref(v);
	/* the raw line: one line, nothing a browser or terminal would take */
	send_line(&c, "{\"jsonrpc\":\"2.0\",\"id\":\"raw\",\"method\":\"tools/call\",\"params\":"
		      "{\"name\":\"list_runs\",\"arguments\":{\"state\":\"failed\"}}}");
	line = recv_line(&c, REPLY_MS);
	assert_non_null(line);
	assert_null(strchr(line, '\n'));
	assert_non_null(strstr(line, "evil\\\"\\n</script>"));
	r = json_loads(line, 0, NULL);
	assert_int_equal(json_array_size(json_object_get(
				 json_object_get(json_object_get(r, "result"), "structuredContent"),
				 "runs")),
			 1);
	json_decref(r);
	free(line);
	v = call_ok(&c, "list_runs", json_pack("{s:s}", "workflow", "plain"));
	assert_int_equal(json_array_size(json_object_get(v, "runs")), 1);
	json_decref(v);
	v = call_ok(&c, "list_runs", json_pack("{s:i}", "limit", 1));
	assert_int_equal(json_array_size(json_object_get(v, "runs")), 1);
	assert_true(json_is_true(json_object_get(v, "truncated")));
	json_decref(v);
	assert_fail_has(&c, "list_runs", json_pack("{s:s}", "state", "happy"), "one of");
	assert_fail_has(&c, "list_runs", json_pack("{s:i}", "limit", 0), "integer");

	/* run_status: the newest by default, or by id */
	v = call_ok(&c, "run_status", NULL);
	assert_string_equal(tlm_h_str(json_object_get(v, "run"), "id"), b);
	json_decref(v);
	v = call_ok(&c, "run_status", json_pack("{s:s}", "run", a));
	assert_string_equal(tlm_h_str(json_object_get(v, "run"), "workflow"), HOSTILE);
	assert_string_equal(tlm_h_str(json_object_get(v, "run"), "state"), "failed");
	assert_int_equal(json_array_size(json_object_get(v, "tasks")), 2);
	json_decref(v);
	assert_fail_has(&c, "run_status", json_pack("{s:s}", "run", "zzzzzzzz"), "no run");
	assert_fail_has(&c, "run_status", json_pack("{s:s}", "run", "../../x"), "no run");

	/* task_output: the last attempt by default, cut with a note */
	v = call_ok(&c, "task_output",
		    json_pack("{s:s, s:s, s:s, s:i}", "run", a, "team", "t", "subject", "s",
			      "max_bytes", 1000));
	assert_int_equal(tlm_h_int(v, "attempt"), 2);
	assert_int_equal(tlm_h_int(v, "attempts"), 2);
	assert_string_equal(tlm_h_str(v, "status"), "completed");
	{
		const char *out =
			tlm_h_str(json_object_get(json_object_get(v, "said"), "result"), "stdout");

		assert_int_equal(strlen(out), 1000);
		assert_non_null(strstr(out, "<end>"));
	}
	assert_non_null(strstr(json_string_value(json_array_get(json_object_get(v, "notes"), 0)),
			       "stdout: cut"));
	json_decref(v);
	v = call_ok(&c, "task_output",
		    json_pack("{s:s, s:s, s:s, s:i}", "run", a, "team", "t", "subject", "s",
			      "attempt", 1));
	assert_string_equal(
		tlm_h_str(json_object_get(json_object_get(v, "said"), "result"), "stdout"),
		"first");
	assert_int_equal(json_array_size(json_object_get(v, "notes")), 0);
	json_decref(v);
	assert_fail_has(&c, "task_output",
			json_pack("{s:s, s:s, s:s, s:i}", "run", a, "team", "t", "subject", "s",
				  "attempt", 3),
			"no attempt 3");
	assert_fail_has(&c, "task_output",
			json_pack("{s:s, s:s, s:s}", "run", a, "team", "t", "subject", "nope"),
			"has no task");
	assert_fail_has(&c, "task_output", json_pack("{s:s, s:s}", "run", a, "team", "t"),
			"\"subject\"");
	assert_fail_has(&c, "task_output",
			json_pack("{s:s, s:s, s:s, s:i}", "run", a, "team", "t", "subject", "s",
				  "max_bytes", 10),
			"integer");
	assert_int_equal(client_close(&c), 0);
}

/* ---- actions, on real runs --------------------------------------------- */

static json_t *status_of(client *c, const char *run)
{
	return call_ok(c, "run_status", json_pack("{s:s}", "run", run));
}

/* Waits (bounded) until run is in a final state; returns it. */
static char *wait_final(client *c, const char *run)
{
	int64_t end = tlm_h_now_ms() + RUN_MS;
	json_t *v;
	char *st;

	for (;;) {
		v = status_of(c, run);
		st = strdup(tlm_h_str(json_object_get(v, "run"), "state"));
		json_decref(v);
		if (strcmp(st, "completed") == 0 || strcmp(st, "failed") == 0 ||
		    strcmp(st, "cancelled") == 0 || strcmp(st, "teardown_failed") == 0)
			return st;
		free(st);
		if (tlm_h_now_ms() >= end)
			fail_msg("run %s did not end within %d ms", run, RUN_MS);
		tlm_h_sleep_ms(200);
	}
}

static void test_actions(void **state)
{
	const char *const allow[] = { "--allow-actions", NULL };
	char url[200], logenv[600], run[9], slow[9], *wf, *st, *t, path[512];
	const char *env[3];
	client c;
	json_t *v, *audit, *e;
	size_t i;
	int found = 0;

	(void)state;
	tlm_h_serve_start(&fx->srv, NULL);
	snprintf(url, sizeof(url), "AGAMEMNON_URL=%s", fx->srv.url);
	snprintf(logenv, sizeof(logenv), "%s/action.log", fx->dir);
	env[0] = url;
	env[1] = NULL;
	{
		const char *const args[] = { "--allow-actions", "--action-log", logenv, NULL };

		client_start(&c, args, env);
	}
	(void)allow;
	handshake(&c, "2025-11-25");

	/* run_workflow: the run appears, completes; its output is readable */
	wf = tlm_h_sh_workflow(fx->dir, "mcp-quick", "echo hello-from-mcp");
	v = call_ok(&c, "run_workflow", json_pack("{s:s}", "path", wf));
	snprintf(run, sizeof(run), "%s", tlm_h_str(v, "run"));
	assert_string_equal(tlm_h_str(v, "workflow"), "mcp-quick");
	json_decref(v);
	st = wait_final(&c, run);
	if (strcmp(st, "completed") != 0) {
		t = tlm_h_slurp(logenv);
		fail_msg("run %s ended %s; its log:\n%s", run, st, t);
	}
	free(st);
	v = call_ok(&c, "task_output",
		    json_pack("{s:s, s:s, s:s}", "run", run, "team", "t", "subject", "s"));
	assert_non_null(
		strstr(tlm_h_str(json_object_get(json_object_get(v, "said"), "result"), "stdout"),
		       "hello-from-mcp"));
	json_decref(v);
	free(wf);
	assert_fail_has(&c, "run_workflow", json_pack("{s:s}", "path", "/nonexistent.yaml"),
			"No such file");
	snprintf(path, sizeof(path), "%s/bad", fx->dir);
	assert_int_equal(mkdir(path, 0700), 0);
	t = tlm_h_write_file(path, "w.yaml",
			     "apiVersion: telemachy/v1\nmetadata: {name: x}\nagents: 3\n");
	assert_fail_has(&c, "run_workflow", json_pack("{s:s}", "path", t), "not a valid workflow");
	free(t);
	assert_fail_has(&c, "run_workflow", NULL, "\"path\"");

	/* a slow run: teardown refused while its owner lives; cancel stops it */
	snprintf(path, sizeof(path), "%s/slow", fx->dir);
	assert_int_equal(mkdir(path, 0700), 0);
	wf = tlm_h_sh_workflow(path, "mcp-slow", "sleep 60");
	v = call_ok(&c, "run_workflow", json_pack("{s:s}", "path", wf));
	snprintf(slow, sizeof(slow), "%s", tlm_h_str(v, "run"));
	json_decref(v);
	free(wf);
	assert_fail_has(&c, "teardown_run", json_pack("{s:s}", "run", slow), "cancel it instead");
	v = call_ok(&c, "cancel_run", json_pack("{s:s, s:i}", "run", slow, "wait_seconds", 60));
	assert_string_equal(tlm_h_str(v, "how"), "owner_stopped");
	assert_string_equal(tlm_h_str(v, "state"), "cancelled");
	json_decref(v);
	/* the audit entry says who asked */
	v = status_of(&c, slow);
	audit = json_object_get(v, "audit");
	json_array_foreach(audit, i, e) if (strcmp(tlm_h_str(e, "action"), "cancel") == 0 &&
					    strstr(tlm_h_str(e, "detail"), "telemachy mcp") != NULL)
		found = 1;
	assert_true(found);
	json_decref(v);
	/* cancelling an ended run says so */
	v = call_ok(&c, "cancel_run", json_pack("{s:s, s:i}", "run", slow, "wait_seconds", 0));
	assert_string_equal(tlm_h_str(v, "how"), "had_ended");
	json_decref(v);
	/* teardown of the ended run: nothing left */
	v = call_ok(&c, "teardown_run", json_pack("{s:s, s:i}", "run", slow, "wait_seconds", 60));
	assert_true(json_is_true(json_object_get(v, "finished")));
	assert_int_equal(tlm_h_int(v, "leftovers"), 0);
	json_decref(v);
	/* a run that left its resources (teardown: never): teardown_run
	 * deletes them */
	{
		char kept[9];

		snprintf(path, sizeof(path), "%s/kept", fx->dir);
		assert_int_equal(mkdir(path, 0700), 0);
		wf = tlm_h_write_file(
			path, "w.yaml",
			"apiVersion: telemachy/v1\n"
			"metadata: {name: mcp-kept}\n"
			"teardown: never\n"
			"agents: [{name: a, program: /bin/true}]\n"
			"teams:\n"
			"  - {name: t, agents: [a], tasks: [{subject: s, description: d}]}\n");
		v = call_ok(&c, "run_workflow", json_pack("{s:s}", "path", wf));
		snprintf(kept, sizeof(kept), "%s", tlm_h_str(v, "run"));
		json_decref(v);
		free(wf);
		st = wait_final(&c, kept);
		assert_string_equal(st, "completed");
		free(st);
		v = status_of(&c, kept);
		assert_true(tlm_h_int(v, "leftovers") > 0);
		json_decref(v);
		assert_true(tlm_h_count_prefixed(&fx->srv, "agents", "tlm-") > 0);
		v = call_ok(&c, "teardown_run",
			    json_pack("{s:s, s:i}", "run", kept, "wait_seconds", 60));
		assert_true(json_is_true(json_object_get(v, "finished")));
		assert_int_equal(tlm_h_int(v, "leftovers"), 0);
		json_decref(v);
		tlm_h_assert_no_tlm(&fx->srv);
	}

	/* a queued run (no owner yet) is asked too: a worker reads it */
	{
		char sd[600], queued[9];
		const char *sub[] = { "submit", "--state-dir", sd, NULL, NULL };
		tlm_h_cmd cmd;

		snprintf(sd, sizeof(sd), "%s/state", fx->dir);
		snprintf(path, sizeof(path), "%s/queued", fx->dir);
		assert_int_equal(mkdir(path, 0700), 0);
		wf = tlm_h_sh_workflow(path, "mcp-queued", "true");
		sub[3] = wf;
		tlm_h_cmd_run(&cmd, fx->dir, NULL, sub, 10000);
		assert_int_equal(cmd.exit_code, 0);
		snprintf(queued, sizeof(queued), "%.8s", cmd.out);
		tlm_h_cmd_free(&cmd);
		free(wf);
		v = call_ok(&c, "cancel_run",
			    json_pack("{s:s, s:i}", "run", queued, "wait_seconds", 0));
		assert_string_equal(tlm_h_str(v, "how"), "still_running");
		assert_string_equal(tlm_h_str(v, "state"), "queued");
		json_decref(v);
		v = status_of(&c, queued);
		assert_non_null(json_string_value(
			json_object_get(json_object_get(v, "run"), "cancel_requested_at")));
		json_decref(v);
	}
	assert_fail_has(&c, "teardown_run", json_pack("{s:s}", "run", "zzzzzzzz"), "no run");
	assert_fail_has(&c, "cancel_run", json_pack("{s:s, s:i}", "run", slow, "wait_seconds", -1),
			"integer");
	assert_int_equal(client_close(&c), 0);
	tlm_h_assert_no_tlm(&fx->srv);
}

/* ---- the command ------------------------------------------------------- */

static void test_command(void **state)
{
	const char *const bad_root[] = { "mcp", "--root", "/nonexistent/dir", NULL };
	const char *const extra[] = { "mcp", "extra", NULL };
	const char *const help[] = { "mcp", "--help", NULL };
	tlm_h_cmd cmd;
	client c;
	json_t *r;

	(void)state;
	tlm_h_cmd_run(&cmd, fx->dir, NULL, bad_root, 10000);
	assert_int_equal(cmd.exit_code, 2);
	assert_non_null(strstr(cmd.err, "--root"));
	tlm_h_cmd_free(&cmd);
	tlm_h_cmd_run(&cmd, fx->dir, NULL, extra, 10000);
	assert_int_equal(cmd.exit_code, 2);
	tlm_h_cmd_free(&cmd);
	tlm_h_cmd_run(&cmd, fx->dir, NULL, help, 10000);
	assert_int_equal(cmd.exit_code, 0);
	assert_non_null(strstr(cmd.out, "--allow-actions"));
	tlm_h_cmd_free(&cmd);

	/* A client that stops reading: the server's write fails (no
	 * SIGPIPE death), it says so on stderr and exits 1. */
	client_start(&c, NULL, NULL);
	r = request(&c, "ping", NULL);
	json_decref(r);
	close(c.from);
	c.from = open("/dev/null", O_RDONLY);
	send_line(&c, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"ping\"}");
	assert_int_equal(client_close(&c), 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_handshake, tlm_h_fixture_setup,
						tlm_h_fixture_teardown),
		cmocka_unit_test_setup_teardown(test_errors, tlm_h_fixture_setup,
						tlm_h_fixture_teardown),
		cmocka_unit_test_setup_teardown(test_tools_list, tlm_h_fixture_setup,
						tlm_h_fixture_teardown),
		cmocka_unit_test_setup_teardown(test_spec_tools, tlm_h_fixture_setup,
						tlm_h_fixture_teardown),
		cmocka_unit_test_setup_teardown(test_journal_tools, tlm_h_fixture_setup,
						tlm_h_fixture_teardown),
		cmocka_unit_test_setup_teardown(test_actions, tlm_h_fixture_setup,
						tlm_h_fixture_teardown),
		cmocka_unit_test_setup_teardown(test_command, tlm_h_fixture_setup,
						tlm_h_fixture_teardown),
	};

	signal(SIGPIPE, SIG_IGN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
