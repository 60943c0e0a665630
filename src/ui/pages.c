/* The HTML pages (docs/ui.md, "Pages"): the runs, a run, the login form,
 * errors.  Rendered here, on the server, each from the same data the API
 * serves (src/report/ for runs, resources, attempts and the audit trail);
 * the live parts are also served alone as fragments, which the page's
 * script fetches every second and swaps in, so one renderer (and one
 * escaping) serves the first load and every update.  Every string from the
 * journal or the spec goes through tlm_ui__esc. */
#include <stdlib.h>
#include <string.h>

#include "telemachy/report.h"
#include "ui/ui_internal.h"

void tlm_ui__esc(FILE *f, const char *s)
{
	if (s == NULL) {
		fputc('-', f);
		return;
	}
	for (; *s != '\0'; s++) {
		switch (*s) {
		case '&': fputs("&amp;", f); break;
		case '<': fputs("&lt;", f); break;
		case '>': fputs("&gt;", f); break;
		case '"': fputs("&quot;", f); break;
		case '\'': fputs("&#39;", f); break;
		default:
			/* Control characters but tab and newline are shown, not sent. */
			if ((unsigned char)*s < 0x20 && *s != '\n' && *s != '\t')
				fprintf(f, "\\x%02x", (unsigned char)*s);
			else
				fputc(*s, f);
		}
	}
}

static const char *str(const json_t *o, const char *k)
{
	return json_string_value(json_object_get(o, k));
}

static void page_begin(FILE *f, const char *csrf, const char *title)
{
	fputs("<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
	      "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">",
	      f);
	fprintf(f, "<meta name=\"csrf-token\" content=\"%s\"><title>", csrf);
	tlm_ui__esc(f, title);
	fputs(" \u2014 telemachy</title><link rel=\"stylesheet\" href=\"/static/app.css\">"
	      "<link rel=\"icon\" href=\"/static/icon.svg\" type=\"image/svg+xml\">"
	      "<script src=\"/static/app.js\" defer></script></head><body>"
	      "<header class=\"top\"><a class=\"brand\" href=\"/\">telemachy</a>"
	      "<span class=\"sub\">dashboard</span></header><main id=\"main\">",
	      f);
}

static void page_end(FILE *f)
{
	fputs("</main><footer><p>Reads the journal; updates every second while a run goes on. "
	      "<a href=\"/api/runs\">JSON API</a></p></footer></body></html>\n",
	      f);
}

/* Finishes the memstream into the response (500 when it failed). */
static void finish(tlm_ui_resp *res, FILE *f, char **text, const size_t *len, unsigned status)
{
	/* open_memstream sets *text and *len at fclose. */
	if (fclose(f) != 0 || *text == NULL) {
		free(*text);
		*text = NULL;
		tlm_ui__error(res, 500, "out of memory");
		return;
	}
	tlm_ui__take(res, status, "text/html; charset=utf-8", *text, *len);
	*text = NULL;
}

void tlm_ui__html_error(tlm_ui_resp *res, unsigned status, const char *msg)
{
	char *text = NULL;
	size_t len = 0;
	FILE *f = open_memstream(&text, &len);

	if (f == NULL) {
		tlm_ui__error(res, 500, "out of memory");
		return;
	}
	page_begin(f, "", "Error"); /* no forms: no token */
	fprintf(f, "<h1>Error %u</h1><p class=\"error\">", status);
	tlm_ui__esc(f, msg);
	fputs("</p><p><a href=\"/\">All runs</a></p>", f);
	page_end(f);
	finish(res, f, &text, &len, status);
}

static void badge(FILE *f, const char *state, const char *id)
{
	fputs("<span class=\"badge st-", f);
	tlm_ui__esc(f, state);
	fputc('"', f);
	if (id != NULL)
		fprintf(f, " id=\"%s\"", id);
	fprintf(f, ">%s ", tlm_ui__glyph(state));
	tlm_ui__esc(f, state);
	fputs("</span>", f);
}

static void owner_text(FILE *f, const json_t *owner)
{
	const char *st = str(owner, "state"), *host = str(owner, "host");
	json_int_t pid = json_integer_value(json_object_get(owner, "pid"));

	if (st == NULL || strcmp(st, "-") == 0) {
		fputs("\u2014", f);
		return;
	}
	fprintf(f, "<span class=\"owner-%s\">%s</span> \u00b7 pid %lld on ",
		strcmp(st, "alive") == 0 ? "alive" : "dead",
		strcmp(st, "alive") == 0 ? "alive" : "dead", (long long)pid);
	tlm_ui__esc(f, host);
}

