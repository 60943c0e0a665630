/* Detached children (src/util/spawn.c): the program runs in another session,
 * is not the caller's child, writes to the log, inherits no descriptor above
 * 2, and a program that cannot be executed is an error with its reason. */
#include <errno.h>
#include <signal.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness/harness.h"
#include "util/spawn.h"

/* Waits (bounded: 10 s) until path holds a line; returns its contents. */
static char *wait_file(const char *path)
{
	static char buf[4096];

	for (int i = 0; i < 1000; i++) {
		FILE *f = fopen(path, "r");
		size_t n = f ? fread(buf, 1, sizeof(buf) - 1, f) : 0;

		if (f)
			fclose(f);
		buf[n] = '\0';
		if (n > 0 && buf[n - 1] == '\n')
			return buf;
		usleep(10000);
	}
	fail_msg("%s never written", path);
	return NULL;
}

static void test_detached(void **state)
{
	char dir[] = "/tmp/tlm-spawn-XXXXXX", log[128], out[128], script[1024];
	tlm_error err = TLM_ERROR_INIT;
	pid_t pid = 0;
	/* Not close-on-exec on purpose; high, away from the shell's own fds. */
	int null = open("/dev/null", O_RDONLY), leak = fcntl(null, F_DUPFD, 100);

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(log, sizeof(log), "%s/log", dir);
	snprintf(out, sizeof(out), "%s/out", dir);
	/* The program reports its pid, session and whether fd `leak` is open. */
	snprintf(script, sizeof(script),
		 "echo to-the-log; echo \"$$ $(cut -d' ' -f6 /proc/$$/stat) "
		 "$( [ -e /proc/$$/fd/%d ] && echo open || echo closed)\" > %s.tmp && mv %s.tmp %s",
		 leak, out, out, out);
	char *argv[] = { "sh", "-c", script, NULL };

	assert_int_equal(tlm_spawn_detached("/bin/sh", argv, log, &pid, &err), 0);
	assert_true(pid > 0);
	char *line = wait_file(out);
	long got_pid = 0, sid = 0;
	char fd_state[16] = "";

	assert_int_equal(sscanf(line, "%ld %ld %15s", &got_pid, &sid, fd_state), 3);
	assert_int_equal(got_pid, pid);
	assert_int_not_equal(sid, getsid(0)); /* its own session */
	assert_string_equal(fd_state, "closed");
	assert_int_equal(waitpid(pid, NULL, WNOHANG), -1); /* not our child */
	assert_int_equal(errno, ECHILD);
	assert_non_null(strstr(wait_file(log), "to-the-log"));
	close(leak);
	close(null);
	unlink(log);
	unlink(out);
	rmdir(dir);
}

/* A caller that blocks signals and ignores SIGPIPE (telemachy ui, serve)
 * starts a program that has neither: SigBlk and SigIgn of its status. */
static void test_signals_reset(void **state)
{
	char dir[] = "/tmp/tlm-spawn-XXXXXX", out[128], script[512], *line;
	tlm_error err = TLM_ERROR_INIT;
	sigset_t block, old;
	unsigned long long blk = 1, ign = 1;
	pid_t pid = 0;

	(void)state;
	assert_non_null(mkdtemp(dir));
	snprintf(out, sizeof(out), "%s/out", dir);
	snprintf(script, sizeof(script),
		 "b=$(sed -n 's/^SigBlk:\\t//p' /proc/$$/status); "
		 "i=$(sed -n 's/^SigIgn:\\t//p' /proc/$$/status); "
		 "echo \"$b $i\" > %s.tmp && mv %s.tmp %s",
		 out, out, out);
	char *argv[] = { "sh", "-c", script, NULL };

	sigemptyset(&block);
	sigaddset(&block, SIGINT);
	sigaddset(&block, SIGTERM);
	assert_int_equal(sigprocmask(SIG_BLOCK, &block, &old), 0);
	signal(SIGPIPE, SIG_IGN);
	assert_int_equal(tlm_spawn_detached("/bin/sh", argv, NULL, &pid, &err), 0);
	sigprocmask(SIG_SETMASK, &old, NULL);
	signal(SIGPIPE, SIG_DFL);
	line = wait_file(out);
	assert_int_equal(sscanf(line, "%llx %llx", &blk, &ign), 2);
	assert_true(blk == 0);
	assert_true((ign & (1ULL << (SIGPIPE - 1))) == 0);
	unlink(out);
	rmdir(dir);
}

static void test_exec_fails(void **state)
{
	tlm_error err = TLM_ERROR_INIT;
	pid_t pid = 0;
	char *argv[] = { "nothing-here", NULL };

	(void)state;
	assert_int_equal(tlm_spawn_detached("/nonexistent/telemachy", argv, NULL, &pid, &err),
			 TLM_ERROR);
	assert_non_null(strstr(err.message, "nothing-here"));
	assert_non_null(strstr(err.message, strerror(ENOENT)));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_detached),
		cmocka_unit_test(test_exec_fails),
		cmocka_unit_test(test_signals_reset),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
