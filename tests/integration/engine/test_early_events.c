/* Events that arrive before their task's create reply (src/engine/early.c):
 * `telemachy serve` finishes a `program: none` task at once and publishes
 * "completed" while the reply to the create may still be on its way.  A run
 * of 20 chains of 3 tasks over 10 agents with NATS must learn every
 * completion from the events, kept until the task's id is known — not by
 * polling tasks over REST a second later, which is what dropping them did. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>

#include "harness/harness.h"
#include "harness/nats.h"
#include "harness/run.h"
#include "harness/serve.h"

#define NTASKS 60
#define WIDTH  20 /* chains of NTASKS / WIDTH */

static tlm_h_serve srv;
static pid_t nats_pid;
static char *dir;

/* The value of the sample line that starts with prefix (not a HELP line). */
static long metric(const char *text, const char *prefix)
{
	const char *p = text;

	while ((p = strstr(p, prefix)) != NULL) {
		if (p == text || p[-1] == '\n')
			return strtol(p + strlen(prefix), NULL, 10);
		p++;
	}
	return 0;
}

static char nurl[64];

static int setup(void **state)
{
	const char *sargs[] = { "--nats", nurl, NULL };
	unsigned short port = 0;

	(void)state;
	dir = tlm_h_tmpdir();
	nats_pid = tlm_h_nats_start(&port);
	tlm_h_nats_url(nurl, sizeof(nurl), port);
	tlm_h_serve_start(&srv, sargs);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	if (srv.pid != 0)
		tlm_h_serve_stop(&srv);
	tlm_h_nats_stop(nats_pid);
	tlm_h_rmrf(dir);
	free(dir);
	return 0;
}

static void test_chain_learns_from_early_events(void **state)
{
	char nenv[96], prom[512], wf[16384], *file, *text;
	const char *env[] = { nenv, NULL };
	const char *args[] = { "--metrics-textfile", prom, NULL };
	size_t n = 0;
	tlm_h_run run;
	int i;
	(void)state;

	memset(&run, 0, sizeof(run));
	/* WIDTH chains of DEPTH tasks over 10 agents: many tasks in flight at
	 * once, so completions race the create replies. */
	n += (size_t)snprintf(wf + n, sizeof(wf) - n,
			      "apiVersion: telemachy/v1\nmetadata: {name: chains}\nagents:\n");
	for (i = 0; i < 10; i++)
		n += (size_t)snprintf(wf + n, sizeof(wf) - n, "  - {name: a%d, program: none}\n",
				      i);
	n += (size_t)snprintf(wf + n, sizeof(wf) - n,
			      "teams:\n  - name: t\n    agents: [a0, a1, a2, a3, a4, a5, a6, a7,"
			      " a8, a9]\n    tasks:\n");
	for (i = 0; i < NTASKS; i++) {
		n += (size_t)snprintf(wf + n, sizeof(wf) - n,
				      "      - {subject: s%d, description: d, assign_to: a%d", i,
				      i % 10);
		if (i >= WIDTH)
			n += (size_t)snprintf(wf + n, sizeof(wf) - n, ", blocked_by: [s%d]",
					      i - WIDTH);
		n += (size_t)snprintf(wf + n, sizeof(wf) - n, "}\n");
	}
	file = tlm_h_write_file(dir, "chain.yaml", wf);
	snprintf(nenv, sizeof(nenv), "NATS_URL=%s", nurl);
	snprintf(prom, sizeof(prom), "%s/metrics.prom", dir);
	tlm_h_run_on(&run, &srv, file, env, args);
	assert_int_equal(tlm_h_run_finish(&run, 120000), 0);
	tlm_h_assert_all_completed(&run);
	text = tlm_h_slurp(prom);
	assert_true(metric(text, "telemachy_nats_events_received_total ") >= NTASKS);
	{
		long polls =
			metric(text, "telemachy_client_requests_total{method=\"GET\","
				     "route=\"/v1/teams/{id}/tasks/{id}\",status_class=\"2xx\"} ");

		print_message("%d tasks: %ld REST polls of a task\n", NTASKS, polls);
		if (polls > 3)
			fail_msg("%ld tasks were polled over REST: events were dropped", polls);
	}
	free(text);
	tlm_h_run_clear(&run);
	tlm_h_assert_no_tlm(&srv);
	free(file);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_chain_learns_from_early_events, setup,
						teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
