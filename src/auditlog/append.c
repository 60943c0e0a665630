/* Appending: open the file safely, lock it, read the last record's hash,
 * write one chained record, fsync, unlock (docs/audit.md). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "auditlog/auditlog_internal.h"
#include "util/clock.h"
#include "util/procid.h"

#define ACTOR_MAX     256
#define LOCK_RETRY_MS 10

struct tlm_auditlog {
	int fd;
	char *path;
	char user[ACTOR_MAX], host[ACTOR_MAX]; /* the actor, looked up once */
};

static int check_end(tlm_auditlog *a, tlm_error *err);

int tlm_auditlog_open(tlm_auditlog **out, const char *path, tlm_error *err)
{
	tlm_auditlog *a = NULL;
	struct stat st;
	int rc = 0;

	*out = NULL;
	if (path == NULL || path[0] == '\0')
		return tlm_error_set(err, TLM_EINVALID, "audit log: empty path");
	if ((a = calloc(1, sizeof(*a))) != NULL)
		a->fd = -1;
	if (a == NULL || (a->path = strdup(path)) == NULL) {
		rc = tlm_error_set(err, TLM_ERROR, "audit log %s: out of memory", path);
		goto done;
	}
	/* O_NOFOLLOW: a symlink planted at the path must not redirect the
	 * records (or the O_CREAT) elsewhere; O_NONBLOCK: a FIFO must not hang
	 * the open; it is refused just below. */
	a->fd = open(path, O_RDWR | O_APPEND | O_CREAT | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK, 0600);
	if (a->fd < 0) {
		rc = tlm_error_set(err, errno == ENOENT ? TLM_ENOTFOUND : TLM_EINVALID,
				   "audit log %s: cannot open for appending: %s%s", path,
				   strerror(errno),
				   errno == ELOOP ? " (a symlink is refused)" : "");
		goto done;
	}
	if (fstat(a->fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		rc = tlm_error_set(err, TLM_EINVALID, "audit log %s: not a regular file", path);
		goto done;
	}
	if (gethostname(a->host, sizeof(a->host) - 1) != 0)
		a->host[0] = '\0';
	tlm_proc_user(a->user, sizeof(a->user));
	if ((rc = check_end(a, err)) != 0)
		goto done;
	*out = a;
	a = NULL;
done:
	tlm_auditlog_free(a);
	return rc;
}

void tlm_auditlog_free(tlm_auditlog *a)
{
	if (a == NULL)
		return;
	if (a->fd >= 0)
		close(a->fd);
	free(a->path);
	free(a);
}

const char *tlm_auditlog_path(const tlm_auditlog *a)
{
	return a->path;
}

/* flock, not fcntl: an flock belongs to the open file, so two handles in
 * one process exclude each other too (fcntl locks are per process).  Polled
 * so that the wait is bounded. */
static int lock(tlm_auditlog *a, tlm_error *err)
{
	struct timespec pause = { 0, LOCK_RETRY_MS * 1000000L };
	long waited = 0;

	while (flock(a->fd, LOCK_EX | LOCK_NB) != 0) {
		if (errno != EWOULDBLOCK && errno != EINTR)
			return tlm_error_set(err, TLM_ERROR, "audit log %s: cannot lock: %s",
					     a->path, strerror(errno));
		if (waited >= TLM_AUDITLOG_LOCK_WAIT_MS)
			return tlm_error_set(err, TLM_ETIMEOUT,
					     "audit log %s: another writer held the lock for %ds",
					     a->path, TLM_AUDITLOG_LOCK_WAIT_MS / 1000);
		nanosleep(&pause, NULL);
		waited += LOCK_RETRY_MS;
	}
	return 0;
}

static int read_all_at(int fd, char *buf, size_t n, off_t at)
{
	size_t got = 0;

	while (got < n) {
		ssize_t r = pread(fd, buf + got, n - got, at + (off_t)got);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return -1;
		got += (size_t)r;
	}
	return 0;
}

static int not_a_record(tlm_auditlog *a, const char *why, tlm_error *err)
{
	return tlm_error_set(err, TLM_EINVALID,
			     "audit log %s: the audit log's last line is not a record (%s): run"
			     " `telemachy audit verify %s`",
			     a->path, why, a->path);
}

/* The hash of the file's last record, read from the end with a bounded
 * buffer (never the whole file); zeros for an empty file. */
static int last_hash(tlm_auditlog *a, char out[TLM_AUDITLOG_HASH_HEX + 1], tlm_error *err)
{
	char why[160];
	struct stat st;
	size_t n, start;
	char *buf = NULL;
	int rc = 0, oom = 0;

	snprintf(out, TLM_AUDITLOG_HASH_HEX + 1, "%s", TLM_AUDITLOG__ZEROS);
	if (fstat(a->fd, &st) != 0)
		return tlm_error_set(err, TLM_ERROR, "audit log %s: %s", a->path, strerror(errno));
	if (st.st_size == 0)
		return 0;
	n = (size_t)st.st_size < TLM_AUDITLOG_LINE_MAX + 1 ? (size_t)st.st_size
							   : TLM_AUDITLOG_LINE_MAX + 1;
	if ((buf = malloc(n)) == NULL)
		return tlm_error_set(err, TLM_ERROR, "audit log %s: out of memory", a->path);
	if (read_all_at(a->fd, buf, n, st.st_size - (off_t)n) != 0) {
		rc = tlm_error_set(err, TLM_ERROR, "audit log %s: cannot read its end", a->path);
		goto done;
	}
	if (buf[n - 1] != '\n') {
		rc = not_a_record(a, "no newline at its end", err);
		goto done;
	}
	for (start = n - 1; start > 0 && buf[start - 1] != '\n'; start--)
		;
	if (start == 0 && n < (size_t)st.st_size) {
		rc = not_a_record(a, "longer than 64 KiB", err);
		goto done;
	}
	if (tlm_auditlog__check_line(buf + start, n - 1 - start, NULL, out, why, sizeof(why),
				     &oom) != TLM_AUDITLOG_INTACT)
		rc = oom ? tlm_error_set(err, TLM_ERROR, "audit log %s: out of memory", a->path)
			 : not_a_record(a, why, err);
done:
	free(buf);
	return rc;
}

/* At open, the end the first append will chain onto is checked, so a
 * damaged file stops a command before it journals anything. */
static int check_end(tlm_auditlog *a, tlm_error *err)
{
	char prev[TLM_AUDITLOG_HASH_HEX + 1];
	int rc;

	if ((rc = lock(a, err)) != 0)
		return rc;
	rc = last_hash(a, prev, err);
	flock(a->fd, LOCK_UN);
	return rc;
}

/* Text for a record: cut at max bytes (not inside a UTF-8 sequence), and
 * with any byte of invalid UTF-8 as '?', since JSON strings are UTF-8.
 * NULL gives JSON null. */
static json_t *text(const char *s, size_t max)
{
	size_t n;
	json_t *v;
	char *copy;

	if (s == NULL)
		return json_null();
	n = strlen(s);
	if (n > max) {
		n = max;
		while (n > 0 && ((unsigned char)s[n] & 0xC0) == 0x80)
			n--;
	}
	if ((v = json_stringn(s, n)) != NULL || (copy = strndup(s, n)) == NULL)
		return v;
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)copy[i] >= 0x80)
			copy[i] = '?';
	v = json_stringn(copy, n);
	free(copy);
	return v;
}

