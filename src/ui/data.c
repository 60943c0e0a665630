/* The journal, for one request: opened, read, closed.  Nothing is held
 * between requests, so the dashboard never keeps a lock and sees every
 * writer's commits (docs/ui.md, "How it reads the journal").  Reads open
 * it read-only (tlm_journal_open_readonly): an ordinary open starts a
 * migration transaction, a write lock a busy engine would wait for.
 * Opening a directory that holds no journal creates none: no journal, no
 * runs. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "ui/ui_internal.h"

int tlm_ui__journal_rw(tlm_ui *ui, tlm_journal **j, tlm_error *err)
{
	char db[4096];
	struct stat st;

	*j = NULL;
	if (!ui->shared) {
		if ((size_t)snprintf(db, sizeof(db), "%s/%s", ui->journal_where,
				     TLM_JOURNAL_FILE) >= sizeof(db))
			return tlm_error_set(err, TLM_EINVALID,
					     "the state directory's path is too long");
		if (stat(db, &st) != 0 && errno == ENOENT)
			return 0;
	}
	return tlm_journal_open(j, ui->journal_where, err);
}

int tlm_ui__journal(tlm_ui *ui, tlm_journal **j, tlm_error *err)
{
	int rc = tlm_journal_open_readonly(j, ui->journal_where, err), version = 0;

	if (rc == TLM_ENOTFOUND) {
		*j = NULL;
		return 0;
	}
	if (rc != 0)
		return rc;
	if (tlm_journal_schema_version(*j, &version, err) == 0 &&
	    version == TLM_JOURNAL_SCHEMA_VERSION)
		return 0;
	/* A journal an older telemachy wrote: the ordinary open migrates it
	 * (once); the readers need the current schema. */
	tlm_journal_close(*j);
	*j = NULL;
	return tlm_ui__journal_rw(ui, j, err);
}

int tlm_ui__run_id_ok(const char *id)
{
	size_t i;

	for (i = 0; id[i] != '\0'; i++)
		if (!((id[i] >= 'a' && id[i] <= 'z') || (id[i] >= '0' && id[i] <= '9')) ||
		    i >= TLM_JOURNAL_RUN_ID_LEN)
			return 0;
	return i == TLM_JOURNAL_RUN_ID_LEN;
}

long long tlm_ui__ms(const char *iso)
{
	struct tm tm;
	int ms = 0, n = 0;

	if (iso == NULL)
		return -1;
	memset(&tm, 0, sizeof(tm));
	if (sscanf(iso, "%4d-%2d-%2dT%2d:%2d:%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
		   &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &n) != 6)
		return -1;
	if (iso[n] == '.')
		(void)sscanf(iso + n + 1, "%3d", &ms);
	tm.tm_year -= 1900;
	tm.tm_mon -= 1;
	return (long long)timegm(&tm) * 1000 + ms;
}

long long tlm_ui__now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void tlm_ui__span(char *buf, size_t size, long long ms)
{
	long long s = ms / 1000;

	if (ms < 0)
		snprintf(buf, size, "-");
	else if (ms < 1000)
		snprintf(buf, size, "%lld ms", ms);
	else if (s < 60)
		snprintf(buf, size, "%lld.%lld s", s, (ms % 1000) / 100);
	else if (s < 3600)
		snprintf(buf, size, "%lld min %02lld s", s / 60, s % 60);
	else if (s < 86400)
		snprintf(buf, size, "%lld h %02lld min", s / 3600, (s % 3600) / 60);
	else
		snprintf(buf, size, "%lld d %02lld h", s / 86400, (s % 86400) / 3600);
}
