/* telemachy worker — drive the journal's queued runs and take over the runs
 * of dead owners (docs/distributed.md).  The worker is a supervisor: each
 * run is driven by a child process (`worker --once`) that claims the run
 * itself and resumes it as `telemachy resume` would, so one run's failure,
 * memory or signals never touch another's, and a child dies with its
 * worker (PR_SET_PDEATHSIG): a SIGKILLed worker leaves dead owners that
 * the other workers take over. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/cli_hooks.h"
#include "cli/cli_metrics.h"
#include "cli/engine_env.h"
#include "cli/run_journal.h"
#include "telemachy/metrics.h"

#define OPT_MAX_RUNS  0x310
#define OPT_DRAIN     0x311
#define OPT_POLL      0x312
#define OPT_ONCE      0x313
#define MAX_RUNS_CAP  256
#define KILL_AFTER_MS 30000 /* a child handed back but still there */

static void usage(void)
{
	printf("Usage: telemachy worker [OPTIONS]\n"
	       "\n"
	       "Drive runs from the journal: claim queued runs (`telemachy submit`) and\n"
	       "runs whose owner died (its lease expired, or its process is gone on this\n"
	       "host), at most --max-runs at once, each exactly as `telemachy resume`\n"
	       "would, in a child process of its own.  Workers on any number of hosts\n"
	       "may share one PostgreSQL journal; each run has one owner at a time.\n"
	       "\n"
	       "SIGTERM or SIGINT drains: nothing more is claimed, the runs in hand may\n"
	       "finish within --drain-timeout, then the rest are handed back (each stops\n"
	       "at once and releases its lease; another worker resumes it).  A second\n"
	       "signal hands them back at once.\n"
	       "\n"
	       "Options:\n"
	       "      --journal WHERE       the journal: postgres://... (TELEMACHY_JOURNAL;\n"
	       "                            docs/distributed.md), or --state-dir DIR\n"
	       "      --max-runs N          runs driven at once (default 4)\n"
	       "      --drain-timeout S     how long a drain lets runs finish (default 60)\n"
	       "      --poll S              how often to look for work when not woken by\n"
	       "                            a notification (default 1)\n"
	       "      --once                claim one run, drive it here, and exit (what\n"
	       "                            each child does; exits 0 when there was none)\n"
	       "The engine's options (--control-plane, --nats, --max-concurrent, ...) and\n"
	       "--pass-env, --drop-field, --hook EVENT=COMMAND are as for `telemachy run`; each run's recorded\n"
	       "control plane wins over --control-plane.  --metrics-listen HOST:PORT and\n"
	       "--metrics-textfile FILE (METRICS_LISTEN, METRICS_TEXTFILE) export the\n"
	       "worker's own figures (docs/metrics.md); its run processes export none.\n"
	       "\n"
	       "Exit codes: 0 drained (--once: the run's exit code, as `telemachy run`),\n"
	       "1 the journal could not be read, 2 usage error.\n");
}

typedef struct worker_args {
	tlm_engine_opts eo;
	tlm_cli_pass pass;
	tlm_cli_hooks hooks;
	long max_runs, drain_s, poll_ms;
	int once;
} worker_args;

static int num(tlm_cli *cli, const char *flag, const char *arg, long lo, long hi, long *out)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(arg, &end, 10);
	if (errno != 0 || end == arg || *end != '\0' || v < lo || v > hi)
		return tlm_cli_usage_error(cli, "%s: a number from %ld to %ld, please", flag, lo,
					   hi);
	*out = v;
	return 0;
}

