/* The action tools, only with --allow-actions (docs/mcp.md): run_workflow
 * and teardown_run start the real `telemachy run` / `teardown` detached
 * (tlm_spawn_detached: a new session, nothing of ours inherited, the
 * environment — control plane, keys — passed on, never argv), so a run
 * outlives this server and is journaled and owned as any other; cancel_run
 * asks a live owner through the journal with the same audit entry as
 * `telemachy cancel`.  Waits are bounded by wait_seconds. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mcp/mcp_internal.h"
#include "telemachy/report.h"
#include "telemachy/spec.h"
#include "util/spawn.h"

#define POLL_MS 100

static void pause_ms(long ms)
{
	struct timespec ts = { ms / 1000, (ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) != 0)
		;
}

static long long now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Whether pid still runs: not when it is gone or a zombie (a reaper that
 * is not init may hold it a while). */
static int pid_alive(pid_t pid)
{
	char path[64], buf[512], *p;
	FILE *f;
	size_t n;

	snprintf(path, sizeof(path), "/proc/%ld/stat", (long)pid);
	if ((f = fopen(path, "re")) == NULL)
		return 0;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	if ((p = strrchr(buf, ')')) == NULL || p[1] != ' ')
		return 0;
	return p[2] != 'Z' && p[2] != 'X';
}

/* exe CMD [--journal WHERE] ARG, detached. */
static int start(tlm_mcp *m, const char *cmd, const char *arg, pid_t *pid, tlm_mcp_out *out)
{
	tlm_error err = TLM_ERROR_INIT;
	char *argv[7];
	size_t n = 0;

	argv[n++] = (char *)"telemachy";
	argv[n++] = (char *)cmd;
	if (m->o.journal != NULL) {
		argv[n++] = (char *)"--journal";
		argv[n++] = (char *)m->o.journal;
	}
	argv[n++] = (char *)arg;
	argv[n] = NULL;
	if (tlm_spawn_detached(m->o.exe, argv, m->o.action_log, pid, &err) != 0)
		return tlm_mcp__set_failure(out, "starting `telemachy %s`: %s", cmd, err.message);
	return 0;
}

typedef struct by_pid {
	long pid;
	char id[TLM_JOURNAL_RUN_ID_LEN + 1];
	char state[32];
} by_pid;

static int by_pid_cb(const tlm_journal_run *r, void *ctx)
{
	by_pid *b = ctx;

	if (r->owner_pid != b->pid)
		return 0;
	snprintf(b->id, sizeof(b->id), "%s", r->id);
	snprintf(b->state, sizeof(b->state), "%s", tlm_run_state_name(r->state));
	return 1;
}

/* The run of workflow whose owner is pid, once the journal has it. */
static int find_started(tlm_mcp *m, const char *workflow, by_pid *b)
{
	tlm_mcp_out ignored;
	tlm_journal *j = NULL;
	int rc;

	memset(&ignored, 0, sizeof(ignored));
	rc = tlm_mcp__journal_open(m, &j, &ignored);
	free(ignored.text);
	if (rc != 0 || j == NULL)
		return 0;
	rc = tlm_journal_runs(j, NULL, workflow, by_pid_cb, b, NULL);
	tlm_journal_close(j);
	return rc == 1;
}

