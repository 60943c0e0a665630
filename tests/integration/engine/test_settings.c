/* Agent settings a control plane does not keep (issue 12, item 2;
 * docs/agamemnon.md, "What upstream keeps of an agent"): the real binary
 * against the real `telemachy serve`, plain (keeps everything) and with
 * --upstream-agent-fields (drops model, env, image, cpus, memory as
 * upstream does).  The probe agent is journaled like any other and never
 * left behind; a spec that needs none of these settings makes no probe. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness/harness.h"
#include "harness/run.h"
#include "harness/serve.h"

#define RUN_MS 60000

static tlm_h_serve srv;
static tlm_h_run run;
static char *dir, reqlog[4096];

static const char with_model[] = "apiVersion: telemachy/v1\n"
				 "metadata: {name: model}\n"
				 "teardown: never\n"
				 "agents:\n"
				 "  - {name: a, program: none, args: [x], model: opus-x}\n"
				 "teams:\n"
				 "  - name: t\n"
				 "    agents: [a]\n"
				 "    tasks:\n"
				 "      - {subject: s, description: d}\n";

static const char with_env[] = "apiVersion: telemachy/v1\n"
			       "metadata: {name: env}\n"
			       "agents:\n"
			       "  - {name: a, program: none, env: {FOO: bar}}\n"
			       "teams:\n"
			       "  - name: t\n"
			       "    agents: [a]\n"
			       "    tasks:\n"
			       "      - {subject: s, description: d}\n";

static const char docker[] =
	"apiVersion: telemachy/v1\n"
	"metadata: {name: docker}\n"
	"agents:\n"
	"  - {name: box, runtime: docker, docker_image: 'alpine:3', program: none}\n"
	"teams:\n"
	"  - name: t\n"
	"    agents: [box]\n"
	"    tasks:\n"
	"      - {subject: s, description: d}\n";

static const char plain[] = "apiVersion: telemachy/v1\n"
			    "metadata: {name: plain}\n"
			    "agents:\n"
			    "  - {name: a, program: none}\n"
			    "teams:\n"
			    "  - name: t\n"
			    "    agents: [a]\n"
			    "    tasks:\n"
			    "      - {subject: s, description: d}\n";

static int setup(void **state)
{
	(void)state;
	memset(&srv, 0, sizeof(srv));
	memset(&run, 0, sizeof(run));
	dir = tlm_h_tmpdir();
	snprintf(reqlog, sizeof(reqlog), "%s/requests.jsonl", dir);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	tlm_h_run_clear(&run);
	if (srv.pid != 0)
		tlm_h_serve_stop(&srv);
	tlm_h_rmrf(dir);
	free(dir);
	return 0;
}

/* serve with a request log, dropping what upstream drops when upstream,
 * with one --fault when fault is not NULL. */
static void start_serve_fault(int upstream, const char *fault)
{
	const char *args[6] = { "--request-log", reqlog };
	size_t n = 2;

	if (fault != NULL) {
		args[n++] = "--fault";
		args[n++] = fault;
	}
	if (upstream)
		args[n++] = "--upstream-agent-fields";
	args[n] = NULL;
	tlm_h_serve_start(&srv, args);
}

static void start_serve(int upstream)
{
	start_serve_fault(upstream, NULL);
}

/* Requests of the log with this method whose path is exactly path. */
static size_t requests(const char *method, const char *path)
{
	char *log = tlm_h_slurp(reqlog), *line, *save = NULL;
	size_t n = 0;

	for (line = strtok_r(log, "\n", &save); line != NULL; line = strtok_r(NULL, "\n", &save)) {
		json_t *o = json_loads(line, 0, NULL);

		if (o != NULL && strcmp(tlm_h_str(o, "method"), method) == 0 &&
		    strcmp(tlm_h_str(o, "path"), path) == 0)
			n++;
		json_decref(o);
	}
	free(log);
	return n;
}

/* The one name of a JSON array of strings ("" when it holds none). */
static const char *only_field(const char *key)
{
	json_t *a = json_object_get(run.result, key);

	assert_true(json_is_array(a));
	assert_true(json_array_size(a) <= 1);
	return json_array_size(a) == 1 ? json_string_value(json_array_get(a, 0)) : "";
}