static int parse(tlm_cli *cli, int argc, char **argv, worker_args *a)
{
	static const struct option longopts[] = {
		TLM_CLI_LONGOPTS,
		TLM_CLI_ENGINE_LONGOPTS,
		TLM_CLI_PASS_ENV_LONGOPT,
		TLM_CLI_DROP_FIELD_LONGOPT,
		TLM_CLI_METRICS_LONGOPTS,
		TLM_CLI_HOOK_LONGOPT,
		{ "max-runs", required_argument, NULL, OPT_MAX_RUNS },
		{ "drain-timeout", required_argument, NULL, OPT_DRAIN },
		{ "poll", required_argument, NULL, OPT_POLL },
		{ "once", no_argument, NULL, OPT_ONCE },
		{ 0 }
	};
	long poll_s = 1;
	int c, rc = 0;

	while ((c = tlm_cli_next_opt(cli, argc, argv, longopts, usage, &rc)) > 0) {
		if (c == OPT_MAX_RUNS)
			rc = num(cli, "--max-runs", optarg, 1, MAX_RUNS_CAP, &a->max_runs);
		else if (c == OPT_DRAIN)
			rc = num(cli, "--drain-timeout", optarg, 0, 86400, &a->drain_s);
		else if (c == OPT_POLL)
			rc = num(cli, "--poll", optarg, 1, 3600, &poll_s);
		else if (c == OPT_ONCE)
			a->once = 1;
		else if (c == TLM_CLI_OPT_PASS_ENV)
			rc = tlm_cli_pass_add(cli, &a->pass, optarg);
		else if (c == TLM_CLI_OPT_HOOK)
			rc = tlm_cli_hook_add(cli, &a->hooks, optarg);
		else
			rc = tlm_cli_engine_opt(cli, c, optarg, &a->eo);
		if (rc != 0)
			return rc;
	}
	if (c < 0)
		return rc == TLM_EXIT_OK ? -1 : rc;
	if (optind != argc)
		return tlm_cli_usage_error(cli, "unexpected argument \"%s\"", argv[optind]);
	a->poll_ms = poll_s * 1000;
	return 0;
}

/* ---- one run: worker --once ---------------------------------------------- */

static volatile sig_atomic_t handing_back;

static void on_hand_back(int sig)
{
	(void)sig;
	handing_back = 1;
	tlm_cli_leave_now();
}

/* After a hand-back: the lease released, so another worker need not wait
 * for it to expire.  This process still owns the run (it claims it again,
 * as itself, to hold it in a new handle). */
static void release(const char *where, const char *run_id)
{
	tlm_error err = TLM_ERROR_INIT;
	tlm_journal *j = NULL;

	if (tlm_journal_open(&j, where, &err) != 0 ||
	    tlm_journal_run_claim(j, run_id, 0, &err) != 0 ||
	    tlm_journal_run_release(j, run_id, &err) != 0)
		tlm_log_cmd(TLM_ENGINE_WARN, NULL,
			    "run %s: not released (%s); it is free once its lease expires", run_id,
			    err.message);
	else
		tlm_log_cmd(TLM_ENGINE_INFO, NULL, "run %s: handed back", run_id);
	tlm_journal_close(j);
}

static int work_once(tlm_cli *cli, worker_args *a)
{
	char run_id[TLM_JOURNAL_RUN_ID_LEN + 1];
	const char *flag = a->eo.control_plane;
	tlm_error err = TLM_ERROR_INIT;
	tlm_journal *j = NULL;
	tlm_journal_run run;
	struct sigaction sa;
	int rc;

	memset(&run, 0, sizeof(run));
	if (tlm_journal_open(&j, a->eo.state_dir, &err) != 0 ||
	    tlm_journal_run_claim_next(j, run_id, &err) != 0 ||
	    tlm_journal_run_get(j, run_id, &run, &err) != 0) {
		tlm_journal_close(j);
		if (err.code == TLM_ENOTFOUND)
			return TLM_EXIT_OK; /* another worker was quicker */
		tlm_log_cmd(TLM_ENGINE_ERROR, NULL, "%s", err.message);
		return TLM_EXIT_FAILED;
	}
	tlm_journal_close(j); /* the engine holds the run in its own handle */
	tlm_log_cmd(TLM_ENGINE_INFO, NULL, "claimed run %s of workflow %s (it was %s)", run.id,
		    run.workflow, tlm_run_state_name(run.state));
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_hand_back;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGUSR1, &sa, NULL);
	cli->hooks = &a->hooks;
	rc = tlm_cli_resume_run(cli, &a->eo, &run, flag, a->pass.names);
	cli->hooks = NULL;
	if (handing_back)
		release(a->eo.state_dir, run.id);
	tlm_journal_run_clear(&run);
	return rc;
}

/* ---- the supervisor -------------------------------------------------------- */

