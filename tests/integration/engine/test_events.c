/* The engine's events as data (tlm_engine_opts.on_event,
 * include/telemachy/engine.h), in process against the real `telemachy
 * serve`: the run starts, goes through its phases, every agent and team
 * is created and deleted, each task's attempt is reported with its team,
 * attempt and final state (a failure with the control plane's message, its
 * dependent skipped), and the run ends failed — in that order, each event
 * carrying the run's id and workflow.  With journal_events, the final
 * ones are in the journal under the ids they were reported with. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness/harness.h"
#include "harness/serve.h"
#include "telemachy/engine.h"
#include "telemachy/journal.h"
#include "telemachy/spec.h"

#define MAX_EVENTS 256

static const char spec_text[] =
	"apiVersion: telemachy/v1\n"
	"metadata: {name: evs}\n"
	"teardown: always\n"
	"agents:\n"
	"  - {name: good, program: none}\n"
	"  - {name: bad, program: /bin/sh, args: ['-c', 'exit 3']}\n"
	"teams:\n"
	"  - name: t\n"
	"    agents: [good, bad]\n"
	"    tasks:\n"
	"      - {subject: a, description: d, assign_to: good}\n"
	"      - {subject: b, description: d, assign_to: bad}\n"
	"      - {subject: c, description: d, assign_to: good, blocked_by: [b]}\n";

typedef struct seen {
	char line[MAX_EVENTS][160];           /* "KIND state name" */
	char ids[8][TLM_ENGINE_EVENT_ID_MAX]; /* the final events' ids */
	size_t nids;
	char run_id[MAX_EVENTS][16];
	char b_message[256];
	size_t n;
	int bad_workflow, bad_time, b_attempt;
} seen;

static const char *kind_name(tlm_engine_event_kind k)
{
	static const char *const names[] = { "run_started", "phase",           "agent",    "team",
					     "task",        "teardown_failed", "run_ended" };

	return (size_t)k < sizeof(names) / sizeof(names[0]) ? names[k] : "?";
}

static void on_event(void *ctx, const tlm_engine_event *ev)
{
	seen *s = ctx;
	char name[80];

	if (s->n == MAX_EVENTS)
		return;
	if (ev->kind == TLM_ENGINE_EV_TASK)
		snprintf(name, sizeof(name), "%s/%s", ev->team, ev->name);
	else
		snprintf(name, sizeof(name), "%s",
			 ev->kind == TLM_ENGINE_EV_PHASE ? ev->phase
			 : ev->name                      ? ev->name
							 : "-");
	snprintf(s->line[s->n], sizeof(s->line[0]), "%s %s %s", kind_name(ev->kind),
		 ev->state ? ev->state : "-", name);
	snprintf(s->run_id[s->n], sizeof(s->run_id[0]), "%s", ev->run_id ? ev->run_id : "");
	s->bad_workflow |= ev->workflow == NULL || strcmp(ev->workflow, "evs") != 0;
	s->bad_time |= ev->at_ms < 1700000000000ull;
	if (s->nids < 8 && tlm_engine_event_id(ev, s->ids[s->nids], sizeof(s->ids[0])) == 0)
		s->nids++;
	if (ev->kind == TLM_ENGINE_EV_TASK && strcmp(ev->name, "b") == 0 && ev->state &&
	    strcmp(ev->state, "failed") == 0) {
		snprintf(s->b_message, sizeof(s->b_message), "%s", ev->message ? ev->message : "");
		s->b_attempt = ev->attempt;
	}
	s->n++;
}

/* The index of the first event line equal to want at or after from. */
static size_t find(const seen *s, size_t from, const char *want)
{
	for (size_t i = from; i < s->n; i++)
		if (strcmp(s->line[i], want) == 0)
			return i;
	for (size_t i = 0; i < s->n; i++)
		fprintf(stderr, "  %s\n", s->line[i]);
	fail_msg("no event \"%s\" after #%zu", want, from);
	return 0;
}

/* Every final event is journaled (journal_events) under the id the
 * engine reported it with: the journal's ids, one by one, are struck off
 * the list of reported ones. */
static int journaled(const tlm_journal_event *ev, void *ctx)
{
	seen *s = ctx;
	size_t i;

	for (i = 0; i < s->nids; i++)
		if (strcmp(s->ids[i], ev->id) == 0) {
			s->ids[i][0] = '\0';
			return 0;
		}
	fail_msg("journaled event %s was not reported", ev->id);
	return 1;
}

static void test_events(void **state)
{
	tlm_engine_opts o = TLM_ENGINE_OPTS_INIT;
	tlm_engine_result res;
	tlm_error err = TLM_ERROR_INIT;
	tlm_diags diags;
	tlm_spec *spec = NULL;
	tlm_h_serve srv;
	char *dir = tlm_h_tmpdir();
	seen *s = calloc(1, sizeof(*s));
	tlm_journal *j = NULL;
	size_t i, run, end;

	(void)state;
	memset(&diags, 0, sizeof(diags));
	memset(&srv, 0, sizeof(srv));
	assert_non_null(s);
	assert_int_equal(
		tlm_spec_parse(&spec, "evs.yaml", spec_text, strlen(spec_text), &diags, &err), 0);
	tlm_h_serve_start(&srv, NULL);
	o.spec = spec;
	o.spec_text = spec_text;
	o.control_plane = srv.url;
	o.state_dir = dir;
	o.on_event = on_event;
	o.on_event_ctx = s;
	o.journal_events = 1;
	assert_int_equal(tlm_engine_run(&o, &res, &err), 0);
	assert_string_equal(res.state, "failed");
	/* a completed, b failed, c skipped, the run failed; all journaled. */
	assert_int_equal(s->nids, 4);
	assert_int_equal(tlm_journal_open(&j, dir, &err), 0);
	assert_int_equal(tlm_journal_events(j, res.run_id, journaled, s, &err), 0);
	tlm_journal_close(j);
	for (i = 0; i < s->nids; i++)
		assert_string_equal(s->ids[i], "");

	assert_string_equal(s->line[0], "run_started new -");
	assert_false(s->bad_workflow);
	assert_false(s->bad_time);
	for (i = 0; i < s->n; i++)
		assert_string_equal(s->run_id[i], res.run_id);
	run = find(s, find(s, 0, "phase - provisioning"), "phase - running");
	/* Provisioning: each agent created and started, the team created. */
	for (i = 0; i < s->n && strncmp(s->line[i], "agent started", 13) != 0; i++)
		;
	assert_true(i < run);
	for (i = 0; i < s->n && strncmp(s->line[i], "team created", 12) != 0; i++)
		;
	assert_true(i < run);
	find(s, run, "task submitted t/a");
	find(s, find(s, run, "task submitted t/a"), "task completed t/a");
	find(s, run, "task failed t/b");
	find(s, run, "task skipped t/c");
	assert_non_null(strstr(s->b_message, "status 3"));
	assert_int_equal(s->b_attempt, 1);
	end = find(s, run, "phase - tearing down");
	/* Teardown: every resource deleted after the phase began. */
	for (i = end; i < s->n && strncmp(s->line[i], "agent deleted", 13) != 0; i++)
		;
	assert_true(i < s->n);
	for (i = end; i < s->n && strncmp(s->line[i], "team deleted", 12) != 0; i++)
		;
	assert_true(i < s->n);
	assert_string_equal(s->line[s->n - 1], "run_ended failed -");
	tlm_engine_result_clear(&res);
	tlm_spec_free(spec);
	tlm_diags_clear(&diags);
	tlm_h_serve_stop(&srv);
	tlm_h_rmrf(dir);
	free(dir);
	free(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_events),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
