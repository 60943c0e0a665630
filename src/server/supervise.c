/* The per-task supervisor (see supervise.h).
 *
 * Everything from sv_main() down runs in a child forked from a
 * multithreaded process: only async-signal-safe calls, no malloc, no stdio,
 * no locks, fixed buffers on the stack.  The parent prepares argv, envp and
 * paths before the fork. */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "server/supervise.h"

/* The report pipe's fd number in the supervisor and, until exec, in the
 * program (close-on-exec there, so a running program never holds it). */
#define SV_REPORT_FD 3

/* Children handled per round; more are picked up by the next round. */
#define SV_MAX_CHILDREN 256

/* How often the supervisor repeats SIGKILL while processes remain. */
#define SV_KILL_POLL_MS 20

/* The supervisor's exit status when it could not set itself up; its parent
 * then finds no report and says the task was lost. */
#define SV_EXIT_SETUP 125

enum { SV_RUN, SV_TERM, SV_KILL };

/* Report kind for "the program runs as pid <value>", after the TLM_SV_*. */
#define SV_STARTED 100

/* One record on the report pipe: 12 bytes, so each write is atomic. */
typedef struct sv_report {
	int32_t kind;
	int32_t value;
	int32_t stopped;
} sv_report;

typedef struct sv_state {
	pid_t self;       /* the supervisor */
	pid_t main;       /* the program; reaped only at the very end */
	int main_done;    /* main exited (a zombie: its pid and group id stay ours) */
	int32_t kind;     /* TLM_SV_EXITED or TLM_SV_SIGNALED once main_done */
	int32_t value;    /* exit status or signal */
	int stop;         /* a stop signal arrived */
	int stopped;      /* ... while main still ran */
	int phase;        /* SV_RUN, SV_TERM, SV_KILL */
	int64_t deadline; /* end of the grace period, ms (CLOCK_MONOTONIC) */
} sv_state;

static void sv_report_write(int fd, int32_t kind, int32_t value, int32_t stopped)
{
	sv_report rep = { kind, value, stopped };
	ssize_t n;

	do {
		n = write(fd, &rep, sizeof(rep));
	} while (n < 0 && errno == EINTR);
}

static int64_t sv_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Decimal digits of v into buf (no terminator); returns how many. */
static size_t sv_format_uint(char *buf, unsigned long v)
{
	char tmp[24];
	size_t n = 0, i;

	do {
		tmp[n++] = (char)('0' + v % 10);
		v /= 10;
	} while (v != 0);
	for (i = 0; i < n; i++)
		buf[i] = tmp[n - 1 - i];
	return n;
}

/* Parses a space-separated list of pids into pids (at most cap). */
static size_t sv_parse_pids(const char *buf, size_t len, pid_t *pids, size_t cap, size_t count)
{
	long cur = 0;
	int in_num = 0;
	size_t i;

	for (i = 0; i <= len && count < cap; i++) {
		if (i < len && buf[i] >= '0' && buf[i] <= '9') {
			cur = cur * 10 + (buf[i] - '0');
			in_num = 1;
		} else if (in_num) {
			pids[count++] = (pid_t)cur;
			cur = 0;
			in_num = 0;
		}
	}
	return count;
}

/* The supervisor's children, as the kernel lists them: the program and any
 * orphan reparented to us as subreaper.  Without /proc this finds none, and
 * only the program's group is killed. */
static size_t sv_children(pid_t self, pid_t *pids, size_t cap)
{
	char path[64] = "/proc/self/task/";
	char buf[4096];
	size_t n = strlen(path), count = 0;
	ssize_t got;
	int fd;

	n += sv_format_uint(path + n, (unsigned long)self);
	memcpy(path + n, "/children", sizeof("/children"));
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	/* One read holds ~500 pids; a longer list is finished next round. */
	do {
		got = read(fd, buf, sizeof(buf));
	} while (got < 0 && errno == EINTR);
	/* A full buffer may end inside a pid: parse up to the last space. */
	while (got == (ssize_t)sizeof(buf) && got > 0 && buf[got - 1] != ' ')
		got--;
	if (got > 0)
		count = sv_parse_pids(buf, (size_t)got, pids, cap, 0);
	close(fd);
	return count;
}

/* Reaps exited children other than main, notes main's end without reaping
 * it, and leaves in kids the children still alive besides main. */