/* The agent tlm-<run>-a-a as the server holds it (caller json_decrefs). */
static json_t *server_agent(void)
{
	char path[256];
	json_t *body = NULL, *agent;

	snprintf(path, sizeof(path), "/v1/agents/by-name/tlm-%s-a-a",
		 tlm_h_str(run.result, "run_id"));
	assert_int_equal(tlm_h_req(&srv, "GET", path, NULL, &body), 200);
	agent = json_incref(json_object_get(body, "agent"));
	json_decref(body);
	assert_non_null(agent);
	return agent;
}

/* A model dropped by the control plane reaches the agent as two
 * programArgs elements, after the spec's own; the probe is gone. */
static void test_model_mapped(void **state)
{
	char *file = tlm_h_write_file(dir, "w.yaml", with_model);
	json_t *agent, *args;

	(void)state;
	start_serve(1);
	tlm_h_run_on(&run, &srv, file, NULL, NULL);
	assert_int_equal(tlm_h_run_finish(&run, RUN_MS), 0);
	assert_string_equal(only_field("fields_mapped"), "model");
	assert_string_equal(only_field("fields_dropped"), "");
	agent = server_agent();
	args = json_object_get(agent, "programArgs");
	if (json_array_size(args) != 3 ||
	    strcmp(json_string_value(json_array_get(args, 0)), "x") != 0 ||
	    strcmp(json_string_value(json_array_get(args, 1)), "--model") != 0 ||
	    strcmp(json_string_value(json_array_get(args, 2)), "opus-x") != 0)
		fail_msg("programArgs: %s", tlm_h_dump(agent));
	assert_null(json_object_get(agent, "model"));
	/* the kept agent only: the probe was deleted */
	assert_int_equal(tlm_h_count_prefixed(&srv, "agents", "tlm-"), 1);
	json_decref(agent);
	free(file);
}

/* A control plane that keeps the model gets it as `model`, args untouched. */
static void test_model_kept(void **state)
{
	char *file = tlm_h_write_file(dir, "w.yaml", with_model);
	json_t *agent;

	(void)state;
	start_serve(0);
	tlm_h_run_on(&run, &srv, file, NULL, NULL);
	assert_int_equal(tlm_h_run_finish(&run, RUN_MS), 0);
	assert_string_equal(only_field("fields_mapped"), "");
	agent = server_agent();
	assert_string_equal(tlm_h_str(agent, "model"), "opus-x");
	assert_int_equal(json_array_size(json_object_get(agent, "programArgs")), 1);
	assert_int_equal(requests("POST", "/v1/agents"), 2); /* the probe and a */
	json_decref(agent);
	free(file);
}

/* The probe's reply is lost (the server created it): the probe is found by
 * name and read back (GET), which shows the model kept; it is deleted. */
static void test_lost_reply_read_back(void **state)
{
	char *file = tlm_h_write_file(dir, "w.yaml", with_model);
	json_t *agent;

	(void)state;
	start_serve_fault(0, "drop:route=POST /v1/agents,nth=1");
	tlm_h_run_on(&run, &srv, file, NULL, NULL);
	assert_int_equal(tlm_h_run_finish(&run, RUN_MS), 0);
	assert_string_equal(only_field("fields_mapped"), "");
	agent = server_agent();
	assert_string_equal(tlm_h_str(agent, "model"), "opus-x");
	assert_int_equal(tlm_h_count_prefixed(&srv, "agents", "tlm-"), 1);
	json_decref(agent);
	free(file);
}

/* env has no place: refused (exit 2) before any agent but the probe, which
 * the journal shows created (its id) and deleted. */