/* Age (since created) and duration (to the last update once ended). */
static void times(const json_t *run, int final, char *age, char *dur, size_t size)
{
	long long now = tlm_ui__now_ms(), c = tlm_ui__ms(str(run, "created_at")),
		  u = tlm_ui__ms(str(run, "updated_at"));

	tlm_ui__span(age, size, c < 0 ? -1 : now - c);
	tlm_ui__span(dur, size, c < 0 ? -1 : (final ? u : now) - c);
}

/* "2026-12-02T20:08:01.123Z" as "2026-12-02 20:08:01 UTC" (escaped as
 * is when it is not such a time). */
static void when(FILE *f, const char *iso)
{
	if (iso == NULL || strlen(iso) < 19 || iso[10] != 'T') {
		tlm_ui__esc(f, iso);
		return;
	}
	fputs("<time datetime=\"", f);
	tlm_ui__esc(f, iso);
	fprintf(f, "\">%.10s %.8s UTC</time>", iso, iso + 11);
}

static int is_final_name(const char *state)
{
	tlm_run_state st;

	return state != NULL && tlm_run_state_parse(state, &st) == 0 && tlm_run_state_is_final(st);
}

static void runs_fragment(FILE *f, const json_t *doc)
{
	const json_t *runs = json_object_get(doc, "runs"), *run;
	char age[32], dur[32];
	size_t i, n = json_array_size(runs);

	if (n == 0) {
		fputs("<p class=\"note\">No runs (yet).</p>", f);
		return;
	}
	fprintf(f,
		"<div class=\"table-wrap\"><table class=\"runs\"><caption>%zu run%s, newest "
		"first</caption><thead><tr><th scope=\"col\">Run</th><th scope=\"col\">Workflow</th>"
		"<th scope=\"col\">State</th><th scope=\"col\">Owner</th><th scope=\"col\">Age</th>"
		"<th scope=\"col\">Duration</th><th scope=\"col\">Leftovers</th></tr></thead><tbody>",
		n, n == 1 ? "" : "s");
	json_array_foreach(runs, i, run)
	{
		const char *id = str(run, "id"), *state = str(run, "state");
		json_int_t left = json_integer_value(json_object_get(run, "live_resources"));

		if (i >= TLM_UI_ROWS_MAX)
			break;
		times(run, is_final_name(state), age, dur, sizeof(age));
		fputs("<tr><td><a href=\"/runs/", f);
		tlm_ui__esc(f, id);
		fputs("\"><code>", f);
		tlm_ui__esc(f, id);
		fputs("</code></a></td><td>", f);
		tlm_ui__esc(f, str(run, "workflow"));
		fputs("</td><td>", f);
		badge(f, state, NULL);
		fputs("</td><td>", f);
		owner_text(f, json_object_get(run, "owner"));
		fprintf(f, "</td><td>%s</td><td>%s</td><td class=\"%s\">%lld</td></tr>", age, dur,
			left > 0 ? "warn" : "num", (long long)left);
	}
	fputs("</tbody></table></div>", f);
	if (n > TLM_UI_ROWS_MAX)
		fprintf(f, "<p class=\"note\">The first %d shown; /api/runs has them all.</p>",
			TLM_UI_ROWS_MAX);
}

void tlm_ui__page_runs(tlm_ui_req *r, tlm_ui_resp *res, int fragment)
{
	tlm_error err = TLM_ERROR_INIT;
	tlm_journal *j = NULL;
	tlm_run_state st;
	char buf[64], *text = NULL;
	const char *state = tlm_ui__query(r, "state", buf, sizeof(buf));
	int have_state = state != NULL && state[0] != '\0' && tlm_run_state_parse(state, &st) == 0;
	json_t *doc = NULL;
	size_t len = 0, i;
	FILE *f;

	if (tlm_ui__journal(r->ui, &j, &err) != 0 ||
	    (j != NULL && tlm_report_runs(j, have_state ? &st : NULL, NULL, &doc, &err) != 0)) {
		tlm_journal_close(j);
		tlm_ui__html_error(res, 500, err.message);
		return;
	}
	tlm_journal_close(j);
	if ((f = open_memstream(&text, &len)) == NULL) {
		json_decref(doc);
		tlm_ui__error(res, 500, "out of memory");
		return;
	}
	if (!fragment) {
		page_begin(f, r->ui->csrf, "Runs");
		fputs("<h1>Runs</h1><form class=\"filter\" method=\"get\" action=\"/\">"
		      "<label for=\"state\">State</label><select id=\"state\" name=\"state\">"
		      "<option value=\"\">all</option>",
		      f);
		for (i = 0; i < TLM_RUN_STATE_COUNT; i++) {
			const char *name = tlm_run_state_name((tlm_run_state)i);

			fprintf(f, "<option value=\"%s\"%s>%s</option>", name,
				have_state && st == (tlm_run_state)i ? " selected" : "", name);
		}
		fprintf(f,
			"</select><button type=\"submit\">Filter</button></form>"
			"<section id=\"live\" aria-live=\"polite\" data-src=\"/fragment/runs%s%s\">",
			have_state ? "?state=" : "", have_state ? tlm_run_state_name(st) : "");
	}
	runs_fragment(f, doc);
	if (!fragment) {
		fputs("</section>", f);
		page_end(f);
	}
	json_decref(doc);
	finish(res, f, &text, &len, 200);
}

