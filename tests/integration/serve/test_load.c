/* The real `telemachy serve` under concurrent keep-alive load: 16 clients,
 * each one libcurl easy handle (so one reused connection), 1,000 requests
 * each: a mix of POST /v1/agents, GET by id, GET by name, GET the list with
 * limit=10 and PATCH.  Every answer is checked (status and JSON), every
 * client must have kept its one connection, and at the end the server must
 * hold exactly the agents created, each with its last label.
 *
 * Correctness only: timing belongs to bench/serve_load.sh.  The server runs
 * with its default 8 HTTP threads: libmicrohttpd's pool threads each poll
 * many connections (epoll), so 16 keep-alive clients need no more threads
 * (and the default is what users get).  cmocka is not thread-safe: the
 * clients record their first error and stop; the main thread asserts. */
#include <curl/curl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness/harness.h"
#include "harness/serve.h"

#define CLIENTS  16
#define REQUESTS 1000
#define OPS      5 /* POST, GET id, GET by-name, GET list, PATCH */
#define CREATES  (REQUESTS / OPS)

typedef struct agent_rec {
	char id[64];
	char name[64];
	char label[64];
} agent_rec;

typedef struct client {
	int n;
	const char *base;
	CURL *curl;
	struct curl_slist *headers;
	char *buf;
	size_t len, cap;
	long connects; /* new connections libcurl had to open */
	uint32_t rng;
	agent_rec agents[CREATES];
	size_t nagents;
	char err[512]; /* the first error; the client stops there */
} client;

static tlm_h_serve srv;