static void test_env_refused(void **state)
{
	char *file = tlm_h_write_file(dir, "w.yaml", with_env), sdir[4200], rid[16];
	const char *args[] = { "status", "--output", "json", "--state-dir", sdir, rid, NULL };
	json_t *res;
	tlm_h_cmd c;

	(void)state;
	start_serve(1);
	tlm_h_run_on(&run, &srv, file, NULL, NULL);
	assert_int_equal(tlm_h_run_finish(&run, RUN_MS), 2);
	if (strstr(tlm_h_str(run.result, "error"), "does not keep `env`") == NULL ||
	    strstr(tlm_h_str(run.result, "error"), "--drop-field env") == NULL)
		fail_msg("error: %s", tlm_h_str(run.result, "error"));
	assert_string_equal(only_field("fields_refused"), "env");
	assert_int_equal(tlm_h_int(run.result, "agents_created"), 0);
	assert_int_equal(requests("POST", "/v1/agents"), 1);
	tlm_h_assert_no_tlm(&srv);
	snprintf(sdir, sizeof(sdir), "%s/state", run.dir);
	snprintf(rid, sizeof(rid), "%s", tlm_h_str(run.result, "run_id"));
	tlm_h_cmd_run(&c, dir, NULL, args, 20000);
	assert_int_equal(c.exit_code, 0);
	assert_int_equal(json_array_size(json_object_get(c.json, "resources")), 1);
	res = json_array_get(json_object_get(c.json, "resources"), 0);
	assert_string_equal(tlm_h_str(res, "state"), "deleted");
	assert_true(json_is_string(json_object_get(res, "remote_id")));
	if (strstr(tlm_h_str(res, "name"), "-probe") == NULL)
		fail_msg("resource: %s", tlm_h_dump(res));
	tlm_h_cmd_free(&c);
	free(file);
}

/* Docker settings have no place upstream either: all three refused in one
 * message naming the flags; no docker is needed, nothing is started. */
static void test_docker_refused(void **state)
{
	char *file = tlm_h_write_file(dir, "w.yaml", docker);
	const char *err;

	(void)state;
	start_serve(1);
	tlm_h_run_on(&run, &srv, file, NULL, NULL);
	assert_int_equal(tlm_h_run_finish(&run, RUN_MS), 2);
	err = tlm_h_str(run.result, "error");
	if (strstr(err, "`image`, `cpus`, `memory`; agent box would run without them") == NULL ||
	    strstr(err, "--drop-field image --drop-field cpus --drop-field memory") == NULL)
		fail_msg("error: %s", err);
	assert_int_equal(json_array_size(json_object_get(run.result, "fields_refused")), 3);
	assert_int_equal(requests("POST", "/v1/agents"), 1);
	tlm_h_assert_no_tlm(&srv);
	free(file);
}

/* --drop-field env runs anyway, and both summaries say env was dropped. */
static void test_env_dropped(void **state)
{
	char *file = tlm_h_write_file(dir, "w.yaml", with_env), urlenv[200], sdir[4200];
	const char *drop[] = { "--drop-field", "env", NULL }, *env[] = { urlenv, NULL };
	const char *text[] = { "run", "--state-dir", sdir, "--drop-field", "env", file, NULL };
	tlm_h_cmd c;

	(void)state;
	start_serve(1);
	tlm_h_run_on(&run, &srv, file, NULL, drop);
	assert_int_equal(tlm_h_run_finish(&run, RUN_MS), 0);
	assert_string_equal(only_field("fields_dropped"), "env");
	tlm_h_assert_all_completed(&run);
	tlm_h_assert_no_tlm(&srv);
	snprintf(urlenv, sizeof(urlenv), "AGAMEMNON_URL=%s", srv.url);
	snprintf(sdir, sizeof(sdir), "%s/text-state", dir);
	tlm_h_cmd_run(&c, dir, env, text, RUN_MS);
	assert_int_equal(c.exit_code, 0);
	if (strstr(c.out, "settings dropped") == NULL || strstr(c.out, ": env\n") == NULL)
		fail_msg("summary:\n%s", c.out);
	tlm_h_cmd_free(&c);
	free(file);
}

/* No model, env or docker settings: no probe, one create per agent. */
static void test_no_probe(void **state)
{
	char *file = tlm_h_write_file(dir, "w.yaml", plain);

	(void)state;
	start_serve(1);
	tlm_h_run_on(&run, &srv, file, NULL, NULL);
	assert_int_equal(tlm_h_run_finish(&run, RUN_MS), 0);
	assert_int_equal(requests("POST", "/v1/agents"), 1);
	assert_null(strstr(run.err, "probe"));
	free(file);
}

/* Kills the run at the first crash point named point (the probe's, which
 * comes before any agent's), then `teardown RUN` must leave nothing. */