static size_t sv_reap(sv_state *s, pid_t *kids, size_t cap)
{
	pid_t all[SV_MAX_CHILDREN];
	size_t n, i, alive = 0;
	siginfo_t si;

	if (!s->main_done) {
		memset(&si, 0, sizeof(si));
		if (waitid(P_PID, (id_t)s->main, &si, WEXITED | WNOHANG | WNOWAIT) == 0 &&
		    si.si_pid == s->main) {
			s->main_done = 1;
			s->kind = si.si_code == CLD_EXITED ? TLM_SV_EXITED : TLM_SV_SIGNALED;
			s->value = si.si_status;
		}
	}
	n = sv_children(s->self, all, SV_MAX_CHILDREN);
	for (i = 0; i < n && alive < cap; i++) {
		if (all[i] != s->main && waitpid(all[i], NULL, WNOHANG) == 0)
			kids[alive++] = all[i];
	}
	return alive;
}

/* Signals the program, its group, every other child and the group each one
 * leads.  None of these ids can have been reused: main and kids are
 * unreaped children, and Linux never hands out a pid still in use as a
 * process group id. */
static void sv_signal_all(const sv_state *s, const pid_t *kids, size_t n, int sig)
{
	size_t i;

	kill(-s->main, sig);
	kill(s->main, sig); /* in case it left its group */
	for (i = 0; i < n; i++) {
		kill(kids[i], sig);
		kill(-kids[i], sig);
	}
	if (sig == SIGTERM) /* a stopped process acts on SIGTERM only when continued */
		sv_signal_all(s, kids, n, SIGCONT);
}

/* Waits for a signal (all are blocked) until the phase's timeout. */
static void sv_wait(sv_state *s)
{
	struct timespec ts, *timeout = NULL;
	sigset_t set;
	int64_t ms = SV_KILL_POLL_MS;
	int sig;

	sigemptyset(&set);
	sigaddset(&set, SIGCHLD);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	if (s->phase != SV_RUN) {
		if (s->phase == SV_TERM)
			ms = s->deadline - sv_now_ms();
		if (ms < 1)
			ms = 1;
		ts.tv_sec = (time_t)(ms / 1000);
		ts.tv_nsec = (long)(ms % 1000) * 1000000;
		timeout = &ts;
	}
	sig = sigtimedwait(&set, NULL, timeout);
	if (sig == SIGTERM || sig == SIGINT || sig == SIGHUP)
		s->stop = 1;
}

/* Waits until the program and everything it started are gone.  A stop, or
 * the program's exit with processes left behind, starts the grace period. */
static void sv_loop(sv_state *s, unsigned grace_ms)
{
	pid_t kids[SV_MAX_CHILDREN];
	size_t n;

	for (;;) {
		n = sv_reap(s, kids, SV_MAX_CHILDREN);
		if (s->main_done && n == 0)
			return;
		if (s->phase == SV_RUN && (s->main_done || s->stop)) {
			s->stopped = !s->main_done;
			s->phase = SV_TERM;
			s->deadline = sv_now_ms() + grace_ms;
			sv_signal_all(s, kids, n, SIGTERM);
		} else if (s->phase == SV_TERM && sv_now_ms() >= s->deadline) {
			s->phase = SV_KILL;
		}
		if (s->phase == SV_KILL)
			sv_signal_all(s, kids, n, SIGKILL);
		sv_wait(s);
	}
}

/* execvp() is not async-signal-safe: the PATH search by hand, with execvp's
 * rules (EACCES remembered, ENOENT-like errors skip to the next entry). */
static int sv_execute(const tlm_supervise_plan *p)
{
	char buf[4096];
	const char *dir = p->path, *end;
	size_t flen = strlen(p->file), dlen;
	int saw_eacces = 0;

	if (strchr(p->file, '/') != NULL || flen == 0) {
		if (flen != 0)
			execve(p->file, p->argv, p->envp);
		return flen == 0 ? ENOENT : errno;
	}
	for (; dir != NULL; dir = *end != '\0' ? end + 1 : NULL) {
		end = strchr(dir, ':');
		if (end == NULL)
			end = dir + strlen(dir);
		dlen = (size_t)(end - dir);
		if (dlen + flen + 2 > sizeof(buf))
			continue;
		memcpy(buf, dlen == 0 ? "." : dir, dlen == 0 ? 1 : dlen);
		dlen = dlen == 0 ? 1 : dlen;
		buf[dlen] = '/';
		memcpy(buf + dlen + 1, p->file, flen + 1);
		execve(buf, p->argv, p->envp);
		if (errno == EACCES)
			saw_eacces = 1;
		else if (errno != ENOENT && errno != ENOTDIR && errno != ESTALE &&
			 errno != ENODEV && errno != ETIMEDOUT)
			return errno;
	}
	return saw_eacces ? EACCES : ENOENT;
}

