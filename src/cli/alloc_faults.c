/* Allocation-failure injection for the test builds (curl's torture tests):
 * with TLM_ALLOC_FAIL_AT=N the N-th allocation of the main thread fails —
 * malloc, calloc, realloc, strdup, strndup, vasprintf called from
 * telemachy's own code (the linker wraps them: CMakeLists.txt), and every
 * allocation of jansson (its allocator, src/util/json.c, calls malloc).
 * TLM_ALLOC_LOG=FILE writes how many allocations the run made, so a test
 * can walk them all (tests/alloc/, docs/internals/engine.md "Allocation
 * failures").  Other
 * threads (libnats, the HTTP server) are not counted: their order varies
 * from run to run, the main thread's does not.  Built only with test hooks
 * (util/testhooks.h); a release binary has none of this. */
#include "cli/cli.h"

#ifdef TLM_TEST_HOOKS
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void *__real_malloc(size_t n);
void *__real_calloc(size_t n, size_t size);
void *__real_realloc(void *p, size_t n);
char *__real_strdup(const char *s);
char *__real_strndup(const char *s, size_t n);
int __real_vasprintf(char **out, const char *fmt, va_list ap);
void *__wrap_malloc(size_t n);
void *__wrap_calloc(size_t n, size_t size);
void *__wrap_realloc(void *p, size_t n);
char *__wrap_strdup(const char *s);
char *__wrap_strndup(const char *s, size_t n);
int __wrap_vasprintf(char **out, const char *fmt, va_list ap);

static int armed;
static long fail_at, count;
static pthread_t main_thread;
static const char *log_path;

/* Counts one allocation of the main thread; 1 when it is the one to fail. */
static int fail_now(void)
{
	if (!armed || !pthread_equal(pthread_self(), main_thread))
		return 0;
	if (++count != fail_at)
		return 0;
	errno = ENOMEM;
	return 1;
}

void *__wrap_malloc(size_t n)
{
	return fail_now() ? NULL : __real_malloc(n);
}

void *__wrap_calloc(size_t n, size_t size)
{
	return fail_now() ? NULL : __real_calloc(n, size);
}

void *__wrap_realloc(void *p, size_t n)
{
	return fail_now() ? NULL : __real_realloc(p, n);
}

char *__wrap_strdup(const char *s)
{
	return fail_now() ? NULL : __real_strdup(s);
}

char *__wrap_strndup(const char *s, size_t n)
{
	return fail_now() ? NULL : __real_strndup(s, n);
}

int __wrap_vasprintf(char **out, const char *fmt, va_list ap)
{
	if (fail_now()) {
		*out = NULL;
		return -1;
	}
	return __real_vasprintf(out, fmt, ap);
}

static void write_log(void)
{
	FILE *f;

	armed = 0;
	if (log_path != NULL && (f = fopen(log_path, "w")) != NULL) {
		fprintf(f, "%ld\n", count);
		fclose(f);
	}
}

void tlm_cli_alloc_faults_start(void)
{
	const char *at = getenv("TLM_ALLOC_FAIL_AT");

	log_path = getenv("TLM_ALLOC_LOG");
	if (at == NULL && log_path == NULL)
		return;
	fail_at = at != NULL ? strtol(at, NULL, 10) : 0;
	main_thread = pthread_self();
	if (log_path != NULL)
		atexit(write_log);
	armed = 1;
}

#else

void tlm_cli_alloc_faults_start(void)
{
}

#endif
