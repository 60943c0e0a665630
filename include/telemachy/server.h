/*
 * telemachy — the built-in, Agamemnon-compatible control plane.
 *
 * `telemachy serve` runs it as a process; `telemachy run` without
 * AGAMEMNON_URL starts it in-process on loopback.  REST on libmicrohttpd,
 * events on NATS (optional), agents run as local processes, and fault
 * injection for tests.  The contract is docs/contract.md;
 * differences are listed in docs/serve.md.
 */
#ifndef TELEMACHY_SERVER_H
#define TELEMACHY_SERVER_H

#include <stddef.h>

#include "telemachy/error.h"

typedef struct tlm_server tlm_server;

typedef struct tlm_server_opts {
	const char *listen;        /* "HOST:PORT", "[IPv6]:PORT"; port 0 picks a free one */
	const char *api_key;       /* NULL: no auth; a blank key is TLM_EINVALID */
	double rate_rps;           /* 0: no rate limit */
	unsigned rate_burst;       /* 0: 2 x rate_rps */
	const char *nats_url;      /* NULL: no events */
	const char *state_path;    /* SQLite file; NULL: in memory */
	const char *state_dir;     /* task logs; NULL: a new dir under /tmp */
	const char *const *faults; /* --fault specs, see docs/serve.md */
	size_t nfaults;
	unsigned threads;     /* HTTP worker threads; 0: 8 */
	int unique_names;     /* 409 on a duplicate agent name */
	int insecure_no_auth; /* allow a non-loopback address without api_key */
	/* Names ("NAME" or "PREFIX*") of variables of this process's
	 * environment that agent programs get besides the allow-list
	 * (docs/serve.md); NULL-terminated, NULL for none. */
	const char *const *pass_env;
	/* Against slow and idle clients (slowloris; docs/serve.md): */
	unsigned max_connections;        /* open at once; 0: 1024 */
	unsigned max_connections_per_ip; /* from one client address; 0: no such limit */
	double request_timeout;          /* s for a request's headers and body (at most a
	                                  * day); 0: 10 */
	const char *request_log;         /* append a JSON line per request here; NULL: none */
	int no_exec; /* run no program: every task completes at once (a dry run) */
	/* HTTPS (docs/serve.md, "TLS"): PEM files, the certificate and its
	 * (unencrypted) key both or neither; NULL: plain HTTP.  With
	 * tls_client_ca_file every request needs a client certificate signed
	 * by that CA (mTLS).  Errors name the files, never their content. */
	const char *tls_cert_file;
	const char *tls_key_file;
	const char *tls_client_ca_file;
	/* NATS (with nats_url): TLS and credentials as the engine's watcher
	 * takes them (PEM files; the token is never shown); NULL: none. */
	const char *nats_ca_file;
	const char *nats_cert_file;
	const char *nats_key_file;
	const char *nats_creds_file;
	const char *nats_token;
	/* Drop the agent create fields upstream drops (model, image, cpus,
	 * memory, env), as upstream Agamemnon does: to test a client against
	 * it (docs/serve.md). */
	int upstream_agent_fields;
	/* listen(2)'s backlog; 0: 128.  A small one emulates upstream's
	 * (5, docs/agamemnon.md "Connection policy"), whose full queue drops
	 * connection attempts that then wait out a 1 s SYN retransmit. */
	unsigned backlog;
	/* Called, from one of the server's threads, with a one-line message
	 * about trouble the server works around by itself (a listener that
	 * cannot be opened again after a refuse window yet, and is retried);
	 * NULL: not reported.  The message holds no secret. */
	void (*warn)(void *ctx, const char *message);
	void *warn_ctx;
} tlm_server_opts;

#define TLM_SERVER_OPTS_INIT                                                                       \
	{                                                                                          \
		"127.0.0.1:0", NULL, 0, 0, NULL, NULL, NULL, NULL, 0, 0, 0, 0, NULL, 0, 0, 0,      \
			NULL, 0, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, 0, 0, NULL, NULL  \
	}

/* Starts serving (threads of its own) and returns at once.  The caller frees
 * with tlm_server_stop().  TLM_EINVALID for bad options (err says which),
 * among them an address other than loopback without api_key, unless
 * insecure_no_auth: whoever reaches the server can run programs on this
 * machine (docs/serve.md, "Security"). */
int tlm_server_start(tlm_server **out, const tlm_server_opts *opts, tlm_error *err);

/* The bound port; the address really bound ("127.0.0.1:PORT", "[::]:PORT",
 * a host name resolved); and the base URL a client on this machine uses
 * ("http://127.0.0.1:PORT", https:// with TLS; for a wildcard address,
 * that of loopback). */
unsigned short tlm_server_port(const tlm_server *srv);
const char *tlm_server_address(const tlm_server *srv);
const char *tlm_server_url(const tlm_server *srv);

/* The connection limit in force: max_connections, or less when the
 * process's open-files limit could not be raised far enough. */
unsigned tlm_server_max_connections(const tlm_server *srv);

/* 1 when the bound address is a loopback one (only this machine reaches
 * it), 0 for any other, a wildcard included. */
int tlm_server_loopback(const tlm_server *srv);

/* Stops serving, kills every agent's processes, frees; NULL is a no-op. */
void tlm_server_stop(tlm_server *srv);

/* ---- the metrics exporter (docs/metrics.md) ---------------------------
 * GET /metrics (the process-wide registry of telemachy/metrics.h) on
 * "HOST:PORT", a loopback address only (TLM_EINVALID otherwise: the text
 * tells what this machine runs, and nothing authenticates a scraper); port
 * 0 picks a free one.  Served on a thread of its own until tlm_metrics_exporter_stop. */
typedef struct tlm_metrics_exporter tlm_metrics_exporter;
int tlm_metrics_exporter_start(tlm_metrics_exporter **out, const char *listen, tlm_error *err);
/* The address really bound: "127.0.0.1:PORT". */
const char *tlm_metrics_exporter_address(const tlm_metrics_exporter *x);
/* NULL is a no-op. */
void tlm_metrics_exporter_stop(tlm_metrics_exporter *x);
/* A tlm_metrics_collector (telemachy/metrics.h) for serve: its tasks and
 * agents by state, counted in its store at each scrape; ctx is the
 * tlm_server.  Remove it before tlm_server_stop. */
typedef struct tlm_metrics_buf tlm_metrics_buf;
void tlm_server_metrics_collect(void *ctx, tlm_metrics_buf *b);

#endif
