/* The dashboard's parts (docs/ui.md): server.c (libmicrohttpd), router.c
 * (paths to handlers), security.c (Host, token, Origin, CSRF, headers),
 * data.c (the journal, one short read per request), graph.c (the plan as
 * SVG and JSON), pages.c (HTML), api.c (JSON), actions.c (cancel,
 * teardown, resume).  Internal. */
#ifndef TLM_UI_INTERNAL_H
#define TLM_UI_INTERNAL_H

#include <jansson.h>
#include <stdio.h>

#include "server/addr.h"
#include "server/tls.h"
#include "telemachy/journal.h"
#include "telemachy/plan.h"
#include "telemachy/ui.h"

#define TLM_UI_BODY_MAX  16384 /* bytes of a request body (a form, a login) */
#define TLM_UI_URL_MAX   2048  /* bytes of a request's path */
#define TLM_UI_PARTS_MAX 8     /* path segments */
#define TLM_UI_GRAPH_MAX 600   /* tasks drawn; a larger plan is shown as tables only */
#define TLM_UI_ROWS_MAX  2000  /* rows of one HTML table */
#define TLM_UI_COOKIE    "tlm_ui_token"

struct tlm_ui {
	tlm_ui_opts o;
	tlm_addr addr;
	tlm_tls tls;
	char *token;         /* the access token (copy, wiped), or NULL */
	char *csrf;          /* 64 hex characters, per process */
	char *journal_where; /* tlm_journal_locate's answer */
	int shared;          /* the journal is PostgreSQL */
	char *action_log;    /* where detached actions write, or NULL (/dev/null) */
	char url[200];
	char bound[160]; /* the bound address, "127.0.0.1:PORT" */
	int loopback, wildcard;
	struct MHD_Daemon *d;
};

/* A request, as the router sees it. */
typedef struct tlm_ui_req {
	tlm_ui *ui;
	struct MHD_Connection *c;
	const char *method;
	const char *path; /* raw: not percent-decoded */
	const char *body; /* NUL-terminated, may be empty */
	size_t body_len;
} tlm_ui_req;

/* A response: the handlers fill it, server.c sends it with the headers. */
typedef struct tlm_ui_resp {
	unsigned status;
	const char *type; /* Content-Type */
	char *body;       /* malloc'd */
	size_t len;
	char *location;    /* 303: where to */
	char *cookie;      /* Set-Cookie */
	const char *allow; /* 405: the methods allowed */
	int cache;         /* static assets may be cached; the rest is no-store */
} tlm_ui_resp;

/* router.c */
void tlm_ui__route(tlm_ui_req *r, tlm_ui_resp *res);
/* Percent-decodes one path segment into a new string: NULL for a bad
 * escape, a NUL or control byte, or more than TLM_JOURNAL_NAME_MAX bytes. */
char *tlm_ui__decode(const char *s, size_t len);
/* The same with another cap (a token, a form field). */
char *tlm_ui__decode_max(const char *s, size_t len, size_t max);
/* A request's query argument, percent-decoded into buf; NULL when absent
 * or invalid. */
const char *tlm_ui__query(const tlm_ui_req *r, const char *name, char *buf, size_t size);

