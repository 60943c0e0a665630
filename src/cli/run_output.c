/* What `telemachy run` shows: log lines (stderr), a live progress line when
 * stderr is a terminal, and the final summary (stdout) as a table or JSON. */
#include <jansson.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <time.h>
#include <unistd.h>

#include "cli/run_output.h"

void tlm_run_output_init(tlm_run_output *out, const tlm_cli *cli)
{
	memset(out, 0, sizeof(*out));
	out->cli = cli;
	/* A JSON log is for programs: no line redrawn in place among it. */
	out->tty = isatty(STDERR_FILENO) && !cli->quiet && !tlm_log_json() &&
		   getenv("TERM") != NULL && strcmp(getenv("TERM"), "dumb") != 0;
	/* https://no-color.org: set and not empty means no colour. */
	out->color = out->tty && (getenv("NO_COLOR") == NULL || getenv("NO_COLOR")[0] == '\0');
}

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* SGR code s around what follows, when colours are on. */
static const char *sgr(const tlm_run_output *out, const char *s)
{
	return out->color ? s : "";
}

/* The status line: phase, agents up, tasks by state, elapsed, and the task
 * running longest (escaped: its name is the spec's), cut to the terminal. */
static void draw(tlm_run_output *out, const tlm_engine_progress *p)
{
	struct winsize ws;
	size_t cols = ioctl(STDERR_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 20 ? ws.ws_col : 80;

	fprintf(stderr,
		"\r\033[K%s%s%s  agents %zu/%zu  tasks %zu done, %s%zu failed%s, %zu running, "
		"%zu pending  %.1fs",
		sgr(out, "\033[1m"), p->phase, sgr(out, "\033[0m"), p->agents_ready,
		p->agents_total, p->tasks_completed,
		p->tasks_failed > 0 ? sgr(out, "\033[31m") : "", p->tasks_failed,
		p->tasks_failed > 0 ? sgr(out, "\033[0m") : "", p->tasks_running, p->tasks_pending,
		(double)p->elapsed_ms / 1000.0);
	if (p->slowest_task != NULL && cols > 100) {
		fputs("  slowest ", stderr);
		tlm_cli_cell(stderr, p->slowest_task, 0, cols - 100 < 40 ? cols - 100 : 40);
		fprintf(stderr, " %.1fs", (double)p->slowest_ms / 1000.0);
	}
	out->drawn = 1;
	out->last = now_ms();
	fflush(stderr);
}

void tlm_run_output_observe(void *ctx, tlm_engine_level level, const char *message,
			    const tlm_engine_progress *p)
{
	tlm_run_output *out = ctx;

	if (p->run_id != NULL && p->run_id[0] != '\0')
		tlm_log_set_run(p->run_id); /* later messages of the command name it too */
	if (message != NULL && tlm_log_enabled(level)) {
		if (out->drawn)
			fputs("\r\033[K", stderr);
		tlm_log_run(level, p->run_id, p->elapsed_ms, message);
		out->drawn = 0;
	}
	/* At most 10 redraws a second, but at once under a new log line. */
	if (out->tty && (!out->drawn || now_ms() - out->last >= 100))
		draw(out, p);
}

void tlm_run_output_done(tlm_run_output *out)
{
	if (out->drawn)
		fputs("\r\033[K", stderr);
	out->drawn = 0;
	out->tty = 0;
}

/* The names of mask's TLM_ENGINE_FIELD_* bits, ", " between. */
static void put_fields(unsigned mask)
{
	unsigned bit;
	int first = 1;

	for (bit = 1; bit <= TLM_ENGINE_FIELDS; bit <<= 1) {
		if (!(mask & bit))
			continue;
		printf("%s%s", first ? "" : ", ", tlm_engine_field_name(bit));
		first = 0;
	}
}

/* What the control plane did not keep of the agents' settings
 * (docs/agamemnon.md): repeated at the end, where it is read. */
static void print_fields(const tlm_engine_result *r)
{
	if (r->fields_mapped) {
		printf("\nsettings passed another way (the control plane does not keep them): ");
		put_fields(r->fields_mapped);
		printf(" as programArgs --model\n");
	}
	if (r->fields_dropped) {
		printf("\nsettings dropped (--drop-field; the control plane does not keep them, "
		       "the agents ran without them): ");
		put_fields(r->fields_dropped);
		putchar('\n');
	}
}

/* Every string of the result may quote the control plane or the journal:
 * printed escaped, in columns measured after escaping. */
static void print_text(const tlm_engine_result *r)
{
	size_t i, w = 4;

	tlm_cli_esc(stdout, "run %s: %s in %.1f s", r->run_id[0] ? r->run_id : "-", r->state,
		    (double)r->elapsed_ms / 1000.0);
	if (r->error != NULL) {
		fputs(" — ", stdout);
		tlm_cli_put_esc(stdout, r->error);
	}
	putchar('\n');
	for (i = 0; i < r->ntasks; i++) {
		size_t n = tlm_cli_width(r->tasks[i].team) + 1 + tlm_cli_width(r->tasks[i].subject);

		if (n > w)
			w = n;
	}
	if (w > 60)
		w = 60;
	if (r->ntasks > 0)
		printf("\n%-*s  %-9s  %8s  %8s  %s\n", (int)w, "TASK", "STATUS", "ATTEMPTS", "TIME",
		       "MESSAGE");
	for (i = 0; i < r->ntasks; i++) {
		const tlm_engine_task_result *t = &r->tasks[i];
		char name[1100];

		snprintf(name, sizeof(name), "%s/%s", t->team, t->subject);
		tlm_cli_cell(stdout, name, w, w);
		printf("  %-9s  %8d  %7.1fs  ", t->status, t->attempts,
		       (double)t->elapsed_ms / 1000.0);
		tlm_cli_put_esc(stdout, t->message != NULL ? t->message : "");
		putchar('\n');
		/* What a failed program said last (`telemachy logs` has the rest). */
		if (t->output != NULL && strcmp(t->status, "completed") != 0) {
			printf("%*s  stderr: ", (int)w, "");
			tlm_cli_put_esc(stdout, t->output);
			putchar('\n');
		}
	}
	print_fields(r);
	if (r->dry_run) {
		printf("\ndry run: nothing was created on any control plane, nothing ran\n");
		return;
	}
	if (r->nleftovers > 0) {
		printf("\n%s:\n", r->torn_down ? "NOT DELETED (teardown left these)" : "kept");
		for (i = 0; i < r->nleftovers; i++) {
			const tlm_engine_leftover *l = &r->leftovers[i];

			fputs("  ", stdout);
			tlm_cli_line(stdout, "%s %s (id %s): %s", l->kind, l->name,
				     l->remote_id ? l->remote_id : "unknown", l->error);
		}
	} else if (r->torn_down) {
		printf("\nteardown: everything the run created was deleted\n");
	}
	if (r->vanished > 0)
		printf("\nvanished: %zu resource%s the run believed alive %s gone from the control "
		       "plane (404) and %s recorded absent; did it restart without its state?\n",
		       r->vanished, r->vanished == 1 ? "" : "s", r->vanished == 1 ? "was" : "were",
		       r->vanished == 1 ? "is" : "are");
}

/* The names of mask's TLM_ENGINE_FIELD_* bits as a JSON array. */
static json_t *fields_json(unsigned mask)
{
	json_t *a = json_array();
	unsigned bit;

	for (bit = 1; a != NULL && bit <= TLM_ENGINE_FIELDS; bit <<= 1)
		if ((mask & bit) &&
		    json_array_append_new(a, json_string(tlm_engine_field_name(bit))) != 0) {
			json_decref(a);
			return NULL;
		}
	return a;
}

static json_t *to_json(const tlm_engine_result *r, int exit_code)
{
	json_t *tasks = json_array(), *left = json_array(), *doc;
	size_t i;

	for (i = 0; i < r->ntasks; i++) {
		const tlm_engine_task_result *t = &r->tasks[i];

		json_array_append_new(
			tasks, json_pack("{s:s, s:s, s:s, s:i, s:s?, s:s?, s:s?, s:I}", "team",
					 t->team, "subject", t->subject, "status", t->status,
					 "attempts", t->attempts, "id", t->remote_id, "message",
					 t->message, "stderr_last", t->output, "elapsed_ms",
					 (json_int_t)t->elapsed_ms));
	}
	for (i = 0; i < r->nleftovers; i++)
		json_array_append_new(left,
				      json_pack("{s:s, s:s, s:s?, s:s}", "kind",
						r->leftovers[i].kind, "name", r->leftovers[i].name,
						"id", r->leftovers[i].remote_id, "reason",
						r->leftovers[i].error));
	doc = json_pack("{s:s?, s:s, s:s, s:s?, s:i, s:b, s:b, s:I, s:I, s:o, s:o, s:I, s:s?}",
			"run_id", r->run_id[0] ? r->run_id : NULL, "outcome",
			tlm_engine_outcome_name(r->outcome), "state", r->state, "error", r->error,
			"exit_code", exit_code, "dry_run", r->dry_run, "torn_down", r->torn_down,
			"elapsed_ms", (json_int_t)r->elapsed_ms, "agents_created",
			(json_int_t)r->agents_created, "tasks", tasks, "leftovers", left,
			"vanished", (json_int_t)r->vanished, "journal", r->journal_path);
	/* Which agent settings the control plane did not keep (docs/engine.md). */
	if (doc != NULL &&
	    (json_object_set_new(doc, "fields_mapped", fields_json(r->fields_mapped)) != 0 ||
	     json_object_set_new(doc, "fields_dropped", fields_json(r->fields_dropped)) != 0 ||
	     json_object_set_new(doc, "fields_refused", fields_json(r->fields_refused)) != 0)) {
		json_decref(doc);
		return NULL;
	}
	return doc;
}

int tlm_run_output_result(const tlm_run_output *out, const tlm_engine_result *r, int exit_code)
{
	json_t *j;
	int rc;

	if (out->cli->output != TLM_OUTPUT_JSON) {
		print_text(r);
		return fflush(stdout) == 0 ? 0 : -1;
	}
	j = to_json(r, exit_code);
	rc = j != NULL ? json_dumpf(j, stdout, JSON_INDENT(2)) : -1;
	json_decref(j);
	putchar('\n');
	if (j == NULL)
		tlm_log_cmd(TLM_ENGINE_ERROR, NULL, "the summary could not be made: out of memory");
	return rc == 0 && fflush(stdout) == 0 ? 0 : -1;
}
