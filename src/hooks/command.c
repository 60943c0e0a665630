/* A command hook: the event as JSON on its stdin, TLM_* variables in its
 * environment, its output kept (capped), a timeout that kills its whole
 * process group (docs/hooks.md, "Commands"). */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "hooks/hooks_internal.h"
#include "util/esc.h"

long long tlm_hooks__now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static char *env_var(const char *name, const char *value)
{
	size_t n = strlen(name) + strlen(value) + 2;
	char *s = malloc(n);

	if (s != NULL)
		snprintf(s, n, "%s=%s", name, value);
	return s;
}

/* env_base plus the event's variables; NULL when out of memory. */
static char **hook_env(const tlm_hooks_item *it, char *const *base)
{
	const char *names[] = { "TLM_RUN",  "TLM_EVENT", "TLM_EVENT_ID",
				"TLM_TEAM", "TLM_TASK",  "TLM_STATUS" };
	const char *values[] = { it->run,  tlm_hook_event_name(it->event),
				 it->id,   it->team,
				 it->task, it->status };
	size_t n = 0, i;
	char **env;

	while (base != NULL && base[n] != NULL)
		n++;
	if ((env = calloc(n + 7, sizeof(*env))) == NULL)
		return NULL;
	for (i = 0; i < 6; i++)
		if ((env[i] = env_var(names[i], values[i])) == NULL)
			goto fail;
	memcpy(env + 6, base, n * sizeof(*env)); /* borrowed: only 0..5 are freed */
	return env;
fail:
	for (i = 0; i < 6; i++)
		free(env[i]);
	free(env);
	return NULL;
}

static void free_env(char **env)
{
	size_t i;

	for (i = 0; env != NULL && i < 6; i++)
		free(env[i]);
	free(env);
}

/* In the child, between fork and exec: only async-signal-safe calls. */
static void child(const tlm_spec_hook *hk, char **env, int in, int outfd, int errpipe)
{
	sigset_t none;
	int e, i;

	setpgid(0, 0); /* its own group: a timeout kills what it started too */
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	for (i = 1; i < NSIG; i++)
		if (i != SIGKILL && i != SIGSTOP)
			signal(i, SIG_DFL); /* SIGPIPE is ignored in the CLI */
	if (dup2(in, 0) < 0 || dup2(outfd, 1) < 0 || dup2(outfd, 2) < 0)
		goto fail;
	/* No descriptor of ours (the journal, sockets) reaches the hook. */
	if (errpipe != 3) {
		if (dup2(errpipe, 3) < 0)
			goto fail;
		errpipe = 3;
	}
	fcntl(errpipe, F_SETFD, FD_CLOEXEC);
	close_range(4, ~0U, 0);
	execvpe(hk->argv[0], (char *const *)hk->argv, env);
fail:
	e = errno;
	if (write(errpipe, &e, sizeof(e)) < 0) {
		/* nothing more to say */
	}
	_exit(127);
}

static void kill_group(pid_t pid, int sig)
{
	if (kill(-pid, sig) != 0)
		kill(pid, sig);
}

typedef struct run_state {
	int in, out;
	const char *body;
	size_t body_len, written;
	char *buf;
	size_t len;
	int exited, status;
} run_state;

/* One round of feeding stdin and reading output, up to wait_ms. */
static void pump(run_state *s, int wait_ms)
{
	struct pollfd p[2];
	int n = 0, iw = -1, io = -1;

	if (s->in >= 0) {
		p[n].fd = s->in;
		p[n].events = POLLOUT;
		iw = n++;
	}
	if (s->out >= 0) {
		p[n].fd = s->out;
		p[n].events = POLLIN;
		io = n++;
	}
	if (n == 0) {
		poll(NULL, 0, wait_ms);
		return;
	}
	if (poll(p, (nfds_t)n, wait_ms) <= 0)
		return;
	if (iw >= 0 && p[iw].revents != 0) {
		ssize_t w = p[iw].revents & POLLOUT
				    ? write(s->in, s->body + s->written, s->body_len - s->written)
				    : -1;

		if (w > 0)
			s->written += (size_t)w;
		/* Done, or the hook does not read its stdin (EPIPE): fine. */
		if (w < 0 ? errno != EAGAIN && errno != EINTR : s->written == s->body_len) {
			close(s->in);
			s->in = -1;
		}
	}
	if (io >= 0 && p[io].revents != 0) {
		char tmp[4096];
		ssize_t r = read(s->out, tmp, sizeof(tmp));

		if (r > 0) {
			size_t keep = TLM_HOOKS_OUTPUT_MAX - s->len;

			if ((size_t)r < keep)
				keep = (size_t)r;
			memcpy(s->buf + s->len, tmp, keep); /* the rest is read and dropped */
			s->len += keep;
		} else if (r == 0 || (errno != EAGAIN && errno != EINTR)) {
			close(s->out);
			s->out = -1;
		}
	}
}

