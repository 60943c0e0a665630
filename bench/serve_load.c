/* Load benchmark client for `telemachy serve` (bench/serve_load.sh runs it).
 *
 *   serve_load URL [-c CLIENTS] [-n REQUESTS] [--fresh] [--label TEXT]
 *
 * CLIENTS threads (default 16) send REQUESTS requests each (default 1,000):
 * the mix of tests/integration/serve/test_load.c (POST /v1/agents, GET by
 * id, GET by name, GET /v1/agents?limit=10, PATCH), each answer's status
 * checked.  By default each thread keeps one libcurl easy handle, so one
 * keep-alive connection; --fresh opens a new connection per request.
 * Prints one line: throughput (req/s over the wall time), latency p50, p99
 * and max (ms, per request, over all clients), the count of requests over
 * 40 ms (the Nagle + delayed-ACK stall signature), and the connections
 * opened; then the same percentiles per kind of request.
 *
 * Needs libcurl only:
 *   cc -O2 -o serve_load serve_load.c $(pkg-config --cflags --libs libcurl) -lpthread
 *
 * Exit status: 0, 1 when a request failed or got a wrong status, 2 on usage. */
#include <curl/curl.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define STALL_MS 40.0
#define OPS      5

static const char *const op_names[OPS] = { "POST", "GET-id", "GET-name", "GET-list", "PATCH" };

typedef struct sample {
	double ms;
	int op;
} sample;

typedef struct client {
	int n;
	const char *base;
	int fresh;
	int requests;
	CURL *curl;
	struct curl_slist *headers;
	char *buf;
	size_t len, cap;
	char (*ids)[64];
	int nids;
	uint32_t rng;
	sample *samples;
	int nsamples;
	long connects;
	int errors;
	char err[256];
} client;

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static size_t on_data(char *p, size_t size, size_t n, void *ud)
{
	client *c = ud;
	size_t add = size * n;

	if (c->len + add + 1 > c->cap) {
		size_t cap = (c->len + add + 1) * 2;
		char *nb = realloc(c->buf, cap);

		if (nb == NULL)
			return 0;
		c->buf = nb;
		c->cap = cap;
	}
	memcpy(c->buf + c->len, p, add);
	c->len += add;
	c->buf[c->len] = '\0';
	return add;
}

static CURL *new_handle(client *c)
{
	CURL *h = curl_easy_init();

	if (h == NULL)
		return NULL;
	curl_easy_setopt(h, CURLOPT_HTTPHEADER, c->headers);
	curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(h, CURLOPT_WRITEDATA, c);
	curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, 5L);
	curl_easy_setopt(h, CURLOPT_TIMEOUT, 10L);
	return h;
}

