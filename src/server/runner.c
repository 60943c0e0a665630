/* Local agents (see runner.h).
 *
 * One thread does everything that touches tasks: it scans the store, starts
 * supervisors (supervise.c), waits for them with their pidfds and an eventfd
 * in one poll(), and reports through hooks->set_status.  Other threads only
 * write the eventfd (tlm_runner_wake) or signal a supervisor
 * (tlm_runner_stop_agent), under a mutex that guards nothing but the list of
 * running tasks; the runner thread never holds it while it calls the store
 * or a hook, so a hook may call back into the runner. */
#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "server/runner.h"
#include "server/supervise.h"

#define SCAN_INTERVAL_MS 250
#define GRACE_MS         2000
#define DEFAULT_CWD      "/tmp"
#define DEFAULT_PATH     "/usr/local/bin:/usr/bin:/bin"

extern char **environ;

/* What a program gets of the server's environment (docs/serve.md, "The
 * environment of a program"): enough to find programs and files, to write
 * text in the user's language and time zone, and to know who it runs as.
 * Nothing that could carry a secret: the server holds its API key, NATS
 * credentials and whatever its own caller exported, and a program is not
 * trusted with them (its logs neither).  Names ending in '*' are prefixes.
 * TERM is left out on purpose: there is no terminal (output goes to log
 * files), and TERM invites escape sequences into them. */
static const char *const KEEP_ENV[] = { "PATH", "HOME",     "USER", "LOGNAME", "SHELL",
					"LANG", "LANGUAGE", "LC_*", "TZ",      "TMPDIR" };

/* The docker client of a docker agent (not the container: that gets only
 * the -e names) needs to find its engine. */
static const char *const KEEP_ENV_DOCKER[] = { "DOCKER_HOST", "DOCKER_CONTEXT", "DOCKER_CONFIG",
					       "DOCKER_CERT_PATH", "DOCKER_TLS_VERIFY" };

/* A running task: one supervisor. */
typedef struct slot {
	char *agent_id;
	char *task_id;
	char *program; /* as shown in messages */
	char *cwd;
	int docker;
	pid_t pid;
	int pidfd;
	int report_fd;
	const char *stop_reason; /* r->mu; set once a stop was sent */
	int quiet;               /* r->mu; the task ended elsewhere: report nothing */
} slot;

struct tlm_runner {
	tlm_store *store;
	char *log_dir;
	char **env;        /* the server's variables a program gets, NULL-terminated */
	char **docker_env; /* and those a docker client gets besides */
	tlm_runner_hooks hooks;
	int wake_fd;
	pthread_t thread;
	pthread_mutex_t mu;
	slot **slots; /* changed by the runner thread only, under mu */
	size_t nslots, cap;
	int quitting; /* mu */
	int scanned;  /* the first scan is done (runner thread only) */
};

/* What the runner decides about a pending task. */
enum { TASK_READY, TASK_WAIT, TASK_FAIL };

static const char *str_field(const json_t *doc, const char *key)
{
	return json_string_value(json_object_get(doc, key));
}

static int is_terminal_failure(const char *status)
{
	static const char *const bad[] = { "failed", "cancelled", "canceled", "error",
					   "timed_out" };
	size_t i;

	for (i = 0; status != NULL && i < sizeof(bad) / sizeof(bad[0]); i++) {
		if (strcmp(status, bad[i]) == 0)
			return 1;
	}
	return 0;
}

static int set_status(tlm_runner *r, const char *task_id, const char *status, const char *msg)
{
	return r->hooks.set_status(r->hooks.ctx, task_id, status, msg, NULL);
}

static void slot_free(slot *s)
{
	if (s == NULL)
		return;
	free(s->agent_id);
	free(s->task_id);
	free(s->program);
	free(s->cwd);
	free(s);
}

static slot *find_slot(tlm_runner *r, const char *agent_id)
{
	size_t i;

	for (i = 0; i < r->nslots; i++) {
		if (strcmp(r->slots[i]->agent_id, agent_id) == 0)
			return r->slots[i];
	}
	return NULL;
}

/* Caller holds mu.  A stop is sent once; the first reason sticks. */
static void stop_slot_locked(slot *s, const char *reason, int quiet)
{
	if (s->stop_reason != NULL)
		return;
	s->stop_reason = reason;
	s->quiet = quiet;
	tlm_supervise__stop(s->pid, s->pidfd);
}

/* ---- deciding what to run -------------------------------------------- */

/* READY when every blocker completed; FAIL (msg says why) as soon as one
 * failed or does not exist, even if others are still pending. */