static void reap(run_state *s, pid_t pid, int block)
{
	if (!s->exited && waitpid(pid, &s->status, block ? 0 : WNOHANG) == pid)
		s->exited = 1;
}

int tlm_hooks__command(const tlm_spec_hook *hk, const tlm_hooks_item *it, char *const *env_base,
		       const atomic_int *abort_now, char **out, char *why, size_t whycap)
{
	int inp[2] = { -1, -1 }, outp[2] = { -1, -1 }, errp[2] = { -1, -1 };
	long long deadline = tlm_hooks__now_ms() + hk->timeout_seconds * 1000L, kill_at = 0;
	run_state s;
	char **env = hook_env(it, env_base);
	int exec_errno = 0, timed_out = 0, aborted = 0;
	pid_t pid;

	*out = NULL;
	memset(&s, 0, sizeof(s));
	s.in = s.out = -1;
	s.body = it->json;
	s.body_len = strlen(it->json);
	s.buf = malloc(TLM_HOOKS_OUTPUT_MAX + 1);
	if (env == NULL || s.buf == NULL || pipe2(inp, O_CLOEXEC) != 0 ||
	    pipe2(outp, O_CLOEXEC) != 0 || pipe2(errp, O_CLOEXEC) != 0) {
		snprintf(why, whycap, "could not start: %s", strerror(errno ? errno : ENOMEM));
		goto fail;
	}
	pid = fork();
	if (pid < 0) {
		snprintf(why, whycap, "could not start: fork: %s", strerror(errno));
		goto fail;
	}
	if (pid == 0)
		child(hk, env, inp[0], outp[1], errp[1]);
	setpgid(pid, pid); /* also here: no race with the kill below */
	close(inp[0]);
	close(outp[1]);
	close(errp[1]);
	inp[0] = outp[1] = errp[1] = -1;
	if (read(errp[0], &exec_errno, sizeof(exec_errno)) != (ssize_t)sizeof(exec_errno))
		exec_errno = 0; /* EOF: exec succeeded (the pipe closed on exec) */
	s.in = inp[1];
	s.out = outp[0];
	inp[1] = outp[0] = -1;
	fcntl(s.in, F_SETFL, O_NONBLOCK);
	fcntl(s.out, F_SETFL, O_NONBLOCK);
	/* Until it exits (and its output is read to EOF, bounded by the same
	 * deadline: a child it left behind may hold the pipe). */
	while (!s.exited || s.out >= 0) {
		long long now = tlm_hooks__now_ms();

		if (!timed_out && !aborted && (now >= deadline || atomic_load(abort_now))) {
			timed_out = now >= deadline;
			aborted = !timed_out;
			kill_group(pid, SIGTERM);
			kill_at = now + TLM_HOOKS_KILL_GRACE_MS;
		}
		if (kill_at != 0 && now >= kill_at) {
			kill_group(pid, SIGKILL);
			kill_at = 0;
			reap(&s, pid, 1);
			break;
		}
		if (s.exited && now >= deadline)
			break; /* exited; a descendant keeps the output open */
		pump(&s, 50);
		reap(&s, pid, 0);
	}
	if (!s.exited) {
		kill_group(pid, SIGKILL);
		reap(&s, pid, 1);
	}
	if (s.in >= 0)
		close(s.in);
	if (s.out >= 0)
		close(s.out);
	close(errp[0]);
	free_env(env);
	s.buf[s.len] = '\0';
	*out = s.buf;
	if (exec_errno != 0) {
		char prog[256];

		tlm_esc_str(prog, sizeof(prog), hk->argv[0], NULL);
		snprintf(why, whycap, "could not run %s: %s", prog, strerror(exec_errno));
		return TLM_ERROR;
	}
	if (timed_out || aborted) {
		snprintf(why, whycap, "%s; its process group was killed",
			 timed_out ? "timed out" : "stopped at exit");
		if (timed_out)
			snprintf(why + strlen(why), whycap - strlen(why), " after %ld s",
				 hk->timeout_seconds);
		return TLM_ERROR;
	}
	if (WIFEXITED(s.status) && WEXITSTATUS(s.status) == 0)
		return 0;
	if (WIFEXITED(s.status))
		snprintf(why, whycap, "exited with status %d", WEXITSTATUS(s.status));
	else
		snprintf(why, whycap, "killed by signal %d", WTERMSIG(s.status));
	return TLM_ERROR;
fail:
	free_env(env);
	free(s.buf);
	for (int i = 0; i < 2; i++) {
		if (inp[i] >= 0)
			close(inp[i]);
		if (outp[i] >= 0)
			close(outp[i]);
		if (errp[i] >= 0)
			close(errp[i]);
	}
	return TLM_ERROR;
}