static void crash_then_teardown(const char *point)
{
	char *file = tlm_h_write_file(dir, "w.yaml", with_env), urlenv[200], sdir[4200], rid[16],
	     on[128];
	const char *crash[] = { on, NULL };
	const char *env[] = { urlenv, NULL };
	const char *args[] = { "teardown", "--state-dir", sdir, rid, NULL };
	const char *p;
	tlm_h_cmd c;

	snprintf(on, sizeof(on), "TLM_CRASH_ON=%s", point);
	start_serve(1);
	tlm_h_run_on(&run, &srv, file, crash, NULL);
	tlm_h_run_wait(&run, RUN_MS);
	assert_int_equal(run.exit_code, 128 + SIGKILL);
	assert_int_equal(tlm_h_count_prefixed(&srv, "agents", "tlm-"), 1);
	p = strstr(run.err, "] run ");
	assert_non_null(p);
	snprintf(rid, sizeof(rid), "%.8s", p + strlen("] run "));
	snprintf(urlenv, sizeof(urlenv), "AGAMEMNON_URL=%s", srv.url);
	snprintf(sdir, sizeof(sdir), "%s/state", run.dir);
	tlm_h_cmd_run(&c, dir, env, args, RUN_MS);
	if (c.exit_code != 0)
		fail_msg("teardown after a crash at %s: exit %d\n%s%s", point, c.exit_code, c.out,
			 c.err);
	tlm_h_cmd_free(&c);
	tlm_h_assert_no_tlm(&srv);
	free(file);
}

/* Between the probe's create and its reply: the server has it, the journal
 * only its intent; teardown finds it by name. */
static void test_crash_lost_reply(void **state)
{
	(void)state;
	crash_then_teardown("reply POST /v1/agents");
}

/* After its id was journaled, before its delete: teardown deletes it by id. */
static void test_crash_before_delete(void **state)
{
	(void)state;
	crash_then_teardown("recording a remote id");
}

/* The same crash, then `resume --drop-field env`: the probe the dead owner
 * left is settled first, the run completes and leaves nothing. */
static void test_crash_then_resume(void **state)
{
	char *file = tlm_h_write_file(dir, "w.yaml", with_env), urlenv[200], sdir[4200], rid[16];
	const char *crash[] = { "TLM_CRASH_ON=reply POST /v1/agents", NULL };
	const char *env[] = { urlenv, NULL };
	const char *args[] = { "resume", "--state-dir",       sdir, "--drop-field",
			       "env",    "--request-timeout", "2",  rid,
			       NULL };
	const char *p;
	tlm_h_cmd c;

	(void)state;
	start_serve(1);
	tlm_h_run_on(&run, &srv, file, crash, NULL);
	tlm_h_run_wait(&run, RUN_MS);
	assert_int_equal(run.exit_code, 128 + SIGKILL);
	p = strstr(run.err, "] run ");
	assert_non_null(p);
	snprintf(rid, sizeof(rid), "%.8s", p + strlen("] run "));
	snprintf(urlenv, sizeof(urlenv), "AGAMEMNON_URL=%s", srv.url);
	snprintf(sdir, sizeof(sdir), "%s/state", run.dir);
	tlm_h_cmd_run(&c, dir, env, args, RUN_MS);
	if (c.exit_code != 0 || strstr(c.out, "settings dropped") == NULL)
		fail_msg("resume: exit %d\n%s%s", c.exit_code, c.out, c.err);
	tlm_h_cmd_free(&c);
	tlm_h_assert_no_tlm(&srv);
	free(file);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_model_mapped, setup, teardown),
		cmocka_unit_test_setup_teardown(test_model_kept, setup, teardown),
		cmocka_unit_test_setup_teardown(test_lost_reply_read_back, setup, teardown),
		cmocka_unit_test_setup_teardown(test_env_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_docker_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_env_dropped, setup, teardown),
		cmocka_unit_test_setup_teardown(test_no_probe, setup, teardown),
		cmocka_unit_test_setup_teardown(test_crash_lost_reply, setup, teardown),
		cmocka_unit_test_setup_teardown(test_crash_before_delete, setup, teardown),
		cmocka_unit_test_setup_teardown(test_crash_then_resume, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
