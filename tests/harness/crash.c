/* One crash trial (crash.h): run, SIGKILL at point k, check the control plane
 * against the journal, recover, check again. */
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness/crash.h"
#include "harness/harness.h"
#include "harness/run.h"

/* The request timeout of every engine command (seconds).  A create whose
 * outcome is unknown (lost reply, 5xx) and that is not found by name is looked
 * up again after one request timeout before it is posted again: 2 s, not the
 * default 30, keeps a trial short; the server is local and answers in
 * milliseconds. */
#define RTO "1"

/* ---- small helpers ------------------------------------------------------ */

typedef struct sbuf {
	char *s;
	size_t len, cap;
} sbuf;

__attribute__((format(printf, 2, 3))) static void sb_printf(sbuf *b, const char *fmt, ...)
{
	va_list ap;
	int n;

	for (;;) {
		size_t room = b->cap - b->len;

		va_start(ap, fmt);
		n = vsnprintf(b->s != NULL ? b->s + b->len : NULL, room, fmt, ap);
		va_end(ap);
		assert_true(n >= 0);
		if ((size_t)n < room) {
			b->len += (size_t)n;
			return;
		}
		b->cap = (b->cap + (size_t)n + 1) * 2;
		b->s = realloc(b->s, b->cap);
		assert_non_null(b->s);
		if (b->len == 0)
			b->s[0] = '\0';
	}
}

const char *tlm_h_recovery_name(tlm_h_recovery r)
{
	return r == TLM_H_RESUME ? "resume" : "teardown";
}

/* Runs TLM_BIN ARGS... against s (AGAMEMNON_URL) with env added (may be
 * NULL); see tlm_h_cmd_run. */
static void run_cmd(const tlm_h_serve *s, const char *dir, const char *const *args,
		    const char *const *env, int timeout_ms, tlm_h_cmd *c)
{
	char url[200];
	const char *all[16];
	size_t n = 0, i;

	snprintf(url, sizeof(url), "AGAMEMNON_URL=%s", s->url);
	all[n++] = url;
	for (i = 0; env != NULL && env[i] != NULL && n < 15; i++)
		all[n++] = env[i];
	all[n] = NULL;
	tlm_h_cmd_run(c, dir, all, args, timeout_ms);
}

/* The journal's kind for a server list. */
static const char *kind_of(const char *list)
{
	return strcmp(list, "agents") == 0 ? "agent" : "team";
}

/* "agent:ID" / "team:ID" of every tlm- resource on s, as an object. */
static json_t *snapshot(const tlm_h_serve *s)
{
	static const char *const kinds[] = { "agents", "teams" };
	json_t *set = json_object();
	size_t k, i;

	for (k = 0; k < 2; k++) {
		json_t *l = tlm_h_list_prefixed(s, kinds[k], "tlm-"), *it;

		json_array_foreach(l, i, it)
		{
			char key[512];

			snprintf(key, sizeof(key), "%s:%s", kind_of(kinds[k]),
				 json_string_value(json_object_get(it, "id")));
			json_object_set_new(
				set, key,
				json_string(json_string_value(json_object_get(it, "name"))));
		}
		json_decref(l);
	}
	return set;
}

/* ---- faults ------------------------------------------------------------- */

char *tlm_h_fault_add(const tlm_h_serve *s, const char *spec)
{
	char type[32], path[80], *copy, *p, *tok, *save = NULL;
	const char *colon = strchr(spec, ':');
	json_t *body = json_object(), *j = NULL;
	char *text, *id;
	long st;

	if (colon == NULL || (size_t)(colon - spec) >= sizeof(type))
		fail_msg("bad fault spec \"%s\"", spec);
	memcpy(type, spec, (size_t)(colon - spec));
	type[colon - spec] = '\0';
	copy = strdup(colon + 1);
	assert_non_null(copy);
	for (p = copy; (tok = strtok_r(p, ",", &save)) != NULL; p = NULL) {
		char *eq = strchr(tok, '='), *endp;
		long v;

		if (eq == NULL)
			fail_msg("bad fault spec \"%s\"", spec);
		*eq = '\0';
		v = strtol(eq + 1, &endp, 10);
		if (*endp == '\0' && endp != eq + 1)
			json_object_set_new(body, tok, json_integer(v));
		else
			json_object_set_new(body, tok, json_string(eq + 1));
	}
	free(copy);
	text = json_dumps(body, JSON_COMPACT);
	snprintf(path, sizeof(path), "/v1/chaos/%s", type);
	st = tlm_h_req(s, "POST", path, text, &j);
	if (st != 201 && st != 200)
		fail_msg("adding fault \"%s\": status %ld", spec, st);
	id = strdup(tlm_h_str(j, "id"));
	json_decref(j);
	json_decref(body);
	free(text);
	return id;
}

