/* The registry: every family with its fixed label values, and the record
 * functions the library calls at its event sites (docs/metrics.md lists
 * them).  Cells are relaxed atomics: each is a count on its own, and a
 * scrape that sees one update and not the next is as good as a scrape a
 * moment earlier. */
#include <string.h>
#include <time.h>

#include "metrics/metrics_internal.h"

#define N(a) (sizeof(a) / sizeof((a)[0]))

static const char *const outcomes[] = { "completed", "failed",           "timed_out",
					"cancelled", "preflight_failed", "taken_over" };
static const char *const kinds[] = { "agent", "team" };
static const char *const ops[] = { "create", "delete" };
static const char *const task_states[] = { "completed", "failed", "timed_out", "skipped",
					   "cancelled" };
static const char *const hook_events[] = { "task_completed", "task_failed", "task_skipped",
					   "run_completed",  "run_failed",  "run_cancelled",
					   "teardown_failed" };
static const char *const hook_kinds[] = { "command", "webhook" };
static const char *const methods[] = { "GET", "POST", "PUT", "PATCH", "DELETE", "other" };
/* "none": no HTTP answer (connection refused, timeout, TLS) or dropped. */
static const char *const classes[] = { "1xx", "2xx", "3xx", "4xx", "5xx", "none" };
/* The control plane's routes (docs/contract.md; src/server/router.c), the
 * last one for everything else. */
static const char *const routes[] = { "/health",
				      "/v1/health",
				      "/v1/version",
				      "/v1/agents",
				      "/v1/agents/by-name/{name}",
				      "/v1/agents/{id}",
				      "/v1/agents/{id}/start",
				      "/v1/agents/{id}/stop",
				      "/v1/teams",
				      "/v1/teams/{id}",
				      "/v1/teams/{id}/tasks",
				      "/v1/teams/{id}/tasks/{id}",
				      "/v1/tasks/{id}/complete",
				      "/v1/chaos",
				      "/v1/chaos/{id}",
				      "other" };

/* Seconds.  A request to a control plane takes milliseconds to tens of
 * seconds (the default timeout is 30 s); a journal commit is an fsync. */
static const double req_bounds[] = { 0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25,
				     0.5,   1,     2.5,  5,     10,   30 };
static const double commit_bounds[] = { 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
					0.05,   0.1,   0.25,   0.5,   1,    2.5 };

#define DIM(name, v)                                                                               \
	{                                                                                          \
		name, v, N(v)                                                                      \
	}
#define NREQ           (N(methods) * N(routes) * N(classes))
#define HCELLS(bounds) (N(bounds) + 2) /* buckets, +Inf, sum */

static atomic_uint_least64_t c_runs[N(outcomes)], c_created[N(kinds)], c_deleted[N(kinds)],
	c_failed[N(kinds) * N(ops)], c_tasks[N(task_states)], c_req[NREQ], c_retries[1], c_nats[1],
	c_reconcile[1], c_srv_req[NREQ], c_hook_ok[N(hook_events) * N(hook_kinds)],
	c_hook_failed[N(hook_events) * N(hook_kinds)], c_hook_dropped[1];
static atomic_uint_least64_t h_req[N(routes) * HCELLS(req_bounds)],
	h_srv_req[N(routes) * HCELLS(req_bounds)], h_commit[HCELLS(commit_bounds)];

static const tlm_metrics_family f_runs = { "telemachy_runs_total",
					   "Runs ended, by outcome.",
					   0,
					   0,
					   { DIM("outcome", outcomes) },
					   1,
					   NULL,
					   0,
					   c_runs };
static const tlm_metrics_family f_created = { "telemachy_resources_created_total",
					      "Agents and teams created on the control plane.",
					      0,
					      0,
					      { DIM("kind", kinds) },
					      1,
					      NULL,
					      0,
					      c_created };
static const tlm_metrics_family f_deleted = { "telemachy_resources_deleted_total",
					      "Agents and teams deleted from the control plane.",
					      0,
					      0,
					      { DIM("kind", kinds) },
					      1,
					      NULL,
					      0,
					      c_deleted };
static const tlm_metrics_family f_failed = { "telemachy_resource_failures_total",
					     "Creates and deletes of agents and teams that failed.",
					     0,
					     0,
					     { DIM("kind", kinds), DIM("op", ops) },
					     2,
					     NULL,
					     0,
					     c_failed };
static const tlm_metrics_family f_tasks = { "telemachy_tasks_total",
					    "Tasks that reached a final state, by state.",
					    0,
					    0,
					    { DIM("state", task_states) },
					    1,
					    NULL,
					    0,
					    c_tasks };
