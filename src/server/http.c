/* The HTTP layer: libmicrohttpd with a thread pool on a listening socket we
 * open ourselves.  Owning the socket is what makes the refuse fault real:
 * closing it makes new connections fail with ECONNREFUSED, and a new daemon
 * on a new socket on the same port takes over when the window ends. */
#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "server/addr.h"
#include "server/chaos.h"
#include "server/conns.h"
#include "server/server_internal.h"
#include "telemachy/metrics.h"

/* The first daemon, and one per refuse window at most (chaos.c refuses the
 * refuse faults that would need more); old ones are stopped at the end. */
#define MAX_DAEMONS    (TLM_CHAOS_REFUSE_MAX + 1)
#define MHD_SLACK      64  /* connections shut down but not yet cleaned up by MHD */
#define FD_RESERVE     256 /* descriptors the rest of the server may need */
#define REOPEN_RETRY_S 0.2 /* s between tries to listen again after a refuse window */

struct tlm_http {
	tlm_server *srv;
	tlm_http_opts o;  /* max_conns as the open-files limit allows */
	tlm_conns *conns; /* every daemon's connections, limits and timeout */
	tlm_addr addr;    /* the bound address: port 0 becomes the real port */
	pthread_mutex_t lock;
	pthread_cond_t wake; /* tlm_http_stop ends a refuse window's wait */
	int stopping;
	struct MHD_Daemon *daemons[MAX_DAEMONS]; /* the last one is live */
	int quiesced[MAX_DAEMONS];               /* their listening sockets, closed at stop */
	size_t ndaemons;
	pthread_t reopen;
	int have_reopen; /* reopen was started (and must be joined) */
	int reopening;   /* reopen is still waiting out its window */
};

/* Per-request state: the body, capped at TLM_SRV_BODY_MAX. */
typedef struct request {
	char *body;
	size_t len;
	int too_big;
	int refused; /* answered 403 at once (no client certificate): the rest is ignored */
} request;

/* A socket on h->addr with SO_REUSEADDR, bound, not listening; -1 with errno. */
static int bound_socket(tlm_http *h)
{
	int fd = socket(h->addr.ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;

	if (fd < 0)
		return -1;
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&h->addr.ss, h->addr.len) != 0) {
		int e = errno;

		close(fd);
		errno = e;
		return -1;
	}
	return fd;
}

/* Port 0 becomes a real port, bound by its number: a socket bound to port 0
 * gives the port back when a refuse window shuts it down, and any connect()
 * on the machine may then take it as its source port, so that the listener
 * cannot come back (EADDRINUSE with nobody listening; seen in CI).  A probe
 * finds the number, the listener binds it by name before the probe lets go;
 * a reopen binds h->addr, by then a real port. */
static int open_socket(tlm_http *h, tlm_error *err)
{
	int probe = -1, fd = -1, e;
	char where[160];

	if (tlm_addr_port(&h->addr) == 0) {
		if ((probe = bound_socket(h)) < 0)
			goto fail;
		h->addr.len = sizeof(h->addr.ss);
		getsockname(probe, (struct sockaddr *)&h->addr.ss, &h->addr.len);
	}
	fd = bound_socket(h);
	e = errno;
	if (probe >= 0)
		close(probe);
	errno = e;
	if (fd >= 0 && listen(fd, (int)h->o.backlog) == 0)
		return fd;
fail:
	e = errno;
	if (fd >= 0)
		close(fd);
	tlm_addr_format(&h->addr, where, sizeof(where));
	return tlm_error_set(err, TLM_ERROR, "cannot listen on %s: %s", where, strerror(e));
}

static void client_ip(struct MHD_Connection *c, char *buf, size_t size)
{
	const union MHD_ConnectionInfo *ci =
		MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
	const struct sockaddr *sa = ci ? ci->client_addr : NULL;

	snprintf(buf, size, "unknown");
	if (sa != NULL && sa->sa_family == AF_INET)
		inet_ntop(AF_INET, &((const struct sockaddr_in *)sa)->sin_addr, buf,
			  (socklen_t)size);
	else if (sa != NULL && sa->sa_family == AF_INET6)
		inet_ntop(AF_INET6, &((const struct sockaddr_in6 *)sa)->sin6_addr, buf,
			  (socklen_t)size);
	/* Upstream: all loopback clients share one bucket. */
	if (strncmp(buf, "127.", 4) == 0 || strcmp(buf, "::1") == 0)
		snprintf(buf, size, "loopback");
}