static int check_blockers(tlm_runner *r, const json_t *task, char *msg, size_t size)
{
	const json_t *blocked = json_object_get(task, "blockedBy");
	const char *self = str_field(task, "id");
	int verdict = TASK_READY;
	size_t i;

	for (i = 0; i < json_array_size(blocked); i++) {
		const char *id = json_string_value(json_array_get(blocked, i));
		const char *status;
		char buf[64];
		int rc;

		if (id == NULL || strcmp(id, self) == 0) {
			snprintf(msg, size, "%s",
				 id == NULL ? "blockedBy holds a non-string" : "blocked by itself");
			return TASK_FAIL;
		}
		/* Only the blocker's status: parsing whole documents here was most
		 * of a scan's cost. */
		rc = tlm_store_status(r->store, TLM_STORE_TASKS, id, buf, sizeof(buf), &status);
		if (rc == TLM_ENOTFOUND) {
			snprintf(msg, size, "blocked by unknown task %s", id);
			verdict = TASK_FAIL;
		} else if (rc == 0 && is_terminal_failure(status)) {
			snprintf(msg, size, "blocked by %s task %s", status, id);
			verdict = TASK_FAIL;
		} else if (rc != 0 || status == NULL || strcmp(status, "completed") != 0) {
			verdict = TASK_WAIT;
		}
		if (verdict == TASK_FAIL)
			return TASK_FAIL;
	}
	return verdict;
}

/* ---- preparing a process (all allocation happens here, before fork) ---- */

typedef struct job {
	char **argv;
	size_t argc, argcap;
	char **envp;
	size_t envc, envcap;
	size_t nover; /* envp[0..nover): the TLM_* and the agent's variables */
	const char *path;
	int fds[3]; /* stdin, stdout, stderr */
} job;

static int push(char ***vec, size_t *n, size_t *cap, char *s)
{
	char **grown;

	if (s == NULL)
		return -1;
	if (*n + 2 > *cap) {
		*cap = *cap == 0 ? 16 : *cap * 2;
		grown = realloc(*vec, *cap * sizeof(char *));
		if (grown == NULL) {
			free(s);
			return -1;
		}
		*vec = grown;
	}
	(*vec)[(*n)++] = s;
	(*vec)[*n] = NULL;
	return 0;
}

static char *xstrdup(const char *s)
{
	return strdup(s != NULL ? s : "");
}

static char *env_pair(const char *name, const char *value)
{
	size_t len = strlen(name) + strlen(value) + 2;
	char *s = malloc(len);

	if (s != NULL)
		snprintf(s, len, "%s=%s", name, value);
	return s;
}

static void job_free(job *j)
{
	size_t i;

	for (i = 0; i < j->argc; i++)
		free(j->argv[i]);
	for (i = 0; i < j->envc; i++)
		free(j->envp[i]);
	free(j->argv);
	free(j->envp);
	for (i = 0; i < 3; i++) {
		if (j->fds[i] >= 0)
			close(j->fds[i]);
	}
}

/* Is NAME (up to '=') already defined in envp[0..n)? */
static int env_has(char *const *envp, size_t n, const char *entry)
{
	size_t len = strcspn(entry, "="), i;

	for (i = 0; i < n; i++) {
		if (strncmp(envp[i], entry, len) == 0 && envp[i][len] == '=')
			return 1;
	}
	return 0;
}

/* An agent env value as text: strings as they are, numbers and booleans
 * printed; NULL for anything else (skipped). */
static const char *env_text(const json_t *v, char *buf, size_t size)
{
	if (json_is_string(v))
		return json_string_value(v);
	if (json_is_integer(v))
		snprintf(buf, size, "%lld", (long long)json_integer_value(v));
	else if (json_is_real(v))
		snprintf(buf, size, "%g", json_real_value(v));
	else if (json_is_boolean(v))
		snprintf(buf, size, "%s", json_is_true(v) ? "true" : "false");
	else
		return NULL;
	return buf;
}

/* The TLM_* variables (which a task must be able to trust), then the
 * agent's env, then the server's variables kept at start (r->env, and for a
 * docker agent r->docker_env): each name from the first that has it. */
