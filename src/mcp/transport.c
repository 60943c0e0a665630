/* The stdio transport (docs/mcp.md, "Transport"): messages are lines.  A
 * line is cut at TLM_MCP_LINE_MAX: the rest of it is skipped unread and
 * answered with one error, so a client cannot make the server hold more
 * than that.  Empty lines are ignored; a CR before the newline is dropped
 * (a client on Windows).  End of input is a clean stop. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mcp/mcp_internal.h"

#define CHUNK 65536

typedef struct line_buf {
	char *data;
	size_t len, cap;
	int skipping; /* inside a line that went over the cap */
} line_buf;

static int write_all(int fd, const char *p, size_t n, tlm_error *err)
{
	ssize_t w;

	while (n > 0) {
		w = write(fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return tlm_error_set(err, TLM_ERROR, "writing to the client: %s",
					     w < 0 ? strerror(errno) : "nothing written");
		p += w;
		n -= (size_t)w;
	}
	return 0;
}

/* One reply line (reply owned; freed here). */
static int send_line(int fd, char *reply, tlm_error *err)
{
	size_t n;
	int rc;

	if (reply == NULL)
		return 0;
	n = strlen(reply);
	/* The newline goes separately rather than copying a large answer. */
	rc = write_all(fd, reply, n, err);
	free(reply);
	return rc != 0 ? rc : write_all(fd, "\n", 1, err);
}

static int handle_line(tlm_mcp *m, int out_fd, const char *p, size_t n, tlm_error *err)
{
	char *reply = NULL;

	if (n > 0 && p[n - 1] == '\r')
		n--;
	if (n == 0)
		return 0;
	if (tlm_mcp_handle(m, p, n, &reply, err) != 0)
		return TLM_ERROR;
	return send_line(out_fd, reply, err);
}

/* Appends what was read, handling every complete line in it. */
static int take(tlm_mcp *m, int out_fd, line_buf *b, const char *p, size_t n, tlm_error *err)
{
	const char *nl;
	size_t k;
	char *grown;

	while (n > 0) {
		nl = memchr(p, '\n', n);
		k = nl != NULL ? (size_t)(nl - p) : n;
		if (!b->skipping && b->len + k > TLM_MCP_LINE_MAX) {
			b->skipping = 1;
			b->len = 0;
			if (send_line(out_fd, tlm_mcp_oversize_reply(), err) != 0)
				return TLM_ERROR;
		}
		if (!b->skipping) {
			if (b->len + k > b->cap) {
				size_t cap = b->cap ? b->cap : CHUNK;

				while (cap < b->len + k)
					cap *= 2;
				if ((grown = realloc(b->data, cap)) == NULL)
					return tlm_error_set(err, TLM_ERROR, "out of memory");
				b->data = grown;
				b->cap = cap;
			}
			memcpy(b->data + b->len, p, k);
			b->len += k;
		}
		if (nl == NULL)
			return 0;
		if (!b->skipping && handle_line(m, out_fd, b->data, b->len, err) != 0)
			return TLM_ERROR;
		b->skipping = 0;
		b->len = 0;
		p = nl + 1;
		n -= k + 1;
	}
	return 0;
}

int tlm_mcp_serve(tlm_mcp *m, int in_fd, int out_fd, tlm_error *err)
{
	line_buf b = { NULL, 0, 0, 0 };
	char *chunk = malloc(CHUNK);
	ssize_t r;
	int rc = 0;

	if (chunk == NULL)
		return tlm_error_set(err, TLM_ERROR, "out of memory");
	for (;;) {
		r = read(in_fd, chunk, CHUNK);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0) {
			rc = tlm_error_set(err, TLM_ERROR, "reading from the client: %s",
					   strerror(errno));
			break;
		}
		if (r == 0) {
			/* A last message without its newline still counts. */
			if (!b.skipping && b.len > 0)
				rc = handle_line(m, out_fd, b.data, b.len, err);
			break;
		}
		if ((rc = take(m, out_fd, &b, chunk, (size_t)r, err)) != 0)
			break;
	}
	free(chunk);
	free(b.data);
	return rc;
}
