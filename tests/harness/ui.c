/* Harness: `telemachy ui` as a real process (harness/ui.h). */
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness/harness.h"
#include "harness/run.h"
#include "harness/ui.h"

int tlm_h_ui_start(const char *dir, tlm_h_ui *u, const char *const *args, const char *const *env,
		   int *code)
{
	static int seq;
	char out[4096], *text;
	const char *argv[32];
	size_t n = 0, i;
	int64_t end = tlm_h_now_ms() + 10000;
	int st;

	snprintf(out, sizeof(out), "%s/ui-%d-%d.out", dir, (int)getpid(), seq++);
	argv[n++] = TLM_BIN;
	argv[n++] = "ui";
	for (i = 0; args[i] != NULL && n < 31; i++)
		argv[n++] = args[i];
	argv[n] = NULL;
	u->pid = fork();
	assert_true(u->pid >= 0);
	if (u->pid == 0) {
		int fd = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0600),
		    nul = open("/dev/null", O_RDWR);

		/* A test that fails before tlm_h_ui_stop leaves no dashboard behind. */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		dup2(fd, 1);
		dup2(nul, 0);
		if (getenv("TLM_TEST_VERBOSE") == NULL)
			dup2(nul, 2);
		unsetenv("TELEMACHY_STATE_DIR");
		unsetenv("TELEMACHY_JOURNAL");
		for (i = 0; env != NULL && env[i] != NULL; i++)
			putenv((char *)env[i]);
		execv(TLM_BIN, (char *const *)argv);
		_exit(127);
	}
	while (tlm_h_now_ms() < end) {
		if (waitpid(u->pid, &st, WNOHANG) == u->pid) {
			u->pid = 0;
			*code = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
			return -1;
		}
		text = tlm_h_slurp(out);
		if (strchr(text, '\n') != NULL) {
			*strchr(text, '\n') = '\0';
			assert_true(strncmp(text, "http://", 7) == 0);
			snprintf(u->url, sizeof(u->url), "%s", text);
			if (u->url[strlen(u->url) - 1] == '/')
				u->url[strlen(u->url) - 1] = '\0';
			free(text);
			return 0;
		}
		free(text);
		tlm_h_sleep_ms(20);
	}
	kill(u->pid, SIGKILL);
	waitpid(u->pid, &st, 0);
	fail_msg("telemachy ui printed no URL in 10 s");
	return -1;
}

void tlm_h_ui_stop(tlm_h_ui *u)
{
	int st = 0, i;

	if (u->pid <= 0)
		return;
	kill(u->pid, SIGTERM);
	for (i = 0; i < 500 && waitpid(u->pid, &st, WNOHANG) == 0; i++)
		tlm_h_sleep_ms(10);
	if (i == 500) {
		kill(u->pid, SIGKILL);
		waitpid(u->pid, &st, 0);
		u->pid = 0;
		fail_msg("telemachy ui did not stop on SIGTERM");
	}
	u->pid = 0;
	if (!WIFEXITED(st) || WEXITSTATUS(st) != 0)
		fail_msg("telemachy ui exited with status %d on SIGTERM", st);
}