static int build_env(const tlm_runner *r, job *j, const json_t *agent, const json_t *task,
		     int docker)
{
	const char *tlm[][2] = { { "TLM_TASK_ID", str_field(task, "id") },
				 { "TLM_TASK_SUBJECT", str_field(task, "subject") },
				 { "TLM_TEAM_ID", str_field(task, "teamId") },
				 { "TLM_AGENT_NAME", str_field(agent, "name") } };
	const char *key, *text;
	char buf[64];
	json_t *v;
	size_t i;

	for (i = 0; i < sizeof(tlm) / sizeof(tlm[0]); i++) {
		if (push(&j->envp, &j->envc, &j->envcap,
			 env_pair(tlm[i][0], tlm[i][1] != NULL ? tlm[i][1] : "")) != 0)
			return -1;
	}
	json_object_foreach((json_t *)json_object_get(agent, "env"), key, v)
	{
		text = env_text(v, buf, sizeof(buf));
		if (text == NULL || key[0] == '\0' || strchr(key, '=') != NULL ||
		    env_has(j->envp, j->envc, key))
			continue;
		if (push(&j->envp, &j->envc, &j->envcap, env_pair(key, text)) != 0)
			return -1;
	}
	j->nover = j->envc;
	for (i = 0; r->env[i] != NULL; i++) {
		if (!env_has(j->envp, j->envc, r->env[i]) &&
		    push(&j->envp, &j->envc, &j->envcap, xstrdup(r->env[i])) != 0)
			return -1;
	}
	for (i = 0; docker && r->docker_env[i] != NULL; i++) {
		if (!env_has(j->envp, j->envc, r->docker_env[i]) &&
		    push(&j->envp, &j->envc, &j->envcap, xstrdup(r->docker_env[i])) != 0)
			return -1;
	}
	/* The program sees the PATH it was looked up in. */
	if (!env_has(j->envp, j->envc, "PATH=") &&
	    push(&j->envp, &j->envc, &j->envcap, env_pair("PATH", DEFAULT_PATH)) != 0)
		return -1;
	return 0;
}

static const char *job_path(const job *j)
{
	size_t i;

	for (i = 0; i < j->envc; i++) {
		if (strncmp(j->envp[i], "PATH=", 5) == 0)
			return j->envp[i] + 5;
	}
	return DEFAULT_PATH;
}

/* A number or string field as text, with a default. */
static const char *field_text(const json_t *doc, const char *key, const char *dflt, char *buf,
			      size_t size)
{
	const json_t *v = json_object_get(doc, key);

	if (json_is_string(v) || json_is_number(v) || json_is_boolean(v))
		return env_text(v, buf, size);
	return dflt;
}

/* docker run --rm -i --cpus C --memory M [-w DIR] -e NAME... IMAGE: the variables go
 * by name, taking their values from the docker client's environment, so
 * values (secrets) never show in ps.  The program and its arguments follow. */
static int docker_argv(job *j, const json_t *agent, char *msg, size_t size)
{
	const char *image = str_field(agent, "image"), *wd = str_field(agent, "workingDirectory");
	char cpus[64], mem[64];
	const char *head[] = { "docker",   "run",
			       "--rm",     "-i",
			       "--cpus",   field_text(agent, "cpus", "2", cpus, sizeof(cpus)),
			       "--memory", field_text(agent, "memory", "4g", mem, sizeof(mem)) };
	size_t i;

	if (image == NULL || image[0] == '\0' || image[0] == '-') {
		/* "-..." would be read as one more docker option */
		snprintf(msg, size, "docker agent: %s",
			 image == NULL || image[0] == '\0' ? "no image"
							   : "an image cannot start with '-'");
		return -1;
	}
	for (i = 0; i < sizeof(head) / sizeof(head[0]); i++) {
		if (push(&j->argv, &j->argc, &j->argcap, xstrdup(head[i])) != 0)
			return -1;
	}
	if (wd != NULL && wd[0] == '/' &&
	    (push(&j->argv, &j->argc, &j->argcap, xstrdup("-w")) != 0 ||
	     push(&j->argv, &j->argc, &j->argcap, xstrdup(wd)) != 0))
		return -1;
	for (i = 0; i < j->nover; i++) {
		if (push(&j->argv, &j->argc, &j->argcap, xstrdup("-e")) != 0 ||
		    push(&j->argv, &j->argc, &j->argcap,
			 strndup(j->envp[i], strcspn(j->envp[i], "="))) != 0)
			return -1;
	}
	return push(&j->argv, &j->argc, &j->argcap, xstrdup(image));
}

/* Task ids come from our store (UUIDs), but they name files: refuse any
 * that could point outside log_dir. */
static int usable_as_file_name(const char *id)
{
	return id[0] != '\0' && id[0] != '.' && strchr(id, '/') == NULL && strlen(id) <= 200;
}

static int open_log(const tlm_runner *r, const char *task_id, const char *ext, char *msg,
		    size_t size)
{
	size_t len = strlen(r->log_dir) + strlen(task_id) + strlen(ext) + 3;
	char *path = malloc(len);
	int fd = -1;

	if (path == NULL) {
		snprintf(msg, size, "out of memory");
		return -1;
	}
	snprintf(path, len, "%s/%s.%s", r->log_dir, task_id, ext);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644);
	if (fd < 0)
		snprintf(msg, size, "cannot open log %s: %s", path, strerror(errno));
	free(path);
	return fd;
}