/* The program's side of the fork: its own process group, killed if the
 * supervisor itself is killed, default signal mask, then exec. */
__attribute__((noreturn)) static void sv_program(const tlm_supervise_plan *p, pid_t supervisor)
{
	sigset_t none;

	setpgid(0, 0);
	if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != supervisor)
		_exit(127);
	sigemptyset(&none);
	sigprocmask(SIG_SETMASK, &none, NULL);
	if (chdir(p->cwd) != 0) {
		sv_report_write(SV_REPORT_FD, TLM_SV_CHDIR_FAILED, errno, 0);
		_exit(127);
	}
	sv_report_write(SV_REPORT_FD, TLM_SV_EXEC_FAILED, sv_execute(p), 0);
	_exit(127);
}

static void sv_close_from(int first)
{
	struct rlimit rl;
	long max = 65536, fd;

	if (syscall(SYS_close_range, (unsigned)first, ~0U, 0) == 0)
		return;
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < (rlim_t)max)
		max = (long)rl.rlim_cur;
	for (fd = first; fd < max; fd++)
		close((int)fd);
}

/* stdin, stdout, stderr and the report pipe at 0..3, nothing else open (the
 * server's sockets must not leak into tasks).  Moved above 10 first so that
 * no source is overwritten by another's target. */
static int sv_setup_fds(const tlm_supervise_plan *p, int report_fd)
{
	int src[4] = { p->in_fd, p->out_fd, p->err_fd, report_fd };
	int high[4], i;

	for (i = 0; i < 4; i++) {
		high[i] = fcntl(src[i], F_DUPFD_CLOEXEC, 10);
		if (high[i] < 0)
			return -1;
	}
	for (i = 0; i < 3; i++) {
		if (dup2(high[i], i) < 0)
			return -1;
	}
	if (dup3(high[3], SV_REPORT_FD, O_CLOEXEC) < 0)
		return -1;
	sv_close_from(SV_REPORT_FD + 1);
	return 0;
}

static void sv_reset_signals(void)
{
	struct sigaction sa;
	int sig;

	/* The server's handlers must not run here, and an ignored signal
	 * (SIGPIPE, typically) would stay ignored across exec. */
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = SIG_DFL;
	sigemptyset(&sa.sa_mask);
	for (sig = 1; sig < NSIG; sig++)
		sigaction(sig, &sa, NULL);
}

/* The supervisor; every signal is blocked on entry (see spawn). */
__attribute__((noreturn)) static void sv_main(const tlm_supervise_plan *p, int report_fd,
					      pid_t server)
{
	sv_state s;
	int status = 0;

	memset(&s, 0, sizeof(s));
	sv_reset_signals();
	/* A session of its own, not just a group: no controlling terminal, so
	 * the terminal's signals and job control reach only the server, which
	 * stops its tasks itself.  PDEATHSIG first, then the check: the server
	 * may have died before. */
	if (setsid() < 0 || prctl(PR_SET_PDEATHSIG, SIGTERM) != 0 || getppid() != server)
		_exit(SV_EXIT_SETUP);
	if (prctl(PR_SET_CHILD_SUBREAPER, 1) != 0 || sv_setup_fds(p, report_fd) != 0)
		_exit(SV_EXIT_SETUP);
	s.self = getpid();
	s.main = _Fork();
	if (s.main < 0) {
		sv_report_write(SV_REPORT_FD, TLM_SV_FORK_FAILED, errno, 0);
		_exit(0);
	}
	if (s.main == 0)
		sv_program(p, s.self);
	setpgid(s.main, s.main); /* also here: no kill may precede the group */
	sv_report_write(SV_REPORT_FD, SV_STARTED, s.main, 0);
	sv_loop(&s, p->grace_ms);
	while (waitpid(s.main, &status, 0) < 0 && errno == EINTR)
		;
	sv_report_write(SV_REPORT_FD, s.kind, s.value, s.stopped);
	_exit(0);
}

/* Set once pidfd_open is found missing. */
static atomic_int no_pidfd;

/* A pidfd for child; -1 without pidfds (Linux < 5.3, valgrind), where the
 * report pipe's hang-up tells when the supervisor exited (it holds the
 * only write end); -2 on another error (errno). */
