/* The dashboard's HTTP server: libmicrohttpd with a small thread pool on a
 * listening socket opened here (so that port 0 becomes a known port before
 * the URL is printed), TLS through the same loader as `serve`
 * (src/server/tls.c).  Paths reach the router undecoded: libmicrohttpd's
 * own unescaping is turned off, because a decoded "%2F" inside a subject
 * could no longer be told from a separator (router.c decodes per segment). */
#include <errno.h>
#include <microhttpd.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "ui/ui_internal.h"
#include "util/secret.h"

#define CONN_LIMIT   256
#define CONN_TIMEOUT 10    /* seconds for a request's headers and body */
#define MEMORY_LIMIT 65536 /* bytes per connection: the request line and headers */

typedef struct pending {
	char *body;
	size_t len;
	int too_big;
} pending;

static size_t no_unescape(void *cls, struct MHD_Connection *c, char *s)
{
	(void)cls;
	(void)c;
	return strlen(s);
}

static enum MHD_Result send_resp(struct MHD_Connection *c, tlm_ui_resp *res)
{
	struct MHD_Response *m = MHD_create_response_from_buffer(
		res->len, res->body != NULL ? res->body : (char *)"",
		res->body != NULL ? MHD_RESPMEM_MUST_FREE : MHD_RESPMEM_PERSISTENT);
	enum MHD_Result ok;

	if (m == NULL)
		return MHD_NO;
	res->body = NULL; /* the response owns it now */
	tlm_ui__headers(m, res);
	ok = MHD_queue_response(c, res->status, m);
	MHD_destroy_response(m);
	return ok;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *c, const char *url,
				  const char *method, const char *version, const char *upload_data,
				  size_t *upload_size, void **con_cls)
{
	tlm_ui *ui = cls;
	pending *p = *con_cls;
	tlm_ui_resp res;
	tlm_ui_req req;
	enum MHD_Result ok;

	(void)version;
	if (p == NULL) {
		if ((p = calloc(1, sizeof(*p))) == NULL)
			return MHD_NO;
		*con_cls = p;
		return MHD_YES;
	}
	if (*upload_size > 0) {
		/* Over the cap the rest is read and dropped, then refused. */
		if (!p->too_big && p->len + *upload_size <= TLM_UI_BODY_MAX) {
			char *n = realloc(p->body, p->len + *upload_size + 1);

			if (n == NULL)
				return MHD_NO;
			p->body = n;
			memcpy(p->body + p->len, upload_data, *upload_size);
			p->len += *upload_size;
			p->body[p->len] = '\0';
		} else {
			p->too_big = 1;
		}
		*upload_size = 0;
		return MHD_YES;
	}
	memset(&res, 0, sizeof(res));
	req.ui = ui;
	req.c = c;
	req.method = method;
	req.path = url;
	req.body = p->body != NULL ? p->body : "";
	req.body_len = p->len;
	if (strlen(url) > TLM_UI_URL_MAX)
		tlm_ui__error(&res, 414, "the path is longer than %d bytes", TLM_UI_URL_MAX);
	else if (p->too_big)
		tlm_ui__error(&res, 413, "the body is larger than %d bytes", TLM_UI_BODY_MAX);
	else if (tlm_ui__check(&req, &res) == 0)
		tlm_ui__route(&req, &res);
	ok = send_resp(c, &res);
	tlm_ui__resp_clear(&res);
	return ok;
}

static void on_done(void *cls, struct MHD_Connection *c, void **con_cls,
		    enum MHD_RequestTerminationCode toe)
{
	pending *p = *con_cls;

	(void)cls;
	(void)c;
	(void)toe;
	if (p != NULL) {
		free(p->body);
		free(p);
		*con_cls = NULL;
	}
}

/* Where detached actions write: a file beside a SQLite journal, else
 * nowhere (a shared journal has no directory of ours). */
static int action_log(tlm_ui *ui, tlm_error *err)
{
	size_t n;

	if (ui->shared)
		return 0;
	n = strlen(ui->journal_where) + sizeof("/ui-actions.log");
	if ((ui->action_log = malloc(n)) == NULL)
		return tlm_error_set(err, TLM_ERROR, "out of memory");
	snprintf(ui->action_log, n, "%s/ui-actions.log", ui->journal_where);
	return 0;
}