/* The description as stdin: an in-memory file, so writing it can never
 * block the runner, whether or not the program reads it. */
static int stdin_file(const char *text, char *msg, size_t size)
{
	size_t len = strlen(text), done = 0;
	int fd = memfd_create("tlm-task-stdin", MFD_CLOEXEC);
	ssize_t n;

	if (fd < 0) {
		snprintf(msg, size, "cannot create stdin: memfd_create: %s", strerror(errno));
		return -1;
	}
	while (done < len) {
		n = write(fd, text + done, len - done);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			snprintf(msg, size, "cannot write stdin: %s", strerror(errno));
			close(fd);
			return -1;
		}
		done += (size_t)n;
	}
	lseek(fd, 0, SEEK_SET);
	return fd;
}

static int job_args(job *j, const json_t *agent, char *msg, size_t size)
{
	const json_t *args = json_object_get(agent, "programArgs");
	size_t i;

	if (push(&j->argv, &j->argc, &j->argcap, xstrdup(str_field(agent, "program"))) != 0)
		return -1;
	for (i = 0; i < json_array_size(args); i++) {
		const char *a = json_string_value(json_array_get(args, i));
		if (a == NULL) {
			snprintf(msg, size, "programArgs must hold strings only");
			return -1;
		}
		if (push(&j->argv, &j->argc, &j->argcap, xstrdup(a)) != 0)
			return -1;
	}
	return 0;
}

/* Everything the supervisor needs, allocated now (it may not allocate). */
static int job_prepare(const tlm_runner *r, job *j, const json_t *agent, const json_t *task,
		       int docker, char *msg, size_t size)
{
	const char *id = str_field(task, "id"), *text = str_field(task, "description");

	msg[0] = '\0';
	if (!usable_as_file_name(id)) {
		snprintf(msg, size, "task id unusable as a log file name");
		return -1;
	}
	if (build_env(r, j, agent, task, docker) != 0 ||
	    (docker && docker_argv(j, agent, msg, size) != 0) || job_args(j, agent, msg, size) != 0)
		goto fail;
	j->path = job_path(j);
	j->fds[0] = stdin_file(text != NULL ? text : "", msg, size);
	if (j->fds[0] < 0 || (j->fds[1] = open_log(r, id, "out", msg, size)) < 0 ||
	    (j->fds[2] = open_log(r, id, "err", msg, size)) < 0)
		goto fail;
	return 0;
fail:
	if (msg[0] == '\0')
		snprintf(msg, size, "out of memory");
	return -1;
}

/* ---- starting and finishing tasks -------------------------------------- */

static slot *slot_new(const json_t *agent, const json_t *task, const char *program, int docker)
{
	const char *cwd = str_field(agent, "workingDirectory");
	slot *s = calloc(1, sizeof(*s));

	if (s == NULL)
		return NULL;
	s->agent_id = xstrdup(str_field(agent, "id"));
	s->task_id = xstrdup(str_field(task, "id"));
	s->program = xstrdup(program);
	/* A docker agent's working directory is inside its container (docker
	 * run -w); on the host it runs from /. */
	s->cwd = xstrdup(docker ? "/" : cwd != NULL && cwd[0] != '\0' ? cwd : DEFAULT_CWD);
	s->docker = docker;
	s->pidfd = s->report_fd = -1;
	if (s->agent_id == NULL || s->task_id == NULL || s->program == NULL || s->cwd == NULL) {
		slot_free(s);
		return NULL;
	}
	return s;
}

static int add_slot(tlm_runner *r, slot *s)
{
	slot **grown;
	int rc = 0;

	pthread_mutex_lock(&r->mu);
	if (r->nslots == r->cap) {
		grown = realloc(r->slots, (r->cap == 0 ? 8 : r->cap * 2) * sizeof(slot *));
		if (grown == NULL) {
			rc = -1;
		} else {
			r->slots = grown;
			r->cap = r->cap == 0 ? 8 : r->cap * 2;
		}
	}
	if (rc == 0)
		r->slots[r->nslots++] = s;
	pthread_mutex_unlock(&r->mu);
	return rc;
}