/* One timed request; 0 when it got the wanted status. */
static int request(client *c, int op, const char *method, const char *path, const char *body,
		   long want)
{
	char url[512];
	long status = 0, connects = 0;
	double t0, t1;
	CURLcode rc;

	snprintf(url, sizeof(url), "%s%s", c->base, path);
	c->len = 0;
	if (c->fresh) { /* a new handle: a new connection, as a reuse-less client does */
		curl_easy_cleanup(c->curl);
		c->curl = new_handle(c);
		if (c->curl == NULL)
			return -1;
		curl_easy_setopt(c->curl, CURLOPT_FORBID_REUSE, 1L);
	}
	curl_easy_setopt(c->curl, CURLOPT_URL, url);
	if (body != NULL) {
		curl_easy_setopt(c->curl, CURLOPT_POSTFIELDS, body);
		curl_easy_setopt(c->curl, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
		curl_easy_setopt(c->curl, CURLOPT_CUSTOMREQUEST, method);
	} else {
		curl_easy_setopt(c->curl, CURLOPT_HTTPGET, 1L);
		curl_easy_setopt(c->curl, CURLOPT_CUSTOMREQUEST, NULL);
	}
	t0 = now_ms();
	rc = curl_easy_perform(c->curl);
	t1 = now_ms();
	c->samples[c->nsamples].ms = t1 - t0;
	c->samples[c->nsamples].op = op;
	c->nsamples++;
	curl_easy_getinfo(c->curl, CURLINFO_NUM_CONNECTS, &connects);
	c->connects += connects;
	if (rc == CURLE_OK)
		curl_easy_getinfo(c->curl, CURLINFO_RESPONSE_CODE, &status);
	if (rc != CURLE_OK || status != want) {
		if (c->errors++ == 0)
			snprintf(c->err, sizeof(c->err), "client %d: %s %s: %s", c->n, method, path,
				 rc != CURLE_OK ? curl_easy_strerror(rc) : "unexpected status");
		return -1;
	}
	return 0;
}

static uint32_t next(client *c)
{
	c->rng ^= c->rng << 13;
	c->rng ^= c->rng >> 17;
	c->rng ^= c->rng << 5;
	return c->rng;
}

/* The "id" of a POST /v1/agents answer (agent.id and id are the same). */
static int take_id(client *c)
{
	const char *p = c->buf != NULL ? strstr(c->buf, "\"id\":\"") : NULL;
	size_t len;

	if (p == NULL)
		return -1;
	p += 6;
	len = strcspn(p, "\"");
	if (len == 0 || len >= sizeof(c->ids[0]))
		return -1;
	memcpy(c->ids[c->nids], p, len);
	c->ids[c->nids][len] = '\0';
	c->nids++;
	return 0;
}

static void *run_client(void *arg)
{
	client *c = arg;
	char path[256], body[256];
	int i, k;

	c->headers = curl_slist_append(NULL, "Content-Type: application/json");
	c->headers = curl_slist_append(c->headers, "Expect:");
	c->curl = new_handle(c);
	for (i = 0; i < c->requests && c->curl != NULL; i++) {
		int op = i % OPS;

		if (op != 0 && c->nids == 0)
			op = 0; /* nothing to read yet (after a failed create) */
		k = c->nids > 0 ? (int)(next(c) % (uint32_t)c->nids) : 0;
		switch (op) {
		case 0:
			snprintf(body, sizeof(body),
				 "{\"name\":\"tlm-bench-%02d-%05d\",\"program\":\"none\"}", c->n,
				 i);
			if (request(c, op, "POST", "/v1/agents", body, 201) == 0 && take_id(c) != 0)
				c->errors++;
			break;
		case 1:
			snprintf(path, sizeof(path), "/v1/agents/%s", c->ids[k]);
			request(c, op, "GET", path, NULL, 200);
			break;
		case 2:
			/* Names are tlm-bench-<client>-<i of the create>; look one up. */
			snprintf(path, sizeof(path), "/v1/agents/by-name/tlm-bench-%02d-%05d", c->n,
				 k * OPS);
			request(c, op, "GET", path, NULL, 200);
			break;
		case 3:
			snprintf(path, sizeof(path), "/v1/agents?limit=10&offset=%d", k);
			request(c, op, "GET", path, NULL, 200);
			break;
		default:
			snprintf(path, sizeof(path), "/v1/agents/%s", c->ids[k]);
			snprintf(body, sizeof(body), "{\"label\":\"l-%d\"}", i);
			request(c, op, "PATCH", path, body, 200);
			break;
		}
	}
	curl_easy_cleanup(c->curl);
	curl_slist_free_all(c->headers);
	free(c->buf);
	return NULL;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* Nearest-rank percentile of sorted v[0..n). */
static double pct(const double *v, size_t n, double p)
{
	size_t rank;

	if (n == 0)
		return 0;
	rank = (size_t)(p / 100.0 * (double)n + 0.999999);
	if (rank < 1)
		rank = 1;
	return v[rank > n ? n - 1 : rank - 1];
}

static void usage(void)
{
	fprintf(stderr,
		"usage: serve_load URL [-c CLIENTS] [-n REQUESTS] [--fresh] [--label TEXT]\n");
	exit(2);
}

int main(int argc, char **argv)
{
	int clients = 16, requests = 1000, fresh = 0, i, j, op, errors = 0;
	const char *url = NULL, *label = NULL;
	client *cs;
	pthread_t *threads;
	double t0, wall, *all, *per[OPS];
	size_t n = 0, nper[OPS] = { 0 }, stalls = 0;
	long connects = 0;

	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "-c") == 0 && i + 1 < argc)
			clients = atoi(argv[++i]);
		else if (strcmp(argv[i], "-n") == 0 && i + 1 < argc)
			requests = atoi(argv[++i]);
		else if (strcmp(argv[i], "--fresh") == 0)
			fresh = 1;
		else if (strcmp(argv[i], "--label") == 0 && i + 1 < argc)
			label = argv[++i];
		else if (url == NULL && argv[i][0] != '-')
			url = argv[i];
		else
			usage();
	}
	if (url == NULL || clients < 1 || clients > 1024 || requests < 1 || requests > 1000000)
		usage();
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
		return 2;
	cs = calloc((size_t)clients, sizeof(*cs));
	threads = calloc((size_t)clients, sizeof(*threads));
	if (cs == NULL || threads == NULL)
		return 2;
	for (i = 0; i < clients; i++) {
		cs[i].n = i;
		cs[i].base = url;
		cs[i].fresh = fresh;
		cs[i].requests = requests;
		cs[i].rng = 2463534242u + (uint32_t)i * 7919u;
		cs[i].ids = calloc((size_t)requests, sizeof(cs[i].ids[0]));
		cs[i].samples = calloc((size_t)requests, sizeof(sample));
		if (cs[i].ids == NULL || cs[i].samples == NULL)
			return 2;
	}
	t0 = now_ms();
	for (i = 0; i < clients; i++) {
		if (pthread_create(&threads[i], NULL, run_client, &cs[i]) != 0)
			return 2;
	}
	for (i = 0; i < clients; i++)
		pthread_join(threads[i], NULL);
	wall = now_ms() - t0;

	all = malloc((size_t)clients * (size_t)requests * sizeof(double));
	for (op = 0; op < OPS; op++)
		per[op] = malloc((size_t)clients * (size_t)requests * sizeof(double));
	for (i = 0; i < clients; i++) {
		for (j = 0; j < cs[i].nsamples; j++) {
			sample *s = &cs[i].samples[j];

			all[n++] = s->ms;
			per[s->op][nper[s->op]++] = s->ms;
			if (s->ms > STALL_MS)
				stalls++;
		}
		connects += cs[i].connects;
		errors += cs[i].errors;
		if (cs[i].errors > 0)
			fprintf(stderr, "%s (%d errors)\n", cs[i].err, cs[i].errors);
	}
	if (n == 0)
		return 1;
	qsort(all, n, sizeof(double), cmp_double);
	printf("%-10s clients=%d requests=%zu wall_s=%.3f req_s=%.0f p50_ms=%.3f p99_ms=%.3f "
	       "max_ms=%.3f over40ms=%zu connections=%ld errors=%d\n",
	       label ? label : (fresh ? "fresh" : "keepalive"), clients, n, wall / 1e3,
	       (double)n / (wall / 1e3), pct(all, n, 50), pct(all, n, 99), all[n - 1], stalls,
	       connects, errors);
	for (op = 0; op < OPS; op++) {
		qsort(per[op], nper[op], sizeof(double), cmp_double);
		printf("  %-9s n=%-6zu p50_ms=%.3f p99_ms=%.3f max_ms=%.3f\n", op_names[op],
		       nper[op], pct(per[op], nper[op], 50), pct(per[op], nper[op], 99),
		       nper[op] ? per[op][nper[op] - 1] : 0.0);
		free(per[op]);
	}
	for (i = 0; i < clients; i++) {
		free(cs[i].ids);
		free(cs[i].samples);
	}
	free(all);
	free(cs);
	free(threads);
	curl_global_cleanup();
	return errors > 0 ? 1 : 0;
}