/* ---- a run ---------------------------------------------------------- */

static void summary(FILE *f, const json_t *run, json_int_t leftovers)
{
	const char *state = str(run, "state"), *cancel = str(run, "cancel_requested_at");
	int final = is_final_name(state);
	char age[32], dur[32];

	times(run, final, age, dur, sizeof(age));
	fprintf(f, "<div id=\"run-live\" data-final=\"%d\" data-state=\"", final);
	tlm_ui__esc(f, state);
	fputs("\"><dl class=\"summary\"><div><dt>State</dt><dd>", f);
	badge(f, state, "run-state");
	fputs("</dd></div><div><dt>Owner</dt><dd>", f);
	owner_text(f, json_object_get(run, "owner"));
	fputs("</dd></div><div><dt>Started</dt><dd>", f);
	when(f, str(run, "created_at"));
	fprintf(f, " (%s ago)</dd></div><div><dt>Duration</dt><dd>%s%s</dd></div>", age, dur,
		final ? "" : " so far");
	fprintf(f, "<div><dt>Leftovers</dt><dd class=\"%s\">%lld</dd></div>",
		leftovers > 0 ? "warn" : "num", (long long)leftovers);
	fputs("<div><dt>Control plane</dt><dd>", f);
	tlm_ui__esc(f, str(run, "control_plane"));
	fputs("</dd></div>", f);
	if (cancel != NULL) {
		fputs("<div><dt>Cancel requested</dt><dd id=\"cancel-requested\">", f);
		tlm_ui__esc(f, cancel);
		fputs("</dd></div>", f);
	}
	fputs("</dl></div>", f);
}

static void legend(FILE *f)
{
	static const char *const states[] = { "pending", "submitted", "running",   "completed",
					      "failed",  "skipped",   "cancelled", "timed_out" };
	size_t i;

	fputs("<ul class=\"legend\" aria-label=\"legend\">", f);
	for (i = 0; i < sizeof(states) / sizeof(states[0]); i++) {
		fputs("<li>", f);
		badge(f, states[i], NULL);
		fputs("</li>", f);
	}
	fputs("</ul>", f);
}

static void tasks_table(FILE *f, const tlm_ui_graph *g)
{
	size_t i;

	if (g->spec == NULL || g->spec->ntasks == 0)
		return;
	fputs("<section><h2>Tasks</h2><div class=\"table-wrap\"><table class=\"tasks\"><thead><tr>"
	      "<th scope=\"col\">Task</th><th scope=\"col\">State</th><th scope=\"col\">Attempts</th>"
	      "<th scope=\"col\">Updated</th><th scope=\"col\">Message</th></tr></thead><tbody>",
	      f);
	for (i = 0; i < g->spec->ntasks && i < TLM_UI_ROWS_MAX; i++) {
		const tlm_spec_task *t = &g->spec->tasks[i];
		const tlm_ui_task *k = &g->tasks[i];

		fprintf(f, "<tr id=\"row-%zu\"><th scope=\"row\">", i);
		tlm_ui__esc(f, g->spec->teams[t->team].name);
		fputc('/', f);
		tlm_ui__esc(f, t->subject);
		fputs("</th><td>", f);
		badge(f, k->state != NULL ? k->state : "pending", NULL);
		fprintf(f, "</td><td class=\"num\">%d</td><td>", k->attempts);
		tlm_ui__esc(f, k->updated_at);
		fputs("</td><td>", f);
		tlm_ui__esc(f, k->message);
		fputs("</td></tr>", f);
	}
	fputs("</tbody></table></div></section>", f);
}