/* Prepares and forks the supervisor; on failure msg says why. */
static slot *spawn_task(tlm_runner *r, const json_t *agent, const json_t *task, char *msg,
			size_t size)
{
	const char *host = str_field(agent, "host");
	int docker = host != NULL && strcmp(host, "docker") == 0;
	job j = { .fds = { -1, -1, -1 } };
	tlm_supervise_plan plan;
	tlm_error err = TLM_ERROR_INIT;
	tlm_supervise_result res;
	slot *s = slot_new(agent, task, docker ? "docker" : str_field(agent, "program"), docker);

	if (s == NULL || job_prepare(r, &j, agent, task, docker, msg, size) != 0)
		goto fail;
	plan = (tlm_supervise_plan){ s->program, j.argv,   j.envp,   j.path,  s->cwd,
				     j.fds[0],   j.fds[1], j.fds[2], GRACE_MS };
	if (tlm_supervise__spawn(&plan, &s->pid, &s->pidfd, &s->report_fd, &err) != 0) {
		snprintf(msg, size, "%s", err.message);
		goto fail;
	}
	if (add_slot(r, s) != 0) { /* cannot watch it: stop it now */
		tlm_supervise__stop(s->pid, s->pidfd);
		snprintf(msg, size, "out of memory");
		tlm_supervise__collect(s->pid, s->pidfd, s->report_fd, &res);
		goto fail;
	}
	job_free(&j);
	return s;
fail:
	if (s == NULL || msg[0] == '\0')
		snprintf(msg, size, "out of memory");
	job_free(&j);
	slot_free(s);
	return NULL;
}

/* 1: a supervisor now runs the task (the agent is busy); 0: the task ended
 * at once or was not started. */
static int start_task(tlm_runner *r, const json_t *agent, const json_t *task)
{
	const char *id = str_field(task, "id"), *program = str_field(agent, "program");
	char msg[TLM_ERROR_MSG_MAX] = "";

	/* Not started when the server refuses (the task was deleted...). */
	if (set_status(r, id, "running", NULL) != 0)
		return 0;
	if (r->hooks.no_exec || (program != NULL && strcmp(program, "none") == 0)) {
		set_status(r, id, "completed", NULL);
		return 0;
	}
	if (program == NULL || program[0] == '\0') {
		set_status(r, id, "failed", "the agent has no program");
		return 0;
	}
	if (spawn_task(r, agent, task, msg, sizeof(msg)) == NULL) {
		set_status(r, id, "failed", msg);
		return 0;
	}
	return 1;
}

/* The first line of the task's stderr log (at most size - 1 bytes). */
static void first_err_line(const tlm_runner *r, const char *task_id, char *buf, size_t size)
{
	char path[4096];
	ssize_t n = -1;
	int fd;

	snprintf(path, sizeof(path), "%s/%s.err", r->log_dir, task_id);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		n = read(fd, buf, size - 1);
		close(fd);
	}
	buf[n > 0 ? n : 0] = '\0';
	buf[strcspn(buf, "\n")] = '\0';
}

/* The last TLM_RUNNER_TAIL bytes of the task's log ("out" or "err") as a
 * JSON string, or NULL when it is empty or missing.  A program may write
 * anything: bytes that are not UTF-8 become '?', and the tail starts after
 * a cut line when it was cut. */
static json_t *log_tail(const tlm_runner *r, const char *task_id, const char *ext)
{
	char path[4096], buf[TLM_RUNNER_TAIL + 1];
	json_t *v = NULL;
	ssize_t n = -1;
	off_t size;
	size_t i, start = 0;
	int fd;

	snprintf(path, sizeof(path), "%s/%s.%s", r->log_dir, task_id, ext);
	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW)) < 0)
		return NULL;
	size = lseek(fd, 0, SEEK_END);
	if (size > 0 &&
	    lseek(fd, size > TLM_RUNNER_TAIL ? size - TLM_RUNNER_TAIL : 0, SEEK_SET) >= 0)
		n = read(fd, buf, TLM_RUNNER_TAIL);
	close(fd);
	if (n <= 0)
		return NULL;
	if (size > TLM_RUNNER_TAIL) /* cut: begin at a whole line if there is one */
		for (i = 0; i < (size_t)n - 1; i++)
			if (buf[i] == '\n') {
				start = i + 1;
				break;
			}
	if ((v = json_stringn(buf + start, (size_t)n - start)) == NULL) {
		for (i = start; i < (size_t)n; i++)
			if ((unsigned char)buf[i] >= 0x80 || buf[i] == '\0')
				buf[i] = '?';
		v = json_stringn(buf + start, (size_t)n - start);
	}
	return v;
}

/* How the program ended, and the tails of its output (docs/serve.md,
 * "Task results"). */