/* The record for ev chained to prev, without its hash.  NULL: out of memory. */
static json_t *build(const tlm_auditlog *a, const tlm_auditlog_event *ev, const char *prev)
{
	char now[TLM_UTC_NOW_MAX];
	json_t *rec = json_object(), *actor = json_object();
	int bad = rec == NULL || actor == NULL;

	tlm_utc_now(now, sizeof(now));
	bad |= json_object_set_new(actor, "user", text(a->user, ACTOR_MAX)) != 0;
	bad |= json_object_set_new(actor, "host", text(a->host, ACTOR_MAX)) != 0;
	bad |= json_object_set_new(actor, "pid", json_integer((json_int_t)getpid())) != 0;
	bad |= json_object_set_new(rec, "v", json_integer(TLM_AUDITLOG_VERSION)) != 0;
	bad |= json_object_set_new(rec, "time", json_string(now)) != 0;
	bad |= json_object_set_new(rec, "run", text(ev->run_id, 64)) != 0;
	bad |= json_object_set_new(rec, "workflow", text(ev->workflow, 1024)) != 0;
	bad |= json_object_set_new(rec, "kind", text(ev->kind, 64)) != 0;
	bad |= json_object_set_new(rec, "name", text(ev->name, 1024)) != 0;
	bad |= json_object_set_new(rec, "from", text(ev->from, 64)) != 0;
	bad |= json_object_set_new(rec, "to", text(ev->to, 64)) != 0;
	bad |= json_object_set_new(rec, "action", text(ev->action, 256)) != 0;
	bad |= json_object_set_new(rec, "detail", text(ev->detail, TLM_AUDITLOG_DETAIL_MAX)) != 0;
	bad |= json_object_set(rec, "actor", actor) != 0;
	bad |= json_object_set_new(rec, "prev", json_string(prev)) != 0;
	json_decref(actor);
	if (bad) {
		json_decref(rec);
		return NULL;
	}
	return rec;
}

static int write_all(int fd, const char *buf, size_t n)
{
	while (n > 0) {
		ssize_t w = write(fd, buf, n);

		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		buf += w;
		n -= (size_t)w;
	}
	return 0;
}

/* The line (canonical JSON with its hash, and a newline) for ev after prev.
 * Caller frees; NULL: out of memory. */
static char *line_for(const tlm_auditlog *a, const tlm_auditlog_event *ev, const char *prev)
{
	char hash[TLM_AUDITLOG_HASH_HEX + 1];
	json_t *rec = build(a, ev, prev);
	char *body = NULL, *line = NULL;
	size_t n;

	if (rec == NULL || tlm_auditlog__hash(rec, hash) != 0 ||
	    json_object_set_new(rec, "hash", json_string(hash)) != 0 ||
	    (body = tlm_auditlog__canonical(rec)) == NULL)
		goto done;
	n = strlen(body);
	if ((line = malloc(n + 2)) != NULL) {
		memcpy(line, body, n);
		memcpy(line + n, "\n", 2);
	}
done:
	free(body);
	json_decref(rec);
	return line;
}

int tlm_auditlog_append(tlm_auditlog *a, const tlm_auditlog_event *ev, tlm_error *err)
{
	char prev[TLM_AUDITLOG_HASH_HEX + 1];
	char *line = NULL;
	int rc;

	if ((rc = lock(a, err)) != 0)
		return rc;
	if ((rc = last_hash(a, prev, err)) != 0)
		goto done;
	if ((line = line_for(a, ev, prev)) == NULL) {
		rc = tlm_error_set(err, TLM_ERROR, "audit log %s: out of memory", a->path);
		goto done;
	}
	/* A short write leaves a torn last line: the next append refuses to
	 * chain onto it, so the damage is reported, never built upon. */
	if (write_all(a->fd, line, strlen(line)) != 0 || fsync(a->fd) != 0)
		rc = tlm_error_set(err, TLM_ERROR, "audit log %s: cannot append a record: %s",
				   a->path, strerror(errno));
done:
	free(line);
	flock(a->fd, LOCK_UN);
	return rc;
}