static int watch(pid_t child)
{
	int fd;

	if (atomic_load(&no_pidfd))
		return -1;
	fd = (int)syscall(SYS_pidfd_open, child, 0);
	if (fd >= 0)
		return fd;
	if (errno != ENOSYS && errno != EPERM)
		return -2;
	atomic_store(&no_pidfd, 1); /* do not ask again */
	return -1;
}

int tlm_supervise__spawn(const tlm_supervise_plan *plan, pid_t *pid, int *pidfd, int *report_fd,
			 tlm_error *err)
{
	pid_t server = getpid(), child;
	int pipefd[2], fd, saved;
	sigset_t all, old;

	if (pipe2(pipefd, O_CLOEXEC) != 0)
		return tlm_error_set(err, TLM_ERROR, "cannot start: pipe: %s", strerror(errno));
	/* Blocked across the fork: a signal arriving in the child before it
	 * reset the handlers would run the server's handler there.  _Fork,
	 * not fork: no atfork handlers (libraries' locks) in the child. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	child = _Fork();
	if (child == 0)
		sv_main(plan, pipefd[1], server);
	saved = errno;
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	close(pipefd[1]);
	if (child < 0) {
		close(pipefd[0]);
		return tlm_error_set(err, TLM_ERROR, "cannot start: fork: %s", strerror(saved));
	}
	fd = watch(child);
	if (fd == -2) {
		saved = errno;
		kill(child, SIGKILL); /* unwatchable; its program dies with it */
		waitpid(child, NULL, 0);
		close(pipefd[0]);
		return tlm_error_set(err, TLM_ERROR, "cannot start: pidfd_open: %s",
				     strerror(saved));
	}
	fcntl(pipefd[0], F_SETFL, O_NONBLOCK);
	*pid = child;
	*pidfd = fd;
	*report_fd = pipefd[0];
	return 0;
}

void tlm_supervise__stop(pid_t pid, int pidfd)
{
	/* kill() is as safe while the supervisor is unreaped, which the
	 * caller guarantees; the pidfd makes it obvious. */
	if (pidfd < 0 || syscall(SYS_pidfd_send_signal, pidfd, SIGTERM, NULL, 0) != 0)
		kill(pid, SIGTERM);
}

void tlm_supervise__pollfd(int pidfd, int report_fd, struct pollfd *p)
{
	/* events 0 on the pipe: only POLLHUP, not the program's exec report. */
	p->fd = pidfd >= 0 ? pidfd : report_fd;
	p->events = pidfd >= 0 ? POLLIN : 0;
	p->revents = 0;
}

/* What the report pipe holds: the program's pid once started, the
 * program's own record if exec failed, the supervisor's final record. */
typedef struct sv_reports {
	pid_t program;
	int have_fail, have_final;
	sv_report fail, final;
} sv_reports;

static void sv_read_reports(int fd, sv_reports *out)
{
	sv_report reps[8];
	ssize_t got;
	size_t i;

	memset(out, 0, sizeof(*out));
	/* Records are written whole (12 bytes, atomic on a pipe). */
	while ((got = read(fd, reps, sizeof(reps))) > 0) {
		for (i = 0; i < (size_t)got / sizeof(reps[0]); i++) {
			if (reps[i].kind == SV_STARTED) {
				out->program = (pid_t)reps[i].value;
			} else if (reps[i].kind == TLM_SV_EXITED ||
				   reps[i].kind == TLM_SV_SIGNALED) {
				out->final = reps[i];
				out->have_final = 1;
			} else if (!out->have_fail) {
				out->fail = reps[i];
				out->have_fail = 1;
			}
		}
	}
}

void tlm_supervise__collect(pid_t pid, int pidfd, int report_fd, tlm_supervise_result *out)
{
	const sv_report *rep;
	sv_reports r;
	int status = 0;

	/* ECHILD (SIGCHLD ignored by the server) leaves status 0; the report
	 * carries the outcome anyway. */
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	sv_read_reports(report_fd, &r);
	close(report_fd);
	if (pidfd >= 0)
		close(pidfd);
	if (!r.have_fail && !r.have_final) {
		/* The supervisor was killed from outside: its program got
		 * SIGKILL from PDEATHSIG, the rest of its group gets it now
		 * (best effort: orphans outside the group went to init). */
		if (r.program > 0)
			kill(-r.program, SIGKILL);
		out->kind = TLM_SV_LOST;
		out->value = status;
		out->stopped = 0;
		return;
	}
	rep = r.have_fail ? &r.fail : &r.final;
	out->kind = rep->kind;
	out->value = rep->value;
	out->stopped = r.final.stopped;
}