void tlm_h_fault_remove(const tlm_h_serve *s, const char *id)
{
	char path[128];
	json_t *j = NULL;

	if (id == NULL)
		return;
	snprintf(path, sizeof(path), "/v1/chaos/%s", id);
	tlm_h_req(s, "DELETE", path, NULL, &j);
	json_decref(j);
}

/* ---- points ------------------------------------------------------------- */

const char *tlm_h_point_name(const tlm_h_points *p, long k)
{
	if (k < 1 || (size_t)k > p->n)
		return "(after the last point)";
	return p->names[k - 1];
}

void tlm_h_points_free(tlm_h_points *p)
{
	size_t i;

	for (i = 0; i < p->n; i++)
		free(p->names[i]);
	free(p->names);
	free(p->err);
	memset(p, 0, sizeof(*p));
}

/* The journal a trial uses: DIR/state, or a fresh database on the
 * PostgreSQL cluster a test registered (tlm_h_crash_use_pg). */
static tlm_h_pg *crash_pg;

void tlm_h_crash_use_pg(tlm_h_pg *pg)
{
	crash_pg = pg;
	print_message("crash walk: journals on PostgreSQL at 127.0.0.1:%u\n", pg->port);
}

static void state_for(const char *dir, char *out, size_t size)
{
	char *uri;

	if (crash_pg == NULL) {
		snprintf(out, size, "%s/state", dir);
		return;
	}
	uri = tlm_h_pg_newdb(crash_pg);
	snprintf(out, size, "%s", uri);
	free(uri);
}

void tlm_h_crash_count(const tlm_h_serve *s, const char *file, const char *fault, tlm_h_points *p)
{
	char *dir = tlm_h_tmpdir(), state[4096], logp[4096], logenv[4200];
	const char *args[] = { "run", "--output", "json", "--state-dir", state, "--request-timeout",
			       RTO,   file,       NULL };
	const char *env[] = { logenv, NULL };
	char *fid = fault != NULL ? tlm_h_fault_add(s, fault) : NULL, *log, *line, *save = NULL;
	tlm_h_cmd c;

	memset(p, 0, sizeof(*p));
	state_for(dir, state, sizeof(state));
	snprintf(logp, sizeof(logp), "%s/points", dir);
	snprintf(logenv, sizeof(logenv), "TLM_CRASH_LOG=%s", logp);
	run_cmd(s, dir, args, env, 120000, &c);
	tlm_h_fault_remove(s, fid);
	free(fid);
	p->exit_code = c.exit_code;
	p->err = c.err;
	c.err = NULL;
	log = tlm_h_slurp(logp);
	for (line = strtok_r(log, "\n", &save); line != NULL; line = strtok_r(NULL, "\n", &save)) {
		char *sp = strchr(line, ' ');
		long k = strtol(line, NULL, 10);

		if (sp == NULL || k != (long)p->n + 1)
			fail_msg("crash log %s: unexpected line \"%s\"", logp, line);
		p->names = realloc(p->names, (p->n + 1) * sizeof(*p->names));
		assert_non_null(p->names);
		p->names[p->n++] = strdup(sp + 1);
	}
	free(log);
	tlm_h_cmd_free(&c);
	tlm_h_rmrf(dir);
	free(dir);
}

/* ---- the trial ---------------------------------------------------------- */

void tlm_h_crash_result_free(tlm_h_crash_result *r)
{
	free(r->msg);
	r->msg = NULL;
}

/* The run of a state dir (the newest; a trial's dir holds at most one), or
 * "" when none was journaled.  0, or -1 when `list` failed. */