static const tlm_metrics_family f_req = {
	"telemachy_client_requests_total",
	"Control-plane request attempts, by method, route template and status class.",
	0,
	1,
	{ DIM("method", methods), DIM("route", routes), DIM("status_class", classes) },
	3,
	NULL,
	0,
	c_req
};
static const tlm_metrics_family f_req_h = {
	"telemachy_client_request_duration_seconds",
	"Control-plane request attempt latency, by route template.",
	1,
	1,
	{ DIM("route", routes) },
	1,
	req_bounds,
	N(req_bounds),
	h_req
};
static const tlm_metrics_family f_retries = {
	"telemachy_client_retries_total",
	"Control-plane requests scheduled for another attempt.",
	0,
	0,
	{ { NULL, NULL, 0 } },
	0,
	NULL,
	0,
	c_retries
};
static const tlm_metrics_family f_nats = { "telemachy_nats_events_received_total",
					   "NATS task events received.",
					   0,
					   0,
					   { { NULL, NULL, 0 } },
					   0,
					   NULL,
					   0,
					   c_nats };
static const tlm_metrics_family f_reconcile = { "telemachy_reconcile_passes_total",
						"REST reconcile passes over the tasks in flight.",
						0,
						0,
						{ { NULL, NULL, 0 } },
						0,
						NULL,
						0,
						c_reconcile };
static const tlm_metrics_family f_commit = { "telemachy_journal_commit_duration_seconds",
					     "Journal transaction commit latency (fsync included).",
					     1,
					     0,
					     { { NULL, NULL, 0 } },
					     0,
					     commit_bounds,
					     N(commit_bounds),
					     h_commit };
static const tlm_metrics_family f_srv_req = {
	"telemachy_server_requests_total",
	"Requests answered by the built-in control plane, by method, route template and status class.",
	0,
	1,
	{ DIM("method", methods), DIM("route", routes), DIM("status_class", classes) },
	3,
	NULL,
	0,
	c_srv_req
};
static const tlm_metrics_family f_srv_req_h = {
	"telemachy_server_request_duration_seconds",
	"Built-in control plane request handling latency, by route template.",
	1,
	1,
	{ DIM("route", routes) },
	1,
	req_bounds,
	N(req_bounds),
	h_srv_req
};

static const tlm_metrics_family f_hook_ok = {
	"telemachy_hook_deliveries_total",
	"Hook deliveries that succeeded (a command exited 0, a webhook answered 2xx), by event and kind.",
	0,
	0,
	{ DIM("event", hook_events), DIM("kind", hook_kinds) },
	2,
	NULL,
	0,
	c_hook_ok
};
static const tlm_metrics_family f_hook_failed = {
	"telemachy_hook_failures_total",
	"Hook deliveries that failed (exit status, timeout, exec failure, HTTP error after retries), by event and kind.",
	0,
	0,
	{ DIM("event", hook_events), DIM("kind", hook_kinds) },
	2,
	NULL,
	0,
	c_hook_failed
};
static const tlm_metrics_family f_hook_dropped = {
	"telemachy_hook_events_dropped_total",
	"Hook events not delivered: the queue was full, or the process exited before their turn.",
	0,
	0,
	{ { NULL, NULL, 0 } },
	0,
	NULL,
	0,
	c_hook_dropped
};

const tlm_metrics_family *const tlm_metrics__families[] = {
	&f_runs,      &f_created, &f_deleted,     &f_failed,      &f_tasks,  &f_req,
	&f_req_h,     &f_retries, &f_nats,        &f_reconcile,   &f_commit, &f_srv_req,
	&f_srv_req_h, &f_hook_ok, &f_hook_failed, &f_hook_dropped
};
const size_t tlm_metrics__nfamilies = N(tlm_metrics__families);

size_t tlm_metrics__series(const tlm_metrics_family *f)
{
	size_t i, n = 1;

	for (i = 0; i < f->nd; i++)
		n *= f->d[i].n;
	return n;
}

uint64_t tlm_metrics_now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* The index of v in values; n (no such value) when it is not one. */
static size_t find(const char *const *values, size_t n, const char *v)
{
	size_t i;

	for (i = 0; v != NULL && i < n; i++)
		if (strcmp(values[i], v) == 0)
			return i;
	return n;
}

static void add(atomic_uint_least64_t *cell, uint64_t n)
{
	atomic_fetch_add_explicit(cell, n, memory_order_relaxed);
}

void tlm_metrics_run(const char *outcome)
{
	size_t i = find(outcomes, N(outcomes), outcome);

	if (i < N(outcomes))
		add(&c_runs[i], 1);
}