int tlm_ui_new(tlm_ui **out, const tlm_ui_opts *opts, tlm_error *err)
{
	tlm_ui *ui = calloc(1, sizeof(*ui));
	int rc;

	*out = NULL;
	if (ui == NULL)
		return tlm_error_set(err, TLM_ERROR, "out of memory");
	ui->o = *opts;
	if (ui->o.listen == NULL)
		ui->o.listen = "127.0.0.1:0";
	if (ui->o.exe == NULL)
		ui->o.exe = "/proc/self/exe";
	if (ui->o.threads == 0)
		ui->o.threads = 4;
	if ((rc = tlm_addr_parse(&ui->addr, ui->o.listen, err)) != 0)
		goto fail;
	ui->loopback = tlm_addr_is_loopback(&ui->addr);
	ui->wildcard = tlm_addr_is_wildcard(&ui->addr);
	if (opts->access_token != NULL) {
		if ((rc = tlm_secret_check_key(opts->access_token, "the access token", err)) != 0)
			goto fail;
		if ((ui->token = strdup(opts->access_token)) == NULL) {
			rc = tlm_error_set(err, TLM_ERROR, "out of memory");
			goto fail;
		}
	}
	/* Off loopback whoever reaches the port could cancel and tear down
	 * runs: a token is required, and it must not travel in clear text. */
	if (!ui->loopback && ui->token == NULL) {
		rc = tlm_error_set(
			err, TLM_EINVALID,
			"--listen %s is not a loopback address: an access token is "
			"required (--token-file FILE, TELEMACHY_UI_TOKEN_FILE or TELEMACHY_UI_TOKEN)",
			ui->o.listen);
		goto fail;
	}
	if ((rc = tlm_tls_load(&ui->tls, opts->tls_cert_file, opts->tls_key_file, NULL, err)) != 0)
		goto fail;
	if (!ui->loopback && ui->tls.cert == NULL && !opts->insecure_http) {
		rc = tlm_error_set(err, TLM_EINVALID,
				   "--listen %s is not a loopback address: HTTPS is required "
				   "(--tls-cert and --tls-key), or --insecure-http",
				   ui->o.listen);
		goto fail;
	}
	if ((rc = tlm_secret_random_key(&ui->csrf, err)) != 0 ||
	    (rc = tlm_journal_locate(opts->journal, &ui->journal_where, err)) != 0)
		goto fail;
	ui->shared = tlm_journal_is_shared(ui->journal_where);
	if ((rc = action_log(ui, err)) != 0)
		goto fail;
	*out = ui;
	return 0;
fail:
	tlm_ui_free(ui);
	return rc;
}

static int open_socket(tlm_ui *ui, tlm_error *err)
{
	int fd = socket(ui->addr.ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0), one = 1;

	if (fd < 0)
		return tlm_error_set(err, TLM_ERROR, "socket: %s", strerror(errno));
	setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(fd, (struct sockaddr *)&ui->addr.ss, ui->addr.len) != 0 || listen(fd, 64) != 0) {
		int e = errno;

		close(fd);
		return tlm_error_set(err, TLM_ERROR, "cannot listen on %s: %s", ui->o.listen,
				     strerror(e));
	}
	ui->addr.len = sizeof(ui->addr.ss);
	getsockname(fd, (struct sockaddr *)&ui->addr.ss, &ui->addr.len);
	return fd;
}

int tlm_ui_start(tlm_ui *ui, tlm_error *err)
{
	unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_ERROR_LOG;
	int fd = open_socket(ui, err);
	struct MHD_OptionItem tls[] = {
		{ MHD_OPTION_HTTPS_MEM_CERT, 0, ui->tls.cert },
		{ MHD_OPTION_HTTPS_MEM_KEY, 0, ui->tls.key },
		{ MHD_OPTION_END, 0, NULL },
	};

	/* The TLS options only with TLS: libmicrohttpd complains of them
	 * otherwise. */
	if (ui->tls.cert == NULL)
		tls[0].option = MHD_OPTION_END;
	if (fd < 0)
		return fd;
	if (ui->tls.cert != NULL)
		flags |= MHD_USE_TLS;
	if (ui->addr.ss.ss_family == AF_INET6)
		flags |= MHD_USE_IPv6;
	ui->d = MHD_start_daemon(
		flags, 0, NULL, NULL, on_request, ui, MHD_OPTION_LISTEN_SOCKET, fd,
		MHD_OPTION_THREAD_POOL_SIZE, ui->o.threads, MHD_OPTION_CONNECTION_LIMIT,
		(unsigned)CONN_LIMIT, MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)CONN_TIMEOUT,
		MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)MEMORY_LIMIT,
		MHD_OPTION_UNESCAPE_CALLBACK, no_unescape, NULL, MHD_OPTION_NOTIFY_COMPLETED,
		on_done, NULL, MHD_OPTION_ARRAY, tls, MHD_OPTION_END);
	if (ui->d == NULL) {
		close(fd);
		return tlm_error_set(err, TLM_ERROR, "cannot start the HTTP server on %s",
				     ui->o.listen);
	}
	tlm_addr_format(&ui->addr, ui->bound, sizeof(ui->bound));
	tlm_addr_url(&ui->addr, ui->url, sizeof(ui->url));
	if (ui->tls.cert != NULL) {
		char tmp[sizeof(ui->url)];

		snprintf(tmp, sizeof(tmp), "https://%s", ui->url + strlen("http://"));
		memcpy(ui->url, tmp, sizeof(tmp));
	}
	return 0;
}

const char *tlm_ui_url(const tlm_ui *ui)
{
	return ui->url;
}

void tlm_ui_stop(tlm_ui *ui)
{
	if (ui != NULL && ui->d != NULL) {
		MHD_stop_daemon(ui->d);
		ui->d = NULL;
	}
}

void tlm_ui_free(tlm_ui *ui)
{
	if (ui == NULL)
		return;
	tlm_ui_stop(ui);
	tlm_tls_clear(&ui->tls);
	tlm_secret_free(ui->token);
	tlm_secret_free(ui->csrf);
	free(ui->journal_where);
	free(ui->action_log);
	free(ui);
}
