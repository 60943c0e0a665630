/* Harness: the real `telemachy serve` binary and a libcurl client. */
#include <curl/curl.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness/harness.h"
#include "harness/serve.h"

static char **build_argv(const char *state_dir, const char *const *args)
{
	static const char *const base[] = { TLM_BIN,    "serve",       "-q",
					    "--listen", "127.0.0.1:0", "--state-dir" };
	size_t n = 0, i, nb = sizeof(base) / sizeof(base[0]);
	char **argv;

	while (args != NULL && args[n] != NULL)
		n++;
	argv = calloc(nb + 2 + n, sizeof(*argv));
	assert_non_null(argv);
	for (i = 0; i < nb; i++)
		argv[i] = (char *)base[i];
	argv[nb] = (char *)state_dir;
	for (i = 0; i < n; i++)
		argv[nb + 1 + i] = (char *)args[i];
	return argv;
}

extern char **environ;

/* Our environment with env's changes ("NAME=value" sets, "NAME" unsets),
 * built before fork: the child only calls execve.  Caller frees the array
 * (the strings are environ's and env's). */
static char **build_env(const char *const *env)
{
	size_t n = 0, m = 0, i, j, k = 0;
	char **envp;

	while (environ[n] != NULL)
		n++;
	while (env != NULL && env[m] != NULL)
		m++;
	envp = calloc(n + m + 1, sizeof(*envp));
	assert_non_null(envp);
	for (i = 0; i < n; i++) {
		size_t len = strcspn(environ[i], "=");
		int replaced = 0;

		for (j = 0; j < m && !replaced; j++)
			replaced = strncmp(env[j], environ[i], len) == 0 &&
				   (env[j][len] == '=' || env[j][len] == '\0');
		if (!replaced)
			envp[k++] = environ[i];
	}
	for (j = 0; j < m; j++) {
		if (strchr(env[j], '=') != NULL)
			envp[k++] = (char *)env[j];
	}
	return envp;
}

void tlm_h_serve_start(tlm_h_serve *s, const char *const *args)
{
	tlm_h_serve_start_env(s, args, NULL);
}

static void start(tlm_h_serve *s, const char *const *args, const char *const *env,
		  const char *log_path);

void tlm_h_serve_start_env(tlm_h_serve *s, const char *const *args, const char *const *env)
{
	start(s, args, env, NULL);
}

void tlm_h_serve_start_log(tlm_h_serve *s, const char *const *args, const char *log_path)
{
	start(s, args, NULL, log_path);
}

static void start(tlm_h_serve *s, const char *const *args, const char *const *env,
		  const char *log_path)
{
	int out[2], log = -1;
	char line[120], *colon;
	char **argv, **envp;
	FILE *f;

	memset(s, 0, sizeof(*s));
	s->state_dir = tlm_h_tmpdir();
	argv = build_argv(s->state_dir, args);
	envp = build_env(env);
	assert_int_equal(pipe(out), 0);
	if (log_path != NULL)
		assert_true((log = open(log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC,
					0600)) >= 0);
	s->pid = fork();
	assert_true(s->pid >= 0);
	if (s->pid == 0) {
		dup2(out[1], 1);
		if (log >= 0)
			dup2(log, 2);
		close(out[0]);
		close(out[1]);
		execve(argv[0], argv, envp);
		_exit(127);
	}
	if (log >= 0)
		close(log);
	free(argv);
	free(envp);
	close(out[1]);
	f = fdopen(out[0], "r");
	assert_non_null(f);
	/* The URL line comes once the server accepts connections; a server that
	 * dies first closes the pipe, so this cannot hang on a crash.  A stuck
	 * server is caught by the ctest timeout. */
	if (fgets(line, sizeof(line), f) == NULL) {
		fclose(f);
		fail_msg("telemachy serve did not start");
	}
	fclose(f);
	line[strcspn(line, "\n")] = '\0';
	snprintf(s->url, sizeof(s->url), "%s", line);
	colon = strrchr(line, ':');
	if ((strncmp(line, "http://", 7) != 0 && strncmp(line, "https://", 8) != 0) ||
	    colon == NULL || sscanf(colon + 1, "%hu", &s->port) != 1)
		fail_msg("telemachy serve printed \"%s\", not its URL", line);
}