typedef struct kids {
	pid_t pid[MAX_RUNS_CAP];
	long n;
} kids;

/* What /metrics shows of the worker (docs/metrics.md); written by the
 * loop, read by the exporter's thread. */
static long m_in_hand, m_started, m_failed, m_draining;

static void collect(void *ctx, tlm_metrics_buf *out)
{
	(void)ctx;
	tlm_metrics_append(
		out,
		"# HELP telemachy_worker_runs_in_hand Run processes this worker has now.\n"
		"# TYPE telemachy_worker_runs_in_hand gauge\n"
		"telemachy_worker_runs_in_hand %ld\n"
		"# HELP telemachy_worker_run_processes_total Run processes started.\n"
		"# TYPE telemachy_worker_run_processes_total counter\n"
		"telemachy_worker_run_processes_total %ld\n"
		"# HELP telemachy_worker_run_processes_failed_total Run processes that "
		"did not exit 0.\n"
		"# TYPE telemachy_worker_run_processes_failed_total counter\n"
		"telemachy_worker_run_processes_failed_total %ld\n"
		"# HELP telemachy_worker_draining 1 while the worker drains.\n"
		"# TYPE telemachy_worker_draining gauge\n"
		"telemachy_worker_draining %ld\n",
		__atomic_load_n(&m_in_hand, __ATOMIC_RELAXED),
		__atomic_load_n(&m_started, __ATOMIC_RELAXED),
		__atomic_load_n(&m_failed, __ATOMIC_RELAXED),
		__atomic_load_n(&m_draining, __ATOMIC_RELAXED));
}

static void count(long *v, long d)
{
	__atomic_add_fetch(v, d, __ATOMIC_RELAXED);
}

/* The worker's own flags a run process must not get: the metrics
 * exporter and its file are the worker's (one port, one file). */
static int worker_only(const char *a)
{
	return strncmp(a, "--metrics-listen", 16) == 0 || strncmp(a, "--metrics-textfile", 18) == 0;
}

static volatile sig_atomic_t terms;

static void on_term(int sig)
{
	(void)sig;
	if (terms < 2)
		terms++;
}

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* A child: `telemachy worker ARGS... --once`, dying with us. */
static void spawn(kids *k, char **argv, int argc)
{
	pid_t parent = getpid(), pid = fork();

	if (pid < 0) {
		tlm_log_cmd(TLM_ENGINE_WARN, NULL, "cannot start a run process: %s",
			    strerror(errno));
		return;
	}
	if (pid == 0) {
		char **v = calloc((size_t)argc + 3, sizeof(*v));
		int i;

		if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != parent || v == NULL)
			_exit(TLM_EXIT_FAILED);
		int n = 1;

		v[0] = "telemachy";
		for (i = 0; i < argc; i++) {
			if (worker_only(argv[i])) {
				i += strchr(argv[i], '=') == NULL; /* and its value */
				continue;
			}
			v[n++] = argv[i];
		}
		v[n] = "--once";
		unsetenv("METRICS_LISTEN");
		unsetenv("METRICS_TEXTFILE");
		execv("/proc/self/exe", v);
		_exit(127);
	}
	k->pid[k->n++] = pid;
	count(&m_started, 1);
	count(&m_in_hand, 1);
}

static void reap(kids *k)
{
	int status;
	long i;

	for (i = 0; i < k->n;) {
		if (waitpid(k->pid[i], &status, WNOHANG) != k->pid[i]) {
			i++;
			continue;
		}
		count(&m_in_hand, -1);
		if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
			count(&m_failed, 1);
		if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
			tlm_log_cmd(TLM_ENGINE_INFO, NULL, "run process %ld ended: %s %d",
				    (long)k->pid[i], WIFEXITED(status) ? "exit" : "signal",
				    WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status));
		k->pid[i] = k->pid[--k->n];
	}
}

static void signal_all(const kids *k, int sig)
{
	long i;

	for (i = 0; i < k->n; i++)
		kill(k->pid[i], sig);
}