static enum MHD_Result send_response(struct MHD_Connection *c, tlm_srv_response *res)
{
	char *text = res->body ? json_dumps(res->body, JSON_COMPACT) : NULL;
	size_t len = text ? strlen(text) : 0;
	struct MHD_Response *r = MHD_create_response_from_buffer(len, text ? text : (char *)"",
								 text ? MHD_RESPMEM_MUST_FREE
								      : MHD_RESPMEM_PERSISTENT);
	enum MHD_Result ok;
	char retry[16];

	if (r == NULL) {
		free(text);
		return MHD_NO;
	}
	if (text != NULL)
		MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
	if (res->retry_after > 0) {
		snprintf(retry, sizeof(retry), "%u", res->retry_after);
		MHD_add_response_header(r, MHD_HTTP_HEADER_RETRY_AFTER, retry);
	}
	ok = MHD_queue_response(c, (unsigned)res->status, r);
	MHD_destroy_response(r);
	return ok;
}

/* The connection's record in h->conns (NULL when none could be made). */
static tlm_conn *conn_of(struct MHD_Connection *c)
{
	const union MHD_ConnectionInfo *ci =
		MHD_get_connection_info(c, MHD_CONNECTION_INFO_SOCKET_CONTEXT);

	return ci != NULL ? ci->socket_context : NULL;
}

/* Every connection is registered from its accept to its close, so that
 * conns.c can enforce the limits and the request timeout (conns.h). */
static void on_connection(void *cls, struct MHD_Connection *c, void **socket_context,
			  enum MHD_ConnectionNotificationCode toe)
{
	tlm_http *h = cls;
	const union MHD_ConnectionInfo *fd, *addr;

	if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
		fd = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CONNECTION_FD);
		addr = MHD_get_connection_info(c, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
		*socket_context = fd == NULL
					  ? NULL
					  : tlm_conns_open(h->conns, fd->connect_fd,
							   addr != NULL ? addr->client_addr : NULL);
	} else {
		tlm_conns_close(h->conns, *socket_context);
		*socket_context = NULL;
	}
}

/* With client certificates required, a request without a good one is
 * answered 403 as soon as its headers are in, before any of its body is
 * read and before the pipeline (faults, rate limit, auth) sees it: TLS comes
 * first.  Health checks included. */
static enum MHD_Result refuse_uncertified(tlm_http *h, struct MHD_Connection *c, request *r,
					  const char *method, const char *url)
{
	tlm_srv_response res = { 403, NULL, 0 };
	const char *why = NULL;
	enum MHD_Result ok;

	if (tlm_tls_client_ok(c, &why) == 0)
		return MHD_YES;
	r->refused = 1;
	tlm_conns_busy(h->conns, conn_of(c));
	tlm_srv__error(&res, 403, "%s (this server verifies client certificates)", why);
	tlm_reqlog_write(h->srv->reqlog, h->srv->reqlog != NULL ? tlm_reqlog_now_ms() : 0, method,
			 url, 403,
			 MHD_lookup_connection_value(c, MHD_HEADER_KIND, "X-Telemachy-Owner"),
			 MHD_lookup_connection_value(c, MHD_HEADER_KIND, "traceparent"));
	ok = send_response(c, &res);
	json_decref(res.body);
	return ok;
}

