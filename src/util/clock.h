/* Wall-clock times as the journal writes them.  Internal. */
#ifndef TLM_UTIL_CLOCK_H
#define TLM_UTIL_CLOCK_H

#include <stddef.h>

/* Now, as ISO-8601 UTC with milliseconds ("2026-12-02T09:14:35.168Z", 24
 * bytes and the NUL), like the journal's SQL strftime('%Y-%m-%dT%H:%M:%fZ'),
 * so that log records, audit records and journal rows sort and compare
 * together.  cap >= TLM_UTC_NOW_MAX. */
#define TLM_UTC_NOW_MAX 32
void tlm_utc_now(char *buf, size_t cap);

#endif