static json_t *result_of(const tlm_runner *r, const slot *s, const tlm_supervise_result *res)
{
	json_t *o = json_object();

	if (o == NULL)
		return NULL;
	if (res->kind == TLM_SV_EXITED && !res->stopped)
		json_object_set_new(o, "exitCode", json_integer(res->value));
	else if (res->kind == TLM_SV_SIGNALED)
		json_object_set_new(o, "signal", json_integer(res->value));
	json_object_set_new(o, "stdout", log_tail(r, s->task_id, "out"));
	json_object_set_new(o, "stderr", log_tail(r, s->task_id, "err"));
	return o;
}

/* The statusMessage for how a program ended; returns the task's status. */
static const char *outcome(const tlm_runner *r, const slot *s, const tlm_supervise_result *res,
			   const char *reason, char *msg, size_t size)
{
	const char *pre = s->docker ? "docker agent: " : "";
	char line[256];
	int v = res->value;

	msg[0] = '\0';
	if (res->stopped) {
		snprintf(msg, size, "%s", reason != NULL ? reason : "stopped by a signal");
		return "failed";
	}
	switch (res->kind) {
	case TLM_SV_EXITED:
		if (v == 0)
			return "completed";
		/* 125: docker itself failed (no engine, no image...): say why. */
		if (s->docker && v == 125) {
			first_err_line(r, s->task_id, line, sizeof(line));
			snprintf(msg, size, "%sdocker run failed (exited with status 125): %s", pre,
				 line[0] != '\0' ? line : "see the task's .err log");
		} else {
			snprintf(msg, size, "%sexited with status %d", pre, v);
		}
		break;
	case TLM_SV_SIGNALED:
		snprintf(msg, size, "%skilled by signal %d (SIG%s)", pre, v,
			 sigabbrev_np(v) != NULL ? sigabbrev_np(v) : "?");
		break;
	case TLM_SV_CHDIR_FAILED:
		snprintf(msg, size, "%scannot change to working directory \"%s\": %s", pre, s->cwd,
			 strerror(v));
		break;
	case TLM_SV_EXEC_FAILED:
		snprintf(msg, size, "%scannot execute \"%s\": %s", pre, s->program, strerror(v));
		break;
	case TLM_SV_FORK_FAILED: snprintf(msg, size, "cannot start: fork: %s", strerror(v)); break;
	default: /* killed from outside, or could not set itself up */
		if (WIFSIGNALED(v))
			snprintf(msg, size, "the task's supervisor was killed by signal %d",
				 WTERMSIG(v));
		else
			snprintf(msg, size, "the task's supervisor exited with status %d",
				 WEXITSTATUS(v));
		break;
	}
	return "failed";
}

/* The supervisor at idx exited: collect it and report, unless the task
 * ended elsewhere. */
static void finish(tlm_runner *r, size_t idx)
{
	slot *s = r->slots[idx];
	tlm_supervise_result res;
	const char *reason, *status;
	char msg[TLM_ERROR_MSG_MAX];
	int quiet;

	pthread_mutex_lock(&r->mu);
	r->slots[idx] = r->slots[--r->nslots];
	reason = s->stop_reason;
	quiet = s->quiet;
	pthread_mutex_unlock(&r->mu);
	tlm_supervise__collect(s->pid, s->pidfd, s->report_fd, &res);
	if (!quiet) {
		json_t *result = result_of(r, s, &res);

		status = outcome(r, s, &res, reason, msg, sizeof(msg));
		r->hooks.set_status(r->hooks.ctx, s->task_id, status, msg[0] != '\0' ? msg : NULL,
				    result);
		json_decref(result);
	}
	slot_free(s);
}

/* ---- scanning ---------------------------------------------------------- */

/* Stops tasks whose agent went offline or away without a stop_agent call,
 * and, quietly, tasks that ended elsewhere (completed through the API, or
 * deleted). */
static void check_slots(tlm_runner *r)
{
	size_t i;

	for (i = 0; i < r->nslots; i++) {
		slot *s = r->slots[i];
		json_t *task = NULL, *agent = NULL;
		const char *reason = NULL, *status;
		int quiet = 0, trc, arc;

		trc = tlm_store_get(r->store, TLM_STORE_TASKS, NULL, s->task_id, &task);
		arc = tlm_store_get(r->store, TLM_STORE_AGENTS, NULL, s->agent_id, &agent);
		status = str_field(task, "status");
		if (trc == TLM_ENOTFOUND ||
		    (trc == 0 && (is_terminal_failure(status) ||
				  (status != NULL && strcmp(status, "completed") == 0)))) {
			reason = "ended elsewhere";
			quiet = 1;
		} else if (arc == TLM_ENOTFOUND) {
			reason = "agent deleted";
		} else if (arc == 0 && (status = str_field(agent, "status")) != NULL &&
			   strcmp(status, "online") != 0) {
			reason = "agent stopped";
		}
		json_decref(task);
		json_decref(agent);
		if (reason == NULL)
			continue;
		pthread_mutex_lock(&r->mu);
		stop_slot_locked(s, reason, quiet);
		pthread_mutex_unlock(&r->mu);
	}
}

