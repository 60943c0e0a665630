/* Detached children (src/util/spawn.h).  A double fork: the child starts a
 * new session, forks the grandchild that execs, and exits at once, so the
 * caller reaps only the short-lived child and the grandchild belongs to
 * init.  A close-on-exec pipe carries the grandchild's pid and, if exec
 * fails, its errno: EOF after the pid means the exec happened. */
#include <dirent.h>
#include <errno.h>
#include <stdlib.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "util/spawn.h"

typedef struct spawn_msg {
	pid_t pid;
	int err; /* exec's errno, 0 while it has not failed */
} spawn_msg;

/* Every descriptor above 2 closes on exec.  Walks /proc/self/fd rather
 * than close_range(2), which valgrind and older kernels do not apply. */
static int cloexec_all(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;

	if (d == NULL)
		return -1;
	while ((e = readdir(d)) != NULL) {
		int fd = atoi(e->d_name);

		if (fd > 2 && fd != dirfd(d))
			(void)fcntl(fd, F_SETFD, FD_CLOEXEC);
	}
	return closedir(d);
}

/* In the grandchild: fds 0-2, then exec; writes errno to fd on failure. */
static void exec_child(int fd, const char *path, char *const argv[], const char *log_path)
{
	int in = open("/dev/null", O_RDONLY);
	int out = log_path != NULL
			  ? open(log_path, O_WRONLY | O_CREAT | O_APPEND | O_NOFOLLOW, 0600)
			  : open("/dev/null", O_WRONLY);
	spawn_msg m = { getpid(), 0 };
	sigset_t none;

	/* A server blocks SIGINT and SIGTERM (for sigwait) and ignores SIGPIPE;
	 * exec keeps both, and a command started with them would neither stop
	 * on a signal nor die of a closed pipe. */
	sigemptyset(&none);
	(void)sigprocmask(SIG_SETMASK, &none, NULL);
	(void)signal(SIGPIPE, SIG_DFL);
	(void)signal(SIGINT, SIG_DFL);
	(void)signal(SIGTERM, SIG_DFL);
	/* Nothing of the caller's (a listening socket, the journal) may reach
	 * the program: every descriptor above 2 closes on exec. */
	if (in < 0 || out < 0 || dup2(in, 0) < 0 || dup2(out, 1) < 0 || dup2(out, 2) < 0 ||
	    cloexec_all() != 0) {
		m.err = errno;
	} else {
		execv(path, argv);
		m.err = errno;
	}
	if (write(fd, &m, sizeof(m)) != (ssize_t)sizeof(m))
		_exit(126);
	_exit(127);
}

/* In the child: a new session, the grandchild, its pid to fd, exit. */
static void fork_grandchild(int fd, const char *path, char *const argv[], const char *log_path)
{
	spawn_msg m = { 0, 0 };
	pid_t pid;

	if (setsid() < 0 || (pid = fork()) < 0) {
		m.err = errno;
		_exit(write(fd, &m, sizeof(m)) == (ssize_t)sizeof(m) ? 1 : 2);
	}
	if (pid == 0)
		exec_child(fd, path, argv, log_path);
	m.pid = pid;
	_exit(write(fd, &m, sizeof(m)) == (ssize_t)sizeof(m) ? 0 : 2);
}

/* Reads what the child and grandchild said: the pid, then errno or EOF. */
static int read_outcome(int fd, pid_t *pid, int *exec_err)
{
	spawn_msg m;
	ssize_t n;

	*pid = 0;
	*exec_err = 0;
	while ((n = read(fd, &m, sizeof(m))) != 0) {
		if (n < 0 && errno == EINTR)
			continue;
		if (n != (ssize_t)sizeof(m))
			return -1;
		if (m.err != 0)
			*exec_err = m.err;
		else if (*pid == 0)
			*pid = m.pid;
	}
	return *pid > 0 || *exec_err != 0 ? 0 : -1;
}

int tlm_spawn_detached(const char *path, char *const argv[], const char *log_path, pid_t *pid,
		       tlm_error *err)
{
	int p[2], status, exec_err, rc;
	pid_t child;

	if (pipe2(p, O_CLOEXEC) != 0)
		return tlm_error_set(err, TLM_ERROR, "cannot start %s: %s", argv[0],
				     strerror(errno));
	if ((child = fork()) < 0) {
		close(p[0]);
		close(p[1]);
		return tlm_error_set(err, TLM_ERROR, "cannot start %s: %s", argv[0],
				     strerror(errno));
	}
	if (child == 0) {
		close(p[0]);
		fork_grandchild(p[1], path, argv, log_path);
	}
	close(p[1]);
	rc = read_outcome(p[0], pid, &exec_err);
	close(p[0]);
	while (waitpid(child, &status, 0) < 0 && errno == EINTR)
		;
	if (rc != 0)
		return tlm_error_set(err, TLM_ERROR, "cannot start %s", argv[0]);
	if (exec_err != 0)
		return tlm_error_set(err, TLM_ERROR, "cannot start %s: %s", argv[0],
				     strerror(exec_err));
	return 0;
}
