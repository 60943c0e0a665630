/* Harness: `telemachy serve` as a real process, and an HTTP client. */
#ifndef TLM_TEST_HARNESS_SERVE_H
#define TLM_TEST_HARNESS_SERVE_H

#include <jansson.h>
#include <sys/types.h>

typedef struct tlm_h_serve {
	pid_t pid;
	unsigned short port;
	char url[128];
	char *state_dir; /* a temporary dir, removed by stop */
} tlm_h_serve;

/* Starts the real binary: `telemachy serve --listen 127.0.0.1:0 --state-dir D
 * ARGS...` (args NULL-terminated, may be NULL) and waits for its URL line
 * (http:// or, with --tls-cert, https://; at most 10 s). */
void tlm_h_serve_start(tlm_h_serve *s, const char *const *args);

/* The same, with the server's environment changed: env is a NULL-terminated
 * list of "NAME=value" (set) or "NAME" (unset) entries; may be NULL.  A
 * --listen in args wins over the default; the URL may then name another
 * loopback address. */
void tlm_h_serve_start_env(tlm_h_serve *s, const char *const *args, const char *const *env);

/* The same as tlm_h_serve_start, with the server's stderr appended to
 * log_path (created 0600 when missing) instead of the test's. */
void tlm_h_serve_start_log(tlm_h_serve *s, const char *const *args, const char *log_path);

/* Runs `telemachy serve ARGS...` exactly as given (nothing added) with env
 * applied as above, and waits at most wait_ms for it to exit.  Returns the
 * exit code, or -1 when it still ran (it is then SIGKILLed) or died by a
 * signal.  *out and
 * *err (each may be NULL; caller frees) get what it wrote to stdout and
 * stderr. */
int tlm_h_serve_run(const char *const *args, const char *const *env, long wait_ms, char **out,
		    char **err);

/* SIGTERM, wait (at most 10 s, then SIGKILL), remove the state dir.
 * Returns the exit status as waitpid reports it. */
int tlm_h_serve_stop(tlm_h_serve *s);

/* The per-test fixture of the tests that may start a server, as cmocka's
 * setup and teardown: cmocka_unit_test_setup_teardown(test,
 * tlm_h_fixture_setup, tlm_h_fixture_teardown).  Setup makes a fresh
 * temporary dir and leaves the server zeroed (the test starts it when it
 * needs one); teardown stops the server if it runs and removes the dir, so
 * that a failed test leaves nothing behind for the next. */
typedef struct tlm_h_fixture {
	tlm_h_serve srv;
	char *dir;
} tlm_h_fixture;

extern tlm_h_fixture tlm_h_fx;
int tlm_h_fixture_setup(void **state);
int tlm_h_fixture_teardown(void **state);

/* One HTTP request with libcurl (a new connection each time).  body may be
 * NULL; headers is a NULL-terminated list of "Name: value" (may be NULL).
 * Returns the status (0 when the connection failed: *curl_code says why);
 * *json (may be NULL) gets the parsed body or NULL when empty/not JSON;
 * *retry_after (may be NULL) the Retry-After header or 0. */
long tlm_h_http(const char *method, const char *url, const char *body, const char *const *headers,
		json_t **json, long *retry_after, int *curl_code);

/* TLS for every later tlm_h_http (and so tlm_h_req and the helpers built
 * on it): the CA that signed the server's certificate, and a client
 * certificate and its key; NULL: none (each is copied). */
void tlm_h_http_tls(const char *ca, const char *cert, const char *key);

/* Convenience: request against s->url + path; fails the test on a
 * connection error. */
long tlm_h_req(const tlm_h_serve *s, const char *method, const char *path, const char *body,
	       json_t **json);

/* A growing, NUL-terminated response body, and the libcurl write callback
 * that fills it (CURLOPT_WRITEDATA: a tlm_h_body *). */
typedef struct tlm_h_body {
	char *data;
	size_t len;
} tlm_h_body;

size_t tlm_h_curl_body(char *p, size_t size, size_t n, void *ud);

/* o as compact JSON (keys sorted) in a static buffer, for failure messages. */
const char *tlm_h_dump(const json_t *o);

/* The string / integer member k of o; fails the test when it is missing or
 * of another type. */
const char *tlm_h_str(const json_t *o, const char *k);
/* The first object of the array o[list] whose string key equals value, or
 * NULL (borrowed). */
json_t *tlm_h_find(const json_t *o, const char *list, const char *key, const char *value);
json_int_t tlm_h_int(const json_t *o, const char *k);

#endif