static void pre(FILE *f, const char *title, const char *text)
{
	fputs("<h4>", f);
	tlm_ui__esc(f, title);
	fputs("</h4><pre class=\"out\">", f);
	tlm_ui__esc(f, text);
	fputs("</pre>", f);
}

/* What the control plane said of the end of a task's last attempt, as
 * `telemachy logs` shows it (docs/logs.md). */
static void outputs(FILE *f, const tlm_ui_graph *g)
{
	size_t i, shown = 0;

	if (g->spec == NULL)
		return;
	fputs("<section><h2>Output</h2>", f);
	for (i = 0; i < g->spec->ntasks && i < TLM_UI_ROWS_MAX; i++) {
		const tlm_ui_task *k = &g->tasks[i];
		const tlm_spec_task *t = &g->spec->tasks[i];
		json_t *doc = k->result != NULL ? json_loads(k->result, 0, NULL) : NULL;
		json_t *rs = json_object_get(doc, "result"), *v;
		const char *s;
		char *dump;

		if (doc == NULL)
			continue;
		shown++;
		fprintf(f, "<details class=\"output\" id=\"out-%zu\" data-task=\"", i);
		tlm_ui__esc(f, g->spec->teams[t->team].name);
		fputc('/', f);
		tlm_ui__esc(f, t->subject);
		fprintf(f, "\"%s><summary>",
			k->state != NULL && strcmp(k->state, "completed") != 0 ? " open" : "");
		tlm_ui__esc(f, g->spec->teams[t->team].name);
		fputc('/', f);
		tlm_ui__esc(f, t->subject);
		fprintf(f, " \u2014 attempt %d: ", k->attempts);
		tlm_ui__esc(f, k->state);
		if ((v = json_object_get(rs, "exitCode")) != NULL && json_is_integer(v))
			fprintf(f, ", exit status %lld", (long long)json_integer_value(v));
		if ((v = json_object_get(rs, "signal")) != NULL && json_is_integer(v))
			fprintf(f, ", killed by signal %lld", (long long)json_integer_value(v));
		fputs("</summary>", f);
		if ((s = str(doc, "statusMessage")) != NULL)
			pre(f, "message", s);
		if ((s = str(rs, "stdout")) != NULL)
			pre(f, "stdout (its last 4 KiB)", s);
		if ((s = str(rs, "stderr")) != NULL)
			pre(f, "stderr (its last 4 KiB)", s);
		if (rs != NULL && json_object_get(rs, "stdout") == NULL &&
		    json_object_get(rs, "stderr") == NULL &&
		    json_object_get(rs, "exitCode") == NULL &&
		    (dump = json_dumps(rs, JSON_INDENT(2) | JSON_ENCODE_ANY)) != NULL) {
			pre(f, "result", dump);
			free(dump);
		}
		if ((s = str(doc, "note")) != NULL)
			pre(f, "note", s);
		fputs("</details>", f);
		json_decref(doc);
	}
	if (shown == 0)
		fputs("<p class=\"note\">Nothing yet: a task's output is kept when it ends and "
		      "the run collects it.</p>",
		      f);
	fputs("</section>", f);
}

static void cell(FILE *f, const json_t *o, const char *k)
{
	const json_t *v = json_object_get(o, k);

	fputs("<td>", f);
	if (json_is_integer(v))
		fprintf(f, "%lld", (long long)json_integer_value(v));
	else
		tlm_ui__esc(f, json_string_value(v));
	fputs("</td>", f);
}

/* A table of the report's array key with these columns. */
static void table(FILE *f, const json_t *report, const char *key, const char *title,
		  const char *const *cols, const char *const *heads, size_t ncols)
{
	const json_t *rows = json_object_get(report, key), *row;
	size_t i, c;

	fprintf(f, "<section><h2>%s</h2>", title);
	if (json_array_size(rows) == 0) {
		fputs("<p class=\"note\">None.</p></section>", f);
		return;
	}
	fprintf(f, "<div class=\"table-wrap\"><table class=\"%s\"><thead><tr>", key);
	for (c = 0; c < ncols; c++)
		fprintf(f, "<th scope=\"col\">%s</th>", heads[c]);
	fputs("</tr></thead><tbody>", f);
	json_array_foreach(rows, i, row)
	{
		if (i >= TLM_UI_ROWS_MAX)
			break;
		fputs("<tr>", f);
		for (c = 0; c < ncols; c++) {
			if (strcmp(cols[c], "status") == 0 || strcmp(cols[c], "state") == 0) {
				fputs("<td>", f);
				badge(f, str(row, cols[c]), NULL);
				fputs("</td>", f);
			} else {
				cell(f, row, cols[c]);
			}
		}
		fputs("</tr>", f);
	}
	fputs("</tbody></table></div>", f);
	if (json_array_size(rows) > TLM_UI_ROWS_MAX)
		fprintf(f, "<p class=\"note\">The first %d shown; the API has them all.</p>",
			TLM_UI_ROWS_MAX);
	fputs("</section>", f);
}

