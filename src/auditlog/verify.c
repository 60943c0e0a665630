/* Verifying: every line a record whose hash matches it, every prev the hash
 * of the line before (zeros for the first), read with a bounded buffer. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auditlog/auditlog_internal.h"

enum { LINE_EOF = 0, LINE_OK, LINE_LONG };

/* Reads one line into buf (at most cap bytes, newline not kept); *nl says
 * whether it ended with a newline.  A longer line is LINE_LONG. */
static int read_line(FILE *f, char *buf, size_t cap, size_t *len, int *nl)
{
	int c;

	*len = 0;
	*nl = 0;
	while ((c = getc(f)) != EOF) {
		if (c == '\n') {
			*nl = 1;
			return LINE_OK;
		}
		if (*len == cap)
			return LINE_LONG;
		buf[(*len)++] = (char)c;
	}
	return *len > 0 ? LINE_OK : LINE_EOF;
}

static void flaw_at(tlm_auditlog_report *out, long line, tlm_auditlog_flaw flaw, const char *why)
{
	out->line = line;
	out->flaw = flaw;
	snprintf(out->why, sizeof(out->why), "%s", why);
}

/* Checks line number n (len bytes in buf) against the chain so far. */
static int check(tlm_auditlog_report *out, long n, const char *buf, size_t len, int nl,
		 tlm_error *err)
{
	char why[160], hash[TLM_AUDITLOG_HASH_HEX + 1];
	tlm_auditlog_flaw flaw;
	int oom = 0;

	flaw = tlm_auditlog__check_line(buf, len, out->last_hash, hash, why, sizeof(why), &oom);
	if (oom)
		return tlm_error_set(err, TLM_ERROR, "audit log: out of memory");
	if (flaw == TLM_AUDITLOG_BAD_PREV && n == 1)
		snprintf(why, sizeof(why),
			 "prev of the first record is not 64 zeros (lines"
			 " before it deleted?)");
	else if (flaw == TLM_AUDITLOG_BAD_PREV)
		snprintf(why, sizeof(why),
			 "prev does not match line %ld's hash (a line deleted or reordered?)",
			 n - 1);
	else if (flaw == TLM_AUDITLOG_INTACT && !nl) {
		flaw = TLM_AUDITLOG_TORN;
		snprintf(why, sizeof(why), "no newline at the end (a torn or truncated write?)");
	}
	if (flaw != TLM_AUDITLOG_INTACT) {
		flaw_at(out, n, flaw, why);
		return 0;
	}
	memcpy(out->last_hash, hash, sizeof(hash));
	out->records++;
	return 0;
}

int tlm_auditlog_verify(const char *path, tlm_auditlog_report *out, tlm_error *err)
{
	char *buf = NULL;
	size_t len;
	long n = 0;
	int rc = 0, nl, got;
	FILE *f;

	memset(out, 0, sizeof(*out));
	snprintf(out->last_hash, sizeof(out->last_hash), "%s", TLM_AUDITLOG__ZEROS);
	if ((f = fopen(path, "re")) == NULL)
		return tlm_error_set(err, errno == ENOENT ? TLM_ENOTFOUND : TLM_ERROR,
				     "audit log %s: cannot open: %s", path, strerror(errno));
	if ((buf = malloc(TLM_AUDITLOG_LINE_MAX)) == NULL) {
		rc = tlm_error_set(err, TLM_ERROR, "audit log %s: out of memory", path);
		goto done;
	}
	while (out->flaw == TLM_AUDITLOG_INTACT && rc == 0 &&
	       (got = read_line(f, buf, TLM_AUDITLOG_LINE_MAX, &len, &nl)) != LINE_EOF) {
		n++;
		if (got == LINE_LONG)
			flaw_at(out, n, TLM_AUDITLOG_TOO_LONG, "longer than 64 KiB: not a record");
		else
			rc = check(out, n, buf, len, nl, err);
	}
	if (rc == 0 && ferror(f))
		rc = tlm_error_set(err, TLM_ERROR, "audit log %s: read error", path);
done:
	free(buf);
	fclose(f);
	return rc;
}