static int find_run(const tlm_h_serve *s, const char *dir, const char *state, int timeout_ms,
		    char *id, size_t idsz, sbuf *msg)
{
	const char *args[] = { "list", "--output", "json", "--state-dir", state, NULL };
	json_t *j, *runs;
	tlm_h_cmd c;
	int rc = 0;

	id[0] = '\0';
	run_cmd(s, dir, args, NULL, timeout_ms, &c);
	j = json_loads(c.out, 0, NULL);
	runs = json_object_get(j, "runs");
	if (c.exit_code != 0 || !json_is_array(runs)) {
		sb_printf(msg, "`telemachy list` exited %d:\n%s%s\n", c.exit_code, c.out, c.err);
		rc = -1;
	} else if (json_array_size(runs) > 0) {
		const char *v = json_string_value(json_object_get(json_array_get(runs, 0), "id"));

		snprintf(id, idsz, "%s", v != NULL ? v : "");
	}
	json_decref(j);
	tlm_h_cmd_free(&c);
	return rc;
}

/* Is the server's (kind, name, id) accounted for by the journal's resources:
 * a row with that remote id, or a row of that name whose outcome is unknown
 * (intent, deleting)? */
static int accounted(const json_t *resources, const char *kind, const char *name, const char *id)
{
	const json_t *r;
	size_t i;

	json_array_foreach(resources, i, r)
	{
		const char *rk = json_string_value(json_object_get(r, "kind"));
		const char *rn = json_string_value(json_object_get(r, "name"));
		const char *rid = json_string_value(json_object_get(r, "remote_id"));
		const char *st = json_string_value(json_object_get(r, "state"));

		if (rk == NULL || strcmp(rk, kind) != 0)
			continue;
		if (rid != NULL && strcmp(rid, id) == 0)
			return 1;
		if (rn != NULL && strcmp(rn, name) == 0 && st != NULL &&
		    (strcmp(st, "intent") == 0 || strcmp(st, "deleting") == 0))
			return 1;
	}
	return 0;
}

/* Counts the names held twice among list (of one kind). */
static long count_duplicates(const json_t *list, const char *kind, sbuf *msg)
{
	size_t i, j;
	long dups = 0;

	for (i = 0; i < json_array_size(list); i++) {
		const char *a = json_string_value(json_object_get(json_array_get(list, i), "name"));

		for (j = 0; j < i; j++) {
			const char *b =
				json_string_value(json_object_get(json_array_get(list, j), "name"));

			if (strcmp(a, b) == 0) {
				sb_printf(msg, "duplicate %s name %s on the server\n", kind, a);
				dups++;
				break;
			}
		}
	}
	return dups;
}

/* The invariant before recovery: every tlm- resource that appeared since the
 * baseline is named after the run, accounted for by its journal, and unique. */
static void check_before(const tlm_h_serve *s, const char *dir, const char *state,
			 const json_t *baseline, int timeout_ms, tlm_h_crash_result *res, sbuf *msg)
{
	static const char *const kinds[] = { "agents", "teams" };
	char prefix[96];
	json_t *now = snapshot(s), *resources = NULL, *st = NULL, *v;
	const char *key;
	size_t k, i;

	/* Something new that is not named after the run: nobody knows it. */
	snprintf(prefix, sizeof(prefix), "tlm-%s-", res->run_id);
	json_object_foreach(now, key, v)
	{
		const char *name = json_string_value(v);

		if (json_object_get(baseline, key) != NULL)
			continue;
		if (res->run_id[0] == '\0' || strncmp(name, prefix, strlen(prefix)) != 0) {
			sb_printf(msg, "%s %s is on the server but %s\n", key, name,
				  res->run_id[0] == '\0' ? "no run was journaled"
							 : "is not named after the run");
			res->unaccounted++;
		}
	}
	json_decref(now);
	if (res->run_id[0] == '\0')
		return;

	{
		const char *args[] = { "status",      res->run_id, "--output", "json",
				       "--state-dir", state,       NULL };
		tlm_h_cmd c;

		run_cmd(s, dir, args, NULL, timeout_ms, &c);
		st = json_loads(c.out, 0, NULL);
		resources = json_object_get(st, "resources");
		if (c.exit_code != 0 || !json_is_array(resources)) {
			sb_printf(msg, "`telemachy status %s` exited %d:\n%s%s\n", res->run_id,
				  c.exit_code, c.out, c.err);
			res->failed = 1;
			resources = NULL;
		} else {
			const char *rs = json_string_value(
				json_object_get(json_object_get(st, "run"), "state"));

			res->leftovers_before =
				json_integer_value(json_object_get(st, "leftovers"));
			snprintf(res->run_state, sizeof(res->run_state), "%s",
				 rs != NULL ? rs : "");
		}
		tlm_h_cmd_free(&c);
	}
	for (k = 0; k < 2; k++) {
		json_t *l = tlm_h_list_prefixed(s, kinds[k], prefix), *it;

		res->server_before += (long)json_array_size(l);
		res->duplicates += count_duplicates(l, kind_of(kinds[k]), msg);
		json_array_foreach(l, i, it)
		{
			const char *name = json_string_value(json_object_get(it, "name"));
			const char *id = json_string_value(json_object_get(it, "id"));

			if (resources != NULL &&
			    !accounted(resources, kind_of(kinds[k]), name, id)) {
				sb_printf(msg,
					  "%s %s (id %s) is on the server, not in the journal\n",
					  kind_of(kinds[k]), name, id);
				res->unaccounted++;
			}
		}
		json_decref(l);
	}
	if (res->unaccounted > 0 && st != NULL)
		sb_printf(msg, "journal: %s\n", tlm_h_dump(resources));
	json_decref(st);
}

