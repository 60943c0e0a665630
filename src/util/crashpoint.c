/* Test-only crash points (crashpoint.h).  Read once from the environment,
 * and only in builds with test hooks (testhooks.h);
 * only the engine thread passes points (journal writes, client requests), so
 * the counter needs no lock. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util/crashpoint.h"
#include "util/testhooks.h"

static int loaded;
static long crash_at;        /* 0: never */
static const char *crash_on; /* a point-name prefix, or NULL */
static long crash_on_nth, seen_on;
static const char *log_path;
static long passed;

static void load(void)
{
	const char *v = tlm_testhook_env("TLM_CRASH_AT"), *n = tlm_testhook_env("TLM_CRASH_ON_NTH");

	loaded = 1;
	crash_at = v != NULL ? strtol(v, NULL, 10) : 0;
	crash_on = tlm_testhook_env("TLM_CRASH_ON");
	crash_on_nth = n != NULL ? strtol(n, NULL, 10) : 1;
	log_path = tlm_testhook_env("TLM_CRASH_LOG");
}

void tlm_crashpoint(const char *what)
{
	FILE *f;

	if (!loaded)
		load();
	if (crash_at <= 0 && crash_on == NULL && log_path == NULL)
		return;
	passed++;
	if (log_path != NULL && (f = fopen(log_path, "a")) != NULL) {
		fprintf(f, "%ld %s\n", passed, what);
		fclose(f);
	}
	if (passed == crash_at ||
	    (crash_on != NULL && strncmp(what, crash_on, strlen(crash_on)) == 0 &&
	     ++seen_on == crash_on_nth))
		kill(getpid(), SIGKILL);
}
