/* The in-process control plane of `telemachy run` (no AGAMEMNON_URL) is
 * reachable by nobody else (docs/security.md): while a run is going, a
 * local client that finds its loopback port — as an attacker would, from
 * /proc — can neither list nor create agents, with no key or a guessed
 * one.  The run's process writes no core file; its agent programs get none
 * of the user's credentials (AGAMEMNON_API_KEY, SECRET_X) but the
 * variables named with --pass-env; a dry run runs no program at all. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness/harness.h"
#include "harness/run.h"
#include "harness/serve.h"

static tlm_h_run run;
static char *dir;

static int setup(void **state)
{
	(void)state;
	memset(&run, 0, sizeof(run));
	dir = tlm_h_tmpdir();
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	tlm_h_run_clear(&run);
	tlm_h_rmrf(dir);
	free(dir);
	return 0;
}

/* The in-process control plane's port, from the run's -v line (an
 * attacker would scan the loopback ports; the test needs no guessing). */
static unsigned plane_port(tlm_h_run *r)
{
	char path[4096], *err, *p;
	unsigned port = 0;

	if (tlm_h_run_wait_for(r, "control plane listens at http://127.0.0.1:", 10000) != 0)
		return 0;
	snprintf(path, sizeof(path), "%s/stderr", r->dir);
	err = tlm_h_slurp(path);
	p = strstr(err, "listens at http://127.0.0.1:");
	if (p != NULL)
		sscanf(p + strlen("listens at http://127.0.0.1:"), "%u", &port);
	free(err);
	return port;
}

static const char sleeper[] = "apiVersion: telemachy/v1\n"
			      "metadata: {name: sleeper}\n"
			      "agents:\n"
			      "  - name: s\n"
			      "    program: /bin/sh\n"
			      "    args: [-c, 'env > \"$OUT_FILE\"; sleep 3']\n"
			      "    env: {OUT_FILE: OUTFILE}\n"
			      "teams:\n"
			      "  - {name: t, agents: [s], tasks: [{subject: k, description: d}]}\n";

static char *sleeper_file(const char *out)
{
	char text[sizeof(sleeper) + 512], *p;

	snprintf(text, sizeof(text), "%s", sleeper);
	p = strstr(text, "OUTFILE");
	assert_non_null(p);
	memmove(p + strlen(out), p + strlen("OUTFILE"), strlen(p + strlen("OUTFILE")) + 1);
	memcpy(p, out, strlen(out));
	return tlm_h_write_file(dir, "sleeper.yaml", text);
}

static void test_nobody_else_gets_in(void **state)
{
	char out[4096], url[128], *file, *env, limits[64], *lim;
	const char *renv[] = { "AGAMEMNON_API_KEY=user-key-Kx81", "SECRET_X=do-not-leak",
			       "PASSED_Y=yes", NULL };
	const char *args[] = { "-v", "--pass-env", "PASSED_Y", NULL };
	const char *guess[] = { "X-API-Key: guessed", NULL };
	const char *bearer[] = { "Authorization: Bearer user-key-Kx81", NULL };
	const char *body =
		"{\"name\":\"evil\",\"program\":\"/bin/sh\",\"programArgs\":[\"-c\",\"id\"]}";
	unsigned port;
	(void)state;

	snprintf(out, sizeof(out), "%s/env.out", dir);
	file = sleeper_file(out);
	tlm_h_run_start(&run, renv, args, file);
	if ((port = plane_port(&run)) == 0)
		fail_msg("the run's in-process control plane was not found listening");
	snprintf(url, sizeof(url), "http://127.0.0.1:%u/v1/agents", port);
	assert_int_equal(tlm_h_http("GET", url, NULL, NULL, NULL, NULL, NULL), 401);
	assert_int_equal(tlm_h_http("POST", url, body, NULL, NULL, NULL, NULL), 401);
	assert_int_equal(tlm_h_http("POST", url, body, guess, NULL, NULL, NULL), 401);
	/* Nor with the user's own key: the in-process one is not it. */
	assert_int_equal(tlm_h_http("POST", url, body, bearer, NULL, NULL, NULL), 401);
	/* No core file: the process holds a key. */
	snprintf(limits, sizeof(limits), "/proc/%d/limits", (int)run.pid);
	lim = tlm_h_slurp(limits);
	assert_non_null(strstr(lim, "Max core file size        0                    0"));
	free(lim);
	assert_int_equal(tlm_h_run_finish(&run, 30000), 0);
	env = tlm_h_slurp(out);
	assert_null(strstr(env, "user-key-Kx81"));
	assert_null(strstr(env, "do-not-leak"));
	assert_non_null(strstr(env, "PASSED_Y=yes"));
	assert_non_null(strstr(env, "PATH="));
	free(env);
	free(file);
}

/* A dry run runs nothing, whatever the agent's program. */
static void test_dry_run_runs_nothing(void **state)
{
	char out[4096], *file;
	const char *args[] = { "--dry-run", NULL };
	(void)state;

	snprintf(out, sizeof(out), "%s/ran", dir);
	file = sleeper_file(out);
	tlm_h_run_start(&run, NULL, args, file);
	assert_int_equal(tlm_h_run_finish(&run, 30000), 0);
	assert_int_equal(access(out, F_OK), -1);
	free(file);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_nobody_else_gets_in, setup, teardown),
		cmocka_unit_test_setup_teardown(test_dry_run_runs_nothing, setup, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