/* Collects the body (capped), then runs the pipeline once it is complete. */
static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
				  const char *method, const char *version, const char *upload_data,
				  size_t *upload_size, void **con_cls)
{
	tlm_http *h = cls;
	request *r = *con_cls;
	tlm_srv_response res = { 500, NULL, 0 };
	tlm_srv_request req;
	char ip[INET6_ADDRSTRLEN + 1];
	enum MHD_Result ok;
	int64_t arrived;
	uint64_t t0;
	int drop = 0;

	(void)version;
	if (r == NULL) {
		if ((r = calloc(1, sizeof(*r))) == NULL)
			return MHD_NO;
		*con_cls = r;
		tlm_conns_reading(h->conns, conn_of(c)); /* headers in; the body is next */
		if (h->o.tls != NULL && h->o.tls->client_ca != NULL)
			return refuse_uncertified(h, c, r, method, url);
		return MHD_YES;
	}
	if (r->refused) {
		*upload_size = 0; /* a body after the refusal: read and dropped */
		return MHD_YES;
	}
	if (*upload_size > 0) {
		if (!r->too_big && r->len + *upload_size <= TLM_SRV_BODY_MAX) {
			char *nb = realloc(r->body, r->len + *upload_size + 1);

			if (nb == NULL)
				return MHD_NO;
			memcpy(nb + r->len, upload_data, *upload_size);
			r->body = nb;
			r->len += *upload_size;
		} else {
			r->too_big = 1; /* keep reading, answer 413 at the end */
		}
		*upload_size = 0;
		return MHD_YES;
	}
	/* Complete: from here on the time is ours, not the client's. */
	tlm_conns_busy(h->conns, conn_of(c));
	if (r->too_big) {
		res.status = 413;
		return send_response(c, &res);
	}
	memset(&req, 0, sizeof(req));
	req.method = method;
	req.path = url;
	req.body = r->body;
	req.body_len = r->len;
	req.host = MHD_lookup_connection_value(c, MHD_HEADER_KIND, MHD_HTTP_HEADER_HOST);
	req.origin = MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Origin");
	req.conn = c;
	client_ip(c, ip, sizeof(ip));
	arrived = h->srv->reqlog != NULL ? tlm_reqlog_now_ms() : 0;
	t0 = tlm_metrics_now_us();
	tlm_srv__handle(h->srv, &req, ip,
			MHD_lookup_connection_value(c, MHD_HEADER_KIND, "Authorization"),
			MHD_lookup_connection_value(c, MHD_HEADER_KIND, "X-API-Key"), &res, &drop);
	tlm_metrics_server_request(method, url, drop ? 0 : res.status, tlm_metrics_now_us() - t0);
	tlm_reqlog_write(h->srv->reqlog, arrived, method, url, drop ? 0 : res.status,
			 MHD_lookup_connection_value(c, MHD_HEADER_KIND, "X-Telemachy-Owner"),
			 MHD_lookup_connection_value(c, MHD_HEADER_KIND, "traceparent"));
	/* drop: the change is committed, the answer is lost (a fault). */
	ok = drop ? MHD_NO : send_response(c, &res);
	json_decref(res.body);
	return ok;
}

static void on_completed(void *cls, struct MHD_Connection *c, void **con_cls,
			 enum MHD_RequestTerminationCode toe)
{
	tlm_http *h = cls;
	request *r = *con_cls;

	(void)toe;
	tlm_conns_idle(h->conns, conn_of(c)); /* the next request's time starts */
	if (r != NULL) {
		free(r->body);
		free(r);
		*con_cls = NULL;
	}
}

static struct MHD_Daemon *start_daemon(tlm_http *h, int fd)
{
	const tlm_tls *tls = h->o.tls;
	/* HTTPS: libmicrohttpd's TLS (GnuTLS), from the PEM texts tls.c read
	 * and checked; with a client CA it asks clients for a certificate,
	 * which refuse_uncertified then requires. */
	struct MHD_OptionItem tls_opts[] = {
		{ MHD_OPTION_HTTPS_MEM_CERT, 0, tls != NULL ? tls->cert : NULL },
		{ MHD_OPTION_HTTPS_MEM_KEY, 0, tls != NULL ? tls->key : NULL },
		{ MHD_OPTION_HTTPS_MEM_TRUST, 0, tls != NULL ? tls->client_ca : NULL },
		{ MHD_OPTION_END, 0, NULL }
	};
	unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL | MHD_USE_ITC |
			 MHD_USE_SUSPEND_RESUME;

	if (tls == NULL || tls->cert == NULL)
		tls_opts[0].option = MHD_OPTION_END;
	else if (tls->client_ca == NULL)
		tls_opts[2].option = MHD_OPTION_END;
	if (tls != NULL && tls->cert != NULL)
		flags |= MHD_USE_TLS;
	/* ITC lets MHD_quiesce_daemon() hand the listening socket back.
	 * poll(), not epoll: with epoll, quiescing races a worker that has
	 * just taken the listening socket out of its epoll set at its share
	 * of the connection limit, and libmicrohttpd (0.9.75) aborts the
	 * process ("Failed to remove listen FD from epoll set"); with poll
	 * quiescing only sets a flag.  Each worker holds at most its share
	 * of max_conns, where poll() costs no more than epoll.
	 * MHD's own connection limit is ours plus room for the connections
	 * conns.c has shut down and a worker has not cleaned up yet: past it
	 * MHD stops accepting, and conns.c could no longer make room.  Its
	 * per-IP limit is not used: it refuses the newcomer, where conns.c
	 * closes the connection waiting longest.  The inactivity timeout
	 * covers what conns.c does not watch: an answer the client does not
	 * read. */
	return MHD_start_daemon(flags, 0, NULL, NULL, on_request, h, MHD_OPTION_ARRAY, tls_opts,
				MHD_OPTION_LISTEN_SOCKET, fd, MHD_OPTION_THREAD_POOL_SIZE,
				h->o.threads, MHD_OPTION_CONNECTION_LIMIT,
				h->o.max_conns + MHD_SLACK, MHD_OPTION_CONNECTION_TIMEOUT,
				(unsigned)120, MHD_OPTION_NOTIFY_CONNECTION, on_connection, h,
				MHD_OPTION_NOTIFY_COMPLETED, on_completed, h, MHD_OPTION_END);
}