void tlm_metrics_resource_created(const char *kind)
{
	size_t k = find(kinds, N(kinds), kind);

	if (k < N(kinds))
		add(&c_created[k], 1);
}

void tlm_metrics_resource_deleted(const char *kind)
{
	size_t k = find(kinds, N(kinds), kind);

	if (k < N(kinds))
		add(&c_deleted[k], 1);
}

void tlm_metrics_resource_failed(const char *kind, const char *op)
{
	size_t k = find(kinds, N(kinds), kind), o = find(ops, N(ops), op);

	if (k < N(kinds) && o < N(ops))
		add(&c_failed[k * N(ops) + o], 1);
}

void tlm_metrics_task_final(const char *state)
{
	size_t i = find(task_states, N(task_states), state);

	if (i < N(task_states))
		add(&c_tasks[i], 1);
}

/* Segment by segment: a "{...}" segment of the template matches any
 * non-empty one of the path. */
static int route_match(const char *tpl, const char *path, size_t len)
{
	const char *end = path + len;

	while (*tpl == '/' && path < end && *path == '/') {
		size_t tl = strcspn(++tpl, "/"), pl;

		path++;
		pl = strcspn(path, "/");
		if (path + pl > end)
			pl = (size_t)(end - path);
		if (tpl[0] == '{' ? pl == 0 : (tl != pl || strncmp(tpl, path, pl) != 0))
			return 0;
		tpl += tl;
		path += pl;
	}
	return *tpl == '\0' && path == end;
}

static size_t route_index(const char *path)
{
	size_t i, len;

	if (path == NULL)
		return N(routes) - 1;
	len = strcspn(path, "?#");
	for (i = 0; i + 1 < N(routes); i++)
		if (route_match(routes[i], path, len))
			return i;
	return N(routes) - 1;
}

const char *tlm_metrics_route(const char *path)
{
	return routes[route_index(path)];
}

static size_t class_index(long status)
{
	return status >= 100 && status <= 599 ? (size_t)(status / 100 - 1) : N(classes) - 1;
}

static void observe(atomic_uint_least64_t *h, const double *bounds, size_t nb, uint64_t us)
{
	size_t b = 0;

	while (b < nb && (double)us > bounds[b] * 1e6)
		b++;
	add(&h[b], 1); /* b == nb: +Inf */
	add(&h[nb + 1], us);
}

static void request(atomic_uint_least64_t *c, atomic_uint_least64_t *h, const char *method,
		    const char *path, long status, uint64_t us)
{
	size_t m = find(methods, N(methods) - 1, method), r = route_index(path);

	add(&c[(m * N(routes) + r) * N(classes) + class_index(status)], 1);
	observe(&h[r * HCELLS(req_bounds)], req_bounds, N(req_bounds), us);
}

void tlm_metrics_client_request(const char *method, const char *path, long status,
				uint64_t elapsed_us)
{
	request(c_req, h_req, method, path, status, elapsed_us);
}

void tlm_metrics_server_request(const char *method, const char *path, long status,
				uint64_t elapsed_us)
{
	request(c_srv_req, h_srv_req, method, path, status, elapsed_us);
}

void tlm_metrics_client_retry(void)
{
	add(&c_retries[0], 1);
}

void tlm_metrics_hook(const char *event, const char *kind, int ok)
{
	size_t e = find(hook_events, N(hook_events), event),
	       k = find(hook_kinds, N(hook_kinds), kind);

	if (e < N(hook_events) && k < N(hook_kinds))
		add(&(ok ? c_hook_ok : c_hook_failed)[e * N(hook_kinds) + k], 1);
}

void tlm_metrics_hook_dropped(void)
{
	add(&c_hook_dropped[0], 1);
}

void tlm_metrics_nats_event(void)
{
	add(&c_nats[0], 1);
}

void tlm_metrics_reconcile_pass(void)
{
	add(&c_reconcile[0], 1);
}

void tlm_metrics_journal_commit(uint64_t elapsed_us)
{
	observe(h_commit, commit_bounds, N(commit_bounds), elapsed_us);
}

void tlm_metrics_reset(void)
{
	size_t i, j, n;

	for (i = 0; i < tlm_metrics__nfamilies; i++) {
		const tlm_metrics_family *f = tlm_metrics__families[i];

		n = tlm_metrics__series(f) * (f->histogram ? f->nb + 2 : 1);
		for (j = 0; j < n; j++)
			atomic_store_explicit(&f->cells[j], 0, memory_order_relaxed);
	}
}