static int setup(void **state)
{
	(void)state;
	assert_int_equal(curl_global_init(CURL_GLOBAL_DEFAULT), CURLE_OK);
	tlm_h_serve_start(&srv, NULL);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	tlm_h_serve_stop(&srv);
	curl_global_cleanup();
	return 0;
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

static int failf(client *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static int failf(client *c, const char *fmt, ...)
{
	va_list ap;
	int n = snprintf(c->err, sizeof(c->err), "client %d: ", c->n);

	va_start(ap, fmt);
	vsnprintf(c->err + n, sizeof(c->err) - (size_t)n, fmt, ap);
	va_end(ap);
	return -1;
}

/* One request on the client's handle (its connection is reused); the
 * status must be want and the body a JSON object (*out, caller decrefs). */
static int request(client *c, const char *method, const char *path, const char *body, long want,
		   json_t **out)
{
	char url[512];
	long status = 0, connects = 0;
	json_error_t jerr;
	CURLcode rc;

	*out = NULL;
	snprintf(url, sizeof(url), "%s%s", c->base, path);
	c->len = 0;
	curl_easy_setopt(c->curl, CURLOPT_URL, url);
	if (body != NULL) {
		curl_easy_setopt(c->curl, CURLOPT_POSTFIELDS, body);
		curl_easy_setopt(c->curl, CURLOPT_POSTFIELDSIZE, (long)strlen(body));
		curl_easy_setopt(c->curl, CURLOPT_CUSTOMREQUEST, method);
	} else {
		curl_easy_setopt(c->curl, CURLOPT_HTTPGET, 1L);
		curl_easy_setopt(c->curl, CURLOPT_CUSTOMREQUEST, NULL);
	}
	rc = curl_easy_perform(c->curl);
	if (rc != CURLE_OK)
		return failf(c, "%s %s: %s", method, path, curl_easy_strerror(rc));
	curl_easy_getinfo(c->curl, CURLINFO_RESPONSE_CODE, &status);
	curl_easy_getinfo(c->curl, CURLINFO_NUM_CONNECTS, &connects);
	c->connects += connects;
	if (status != want)
		return failf(c, "%s %s: status %ld, expected %ld: %.200s", method, path, status,
			     want, c->len ? c->buf : "");
	*out = json_loadb(c->buf ? c->buf : "", c->len, 0, &jerr);
	if (!json_is_object(*out)) {
		json_decref(*out);
		*out = NULL;
		return failf(c, "%s %s: not a JSON object: %.200s", method, path,
			     c->len ? c->buf : "");
	}
	return 0;
}

static const char *str(const json_t *o, const char *k)
{
	const char *s = json_string_value(json_object_get(o, k));

	return s != NULL ? s : "";
}

/* Does the agent document match what this client last wrote? */
static int check_agent(client *c, const char *what, const json_t *a, const agent_rec *r)
{
	if (!json_is_object(a))
		return failf(c, "%s: no agent object", what);
	if (strcmp(str(a, "id"), r->id) != 0 || strcmp(str(a, "name"), r->name) != 0 ||
	    strcmp(str(a, "label"), r->label) != 0 || strcmp(str(a, "status"), "offline") != 0 ||
	    strcmp(str(a, "program"), "none") != 0)
		return failf(c, "%s: agent is id=%s name=%s label=%s status=%s, expected %s %s %s",
			     what, str(a, "id"), str(a, "name"), str(a, "label"), str(a, "status"),
			     r->id, r->name, r->label);
	return 0;
}

static int op_create(client *c, int i)
{
	agent_rec *r = &c->agents[c->nagents];
	char body[256];
	json_t *j;
	int rc;

	snprintf(r->name, sizeof(r->name), "tlm-load-%02d-%04d", c->n, i);
	snprintf(r->label, sizeof(r->label), "created-%d", i);
	snprintf(body, sizeof(body), "{\"name\":\"%s\",\"label\":\"%s\",\"program\":\"none\"}",
		 r->name, r->label);
	if (request(c, "POST", "/v1/agents", body, 201, &j) != 0)
		return -1;
	snprintf(r->id, sizeof(r->id), "%s", str(j, "id"));
	rc = r->id[0] == '\0' ? failf(c, "POST: no id") : 0;
	if (rc == 0)
		rc = check_agent(c, "POST /v1/agents", json_object_get(j, "agent"), r);
	json_decref(j);
	if (rc == 0)
		c->nagents++;
	return rc;
}

/* One of this client's agents, drawn at random (xorshift). */
static agent_rec *pick(client *c)
{
	c->rng ^= c->rng << 13;
	c->rng ^= c->rng >> 17;
	c->rng ^= c->rng << 5;
	return &c->agents[c->rng % c->nagents];
}

static int op_get(client *c, int by_name)
{
	agent_rec *r = pick(c);
	char path[256];
	json_t *j;
	int rc;

	if (by_name)
		snprintf(path, sizeof(path), "/v1/agents/by-name/%s", r->name);
	else
		snprintf(path, sizeof(path), "/v1/agents/%s", r->id);
	if (request(c, "GET", path, NULL, 200, &j) != 0)
		return -1;
	rc = check_agent(c, path, json_object_get(j, "agent"), r);
	json_decref(j);
	return rc;
}

/* A page of 10 at an offset below what this client alone created, so the
 * page is never empty: min(10, total - offset) agents sorted by id, and a
 * total at least ours. */
static int op_list(client *c)
{
	size_t offset = c->rng % c->nagents, total, i;
	const char *prev = "";
	json_t *j, *items, *a;
	char path[128];
	int rc = 0;

	snprintf(path, sizeof(path), "/v1/agents?limit=10&offset=%zu", offset);
	if (request(c, "GET", path, NULL, 200, &j) != 0)
		return -1;
	items = json_object_get(j, "agents");
	total = (size_t)json_integer_value(json_object_get(j, "total"));
	if (json_integer_value(json_object_get(j, "limit")) != 10 ||
	    json_integer_value(json_object_get(j, "offset")) != (json_int_t)offset)
		rc = failf(c, "%s: limit/offset not echoed", path);
	else if (total < c->nagents || total > CLIENTS * CREATES)
		rc = failf(c, "%s: total %zu, this client alone made %zu", path, total, c->nagents);
	else if (json_array_size(items) != (total - offset < 10 ? total - offset : 10))
		rc = failf(c, "%s: %zu items of total %zu", path, json_array_size(items), total);
	json_array_foreach(items, i, a)
	{
		if (rc != 0)
			break;
		if (strcmp(prev, str(a, "id")) >= 0 || str(a, "name")[0] == '\0')
			rc = failf(c, "%s: item %zu out of order or without a name", path, i);
		prev = str(a, "id");
	}
	json_decref(j);
	return rc;
}

static int op_patch(client *c, int i)
{
	agent_rec *r = pick(c);
	char path[256], body[128];
	json_t *j;
	int rc;

	snprintf(r->label, sizeof(r->label), "patched-%d", i);
	snprintf(path, sizeof(path), "/v1/agents/%s", r->id);
	snprintf(body, sizeof(body), "{\"label\":\"%s\"}", r->label);
	if (request(c, "PATCH", path, body, 200, &j) != 0)
		return -1;
	rc = check_agent(c, "PATCH", json_object_get(j, "agent"), r);
	json_decref(j);
	return rc;
}

static void *run_client(void *arg)
{
	client *c = arg;
	int i, rc = 0;

	c->curl = curl_easy_init();
	if (c->curl == NULL) {
		failf(c, "curl_easy_init failed");
		return NULL;
	}
	c->headers = curl_slist_append(NULL, "Content-Type: application/json");
	c->headers = curl_slist_append(c->headers, "Expect:");
	curl_easy_setopt(c->curl, CURLOPT_HTTPHEADER, c->headers);
	curl_easy_setopt(c->curl, CURLOPT_WRITEFUNCTION, on_data);
	curl_easy_setopt(c->curl, CURLOPT_WRITEDATA, c);
	curl_easy_setopt(c->curl, CURLOPT_NOSIGNAL, 1L);
	curl_easy_setopt(c->curl, CURLOPT_CONNECTTIMEOUT, 5L);
	curl_easy_setopt(c->curl, CURLOPT_TIMEOUT, 10L); /* every wait bounded */
	for (i = 0; i < REQUESTS && rc == 0; i++) {
		switch (i % OPS) {
		case 0: rc = op_create(c, i); break;
		case 1: rc = op_get(c, 0); break;
		case 2: rc = op_get(c, 1); break;
		case 3: rc = op_list(c); break;
		default: rc = op_patch(c, i); break;
		}
	}
	curl_slist_free_all(c->headers);
	curl_easy_cleanup(c->curl);
	free(c->buf);
	return NULL;
}

/* Pages through every agent: exactly the ones created, each with the label
 * its client wrote last. */
static void check_final(client *clients)
{
	json_t *seen = json_object(), *j = NULL, *a;
	size_t offset = 0, total = 0, i, k;
	char path[128];

	do {
		snprintf(path, sizeof(path), "/v1/agents?limit=1000&offset=%zu", offset);
		assert_int_equal(tlm_h_req(&srv, "GET", path, NULL, &j), 200);
		total = (size_t)json_integer_value(json_object_get(j, "total"));
		json_array_foreach(json_object_get(j, "agents"), i, a)
		{
			assert_null(json_object_get(seen, str(a, "id")));
			json_object_set(seen, str(a, "id"), a);
		}
		offset += json_array_size(json_object_get(j, "agents"));
		assert_true(json_array_size(json_object_get(j, "agents")) > 0 || offset >= total);
		json_decref(j);
	} while (offset < total);
	assert_int_equal(total, CLIENTS * CREATES);
	assert_int_equal(json_object_size(seen), CLIENTS * CREATES);
	for (k = 0; k < CLIENTS; k++) {
		for (i = 0; i < clients[k].nagents; i++) {
			agent_rec *r = &clients[k].agents[i];

			a = json_object_get(seen, r->id);
			if (a == NULL)
				fail_msg("agent %s (%s) is missing", r->id, r->name);
			assert_string_equal(str(a, "name"), r->name);
			assert_string_equal(str(a, "label"), r->label);
		}
	}
	json_decref(seen);
}

static void test_concurrent_keepalive(void **state)
{
	static client clients[CLIENTS];
	pthread_t threads[CLIENTS];
	size_t i;
	(void)state;

	memset(clients, 0, sizeof(clients));
	for (i = 0; i < CLIENTS; i++) {
		clients[i].n = (int)i;
		clients[i].base = srv.url;
		clients[i].rng = 2463534242u + (uint32_t)i * 7919u;
		assert_int_equal(pthread_create(&threads[i], NULL, run_client, &clients[i]), 0);
	}
	for (i = 0; i < CLIENTS; i++)
		assert_int_equal(pthread_join(threads[i], NULL), 0);
	for (i = 0; i < CLIENTS; i++) {
		if (clients[i].err[0] != '\0')
			fail_msg("%s", clients[i].err);
	}
	for (i = 0; i < CLIENTS; i++) {
		assert_int_equal(clients[i].nagents, CREATES);
		/* Keep-alive held: one connection for all 1,000 requests. */
		if (clients[i].connects != 1)
			fail_msg("client %zu opened %ld connections", i, clients[i].connects);
	}
	check_final(clients);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_concurrent_keepalive, setup, teardown),
	};

	return cmocka_run_group_tests_name("serve.load", tests, NULL, NULL);
}