/* tlm-<run>- resources on s; lists them into msg. */
static long count_left(const tlm_h_serve *s, const char *run_id, sbuf *msg, long *dups)
{
	static const char *const kinds[] = { "agents", "teams" };
	char prefix[96];
	long n = 0;
	size_t k, i;

	snprintf(prefix, sizeof(prefix), "tlm-%s-", run_id);
	for (k = 0; k < 2; k++) {
		json_t *l = tlm_h_list_prefixed(s, kinds[k], prefix), *it;

		*dups += count_duplicates(l, kind_of(kinds[k]), msg);
		json_array_foreach(l, i, it)
		{
			sb_printf(msg, "left after recovery: %s %s (id %s)\n", kind_of(kinds[k]),
				  json_string_value(json_object_get(it, "name")),
				  json_string_value(json_object_get(it, "id")));
			n++;
		}
		json_decref(l);
	}
	return n;
}

/* `reconcile --output json` orphans named after the run (-1: it failed). */
static long count_orphans(const tlm_h_serve *s, const char *dir, const char *state,
			  const char *run_id, int timeout_ms, sbuf *msg)
{
	const char *args[] = { "reconcile", "--output", "json", "--state-dir", state, NULL };
	char prefix[96];
	json_t *j, *orphans, *o;
	tlm_h_cmd c;
	long n = 0;
	size_t i;

	snprintf(prefix, sizeof(prefix), "tlm-%s-", run_id);
	run_cmd(s, dir, args, NULL, timeout_ms, &c);
	j = json_loads(c.out, 0, NULL);
	orphans = json_object_get(j, "orphans");
	if (c.exit_code != 0 || !json_is_array(orphans)) {
		sb_printf(msg, "`telemachy reconcile` exited %d:\n%s%s\n", c.exit_code, c.out,
			  c.err);
		n = -1;
	} else {
		json_array_foreach(orphans, i, o)
		{
			const char *name = json_string_value(json_object_get(o, "name"));
			const char *rid = json_string_value(json_object_get(o, "run_id"));

			if ((name != NULL && strncmp(name, prefix, strlen(prefix)) == 0) ||
			    (rid != NULL && strcmp(rid, run_id) == 0)) {
				sb_printf(msg, "reconcile orphan: %s\n", tlm_h_dump(o));
				n++;
			}
		}
	}
	json_decref(j);
	tlm_h_cmd_free(&c);
	return n;
}

/* What every trial shares: its directory and state dir, the server's tlm-
 * resources before it, its fault, its report, its clock. */
typedef struct trial {
	const tlm_h_serve *s;
	char *dir, state[4096];
	json_t *baseline;
	char *fid;
	sbuf msg;
	int64_t t0;
	tlm_h_cmd run;
} trial;

static void trial_begin(trial *t, const tlm_h_serve *s, const char *fault, long k,
			tlm_h_crash_result *res)
{
	memset(t, 0, sizeof(*t));
	t->s = s;
	t->dir = tlm_h_tmpdir();
	state_for(t->dir, t->state, sizeof(t->state));
	t->baseline = snapshot(s);
	t->fid = fault != NULL ? tlm_h_fault_add(s, fault) : NULL;
	t->t0 = tlm_h_now_ms();
	sb_printf(&t->msg, "%s", "");
	memset(res, 0, sizeof(*res));
	res->k = k;
	res->leftovers_before = -1;
	res->recovery_exit = -1;
}

