/* The per-task supervisor: a small process forked (without exec) from the
 * server for each task it runs, so that nothing the task spawns outlives
 * the task, the agent, or the server, even a SIGKILLed one.
 *
 * The supervisor leads a session (and so a process group) of its own, with
 * no controlling terminal; asks the kernel for SIGTERM when the server
 * thread that forked it dies (PR_SET_PDEATHSIG); and becomes a child
 * subreaper, so descendants that lose their parent are reparented to it
 * rather than to init.  It forks the program into a further
 * process group of its own (a program that signals its own group cannot hit
 * its supervisor), waits, and on SIGTERM, SIGINT or SIGHUP, or once the
 * program exited while processes it started are still alive, sends SIGTERM
 * to the program's group and to every child it has, then after the grace
 * period SIGKILL until none is left.  Its last act is a report on a pipe.
 *
 * Between fork and exec only async-signal-safe calls are made: the server
 * is multithreaded, and a lock another thread held at the fork stays held
 * forever in the child.  Everything is prepared before the fork. */
#ifndef TLM_SERVER_SUPERVISE_H
#define TLM_SERVER_SUPERVISE_H

#include <poll.h>
#include <stdint.h>
#include <sys/types.h>

#include "telemachy/error.h"

/* What to run; every pointer must stay valid until tlm_supervise__spawn()
 * returns (the child has its own copy of memory from then on). */
typedef struct tlm_supervise_plan {
	const char *file;  /* the program; PATH is searched when it has no '/' */
	char *const *argv; /* NULL-terminated; argv[0] is shown as the name */
	char *const *envp; /* the program's whole environment */
	const char *path;  /* the PATH to search (that of envp, usually) */
	const char *cwd;   /* working directory */
	int in_fd;         /* becomes the program's stdin */
	int out_fd;        /* stdout */
	int err_fd;        /* stderr */
	unsigned grace_ms; /* SIGTERM -> SIGKILL */
} tlm_supervise_plan;

/* How a supervised program ended. */
enum {
	TLM_SV_EXITED = 1,   /* value: exit status */
	TLM_SV_SIGNALED,     /* value: the signal that killed it */
	TLM_SV_CHDIR_FAILED, /* value: errno of chdir(cwd) */
	TLM_SV_EXEC_FAILED,  /* value: errno of execve (after the PATH search) */
	TLM_SV_FORK_FAILED,  /* value: errno of the supervisor's fork */
	TLM_SV_LOST          /* no report: value is the supervisor's wait status */
};

typedef struct tlm_supervise_result {
	int kind;    /* TLM_SV_* */
	int value;   /* see above */
	int stopped; /* a stop came while the program still ran */
} tlm_supervise_result;

/* Forks the supervisor for plan.  *pid and *pidfd identify it (*pidfd is
 * -1 where pidfds are unavailable, e.g. under valgrind); *report_fd is the
 * read end of its report pipe (non-blocking, close-on-exec).  The calling thread should keep every
 * signal blocked, and must outlive the supervisor: its exit is the
 * parent-death signal.  TLM_ERROR (err says why) if it could not start. */
int tlm_supervise__spawn(const tlm_supervise_plan *plan, pid_t *pid, int *pidfd, int *report_fd,
			 tlm_error *err);

/* Asks the supervisor to stop its program (SIGTERM).  Safe from any thread
 * as long as the supervisor has not been collected. */
void tlm_supervise__stop(pid_t pid, int pidfd);

/* What to poll() for the supervisor's exit: *p is ready (any revents) once
 * it exited. */
void tlm_supervise__pollfd(int pidfd, int report_fd, struct pollfd *p);

/* Once it exited: reaps the supervisor, reads its report, closes report_fd
 * and pidfd, and fills *out. */
void tlm_supervise__collect(pid_t pid, int pidfd, int report_fd, tlm_supervise_result *out);

#endif
