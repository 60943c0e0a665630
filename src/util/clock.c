/* Wall-clock times (clock.h). */
#include <string.h>
#include <time.h>

#include "util/clock.h"

void tlm_utc_now(char *buf, size_t cap)
{
	/* The seconds' text is kept per thread: the journal stamps every row
	 * it writes, and strftime with gmtime_r was 1 % of the engine's CPU. */
	static __thread time_t sec_of = (time_t)-1;
	static __thread char sec[24];
	struct timespec ts;
	struct tm tm;
	char out[TLM_UTC_NOW_MAX];
	size_t n;
	int ms;

	clock_gettime(CLOCK_REALTIME, &ts);
	if (ts.tv_sec != sec_of) {
		gmtime_r(&ts.tv_sec, &tm);
		if (strftime(sec, sizeof(sec), "%Y-%m-%dT%H:%M:%S", &tm) == 0)
			sec[0] = '\0';
		sec[20] = '\0'; /* as "%.20s" would */
		sec_of = ts.tv_sec;
	}
	ms = (int)(ts.tv_nsec / 1000000L % 1000);
	n = strlen(sec);
	memcpy(out, sec, n);
	out[n++] = '.';
	out[n++] = (char)('0' + ms / 100);
	out[n++] = (char)('0' + ms / 10 % 10);
	out[n++] = (char)('0' + ms % 10);
	out[n++] = 'Z';
	out[n] = '\0';
	if (cap > 0) {
		n = n < cap ? n : cap - 1;
		memcpy(buf, out, n);
		buf[n] = '\0';
	}
}
