/* Who a process is, precisely enough to tell a live owner from a dead one
 * (docs/internals/journal.md, "Owner liveness").  A pid alone is not enough:
 * pids are reused, and a pid means nothing outside its kernel boot and pid
 * namespace.  So a process is named by its pid, its start time (clock ticks
 * since boot, /proc/PID/stat field 22) and its domain: the boot id plus the
 * pid namespace, the set of processes in which that pid can be checked.
 * Internal to the library. */
#ifndef TLM_UTIL_PROCID_H
#define TLM_UTIL_PROCID_H

#include <stddef.h>

#define TLM_PROC_DOMAIN_MAX 96

typedef struct tlm_proc_id {
	long pid;
	unsigned long long start;         /* 0: unknown */
	char domain[TLM_PROC_DOMAIN_MAX]; /* "" when unknown */
} tlm_proc_id;

/* This process.  Never fails: what cannot be read is left unknown, which
 * only makes liveness fall back to the heartbeat.  In builds with test hooks
 * TLM_TEST_DOMAIN replaces the domain, so a test can play "another host". */
void tlm_proc_self(tlm_proc_id *out);

/* Whether process pid, started at start, still runs in domain: 1 alive,
 * 0 dead (no such pid, or another process under that pid), -1 cannot tell
 * from here (another domain, or something unknown). */
int tlm_proc_alive(const char *domain, long pid, unsigned long long start);

/* The login name, else the effective user's name, else "uid N", into out
 * (always terminated): an audit entry always says who, even in a container
 * with no passwd entry. */
void tlm_proc_user(char *out, size_t size);

#endif