/* Starts a child per claimable run, up to the free slots. */
static int fill(tlm_journal *j, kids *k, long max, char **argv, int argc)
{
	tlm_error err = TLM_ERROR_INIT;
	long n = 0;

	if (k->n >= max)
		return 0;
	if (tlm_journal_claimable(j, &n, &err) != 0) {
		tlm_log_cmd(TLM_ENGINE_ERROR, NULL, "%s", err.message);
		return err.code == TLM_EFENCED ? -1 : 0; /* a lost connection ends us */
	}
	while (n-- > 0 && k->n < max)
		spawn(k, argv, argc);
	return 0;
}

/* While draining: after the timeout (or a second signal) the children hand
 * their runs back; the ones that still linger are killed. 1: all gone. */
static int drain(kids *k, long long deadline, long long *handed)
{
	if (k->n == 0)
		return 1;
	if (*handed == 0 && (terms > 1 || now_ms() >= deadline)) {
		tlm_log_cmd(TLM_ENGINE_INFO, NULL, "handing back %ld run(s)", k->n);
		signal_all(k, SIGUSR1);
		*handed = now_ms();
	} else if (*handed != 0 && now_ms() - *handed > KILL_AFTER_MS) {
		signal_all(k, SIGKILL);
	}
	return 0;
}

static int supervise(worker_args *a, char **argv, int argc)
{
	tlm_error err = TLM_ERROR_INIT;
	tlm_journal *j = NULL;
	struct sigaction sa;
	long long deadline = 0, handed = 0;
	kids k;
	int rc = TLM_EXIT_OK;

	memset(&k, 0, sizeof(k));
	if (tlm_journal_open(&j, a->eo.state_dir, &err) != 0 ||
	    tlm_journal_listen(j, TLM_JOURNAL_CHANNEL_RUNS, &err) != 0) {
		tlm_log_cmd(TLM_ENGINE_ERROR, NULL, "%s", err.message);
		tlm_journal_close(j);
		return TLM_EXIT_FAILED;
	}
	tlm_metrics_set_collector(collect, NULL);
	if (tlm_cli_metrics_start() != TLM_EXIT_OK) {
		tlm_metrics_set_collector(NULL, NULL);
		tlm_journal_close(j);
		return TLM_EXIT_USAGE;
	}
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_term; /* no SA_RESTART: a wait ends at once */
	sigemptyset(&sa.sa_mask);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	tlm_log_cmd(TLM_ENGINE_INFO, NULL, "worker started: journal %s, at most %ld run(s)",
		    tlm_journal_path(j), a->max_runs);
	for (;;) {
		reap(&k);
		if (terms == 0 && fill(j, &k, a->max_runs, argv, argc) != 0) {
			rc = TLM_EXIT_FAILED;
			terms = 2; /* hand everything back at once */
		}
		if (terms > 0 && deadline == 0) {
			count(&m_draining, 1);
			deadline = now_ms() + a->drain_s * 1000;
			tlm_log_cmd(TLM_ENGINE_INFO, NULL,
				    "draining: %ld run(s) in hand, %ld s to finish", k.n,
				    a->drain_s);
		}
		if (terms > 0 && drain(&k, deadline, &handed))
			break;
		if (tlm_journal_wait(j, terms > 0 ? 200 : a->poll_ms, &err) < 0)
			tlm_log_cmd(TLM_ENGINE_WARN, NULL, "%s", err.message);
	}
	tlm_log_cmd(TLM_ENGINE_INFO, NULL, "worker stopped");
	tlm_cli_metrics_finish();
	tlm_metrics_set_collector(NULL, NULL);
	tlm_journal_close(j);
	return rc;
}

int tlm_cmd_worker(tlm_cli *cli, int argc, char **argv)
{
	worker_args a;
	tlm_engine_opts eo = TLM_ENGINE_OPTS_INIT;
	tlm_cli_secrets sec = { NULL, NULL };
	int rc;

	memset(&a, 0, sizeof(a));
	a.eo = eo;
	a.max_runs = 4;
	a.drain_s = 60;
	if ((rc = parse(cli, argc, argv, &a)) != 0)
		return rc < 0 ? TLM_EXIT_OK : rc;
	if (!a.once)
		return supervise(&a, argv, argc);
	if (tlm_cli_engine_env(&a.eo, &sec) != 0)
		return TLM_EXIT_USAGE;
	rc = work_once(cli, &a);
	tlm_cli_secrets_clear(&sec);
	return rc;
}