/* The whole content of fd (from its start), NUL-terminated; caller frees. */
static char *read_all(int fd)
{
	tlm_h_body b = { NULL, 0 };
	char buf[4096];
	ssize_t n;

	lseek(fd, 0, SEEK_SET);
	while ((n = read(fd, buf, sizeof(buf))) > 0)
		assert_int_equal(tlm_h_curl_body(buf, 1, (size_t)n, &b), (size_t)n);
	return b.data != NULL ? b.data : strdup("");
}

/* An unlinked temporary file: the child writes, we read it afterwards (no
 * pipe that could fill up while we wait). */
static int temp_fd(void)
{
	char path[] = "/tmp/tlm-test-out-XXXXXX";
	int fd = mkstemp(path);

	assert_true(fd >= 0);
	unlink(path);
	return fd;
}

int tlm_h_serve_run(const char *const *args, const char *const *env, long wait_ms, char **out,
		    char **err)
{
	size_t n = 0, i;
	char **argv, **envp;
	int fds[2] = { temp_fd(), temp_fd() }, status = 0, rc = -1;
	int64_t end = tlm_h_now_ms() + wait_ms;
	pid_t pid, got;

	while (args != NULL && args[n] != NULL)
		n++;
	argv = calloc(n + 3, sizeof(*argv));
	assert_non_null(argv);
	argv[0] = (char *)TLM_BIN;
	argv[1] = (char *)"serve";
	for (i = 0; i < n; i++)
		argv[2 + i] = (char *)args[i];
	envp = build_env(env);
	pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		int null = open("/dev/null", O_RDONLY);

		dup2(null, 0);
		dup2(fds[0], 1);
		dup2(fds[1], 2);
		execve(argv[0], argv, envp);
		_exit(127);
	}
	free(argv);
	free(envp);
	while ((got = waitpid(pid, &status, WNOHANG)) == 0 && tlm_h_now_ms() < end)
		tlm_h_sleep_ms(10);
	if (got == 0) {
		kill(pid, SIGKILL);
		waitpid(pid, &status, 0);
	} else if (WIFEXITED(status)) {
		rc = WEXITSTATUS(status);
	}
	if (out != NULL)
		*out = read_all(fds[0]);
	if (err != NULL)
		*err = read_all(fds[1]);
	close(fds[0]);
	close(fds[1]);
	return rc;
}

int tlm_h_serve_stop(tlm_h_serve *s)
{
	int status = -1, i;

	if (s->pid > 0) {
		kill(s->pid, SIGTERM);
		for (i = 0; i < 1000 && waitpid(s->pid, &status, WNOHANG) == 0; i++)
			usleep(10000);
		if (i == 1000) {
			kill(s->pid, SIGKILL);
			waitpid(s->pid, &status, 0);
		}
		s->pid = 0;
	}
	tlm_h_rmrf(s->state_dir);
	free(s->state_dir);
	s->state_dir = NULL;
	return status;
}

tlm_h_fixture tlm_h_fx;

int tlm_h_fixture_setup(void **state)
{
	(void)state;
	memset(&tlm_h_fx.srv, 0, sizeof(tlm_h_fx.srv));
	tlm_h_fx.dir = tlm_h_tmpdir();
	return 0;
}

int tlm_h_fixture_teardown(void **state)
{
	(void)state;
	if (tlm_h_fx.srv.pid != 0)
		tlm_h_serve_stop(&tlm_h_fx.srv);
	tlm_h_rmrf(tlm_h_fx.dir);
	free(tlm_h_fx.dir);
	tlm_h_fx.dir = NULL;
	return 0;
}

size_t tlm_h_curl_body(char *p, size_t size, size_t n, void *ud)
{
	tlm_h_body *b = ud;
	char *nd = realloc(b->data, b->len + size * n + 1);

	if (nd == NULL)
		return 0;
	memcpy(nd + b->len, p, size * n);
	b->data = nd;
	b->len += size * n;
	b->data[b->len] = '\0';
	return size * n;
}

static size_t on_header(char *p, size_t size, size_t n, void *ud)
{
	long *retry = ud;

	if (retry != NULL && strncasecmp(p, "Retry-After:", 12) == 0)
		*retry = strtol(p + 12, NULL, 10);
	return size * n;
}

static char *tls_ca, *tls_cert, *tls_key;