int tlm_mcp__run_workflow(tlm_mcp *m, json_t *args, tlm_mcp_out *out)
{
	tlm_diags diags = TLM_DIAGS_INIT;
	tlm_error err = TLM_ERROR_INIT;
	tlm_spec *spec = NULL;
	char *text = NULL, *real = NULL;
	size_t len = 0;
	pid_t pid;
	by_pid b;
	long long end;
	int rc;

	memset(&b, 0, sizeof(b));
	if ((rc = tlm_mcp__spec_source(m, args, 0, &text, &len, &real, out)) != 0)
		return rc;
	/* Checked here first, so that an invalid file is a clear answer rather
	 * than a run that never appears. */
	if ((rc = tlm_spec_parse(&spec, real, text, len, &diags, &err)) != 0) {
		if (rc == TLM_EINVALID && diags.count > 0)
			tlm_mcp__set_failure(out,
					     "%s is not a valid workflow (%zu errors; the first: "
					     "%u:%u: %s); validate_workflow lists them all",
					     real, diags.count + diags.dropped,
					     (unsigned)diags.items[0].pos.line,
					     (unsigned)diags.items[0].pos.col,
					     diags.items[0].message);
		else
			tlm_mcp__set_failure(out, "%s: %s", real, err.message);
		goto done;
	}
	if ((rc = start(m, "run", real, &pid, out)) != 0)
		goto done;
	b.pid = (long)pid;
	end = now_ms() + m->o.run_wait_ms;
	for (;;) {
		if (find_started(m, spec->name, &b))
			break;
		if (!pid_alive(pid)) {
			/* It may have journaled and ended between the two looks. */
			if (find_started(m, spec->name, &b))
				break;
			rc = tlm_mcp__set_failure(
				out,
				"`telemachy run %s` (pid %ld) ended before its run was in the "
				"journal: the control plane or NATS may be unreachable (its "
				"output goes to the server's --action-log)",
				real, (long)pid);
			goto done;
		}
		if (now_ms() >= end) {
			rc = tlm_mcp__set_failure(
				out,
				"`telemachy run %s` (pid %ld) started, but its run was not in "
				"the journal after %ld ms; list_runs shows it when it is",
				real, (long)pid, m->o.run_wait_ms);
			goto done;
		}
		pause_ms(POLL_MS);
	}
	out->result = json_pack("{s:s, s:I, s:s, s:s}", "run", b.id, "pid", (json_int_t)pid,
				"state", b.state, "workflow", spec->name);
	rc = out->result != NULL ? 0 : tlm_mcp__set_failure(out, "out of memory");
done:
	tlm_diags_clear(&diags);
	tlm_spec_free(spec);
	free(text);
	free(real);
	return rc;
}

/* The run args names; failure set in out.  *j stays open for the caller. */
static int get_run(tlm_mcp *m, json_t *args, tlm_journal **j, tlm_journal_run *r, tlm_mcp_out *out)
{
	tlm_error err = TLM_ERROR_INIT;
	const char *id = json_string_value(json_object_get(args, "run"));
	int rc;

	if (tlm_mcp__journal_open(m, j, out) != 0)
		return TLM_ERROR;
	if (*j == NULL)
		return tlm_mcp__set_failure(out, "the journal has no runs yet");
	rc = tlm_journal_run_get(*j, id, r, &err);
	if (rc == TLM_ENOTFOUND || rc == TLM_EINVALID)
		return tlm_mcp__set_failure(out, "no run \"%.64s\" in the journal", id);
	if (rc != 0)
		return tlm_mcp__set_failure(out, "reading the journal: %s", err.message);
	return 0;
}

static long wait_ms(json_t *args, long def_s)
{
	json_t *w = json_object_get(args, "wait_seconds");

	return (w != NULL ? (long)json_integer_value(w) : def_s) * 1000;
}