static void run_fragment(FILE *f, const json_t *report, const tlm_ui_graph *g)
{
	static const char *const acols[] = { "team",      "subject",    "attempt", "status",
					     "remote_id", "updated_at", "ended" };
	static const char *const aheads[] = { "Team",      "Task",    "Attempt",   "State",
					      "Remote id", "Updated", "Ended with" };
	static const char *const rcols[] = { "kind",  "name",       "remote_id",
					     "state", "last_error", "updated_at" };
	static const char *const rheads[] = { "Kind",  "Name",       "Remote id",
					      "State", "Last error", "Updated" };
	static const char *const ucols[] = {
		"seq", "at", "action", "detail", "user", "host", "pid"
	};
	static const char *const uheads[] = {
		"#", "At", "Action", "Detail", "User", "Host", "Pid"
	};

	summary(f, json_object_get(report, "run"),
		json_integer_value(json_object_get(report, "leftovers")));
	fputs("<section><h2>Task graph</h2><div class=\"graph-wrap\">", f);
	tlm_ui__graph_svg(g, f);
	fputs("</div>", f);
	legend(f);
	fputs("</section>", f);
	tasks_table(f, g);
	outputs(f, g);
	table(f, report, "tasks", "Attempts", acols, aheads, 7);
	table(f, report, "resources", "Resources", rcols, rheads, 6);
	table(f, report, "audit", "Audit trail", ucols, uheads, 7);
}

/* The buttons, each disabled when the server would refuse it as the page
 * is drawn (the server checks again: the page may be old). */
static void actions(FILE *f, const tlm_ui *ui, const tlm_journal_run *run)
{
	static const char *const acts[] = { "cancel", "teardown", "resume" };
	static const char *const labels[] = { "Cancel", "Tear down", "Resume" };
	int final = tlm_run_state_is_final(run->state);
	int alive = tlm_journal_run_owner(run) == TLM_JOURNAL_OWNER_ALIVE;
	int off[3];
	size_t i;

	off[0] = final;
	off[1] = alive;
	off[2] = alive || final;
	fputs("<section class=\"actions\" aria-label=\"actions\">", f);
	for (i = 0; i < 3; i++)
		fprintf(f,
			"<form method=\"post\" action=\"/runs/%s/%s\"><input type=\"hidden\" "
			"name=\"csrf\" value=\"%s\"><button type=\"submit\" id=\"act-%s\" "
			"class=\"act-%s\"%s>%s</button></form>",
			run->id, acts[i], ui->csrf, acts[i], acts[i], off[i] ? " disabled" : "",
			labels[i]);
	fputs("<p class=\"hint\">Cancel asks a live owner to stop (or tears the run down if "
	      "it died); tear down and resume run the CLI commands for a run whose owner is "
	      "gone.</p></section>",
	      f);
}