static void set_copy(char **dst, const char *src)
{
	free(*dst);
	*dst = src != NULL ? strdup(src) : NULL;
	assert_true(src == NULL || *dst != NULL);
}

void tlm_h_http_tls(const char *ca, const char *cert, const char *key)
{
	set_copy(&tls_ca, ca);
	set_copy(&tls_cert, cert);
	set_copy(&tls_key, key);
}

long tlm_h_http(const char *method, const char *url, const char *body, const char *const *headers,
		json_t **json, long *retry_after, int *curl_code)
{
	CURL *c = curl_easy_init();
	struct curl_slist *h = NULL;
	tlm_h_body b = { NULL, 0 };
	long status = 0;
	CURLcode rc;

	assert_non_null(c);
	if (retry_after)
		*retry_after = 0;
	for (; headers != NULL && *headers; headers++)
		h = curl_slist_append(h, *headers);
	if (body != NULL)
		h = curl_slist_append(h, "Content-Type: application/json");
	curl_easy_setopt(c, CURLOPT_URL, url);
	curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, method);
	if (body != NULL) {
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, body);
	} else if (strcmp(method, "POST") == 0 || strcmp(method, "PUT") == 0) {
		/* Content-Length: 0, as the contract asks of bodiless POSTs. */
		curl_easy_setopt(c, CURLOPT_POSTFIELDS, "");
	}
	curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
	curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, tlm_h_curl_body);
	curl_easy_setopt(c, CURLOPT_WRITEDATA, &b);
	curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, on_header);
	curl_easy_setopt(c, CURLOPT_HEADERDATA, retry_after);
	curl_easy_setopt(c, CURLOPT_TIMEOUT, 20L);
	curl_easy_setopt(c, CURLOPT_FORBID_REUSE, 1L);
	if (tls_ca != NULL)
		curl_easy_setopt(c, CURLOPT_CAINFO, tls_ca);
	if (tls_cert != NULL) {
		curl_easy_setopt(c, CURLOPT_SSLCERT, tls_cert);
		curl_easy_setopt(c, CURLOPT_SSLKEY, tls_key);
	}
	rc = curl_easy_perform(c);
	if (curl_code)
		*curl_code = (int)rc;
	if (rc == CURLE_OK)
		curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
	if (json != NULL)
		*json = b.len ? json_loadb(b.data, b.len, 0, NULL) : NULL;
	free(b.data);
	curl_slist_free_all(h);
	curl_easy_cleanup(c);
	return status;
}

long tlm_h_req(const tlm_h_serve *s, const char *method, const char *path, const char *body,
	       json_t **json)
{
	char url[1024];
	int code = 0;
	long status;

	snprintf(url, sizeof(url), "%s%s", s->url, path);
	status = tlm_h_http(method, url, body, NULL, json, NULL, &code);
	if (code != 0)
		fail_msg("%s %s: curl error %d (%s)", method, path, code,
			 curl_easy_strerror((CURLcode)code));
	return status;
}

const char *tlm_h_dump(const json_t *o)
{
	static char buf[2048];
	size_t n;

	if (o == NULL)
		return "(null)";
	n = json_dumpb(o, buf, sizeof(buf) - 1, JSON_COMPACT | JSON_SORT_KEYS);
	if (n == 0 || n >= sizeof(buf) - 1)
		return "(too long)";
	buf[n] = '\0';
	return buf;
}

const char *tlm_h_str(const json_t *o, const char *k)
{
	const char *s = json_string_value(json_object_get(o, k));

	if (s == NULL)
		fail_msg("no string \"%s\" in %s", k, tlm_h_dump(o));
	return s;
}

json_t *tlm_h_find(const json_t *o, const char *list, const char *key, const char *value)
{
	json_t *item;
	size_t i;

	json_array_foreach(json_object_get(o, list), i, item)
	{
		const char *s = json_string_value(json_object_get(item, key));

		if (s != NULL && strcmp(s, value) == 0)
			return item;
	}
	return NULL;
}

json_int_t tlm_h_int(const json_t *o, const char *k)
{
	json_t *v = json_object_get(o, k);

	if (!json_is_integer(v))
		fail_msg("no integer \"%s\" in %s", k, tlm_h_dump(o));
	return json_integer_value(v);
}
