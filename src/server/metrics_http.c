/* The metrics exporter: GET /metrics on a loopback address of its own,
 * served by libmicrohttpd's own thread, which renders the process-wide
 * registry at each scrape (docs/metrics.md, "Scraping").  Loopback only:
 * the text tells what this machine runs, and this listener has no auth. */
#include <errno.h>
#include <microhttpd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "server/addr.h"
#include "server/server_internal.h"
#include "telemachy/metrics.h"
#include "telemachy/server.h"

struct tlm_metrics_exporter {
	struct MHD_Daemon *d;
	tlm_addr addr;
	char address[128];
};

static enum MHD_Result reply(struct MHD_Connection *c, unsigned status, char *text, size_t len)
{
	struct MHD_Response *r;
	enum MHD_Result ok;

	r = text != NULL ? MHD_create_response_from_buffer(len, text, MHD_RESPMEM_MUST_FREE)
			 : MHD_create_response_from_buffer(0, (void *)"", MHD_RESPMEM_PERSISTENT);
	if (r == NULL) {
		free(text);
		return MHD_NO;
	}
	if (text != NULL)
		MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, TLM_METRICS_CONTENT_TYPE);
	ok = MHD_queue_response(c, status, r);
	MHD_destroy_response(r);
	return ok;
}

/* A page on a loopback port is still within a browser's reach through DNS
 * rebinding: the Host must name loopback, as for serve (docs/serve.md). */
static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
				  const char *method, const char *version, const char *upload_data,
				  size_t *upload_size, void **con_cls)
{
	tlm_error err = TLM_ERROR_INIT;
	char *text = NULL;
	size_t len = 0;

	(void)cls;
	(void)version;
	(void)upload_data;
	if (*con_cls == NULL) {
		*con_cls = c; /* headers in; answer once the (ignored) body is read */
		return MHD_YES;
	}
	if (*upload_size > 0) {
		*upload_size = 0;
		return MHD_YES;
	}
	if (!tlm_addr_host_is_loopback(
		    MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_HOST)))
		return reply(c, MHD_HTTP_FORBIDDEN, NULL, 0);
	if (strcmp(url, "/metrics") != 0)
		return reply(c, MHD_HTTP_NOT_FOUND, NULL, 0);
	if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0)
		return reply(c, MHD_HTTP_METHOD_NOT_ALLOWED, NULL, 0);
	if (tlm_metrics_render(&text, &len, &err) != 0)
		return reply(c, MHD_HTTP_INTERNAL_SERVER_ERROR, NULL, 0);
	return reply(c, MHD_HTTP_OK, text, len);
}

static int open_socket(tlm_metrics_exporter *x, const char *listen_text, tlm_error *err)
{
	int fd = socket(x->addr.ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;

	if (fd < 0)
		return tlm_error_set(err, TLM_ERROR, "--metrics-listen: socket: %s",
				     strerror(errno));
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&x->addr.ss, x->addr.len) != 0 || listen(fd, 16) != 0) {
		int e = errno;

		close(fd);
		return tlm_error_set(err, TLM_ERROR, "--metrics-listen %s: cannot listen: %s",
				     listen_text, strerror(e));
	}
	x->addr.len = sizeof(x->addr.ss);
	getsockname(fd, (struct sockaddr *)&x->addr.ss, &x->addr.len);
	return fd;
}

int tlm_metrics_exporter_start(tlm_metrics_exporter **out, const char *listen_text, tlm_error *err)
{
	tlm_metrics_exporter *x = calloc(1, sizeof(*x));
	unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG;
	int fd = -1, rc = 0;

	*out = NULL;
	if (x == NULL)
		return tlm_error_set(err, TLM_ERROR, "out of memory");
	if ((rc = tlm_addr_parse(&x->addr, listen_text, err)) != 0)
		goto done;
	if (!tlm_addr_is_loopback(&x->addr)) {
		rc = tlm_error_set(
			err, TLM_EINVALID,
			"--metrics-listen %s: only a loopback address (127.0.0.1, [::1]): "
			"the exporter has no auth (docs/metrics.md)",
			listen_text);
		goto done;
	}
	if ((rc = fd = open_socket(x, listen_text, err)) < 0)
		goto done;
	rc = 0;
	if (x->addr.ss.ss_family == AF_INET6)
		flags |= MHD_USE_IPv6;
	/* A few scrapers at most: a small connection limit and a short
	 * timeout keep an idle client from holding the thread's sockets. */
	x->d = MHD_start_daemon(flags, 0, NULL, NULL, on_request, x, MHD_OPTION_LISTEN_SOCKET, fd,
				MHD_OPTION_CONNECTION_LIMIT, (unsigned)16,
				MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)10, MHD_OPTION_END);
	if (x->d == NULL) {
		close(fd);
		rc = tlm_error_set(err, TLM_ERROR, "--metrics-listen %s: cannot start the listener",
				   listen_text);
		goto done;
	}
	tlm_addr_format(&x->addr, x->address, sizeof(x->address));
	*out = x;
	x = NULL;
done:
	free(x);
	return rc;
}

const char *tlm_metrics_exporter_address(const tlm_metrics_exporter *x)
{
	return x->address;
}

void tlm_metrics_exporter_stop(tlm_metrics_exporter *x)
{
	if (x == NULL)
		return;
	MHD_stop_daemon(x->d);
	free(x);
}

/* One gauge family of the store's documents by status: the statuses the
 * API accepts (api_agents.c, api_tasks.c), so the series are bounded. */
static void gauge(tlm_metrics_buf *b, tlm_store *st, tlm_store_kind kind, const char *name,
		  const char *help, const char *const *states)
{
	size_t n;

	tlm_metrics_append(b, "# HELP %s %s\n# TYPE %s gauge\n", name, help, name);
	for (; *states != NULL; states++)
		if (tlm_store_count_status(st, kind, *states, &n) == 0)
			tlm_metrics_append(b, "%s{state=\"%s\"} %zu\n", name, *states, n);
}

void tlm_server_metrics_collect(void *ctx, tlm_metrics_buf *b)
{
	static const char *const tasks[] = { "pending", "running", "completed",
					     "failed",  "blocked", NULL };
	static const char *const agents[] = { "online", "offline", NULL };
	tlm_server *srv = ctx;

	gauge(b, srv->store, TLM_STORE_TASKS, "telemachy_server_tasks",
	      "Tasks the built-in control plane holds, by state.", tasks);
	gauge(b, srv->store, TLM_STORE_AGENTS, "telemachy_server_agents",
	      "Agents the built-in control plane holds, by state (online: started).", agents);
}
