/* `telemachy run` as a real process for the engine tests. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness/harness.h"
#include "harness/run.h"

char *tlm_h_slurp(const char *path)
{
	FILE *f = fopen(path, "rb");
	size_t cap = 4096, n = 0, got;
	char *buf = malloc(cap + 1);

	assert_non_null(buf);
	if (f == NULL) {
		buf[0] = '\0';
		return buf;
	}
	while ((got = fread(buf + n, 1, cap - n, f)) > 0) {
		n += got;
		if (n == cap) {
			cap *= 2;
			buf = realloc(buf, cap + 1);
			assert_non_null(buf);
		}
	}
	fclose(f);
	buf[n] = '\0';
	return buf;
}

/* Forks TLM_BIN argv (argv[0] included) with a clean engine environment plus
 * env, stdout and stderr to outp and errp; returns the child's pid. */
static pid_t spawn(const char *outp, const char *errp, const char *const *env,
		   const char *const *argv)
{
	static const char *const cleared[] = { "AGAMEMNON_URL",
					       "NATS_URL",
					       "AGAMEMNON_API_KEY",
					       "AGAMEMNON_API_KEY_FILE",
					       "TELEMACHY_STATE_DIR",
					       "TELEMACHY_JOURNAL",
					       "TLM_CRASH_AT",
					       "TLM_CRASH_LOG",
					       NULL };
	pid_t pid = fork();
	size_t i;
	int fd;

	assert_true(pid >= 0);
	if (pid != 0)
		return pid;
	for (i = 0; cleared[i] != NULL; i++)
		unsetenv(cleared[i]);
	for (i = 0; env != NULL && env[i] != NULL; i++)
		putenv((char *)env[i]);
	fd = open(outp, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	dup2(fd, 1);
	fd = open(errp, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	dup2(fd, 2);
	execv(TLM_BIN, (char *const *)argv);
	_exit(127);
}

/* Waits for pid until end_ms; its exit code, 128 + signal, or -1 after a
 * SIGKILL at the deadline. */
static int reap(pid_t pid, int64_t end_ms)
{
	int status = 0;
	pid_t p;

	while ((p = waitpid(pid, &status, WNOHANG)) == 0 && tlm_h_now_ms() < end_ms)
		tlm_h_sleep_ms(5);
	if (p == 0) {
		kill(pid, SIGKILL);
		waitpid(pid, &status, 0);
		return -1;
	}
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

void tlm_h_cmd_start(tlm_h_cmd *c, const char *dir, const char *const *env, const char *const *args)
{
	char outp[4096], errp[4096];
	const char *argv[64];
	size_t n = 0, i;

	memset(c, 0, sizeof(*c));
	c->start_ms = tlm_h_now_ms();
	snprintf(outp, sizeof(outp), "%s/cmd.out", dir);
	snprintf(errp, sizeof(errp), "%s/cmd.err", dir);
	argv[n++] = TLM_BIN;
	for (i = 0; args[i] != NULL && n < 63; i++)
		argv[n++] = args[i];
	argv[n] = NULL;
	c->pid = spawn(outp, errp, env, argv);
}

void tlm_h_cmd_wait(tlm_h_cmd *c, const char *dir, int timeout_ms)
{
	char outp[4096], errp[4096];
	json_error_t jerr;

	snprintf(outp, sizeof(outp), "%s/cmd.out", dir);
	snprintf(errp, sizeof(errp), "%s/cmd.err", dir);
	c->exit_code = reap(c->pid, c->start_ms + timeout_ms);
	c->pid = 0;
	c->ms = tlm_h_now_ms() - c->start_ms;
	c->out = tlm_h_slurp(outp);
	c->err = tlm_h_slurp(errp);
	c->json = json_loads(c->out, 0, &jerr);
}

void tlm_h_cmd_run(tlm_h_cmd *c, const char *dir, const char *const *env, const char *const *args,
		   int timeout_ms)
{
	tlm_h_cmd_start(c, dir, env, args);
	tlm_h_cmd_wait(c, dir, timeout_ms);
}

void tlm_h_cmd_free(tlm_h_cmd *c)
{
	free(c->out);
	free(c->err);
	json_decref(c->json);
	memset(c, 0, sizeof(*c));
}

void tlm_h_run_start(tlm_h_run *r, const char *const *env, const char *const *args,
		     const char *file)
{
	char outp[4096], errp[4096], state[4096];
	const char *argv[64];
	size_t n = 0, i;

	memset(r, 0, sizeof(*r));
	r->dir = tlm_h_tmpdir();
	snprintf(outp, sizeof(outp), "%s/stdout", r->dir);
	snprintf(errp, sizeof(errp), "%s/stderr", r->dir);
	snprintf(state, sizeof(state), "%s/state", r->dir);
	argv[n++] = TLM_BIN;
	argv[n++] = "run";
	argv[n++] = "--output";
	argv[n++] = "json";
	argv[n++] = "--state-dir";
	argv[n++] = state;
	for (i = 0; args != NULL && args[i] != NULL && n < 62; i++)
		argv[n++] = args[i];
	argv[n++] = file;
	argv[n] = NULL;
	r->pid = spawn(outp, errp, env, argv);
}

void tlm_h_run_wait(tlm_h_run *r, int timeout_ms)
{
	char path[4096];
	json_error_t jerr;

	r->exit_code = reap(r->pid, tlm_h_now_ms() + timeout_ms);
	r->pid = 0;
	snprintf(path, sizeof(path), "%s/stdout", r->dir);
	r->out = tlm_h_slurp(path);
	snprintf(path, sizeof(path), "%s/stderr", r->dir);
	r->err = tlm_h_slurp(path);
	if (r->exit_code < 0)
		fail_msg("telemachy run did not end within %d ms; stderr:\n%s", timeout_ms, r->err);
	r->result = json_loads(r->out, 0, &jerr);
}

void tlm_h_run_wf(tlm_h_run *r, const char *const *env, const char *const *args, const char *file,
		  int timeout_ms)
{
	tlm_h_run_start(r, env, args, file);
	tlm_h_run_wait(r, timeout_ms);
}

int tlm_h_run_wait_for(tlm_h_run *r, const char *text, int timeout_ms)
{
	int64_t end = tlm_h_now_ms() + timeout_ms;
	char path[4096];

	snprintf(path, sizeof(path), "%s/stderr", r->dir);
	while (tlm_h_now_ms() < end) {
		char *s = tlm_h_slurp(path);
		int found = strstr(s, text) != NULL;

		free(s);
		if (found)
			return 0;
		tlm_h_sleep_ms(10);
	}
	return -1;
}

void tlm_h_run_clear(tlm_h_run *r)
{
	if (r->pid > 0) {
		kill(r->pid, SIGKILL);
		waitpid(r->pid, NULL, 0);
	}
	json_decref(r->result);
	free(r->out);
	free(r->err);
	if (r->dir != NULL)
		tlm_h_rmrf(r->dir);
	free(r->dir);
	memset(r, 0, sizeof(*r));
}

char *tlm_h_write_file(const char *dir, const char *name, const char *text)
{
	size_t n = strlen(dir) + strlen(name) + 2;
	char *path = malloc(n);
	FILE *f;

	assert_non_null(path);
	snprintf(path, n, "%s/%s", dir, name);
	f = fopen(path, "w");
	assert_non_null(f);
	assert_int_equal(fputs(text, f) >= 0, 1);
	assert_int_equal(fclose(f), 0);
	return path;
}

json_t *tlm_h_list_prefixed(const tlm_h_serve *s, const char *kind, const char *prefix)
{
	json_t *all = json_array();
	size_t offset = 0, total, i, n;
	char path[256];

	do {
		json_t *j = NULL, *items, *it;

		snprintf(path, sizeof(path), "/v1/%s?limit=1000&offset=%zu", kind, offset);
		if (tlm_h_req(s, "GET", path, NULL, &j) != 200)
			fail_msg("GET %s failed", path);
		items = json_object_get(j, kind);
		json_array_foreach(items, i, it)
		{
			const char *name = json_string_value(json_object_get(it, "name"));
			const char *id = json_string_value(json_object_get(it, "id"));

			if (name != NULL && id != NULL &&
			    strncmp(name, prefix, strlen(prefix)) == 0)
				json_array_append_new(
					all, json_pack("{s:s, s:s}", "name", name, "id", id));
		}
		n = json_array_size(items);
		offset += n;
		total = (size_t)json_integer_value(json_object_get(j, "total"));
		json_decref(j);
		if (n == 0)
			break;
	} while (offset < total);
	return all;
}

size_t tlm_h_count_prefixed(const tlm_h_serve *s, const char *kind, const char *prefix)
{
	json_t *l = tlm_h_list_prefixed(s, kind, prefix);
	size_t n = json_array_size(l);

	json_decref(l);
	return n;
}

char *tlm_h_sh_workflow(const char *dir, const char *name, const char *script)
{
	char text[2048];

	snprintf(text, sizeof(text),
		 "apiVersion: telemachy/v1\n"
		 "metadata: {name: %s}\n"
		 "agents:\n"
		 "  - name: a\n"
		 "    program: /bin/sh\n"
		 "    args: [\"-c\", \"%s\"]\n"
		 "teams:\n"
		 "  - {name: t, agents: [a], tasks: [{subject: s, description: d}]}\n",
		 name, script);
	return tlm_h_write_file(dir, "w.yaml", text);
}

const char *tlm_h_task_status(const tlm_h_run *r, size_t i)
{
	json_t *t = json_array_get(json_object_get(r->result, "tasks"), i);

	if (t == NULL)
		fail_msg("no task %zu in the summary:\n%s\nstderr:\n%s", i, r->out, r->err);
	return tlm_h_str(t, "status");
}

void tlm_h_run_on(tlm_h_run *r, const tlm_h_serve *s, const char *file,
		  const char *const *env_extra, const char *const *args)
{
	char url[160];
	const char *env[16];
	size_t n = 0, i;

	snprintf(url, sizeof(url), "AGAMEMNON_URL=%s", s->url);
	env[n++] = url;
	for (i = 0; env_extra != NULL && env_extra[i] != NULL && n < 15; i++)
		env[n++] = env_extra[i];
	env[n] = NULL;
	/* putenv keeps the pointer: the child copies it before url goes */
	tlm_h_run_start(r, env, args, file);
}

int tlm_h_run_finish(tlm_h_run *r, int timeout_ms)
{
	tlm_h_run_wait(r, timeout_ms);
	if (getenv("TLM_TEST_VERBOSE") != NULL)
		print_message("stderr:\n%s", r->err);
	if (r->result == NULL)
		fail_msg("no JSON summary; exit %d\nstdout:\n%s\nstderr:\n%s", r->exit_code, r->out,
			 r->err);
	return r->exit_code;
}

void tlm_h_assert_no_tlm(const tlm_h_serve *s)
{
	assert_int_equal(tlm_h_count_prefixed(s, "agents", "tlm-"), 0);
	assert_int_equal(tlm_h_count_prefixed(s, "teams", "tlm-"), 0);
}

void tlm_h_assert_all_completed(const tlm_h_run *r)
{
	json_t *tasks = json_object_get(r->result, "tasks"), *t;
	size_t i;

	assert_true(json_array_size(tasks) > 0);
	json_array_foreach(tasks, i, t)
	{
		if (strcmp(tlm_h_str(t, "status"), "completed") != 0)
			fail_msg("task %s is %s\nstdout:\n%s\nstderr:\n%s", tlm_h_str(t, "subject"),
				 tlm_h_str(t, "status"), r->out, r->err);
	}
}

json_int_t tlm_h_fault_fired(const tlm_h_serve *s, size_t i)
{
	json_t *j = NULL;
	json_int_t n;

	assert_int_equal(tlm_h_req(s, "GET", "/v1/chaos", NULL, &j), 200);
	n = tlm_h_int(json_array_get(json_object_get(j, "faults"), i), "fired");
	json_decref(j);
	return n;
}