/* Starts the agent's first runnable task, in creation order; fails those
 * whose blockers failed.  Tasks still waiting are skipped, not waited for:
 * a later task may be what another agent's task waits on. */
static void run_agent(tlm_runner *r, const json_t *agent)
{
	json_t *tasks = NULL, *task;
	char msg[TLM_ERROR_MSG_MAX];
	size_t i;

	if (tlm_store_agent_tasks(r->store, str_field(agent, "id"), &tasks) != 0)
		return;
	json_array_foreach(tasks, i, task)
	{
		const char *status = str_field(task, "status"), *id = str_field(task, "id");

		if (id == NULL || status == NULL)
			continue;
		/* A task "running" before our first scan ran under a previous
		 * server (a --state store): nobody will ever finish it. */
		if (!r->scanned && strcmp(status, "running") == 0) {
			set_status(r, id, "failed", "interrupted: the server restarted");
			continue;
		}
		if (strcmp(status, "pending") != 0)
			continue;
		switch (check_blockers(r, task, msg, sizeof(msg))) {
		case TASK_WAIT: continue;
		case TASK_FAIL: set_status(r, id, "failed", msg); continue;
		default: break;
		}
		if (start_task(r, agent, task))
			break;
	}
	json_decref(tasks);
}

static void scan(tlm_runner *r)
{
	json_t *items = NULL, *agent;
	const char *id;
	size_t i;

	check_slots(r);
	if (tlm_store_agents_with_work(r->store, &items) != 0)
		return; /* try again at the next scan */
	json_array_foreach(items, i, agent)
	{
		id = str_field(agent, "id");
		if (id != NULL && find_slot(r, id) == NULL)
			run_agent(r, agent);
	}
	json_decref(items);
	r->scanned = 1;
}

/* ---- the thread -------------------------------------------------------- */

static void drain(int fd)
{
	uint64_t v;

	while (read(fd, &v, sizeof(v)) > 0)
		;
}

/* Sends every supervisor its stop on quit; 1 once none is left. */
static int quit_step(tlm_runner *r)
{
	int quitting;
	size_t i;

	pthread_mutex_lock(&r->mu);
	quitting = r->quitting;
	for (i = 0; quitting && i < r->nslots; i++)
		stop_slot_locked(r->slots[i], "server stopped", 0);
	pthread_mutex_unlock(&r->mu);
	return quitting;
}

static void *runner_main(void *arg)
{
	tlm_runner *r = arg;
	struct pollfd *pfds = NULL, *grown;
	size_t pcap = 0, n, i;
	int quitting;

	for (;;) {
		quitting = quit_step(r);
		if (quitting && r->nslots == 0)
			break;
		if (!quitting)
			scan(r);
		n = r->nslots + 1;
		if (n > pcap && (grown = realloc(pfds, n * sizeof(*pfds))) != NULL) {
			pfds = grown;
			pcap = n;
		}
		if (n > pcap)
			n = pcap > 0 ? pcap : 0; /* out of memory: watch fewer for now */
		if (n == 0) {
			usleep(SCAN_INTERVAL_MS * 1000);
			continue;
		}
		pfds[0] = (struct pollfd){ .fd = r->wake_fd, .events = POLLIN };
		for (i = 1; i < n; i++)
			tlm_supervise__pollfd(r->slots[i - 1]->pidfd, r->slots[i - 1]->report_fd,
					      &pfds[i]);
		if (poll(pfds, (nfds_t)n, SCAN_INTERVAL_MS) <= 0)
			continue;
		if (pfds[0].revents != 0)
			drain(r->wake_fd);
		/* Downwards: finish() moves the last slot into the freed place. */
		for (i = n - 1; i >= 1; i--) {
			if (pfds[i].revents != 0)
				finish(r, i - 1);
		}
	}
	free(pfds);
	return NULL;
}

/* ---- the interface ----------------------------------------------------- */

static void env_free(char **env)
{
	size_t i;

	for (i = 0; env != NULL && env[i] != NULL; i++)
		free(env[i]);
	free(env);
}