/* A daemon on fd.  When libmicrohttpd fails, it has closed fd or not,
 * depending on how far it got; we close fd only while it is still the same
 * socket (same inode), never a descriptor another thread opened since. */
static struct MHD_Daemon *start_on(tlm_http *h, int fd)
{
	struct stat before, now;
	int known = fstat(fd, &before) == 0;
	struct MHD_Daemon *d = start_daemon(h, fd);
	int e = errno; /* what libmicrohttpd failed with, for the message */

	if (d == NULL && known && fstat(fd, &now) == 0 && now.st_ino == before.st_ino &&
	    now.st_dev == before.st_dev)
		close(fd);
	errno = e;
	return d;
}

/* A monotonic condition variable: a refuse window must not stretch or shrink
 * when the wall clock is set. */
static void init_wake(tlm_http *h)
{
	pthread_condattr_t ca;

	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&h->wake, &ca);
	pthread_condattr_destroy(&ca);
}

/* Every connection is a descriptor: the open-files limit must hold
 * max_conns, MHD's slack and what the rest of the server needs (the store,
 * task logs and supervisors, NATS, MHD's own).  The soft limit is raised as
 * far as the hard one allows (the usual 1024 would not do); returns how
 * many connections fit. */
static unsigned fit_fd_limit(unsigned want)
{
	rlim_t need = (rlim_t)want + MHD_SLACK + FD_RESERVE;
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) != 0 || rl.rlim_cur == RLIM_INFINITY ||
	    rl.rlim_cur >= need)
		return want;
	rl.rlim_cur = rl.rlim_max == RLIM_INFINITY || rl.rlim_max >= need ? need : rl.rlim_max;
	if (setrlimit(RLIMIT_NOFILE, &rl) != 0 && getrlimit(RLIMIT_NOFILE, &rl) != 0)
		return want;
	if (rl.rlim_cur >= need)
		return want;
	return rl.rlim_cur > MHD_SLACK + FD_RESERVE + 16
		       ? (unsigned)(rl.rlim_cur - MHD_SLACK - FD_RESERVE)
		       : 16;
}

int tlm_http_start(tlm_http **out, tlm_server *srv, const tlm_addr *addr, const tlm_http_opts *o,
		   tlm_addr *bound, tlm_error *err)
{
	tlm_http *h = calloc(1, sizeof(*h));
	int fd, rc;

	*out = NULL;
	if (h == NULL)
		return tlm_error_set(err, TLM_ERROR, "out of memory");
	h->srv = srv;
	h->addr = *addr;
	h->o = *o;
	h->o.max_conns = fit_fd_limit(o->max_conns);
	pthread_mutex_init(&h->lock, NULL);
	init_wake(h);
	h->conns = tlm_conns_new(h->o.max_conns, h->o.max_per_ip, h->o.request_timeout_ms);
	if (h->conns == NULL) {
		tlm_http_stop(h);
		return tlm_error_set(err, TLM_ERROR, "cannot start the connection watcher");
	}
	if ((rc = fd = open_socket(h, err)) < 0) {
		tlm_http_stop(h);
		return rc;
	}
	h->daemons[h->ndaemons] = start_on(h, fd);
	if (h->daemons[h->ndaemons] == NULL) {
		tlm_http_stop(h);
		return tlm_error_set(err, TLM_ERROR, "cannot start the HTTP server");
	}
	h->ndaemons++;
	*bound = h->addr;
	*out = h;
	return 0;
}

unsigned tlm_http_max_connections(const tlm_http *h)
{
	return h->o.max_conns;
}

typedef struct reopen_arg {
	tlm_http *h;
	double seconds;
} reopen_arg;

/* Waits `seconds` on the monotonic clock, or less when tlm_http_stop wakes
 * us.  Under h->lock. */
static void wait_for(tlm_http *h, double seconds)
{
	struct timespec until;

	clock_gettime(CLOCK_MONOTONIC, &until);
	until.tv_sec += (time_t)seconds;
	until.tv_nsec += (long)((seconds - (double)(time_t)seconds) * 1e9);
	if (until.tv_nsec >= 1000000000L) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000L;
	}
	while (!h->stopping && pthread_cond_timedwait(&h->wake, &h->lock, &until) != ETIMEDOUT)
		;
}

