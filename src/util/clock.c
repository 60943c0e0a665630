/* Wall-clock times (clock.h). */
#include <stdio.h>
#include <time.h>

#include "util/clock.h"

void tlm_utc_now(char *buf, size_t cap)
{
	struct timespec ts;
	struct tm tm;
	char sec[24];

	clock_gettime(CLOCK_REALTIME, &ts);
	gmtime_r(&ts.tv_sec, &tm);
	strftime(sec, sizeof(sec), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(buf, cap, "%.20s.%03dZ", sec, (int)(ts.tv_nsec / 1000000L % 1000));
}