/* Does the NAME=value entry match one of names ("LC_*" is a prefix)? */
static int env_listed(const char *entry, const char *const *names, size_t n)
{
	size_t len = strcspn(entry, "="), i, k;

	if (entry[len] != '=')
		return 0;
	for (i = 0; i < n; i++) {
		k = strlen(names[i]);
		if (k > 0 && names[i][k - 1] == '*' ? strncmp(entry, names[i], k - 1) == 0
						    : k == len && strncmp(entry, names[i], k) == 0)
			return 1;
	}
	return 0;
}

/* The entries of environ that match names or pass (NULL-terminated, may
 * be NULL), copied now: the environment is read once, at start, not while
 * other threads may change it.  NULL when out of memory. */
static char **env_keep(const char *const *names, size_t n, const char *const *pass)
{
	size_t count = 0, cap = 0, i, np = 0;
	char **out = NULL;

	while (pass != NULL && pass[np] != NULL)
		np++;
	for (i = 0; environ != NULL && environ[i] != NULL; i++) {
		if (!env_listed(environ[i], names, n) && !env_listed(environ[i], pass, np))
			continue;
		if (push(&out, &count, &cap, strdup(environ[i])) != 0) {
			env_free(out);
			return NULL;
		}
	}
	return out != NULL ? out : calloc(1, sizeof(*out));
}

static void runner_destroy(tlm_runner *r)
{
	env_free(r->env);
	env_free(r->docker_env);
	if (r->wake_fd >= 0)
		close(r->wake_fd);
	free(r->slots);
	free(r->log_dir);
	free(r);
}

int tlm_runner_new(tlm_runner **out, tlm_store *store, const char *log_dir,
		   const tlm_runner_hooks *hooks, const char *const *pass_env, tlm_error *err)
{
	tlm_runner *r;
	sigset_t all, old;
	int rc;

	assert(out != NULL && store != NULL && log_dir != NULL);
	assert(hooks != NULL && hooks->set_status != NULL);
	*out = NULL;
	if (access(log_dir, W_OK | X_OK) != 0)
		return tlm_error_set(err, errno == ENOENT ? TLM_ENOTFOUND : TLM_EINVALID,
				     "log directory %s: %s", log_dir, strerror(errno));
	r = calloc(1, sizeof(*r));
	if (r == NULL)
		return tlm_error_set(err, TLM_ERROR, "out of memory");
	r->store = store;
	r->hooks = *hooks;
	r->log_dir = strdup(log_dir);
	r->env = env_keep(KEEP_ENV, sizeof(KEEP_ENV) / sizeof(KEEP_ENV[0]), pass_env);
	r->docker_env = env_keep(KEEP_ENV_DOCKER,
				 sizeof(KEEP_ENV_DOCKER) / sizeof(KEEP_ENV_DOCKER[0]), NULL);
	r->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (r->log_dir == NULL || r->env == NULL || r->docker_env == NULL || r->wake_fd < 0) {
		rc = tlm_error_set(err, TLM_ERROR, "cannot create the runner: %s",
				   r->wake_fd >= 0 ? "out of memory" : strerror(errno));
		runner_destroy(r);
		return rc;
	}
	pthread_mutex_init(&r->mu, NULL);
	/* The thread keeps every signal blocked: process-directed signals are
	 * for the server's other threads, and supervisors start blocked. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	rc = pthread_create(&r->thread, NULL, runner_main, r);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc != 0) {
		pthread_mutex_destroy(&r->mu);
		runner_destroy(r);
		return tlm_error_set(err, TLM_ERROR, "cannot start the runner thread: %s",
				     strerror(rc));
	}
	*out = r;
	return 0;
}

void tlm_runner_wake(tlm_runner *r)
{
	uint64_t one = 1;

	/* EAGAIN means the counter is already non-zero: awake anyway. */
	if (r != NULL && write(r->wake_fd, &one, sizeof(one)) < 0)
		return;
}

void tlm_runner_stop_agent(tlm_runner *r, const char *agent_id)
{
	size_t i;

	if (r == NULL || agent_id == NULL)
		return;
	pthread_mutex_lock(&r->mu);
	for (i = 0; i < r->nslots; i++) {
		if (strcmp(r->slots[i]->agent_id, agent_id) == 0)
			stop_slot_locked(r->slots[i], "agent stopped", 0);
	}
	pthread_mutex_unlock(&r->mu);
	tlm_runner_wake(r);
}

void tlm_runner_free(tlm_runner *r)
{
	if (r == NULL)
		return;
	pthread_mutex_lock(&r->mu);
	r->quitting = 1;
	pthread_mutex_unlock(&r->mu);
	tlm_runner_wake(r);
	pthread_join(r->thread, NULL);
	pthread_mutex_destroy(&r->mu);
	runner_destroy(r);
}