/* `telemachy RECOVERY RUN` of the trial's run; its exit code in res. */
static void trial_recover(trial *t, tlm_h_recovery rec, int timeout_ms, tlm_h_crash_result *res)
{
	const char *args[] = { tlm_h_recovery_name(rec), res->run_id, "--state-dir", t->state,
			       "--request-timeout",      RTO,         NULL };
	tlm_h_cmd c;

	run_cmd(t->s, t->dir, args, NULL, timeout_ms, &c);
	res->recovery_exit = c.exit_code;
	/* The crash came after the run was journaled as completed: resume has
	 * nothing to do and says so (exit 2, documented); nothing of the run
	 * may be left either way. */
	if (rec == TLM_H_RESUME && strcmp(res->run_state, "completed") == 0 && c.exit_code == 2 &&
	    strstr(c.err, "completed") != NULL)
		res->recovery_exit = 0;
	if (res->recovery_exit != 0)
		sb_printf(&t->msg, "`telemachy %s %s` exited %d; stdout:\n%s\nstderr:\n%s\n",
			  tlm_h_recovery_name(rec), res->run_id, c.exit_code, c.out, c.err);
	tlm_h_cmd_free(&c);
}

/* What is left of the run, and reconcile's view of it. */
static void trial_after(trial *t, int timeout_ms, tlm_h_crash_result *res)
{
	res->left_after = count_left(t->s, res->run_id, &t->msg, &res->duplicates);
	res->orphans_after =
		count_orphans(t->s, t->dir, t->state, res->run_id, timeout_ms, &t->msg);
}

static void trial_end(trial *t, const char *what, tlm_h_crash_result *res)
{
	if (res->failed)
		sb_printf(&t->msg, "%s's stderr:\n%s\n", what, t->run.err);
	tlm_h_fault_remove(t->s, t->fid);
	free(t->fid);
	json_decref(t->baseline);
	tlm_h_cmd_free(&t->run);
	tlm_h_rmrf(t->dir);
	free(t->dir);
	res->msg = t->msg.s;
	res->elapsed_ms = (long)(tlm_h_now_ms() - t->t0);
}

void tlm_h_crash_trial(const tlm_h_serve *s, const char *file, const char *fault, long k,
		       tlm_h_recovery rec, int timeout_ms, int settle_ms, tlm_h_crash_result *res)
{
	char crashenv[64], logp[4096], logenv[4200];
	const char *env[] = { crashenv, logenv, NULL };
	trial t;

	trial_begin(&t, s, fault, k, res);
	{
		const char *args[] = { "run",         "--output", "json",
				       "--state-dir", t.state,    "--request-timeout",
				       RTO,           file,       NULL };

		snprintf(crashenv, sizeof(crashenv), "TLM_CRASH_AT=%ld", k);
		snprintf(logp, sizeof(logp), "%s/points", t.dir);
		snprintf(logenv, sizeof(logenv), "TLM_CRASH_LOG=%s", logp);
		run_cmd(s, t.dir, args, env, timeout_ms, &t.run);
	}
	res->run_exit = t.run.exit_code;
	res->crashed = t.run.exit_code == 128 + SIGKILL;
	{
		char *log = tlm_h_slurp(logp), *last, *sp;
		size_t len = strlen(log);

		while (len > 0 && log[len - 1] == '\n')
			log[--len] = '\0';
		last = strrchr(log, '\n');
		last = last != NULL ? last + 1 : log;
		sp = strchr(last, ' ');
		snprintf(res->point, sizeof(res->point), "%s",
			 res->crashed && sp != NULL ? sp + 1 : "(none: the run ended)");
		free(log);
	}
	if (find_run(s, t.dir, t.state, timeout_ms, res->run_id, sizeof(res->run_id), &t.msg) != 0)
		res->failed = 1;
	if (!res->crashed) {
		/* Past the last point: the run ended by itself. */
		if (t.run.exit_code != 0) {
			sb_printf(&t.msg, "the run did not crash and exited %d; stderr:\n%s\n",
				  t.run.exit_code, t.run.err);
			res->failed = 1;
		}
		if (res->run_id[0] != '\0')
			res->left_after = count_left(s, res->run_id, &t.msg, &res->duplicates);
		else {
			sb_printf(&t.msg, "the run exited %d and journaled no run\n",
				  t.run.exit_code);
			res->failed = 1;
		}
		goto out;
	}
	check_before(s, t.dir, t.state, t.baseline, timeout_ms, res, &t.msg);
	if (res->run_id[0] == '\0')
		goto out;
	trial_recover(&t, rec, timeout_ms, res);
	if (settle_ms > 0)
		tlm_h_sleep_ms(settle_ms); /* waiting for something NOT to appear */
	trial_after(&t, timeout_ms, res);
out:
	if (res->duplicates > 0 || res->unaccounted > 0 || res->left_after > 0 ||
	    res->orphans_after != 0 ||
	    (res->crashed && res->run_id[0] != '\0' && res->recovery_exit != 0))
		res->failed = 1;
	trial_end(&t, "the crashed run", res);
}

