/* The request log (reqlog.h). */
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "server/reqlog.h"

#define FIELD_MAX 512

struct tlm_reqlog {
	int fd;
};

int tlm_reqlog_open(tlm_reqlog **out, const char *path, tlm_error *err)
{
	tlm_reqlog *l = calloc(1, sizeof(*l));

	*out = NULL;
	if (l == NULL)
		return tlm_error_set(err, TLM_ERROR, "out of memory");
	l->fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
	if (l->fd < 0) {
		int e = errno;

		free(l);
		return tlm_error_set(err, TLM_EINVALID, "--request-log %s: %s", path, strerror(e));
	}
	*out = l;
	return 0;
}

int64_t tlm_reqlog_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static json_t *capped(const char *s)
{
	return s != NULL ? json_stringn_nocheck(s, strnlen(s, FIELD_MAX)) : json_null();
}

void tlm_reqlog_write(tlm_reqlog *l, int64_t ms, const char *method, const char *path, int status,
		      const char *owner, const char *traceparent)
{
	json_t *o;
	char *line;
	size_t n;

	if (l == NULL)
		return;
	o = json_pack("{s:I, s:o, s:o, s:i, s:o}", "ms", (json_int_t)ms, "method", capped(method),
		      "path", capped(path), "status", status, "owner", capped(owner));
	if (o != NULL && traceparent != NULL)
		json_object_set_new(o, "traceparent", capped(traceparent));
	line = o != NULL ? json_dumps(o, JSON_COMPACT | JSON_ENSURE_ASCII) : NULL;
	json_decref(o);
	if (line == NULL)
		return; /* a log line lost to memory pressure; the request is not */
	n = strlen(line);
	/* O_APPEND: one write is one line, whichever thread writes.  The
	 * terminating NUL becomes the newline (json_dumps' buffer has it). */
	line[n] = '\n';
	(void)!write(l->fd, line, n + 1);
	free(line);
}

void tlm_reqlog_close(tlm_reqlog *l)
{
	if (l == NULL)
		return;
	close(l->fd);
	free(l);
}