static void warn(tlm_http *h, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void warn(tlm_http *h, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	if (h->o.warn == NULL)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	h->o.warn(h->o.warn_ctx, msg);
}

/* A new socket on the same port and a daemon on it.  0, or a TLM_E* code
 * with err set.  Under h->lock. */
static int listen_again(tlm_http *h, tlm_error *err)
{
	int fd;

	if (h->ndaemons == MAX_DAEMONS)
		return tlm_error_set(err, TLM_ERROR, "no daemon slot left");
	if ((fd = open_socket(h, err)) < 0)
		return fd;
	if ((h->daemons[h->ndaemons] = start_on(h, fd)) == NULL)
		return tlm_error_set(err, TLM_ERROR, "cannot start an HTTP daemon: %s",
				     strerror(errno));
	h->ndaemons++;
	return 0;
}

/* Waits out the window, and any refuse added meanwhile that ends later (the
 * listing must not show a refuse active while we listen), then serves again
 * on a new socket, same port.  Until that works (the port taken meanwhile,
 * no descriptors or threads left) it tries again every REOPEN_RETRY_S, a
 * refuse added meanwhile waited out first, and says so through the warn
 * hook: a listener that silently never came back
 * would leave the server deaf for good.  tlm_http_stop ends either wait at
 * once. */
static void *reopen_later(void *arg)
{
	reopen_arg a = *(reopen_arg *)arg;
	tlm_http *h = a.h;
	double left = a.seconds;
	unsigned failed = 0;
	tlm_error err = TLM_ERROR_INIT;

	free(arg);
	pthread_mutex_lock(&h->lock);
	for (;;) {
		while (!h->stopping && left > 0) {
			wait_for(h, left);
			left = h->stopping ? 0 : tlm_chaos_refuse_remaining(h->srv->chaos);
		}
		if (h->stopping || listen_again(h, &err) == 0)
			break;
		if (failed++ == 0)
			warn(h,
			     "the refuse window is over but the server cannot listen again "
			     "yet (%s); trying every %.1f s",
			     err.message, REOPEN_RETRY_S);
		wait_for(h, REOPEN_RETRY_S);
		left = h->stopping ? 0 : tlm_chaos_refuse_remaining(h->srv->chaos);
	}
	if (failed > 0 && !h->stopping)
		warn(h, "listening again, after %u failed attempts", failed);
	h->reopening = 0;
	pthread_mutex_unlock(&h->lock);
	return NULL;
}

void tlm_http_refuse(tlm_http *h, double seconds)
{
	reopen_arg *a;
	int fd, rc;

	pthread_mutex_lock(&h->lock);
	if (h->reopening || h->ndaemons == 0 || h->ndaemons == MAX_DAEMONS ||
	    (a = malloc(sizeof(*a))) == NULL) {
		pthread_mutex_unlock(&h->lock);
		return;
	}
	a->h = h;
	a->seconds = seconds;
	/* The previous window's thread has finished (reopening is 0): join it. */
	if (h->have_reopen)
		pthread_join(h->reopen, NULL);
	/* The thread that reopens first: without it the listener would be
	 * closed for good.  It waits for the lock we hold. */
	rc = pthread_create(&h->reopen, NULL, reopen_later, a);
	h->have_reopen = rc == 0;
	if (rc != 0) {
		free(a);
		warn(h, "cannot start a refuse window: %s", strerror(rc));
		pthread_mutex_unlock(&h->lock);
		return;
	}
	h->reopening = 1;
	/* Connections already open go on; new ones are refused. */
	/* MHD wants a quiesced daemon's socket open until the daemon is
	 * stopped; shutting it down stops listening, so new connections are
	 * refused, and the port can be bound again when the window ends. */
	fd = MHD_quiesce_daemon(h->daemons[h->ndaemons - 1]);
	h->quiesced[h->ndaemons - 1] = fd;
	if (fd >= 0)
		shutdown(fd, SHUT_RDWR);
	pthread_mutex_unlock(&h->lock);
}

void tlm_http_stop(tlm_http *h)
{
	size_t i;

	if (h == NULL)
		return;
	pthread_mutex_lock(&h->lock);
	h->stopping = 1;
	pthread_cond_broadcast(&h->wake);
	pthread_mutex_unlock(&h->lock);
	if (h->have_reopen)
		pthread_join(h->reopen, NULL);
	for (i = 0; i < h->ndaemons; i++) {
		MHD_stop_daemon(h->daemons[i]);
		if (h->quiesced[i] > 0)
			close(h->quiesced[i]);
	}
	tlm_conns_free(h->conns); /* after the daemons: they report closes to it */
	pthread_mutex_destroy(&h->lock);
	pthread_cond_destroy(&h->wake);
	free(h);
}
