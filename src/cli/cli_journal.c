/* Opening the journal for the recovery commands, and shared judgements. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cli/cli_journal.h"

int tlm_cli_journal_open(const char *dir, tlm_journal **out)
{
	tlm_error err = TLM_ERROR_INIT;
	char *owned = NULL, *db = NULL;
	const char *path;
	struct stat st;
	size_t n;
	int rc = TLM_EXIT_OK;

	*out = NULL;
	if (tlm_journal_locate(dir, &owned, &err) != 0) {
		tlm_log_cmd(TLM_ENGINE_ERROR, NULL, "%s", err.message);
		rc = err.code == TLM_EINVALID ? TLM_EXIT_USAGE : TLM_EXIT_FAILED;
		goto done;
	}
	path = owned;
	if (tlm_journal_is_shared(path))
		goto open; /* a database server: nothing to create by mistake */
	/* Looking must not create: a typo in --state-dir would otherwise leave an
	 * empty journal behind and report "no runs" forever after. */
	n = strlen(path) + sizeof("/" TLM_JOURNAL_FILE);
	if ((db = malloc(n)) == NULL) {
		tlm_log_cmd(TLM_ENGINE_ERROR, NULL, "out of memory");
		rc = TLM_EXIT_FAILED;
		goto done;
	}
	snprintf(db, n, "%s/%s", path, TLM_JOURNAL_FILE);
	if (stat(db, &st) != 0 && errno == ENOENT)
		goto done;
open:
	if (tlm_journal_open(out, path, &err) != 0) {
		tlm_log_cmd(TLM_ENGINE_ERROR, NULL, "%s", err.message);
		rc = TLM_EXIT_FAILED;
	}
done:
	free(db);
	free(owned);
	return rc;
}

void tlm_cli_format_age(char *buf, size_t size, long ms)
{
	long s = ms / 1000;

	if (ms < 0)
		snprintf(buf, size, "-");
	else if (ms < 1000)
		snprintf(buf, size, "%ldms", ms);
	else if (s < 60)
		snprintf(buf, size, "%ld.%lds", s, (ms % 1000) / 100);
	else if (s < 3600)
		snprintf(buf, size, "%ldm%02lds", s / 60, s % 60);
	else if (s < 86400)
		snprintf(buf, size, "%ldh%02ldm", s / 3600, (s % 3600) / 60);
	else
		snprintf(buf, size, "%ldd%02ldh", s / 86400, (s % 86400) / 3600);
}