void tlm_ui__page_run(tlm_ui_req *r, tlm_ui_resp *res, const char *run_id, int fragment)
{
	static const char *const done_msgs[][2] = {
		{ "cancel", "Cancel requested." },
		{ "teardown", "Teardown started." },
		{ "resume", "Resume started." },
	};
	tlm_error err = TLM_ERROR_INIT;
	tlm_journal *j = NULL;
	tlm_journal_run run;
	tlm_ui_graph g;
	json_t *report = NULL;
	char *text = NULL, buf[32];
	const char *done = tlm_ui__query(r, "done", buf, sizeof(buf));
	size_t len = 0, i;
	FILE *f;
	int rc;

	memset(&g, 0, sizeof(g));
	memset(&run, 0, sizeof(run));
	if (tlm_ui__journal(r->ui, &j, &err) != 0) {
		tlm_ui__html_error(res, 500, err.message);
		return;
	}
	if (j == NULL || (rc = tlm_journal_run_get(j, run_id, &run, &err)) != 0) {
		tlm_ui__html_error(res, j == NULL || err.code == TLM_ENOTFOUND ? 404 : 500,
				   j == NULL || err.code == TLM_ENOTFOUND ? "No such run."
									  : err.message);
		tlm_journal_close(j);
		return;
	}
	if (tlm_report_run(j, &run, &report, &err) != 0 ||
	    tlm_ui__graph_load(j, &run, &g, &err) != 0 ||
	    (f = open_memstream(&text, &len)) == NULL) {
		tlm_ui__html_error(res, 500, err.message[0] ? err.message : "out of memory");
		goto out;
	}
	if (!fragment) {
		page_begin(f, r->ui->csrf, run.workflow);
		fputs("<nav><a href=\"/\">\u2190 All runs</a></nav><h1>Run <code>", f);
		tlm_ui__esc(f, run.id);
		fputs("</code> <span class=\"wf\">", f);
		tlm_ui__esc(f, run.workflow);
		fputs("</span></h1>", f);
		for (i = 0; done != NULL && i < 3; i++)
			if (strcmp(done, done_msgs[i][0]) == 0)
				fprintf(f, "<p class=\"flash\" role=\"status\">%s</p>",
					done_msgs[i][1]);
		actions(f, r->ui, &run);
		fprintf(f, "<div id=\"live\" data-src=\"/fragment/runs/%s\">", run.id);
	}
	run_fragment(f, report, &g);
	if (!fragment) {
		fputs("</div>", f);
		page_end(f);
	}
	finish(res, f, &text, &len, 200);
out:
	json_decref(report);
	tlm_ui__graph_clear(&g);
	tlm_journal_run_clear(&run);
	tlm_journal_close(j);
}

/* ---- login (an access token is set) ---------------------------------- */

static char *cookie_for(const tlm_ui *ui)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t n = strlen(ui->token), i, k = 0;
	char *c = malloc(sizeof(TLM_UI_COOKIE "=; Path=/; HttpOnly; SameSite=Strict; Secure") +
			 3 * n);

	if (c == NULL)
		return NULL;
	k = (size_t)sprintf(c, "%s=", TLM_UI_COOKIE);
	for (i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)ui->token[i];

		if ((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') ||
		    (ch >= '0' && ch <= '9') || ch == '-' || ch == '_' || ch == '.') {
			c[k++] = (char)ch;
		} else {
			c[k++] = '%';
			c[k++] = hex[ch >> 4];
			c[k++] = hex[ch & 15];
		}
	}
	sprintf(c + k, "; Path=/; HttpOnly; SameSite=Strict%s",
		ui->tls.cert != NULL ? "; Secure" : "");
	return c;
}

void tlm_ui__page_login(tlm_ui_req *r, tlm_ui_resp *res, const char *msg)
{
	char *text = NULL, *given;
	size_t len = 0;
	FILE *f;

	if (msg != NULL) { /* a POST: check the token given */
		given = tlm_ui__form_field(r->body, "token");
		if (r->ui->token != NULL && given != NULL &&
		    tlm_ui__secret_eq(given, r->ui->token)) {
			free(given);
			tlm_ui__take(res, 303, "text/plain; charset=utf-8", strdup("signed in\n"),
				     10);
			res->location = strdup("/");
			res->cookie = cookie_for(r->ui);
			return;
		}
		free(given);
		msg = r->ui->token == NULL ? "This dashboard needs no token." : "Wrong token.";
	}
	if ((f = open_memstream(&text, &len)) == NULL) {
		tlm_ui__error(res, 500, "out of memory");
		return;
	}
	page_begin(f, r->ui->csrf, "Sign in");
	fputs("<h1>Sign in</h1>", f);
	if (msg != NULL)
		fprintf(f, "<p class=\"error\" role=\"alert\">%s</p>", msg);
	fprintf(f,
		"<form class=\"login\" method=\"post\" action=\"/login\"><input type=\"hidden\" "
		"name=\"csrf\" value=\"%s\"><label for=\"token\">Access token</label>"
		"<input id=\"token\" name=\"token\" type=\"password\" autocomplete=\"current-password\" "
		"required><button type=\"submit\">Sign in</button></form>"
		"<p class=\"hint\">The token is the one in the file given to <code>telemachy ui "
		"--token-file</code> (docs/ui.md).</p>",
		r->ui->csrf);
	page_end(f);
	finish(res, f, &text, &len, msg != NULL || strcmp(r->path, "/login") != 0 ? 401 : 200);
}