/* Responses. */
void tlm_ui__json(tlm_ui_resp *res, unsigned status, json_t *doc); /* steals doc */
void tlm_ui__error(tlm_ui_resp *res, unsigned status, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
void tlm_ui__html_error(tlm_ui_resp *res, unsigned status, const char *msg);
/* Takes the text of a memstream (owned) as the body. */
void tlm_ui__take(tlm_ui_resp *res, unsigned status, const char *type, char *text, size_t len);
void tlm_ui__resp_clear(tlm_ui_resp *res);

/* security.c */
/* 0 when the request may go on; else res is filled (421, 401, 403). */
int tlm_ui__check(const tlm_ui_req *r, tlm_ui_resp *res);
/* For a POST: Origin is this very origin and the CSRF token is in the
 * X-CSRF-Token header or the form's csrf field.  0, or res filled (403). */
int tlm_ui__check_post(const tlm_ui_req *r, tlm_ui_resp *res);
/* Equal, in time that depends only on the lengths. */
int tlm_ui__secret_eq(const char *a, const char *b);
/* A form field of an x-www-form-urlencoded body, decoded (caller frees). */
char *tlm_ui__form_field(const char *body, const char *name);
/* Is the Host header one this dashboard answers to (DNS rebinding)? */
int tlm_ui__host_ok(const tlm_ui *ui, const char *host);
/* The headers every response gets (docs/ui.md, "Security"). */
void tlm_ui__headers(void *mhd_response, const tlm_ui_resp *res);

/* data.c: the journal, opened read-only for one request.  *j NULL: there
 * is none yet (no runs).  0, or an error code with err. */
int tlm_ui__journal(tlm_ui *ui, tlm_journal **j, tlm_error *err);
/* The same for a write (an action): the ordinary open. */
int tlm_ui__journal_rw(tlm_ui *ui, tlm_journal **j, tlm_error *err);
/* A run id as the journal makes them: TLM_JOURNAL_RUN_ID_LEN of [a-z0-9]. */
int tlm_ui__run_id_ok(const char *id);
/* "2026-12-02T20:08:01.123Z" as milliseconds since the epoch; -1 if not. */
long long tlm_ui__ms(const char *iso);
long long tlm_ui__now_ms(void);
/* "850 ms", "12.3 s", "4 min 05 s", ... */
void tlm_ui__span(char *buf, size_t size, long long ms);

/* graph.c: the run's plan with each task's last attempt. */
typedef struct tlm_ui_task {
	const char *state; /* the last attempt's status name; NULL: not started */
	int attempts;
	char *updated_at;
	char *message; /* statusMessage, or the note it was ended with */
	char *result;  /* what the control plane said of its end (JSON text) */
} tlm_ui_task;

typedef struct tlm_ui_graph {
	tlm_spec *spec; /* NULL: the journal's spec could not be read (error set) */
	tlm_plan *plan;
	tlm_ui_task *tasks; /* per spec task */
	char error[256];
} tlm_ui_graph;

/* Loads run r's plan and tasks; a spec that cannot be parsed is not an
 * error (g->error says why; no graph).  TLM_ERROR: out of memory or the
 * journal failed. */
int tlm_ui__graph_load(tlm_journal *j, const tlm_journal_run *r, tlm_ui_graph *g, tlm_error *err);
void tlm_ui__graph_clear(tlm_ui_graph *g);
/* The graph as inline SVG (escaped), or a note when there is none. */
void tlm_ui__graph_svg(const tlm_ui_graph *g, FILE *f);
/* {"waves", "nodes": [...], "edges": [...]} (docs/ui.md). */
json_t *tlm_ui__graph_json(const tlm_ui_graph *g);
/* A state's glyph, shown with its name: shape as well as colour. */
const char *tlm_ui__glyph(const char *state);

/* pages.c */
void tlm_ui__esc(FILE *f, const char *s); /* HTML text and attribute values; NULL: "-" */
void tlm_ui__page_runs(tlm_ui_req *r, tlm_ui_resp *res, int fragment);
void tlm_ui__page_run(tlm_ui_req *r, tlm_ui_resp *res, const char *run_id, int fragment);
void tlm_ui__page_login(tlm_ui_req *r, tlm_ui_resp *res, const char *msg);

/* api.c */
void tlm_ui__api_runs(tlm_ui_req *r, tlm_ui_resp *res);
void tlm_ui__api_run(tlm_ui_req *r, tlm_ui_resp *res, const char *run_id);
void tlm_ui__api_graph(tlm_ui_req *r, tlm_ui_resp *res, const char *run_id);
void tlm_ui__api_output(tlm_ui_req *r, tlm_ui_resp *res, const char *run_id, const char *team,
			const char *subject);

/* actions.c: action is "cancel", "teardown" or "resume"; form: answer
 * with a redirect to the run's page, else JSON. */
void tlm_ui__action(tlm_ui_req *r, tlm_ui_resp *res, const char *run_id, const char *action,
		    int form);

/* Embedded assets (src/ui/assets/, generated at build time). */
extern const char tlm__ui_css[];
extern const char tlm__ui_js[];

#endif