/* ---- allocation-failure trials ------------------------------------------ */

long tlm_h_alloc_count(const tlm_h_serve *s, const char *file, const char *fault)
{
	char *dir = tlm_h_tmpdir(), state[4096], logp[4096], logenv[4200], *log;
	const char *args[] = { "run", "--output", "json", "--state-dir", state, "--request-timeout",
			       RTO,   file,       NULL };
	const char *env[] = { logenv, NULL };
	char *fid = fault != NULL ? tlm_h_fault_add(s, fault) : NULL;
	tlm_h_cmd c;
	long n;

	state_for(dir, state, sizeof(state));
	snprintf(logp, sizeof(logp), "%s/allocs", dir);
	snprintf(logenv, sizeof(logenv), "TLM_ALLOC_LOG=%s", logp);
	run_cmd(s, dir, args, env, 120000, &c);
	tlm_h_fault_remove(s, fid);
	free(fid);
	if (c.exit_code != 0)
		fail_msg("the counting run exited %d:\n%s", c.exit_code, c.err);
	log = tlm_h_slurp(logp);
	n = strtol(log, NULL, 10);
	free(log);
	tlm_h_cmd_free(&c);
	tlm_h_rmrf(dir);
	free(dir);
	return n;
}

/* An allocation failure must end in a documented exit code (never a crash),
 * say what went wrong, and leave the journal accounting for everything. */
static void check_alloc_exit(const tlm_h_cmd *run, tlm_h_crash_result *res, sbuf *msg)
{
	if (run->exit_code < 0 || run->exit_code > 4) {
		sb_printf(msg, "the run exited %d (a crash or a timeout, not an error)\n",
			  run->exit_code);
		res->failed = 1;
	} else if (run->exit_code != 0 && strstr(run->err, "out of memory") == NULL &&
		   strstr(run->err, "Cannot allocate memory") == NULL) {
		sb_printf(msg, "the run exited %d without saying it ran out of memory\n",
			  run->exit_code);
		res->failed = 1;
	}
}

void tlm_h_alloc_trial(const tlm_h_serve *s, const char *file, const char *fault, long k,
		       int timeout_ms, tlm_h_crash_result *res)
{
	char failenv[64];
	const char *env[] = { failenv, NULL };
	trial t;

	trial_begin(&t, s, fault, k, res);
	{
		const char *args[] = { "run",         "--output", "json",
				       "--state-dir", t.state,    "--request-timeout",
				       RTO,           file,       NULL };

		snprintf(failenv, sizeof(failenv), "TLM_ALLOC_FAIL_AT=%ld", k);
		run_cmd(s, t.dir, args, env, timeout_ms, &t.run);
	}
	res->run_exit = t.run.exit_code;
	check_alloc_exit(&t.run, res, &t.msg);
	if (find_run(s, t.dir, t.state, timeout_ms, res->run_id, sizeof(res->run_id), &t.msg) != 0)
		res->failed = 1;
	/* Failed before the run existed, or not: everything on the server must
	 * be accounted for. */
	check_before(s, t.dir, t.state, t.baseline, timeout_ms, res, &t.msg);
	if (res->run_id[0] != '\0') {
		if (t.run.exit_code != 0)
			trial_recover(&t, TLM_H_TEARDOWN, timeout_ms, res);
		trial_after(&t, timeout_ms, res);
	}
	if (res->duplicates > 0 || res->unaccounted > 0 || res->left_after > 0 ||
	    res->orphans_after != 0 || res->recovery_exit > 0)
		res->failed = 1;
	trial_end(&t, "the run", res);
}
