/* Process identity for owner liveness (procid.h).  Linux only: /proc gives
 * the start time, the boot id and the pid namespace. */
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util/procid.h"
#include "util/testhooks.h"

/* The start time of pid in clock ticks since boot, 0 when unreadable or
 * when the process has exited (a zombie keeps its stat line until reaped,
 * but it does nothing any more).  The command name (field 2) may hold spaces
 * and parentheses, so parsing starts after its last ')'. */
static unsigned long long start_of(long pid)
{
	char path[64], buf[1024], *p;
	unsigned long long start = 0;
	size_t n;
	FILE *f;
	int field;

	snprintf(path, sizeof(path), "/proc/%ld/stat", pid);
	if ((f = fopen(path, "re")) == NULL)
		return 0;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	if ((p = strrchr(buf, ')')) == NULL || p[1] != ' ' || p[2] == 'Z' || p[2] == 'X')
		return 0;
	/* After ')' come field 3 (state) onwards; field 22 is the start time. */
	for (field = 2; field < 22 && p != NULL; field++)
		p = strchr(p + 1, ' ');
	if (p == NULL || sscanf(p + 1, "%llu", &start) != 1)
		return 0;
	return start;
}

static void domain_of_self(char *out, size_t cap)
{
	char boot[64] = "", ns[64] = "";
	FILE *f = fopen("/proc/sys/kernel/random/boot_id", "re");
	ssize_t n;

	if (f != NULL) {
		if (fgets(boot, sizeof(boot), f) == NULL)
			boot[0] = '\0';
		fclose(f);
		boot[strcspn(boot, "\n")] = '\0';
	}
	n = readlink("/proc/self/ns/pid", ns, sizeof(ns) - 1);
	ns[n > 0 ? n : 0] = '\0';
	if (boot[0] == '\0' || ns[0] == '\0') {
		out[0] = '\0';
		return;
	}
	snprintf(out, cap, "%s/%s", boot, ns);
}

void tlm_proc_self(tlm_proc_id *out)
{
	const char *test = tlm_testhook_env("TLM_TEST_DOMAIN");

	memset(out, 0, sizeof(*out));
	out->pid = (long)getpid();
	out->start = start_of(out->pid);
	if (test != NULL)
		snprintf(out->domain, sizeof(out->domain), "%s", test);
	else
		domain_of_self(out->domain, sizeof(out->domain));
}

int tlm_proc_alive(const char *domain, long pid, unsigned long long start)
{
	tlm_proc_id self;
	unsigned long long now;

	tlm_proc_self(&self);
	if (domain == NULL || domain[0] == '\0' || self.domain[0] == '\0' ||
	    strcmp(domain, self.domain) != 0 || start == 0 || pid <= 0)
		return -1;
	/* A reused pid has another start time. */
	now = start_of(pid);
	return now != 0 && now == start;
}

#define PWBUF_BYTES 4096 /* getpwuid_r's scratch space; an entry that needs more is unnamed */

void tlm_proc_user(char *out, size_t size)
{
	char buf[PWBUF_BYTES];
	struct passwd pw, *found = NULL;

	if (getlogin_r(out, size) == 0 && out[0] != '\0')
		return;
	if (getpwuid_r(geteuid(), &pw, buf, sizeof(buf), &found) == 0 && found != NULL &&
	    found->pw_name != NULL) {
		snprintf(out, size, "%s", found->pw_name);
		return;
	}
	snprintf(out, size, "uid %lu", (unsigned long)geteuid());
}