int tlm_mcp__cancel_run(tlm_mcp *m, json_t *args, tlm_mcp_out *out)
{
	tlm_error err = TLM_ERROR_INIT;
	tlm_journal *j = NULL;
	tlm_journal_run r, now;
	tlm_journal_owner owner;
	const char *how = "still_running";
	tlm_run_state state;
	long long end = now_ms() + wait_ms(args, 30);
	int rc;

	memset(&r, 0, sizeof(r));
	if ((rc = get_run(m, args, &j, &r, out)) != 0)
		goto done;
	owner = tlm_journal_run_owner(&r);
	state = r.state;
	/* A queued run has no owner yet, but the worker that claims it reads
	 * the request at once (docs/distributed.md): ask, as for a live one. */
	if (owner == TLM_JOURNAL_OWNER_NONE && r.state == TLM_RUN_QUEUED)
		owner = TLM_JOURNAL_OWNER_ALIVE;
	if (owner == TLM_JOURNAL_OWNER_NONE) {
		how = "had_ended";
	} else if (owner == TLM_JOURNAL_OWNER_DEAD) {
		rc = tlm_mcp__set_failure(
			out,
			"run %s's owner (pid %ld on %s) is gone, so nobody can be "
			"asked to cancel: tear it down with teardown_run",
			r.id, r.owner_pid, r.owner_host ? r.owner_host : "?");
		goto done;
	} else {
		if ((rc = tlm_journal_run_request_cancel(j, r.id, &err)) != 0) {
			tlm_mcp__set_failure(out, "asking run %s to cancel: %s", r.id, err.message);
			goto done;
		}
		/* The entry `telemachy cancel` leaves, saying who asked. */
		(void)tlm_journal_audit(j, r.id, "cancel",
					"asked the live owner to cancel (telemachy mcp)", NULL);
		for (;;) {
			memset(&now, 0, sizeof(now));
			if (tlm_journal_run_get(j, r.id, &now, NULL) == 0) {
				state = now.state;
				tlm_journal_run_clear(&now);
				if (tlm_run_state_is_final(state)) {
					how = "owner_stopped";
					break;
				}
			}
			if (now_ms() >= end)
				break;
			pause_ms(POLL_MS);
		}
	}
	out->result = json_pack("{s:s, s:s, s:s, s:i}", "run", r.id, "how", how, "state",
				tlm_run_state_name(state), "owner_pid", (int)r.owner_pid);
	rc = out->result != NULL ? 0 : tlm_mcp__set_failure(out, "out of memory");
done:
	tlm_journal_run_clear(&r);
	tlm_journal_close(j);
	return rc;
}

int tlm_mcp__teardown_run(tlm_mcp *m, json_t *args, tlm_mcp_out *out)
{
	tlm_error err = TLM_ERROR_INIT;
	tlm_journal *j = NULL;
	tlm_journal_run r;
	long long end = now_ms() + wait_ms(args, 60);
	long live = -1;
	pid_t pid;
	int rc, finished;

	memset(&r, 0, sizeof(r));
	if ((rc = get_run(m, args, &j, &r, out)) != 0)
		goto done;
	if (tlm_journal_run_owner(&r) == TLM_JOURNAL_OWNER_ALIVE) {
		rc = tlm_mcp__set_failure(
			out,
			"run %s's owner (pid %ld on %s) is alive: cancel it "
			"instead (cancel_run), as `telemachy teardown` refuses too",
			r.id, r.owner_pid, r.owner_host ? r.owner_host : "?");
		goto done;
	}
	/* The teardown takes the run: this handle must not hold it open. */
	tlm_journal_close(j);
	j = NULL;
	if ((rc = start(m, "teardown", r.id, &pid, out)) != 0)
		goto done;
	while ((finished = !pid_alive(pid)) == 0 && now_ms() < end)
		pause_ms(POLL_MS);
	tlm_journal_run_clear(&r);
	memset(&r, 0, sizeof(r));
	if ((rc = get_run(m, args, &j, &r, out)) != 0)
		goto done;
	if (tlm_report_count_live(j, r.id, &live, &err) != 0)
		live = -1;
	out->result = json_pack("{s:s, s:I, s:b, s:s, s:I}", "run", r.id, "pid", (json_int_t)pid,
				"finished", finished, "state", tlm_run_state_name(r.state),
				"leftovers", (json_int_t)live);
	rc = out->result != NULL ? 0 : tlm_mcp__set_failure(out, "out of memory");
done:
	tlm_journal_run_clear(&r);
	tlm_journal_close(j);
	return rc;
}
