/* The in-process control plane of `telemachy run` (no AGAMEMNON_URL) is
 * reachable by nobody else (docs/security.md): while a run is going, a
 * local client that finds its loopback port — as an attacker would, from
 * /proc — can neither list nor create agents, with no key or a guessed
 * one.  The run's process writes no core file; its agent programs get none
 * of the user's credentials (AGAMEMNON_API_KEY, SECRET_X) but the
 * variables named with --pass-env; a dry run runs no program at all. */
#include <dirent.h>
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

/* The socket inodes pid holds open, from /proc/PID/fd. */
static size_t socket_inodes(pid_t pid, unsigned long *inodes, size_t cap)
{
	char path[64], link[128];
	struct dirent *d;
	size_t n = 0;
	DIR *dp;

	snprintf(path, sizeof(path), "/proc/%d/fd", (int)pid);
	if ((dp = opendir(path)) == NULL)
		return 0;
	while ((d = readdir(dp)) != NULL && n < cap) {
		char fd[600];
		ssize_t len;

		snprintf(fd, sizeof(fd), "%s/%s", path, d->d_name);
		len = readlink(fd, link, sizeof(link) - 1);
		if (len <= 0)
			continue;
		link[len] = '\0';
		if (sscanf(link, "socket:[%lu]", &inodes[n]) == 1)
			n++;
	}
	closedir(dp);
	return n;
}

/* The loopback port pid listens on (/proc/net/tcp, state 0A), 0 if none. */
static unsigned listening_port(pid_t pid)
{
	unsigned long inodes[256];
	size_t n = socket_inodes(pid, inodes, 256), i;
	char line[512];
	FILE *f = fopen("/proc/net/tcp", "r");
	unsigned port = 0;

	if (f == NULL)
		return 0;
	while (port == 0 && fgets(line, sizeof(line), f) != NULL) {
		unsigned addr, lport, st;
		unsigned long inode;

		if (sscanf(line, " %*d: %x:%x %*x:%*x %x %*x:%*x %*x:%*x %*x %*u %*u %lu", &addr,
			   &lport, &st, &inode) != 4 ||
		    st != 0x0A)
			continue;
		for (i = 0; i < n; i++)
			if (inodes[i] == inode)
				port = lport;
	}
	fclose(f);
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
	const char *args[] = { "--pass-env", "PASSED_Y", NULL };
	const char *guess[] = { "X-API-Key: guessed", NULL };
	const char *bearer[] = { "Authorization: Bearer user-key-Kx81", NULL };
	const char *body =
		"{\"name\":\"evil\",\"program\":\"/bin/sh\",\"programArgs\":[\"-c\",\"id\"]}";
	unsigned port = 0;
	int64_t end;
	(void)state;

	snprintf(out, sizeof(out), "%s/env.out", dir);
	file = sleeper_file(out);
	tlm_h_run_start(&run, renv, args, file);
	end = tlm_h_now_ms() + 10000;
	while ((port = listening_port(run.pid)) == 0 && tlm_h_now_ms() < end)
		tlm_h_sleep_ms(20);
	if (port == 0)
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
