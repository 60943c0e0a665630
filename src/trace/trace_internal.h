/* The tracer's parts (include/telemachy/trace.h): configuration from the
 * OTEL_* environment (config.c), spans from engine events (spans.c), the
 * OTLP/HTTP JSON encoding (encode.c) and the exporter thread (export.c).
 * Internal; the unit tests use it. */
#ifndef TLM_TRACE_INTERNAL_H
#define TLM_TRACE_INTERNAL_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "telemachy/trace.h"

/* Caps on what comes from outside (the environment, event strings). */
#define TLM_TRACE_ENV_MAX    8192 /* bytes of one OTEL_* variable */
#define TLM_TRACE_LIST_MAX   64   /* headers, resource attributes */
#define TLM_TRACE_VALUE_MAX  1024 /* bytes of one attribute value or status message */
#define TLM_TRACE_OPEN_MAX   4096 /* spans open at once; more are not recorded */
#define TLM_TRACE_QUEUE_MAX  8192 /* finished spans waiting for export; more are dropped */
#define TLM_TRACE_BATCH_MAX  512  /* spans per export request */
#define TLM_TRACE_TIMEOUT_MS 10000
#define TLM_TRACE_PERIOD_MS  1000
#define TLM_TRACE_ATTRS_MAX  10
#define TLM_TRACE_EVENTS_MAX 6

typedef enum tlm_trace_sampler {
	TLM_TRACE_ALWAYS_ON = 0,
	TLM_TRACE_ALWAYS_OFF,
	TLM_TRACE_RATIO,
	TLM_TRACE_PB_ALWAYS_ON,
	TLM_TRACE_PB_ALWAYS_OFF,
	TLM_TRACE_PB_RATIO
} tlm_trace_sampler;

typedef struct tlm_trace_kv {
	char *key, *value;
} tlm_trace_kv;

typedef void (*tlm_trace_warn_fn)(void *ctx, const char *message);
typedef const char *(*tlm_trace_getenv_fn)(void *ctx, const char *name);

typedef struct tlm_trace_config {
	int enabled;    /* an endpoint, not disabled, a protocol we speak */
	char *endpoint; /* the full URL spans are POSTed to */
	char **headers; /* "Name: value" lines; secret */
	size_t nheaders;
	long timeout_ms;
	char *service_name;
	tlm_trace_kv *resource; /* OTEL_RESOURCE_ATTRIBUTES, in order */
	size_t nresource;
	tlm_trace_sampler sampler;
	double ratio; /* TLM_TRACE_RATIO, TLM_TRACE_PB_RATIO */
	/* TRACEPARENT of the environment, when valid. */
	int has_parent;
	uint8_t parent_trace[16], parent_span[8];
	int parent_sampled;
} tlm_trace_config;

/* Reads the configuration (docs/tracing.md, "Variables").  Invalid values
 * are warned about (never quoting a header value) and replaced by
 * defaults.  0, or TLM_ERROR when out of memory.  cfg->enabled 0: no
 * tracing.  Free with tlm_trace_config_clear. */
int tlm_trace_config_read(tlm_trace_config *cfg, tlm_trace_getenv_fn get, void *get_ctx,
			  tlm_trace_warn_fn warn, void *warn_ctx);
void tlm_trace_config_clear(tlm_trace_config *cfg);

/* Percent-decodes s[0..n) into a new string (NULL: out of memory, or a
 * bad escape or a NUL byte, *bad set). */
char *tlm_trace_pct_decode(const char *s, size_t n, int *bad);

/* Whether a trace with this id is sampled by a trace-id-ratio sampler of
 * ratio (the id's last 8 bytes, big-endian, against ratio * 2^64). */
int tlm_trace_ratio_sampled(const uint8_t trace_id[16], double ratio);

/* Whether a new trace (parent: the environment's TRACEPARENT, if any) is
 * sampled under cfg. */
int tlm_trace_should_sample(const tlm_trace_config *cfg, const uint8_t trace_id[16]);

/* Parses a W3C traceparent ("00-<32 hex>-<16 hex>-<2 hex>"); 0 or -1. */
int tlm_trace_parse_traceparent(const char *s, uint8_t trace_id[16], uint8_t span_id[8],
				int *sampled);

/* Random ids (a CSPRNG), never all zero; 0 or -1. */
int tlm_trace_random_id(uint8_t *id, size_t n);

/* bytes as lowercase hex into out (2n+1 bytes). */
void tlm_trace_hex(const uint8_t *bytes, size_t n, char *out);

/* ---- spans ---------------------------------------------------------- */

typedef struct tlm_trace_attr {
	const char *key; /* static */
	char *str;       /* owned; NULL: int_value */
	int64_t int_value;
} tlm_trace_attr;

typedef struct tlm_trace_event {
	const char *name; /* static */
	uint64_t time_ns;
} tlm_trace_event;

#define TLM_TRACE_STATUS_UNSET 0
#define TLM_TRACE_STATUS_OK    1
#define TLM_TRACE_STATUS_ERROR 2

typedef struct tlm_trace_span {
	uint8_t span_id[8], parent_id[8];
	int has_parent;
	char *name;
	uint64_t start_ns, end_ns;
	int status;           /* TLM_TRACE_STATUS_* */
	char *status_message; /* owned, or NULL */
	tlm_trace_attr attrs[TLM_TRACE_ATTRS_MAX];
	size_t nattrs;
	tlm_trace_event events[TLM_TRACE_EVENTS_MAX];
	size_t nevents;
	/* Bookkeeping while open (spans.c): which resource or attempt. */
	char *key;
	int attempt;
} tlm_trace_span;

void tlm_trace_span_clear(tlm_trace_span *s);

/* A copy of s cut at TLM_TRACE_VALUE_MAX bytes (on a UTF-8 boundary);
 * NULL for NULL s or out of memory. */
char *tlm_trace_strdup_cap(const char *s);

/* ---- encoding ------------------------------------------------------- */

typedef struct tlm_trace_resource {
	const char *service_name, *service_version;
	const tlm_trace_kv *attrs;
	size_t nattrs;
} tlm_trace_resource;

/* The ExportTraceServiceRequest of spans (all of trace trace_id) as
 * compact JSON: *out (caller frees).  0, or TLM_ERROR (out of memory). */
int tlm_trace_encode(const tlm_trace_resource *r, const uint8_t trace_id[16],
		     const tlm_trace_span *spans, size_t n, char **out);

/* ---- the tracer ----------------------------------------------------- */

struct tlm_trace {
	tlm_trace_config cfg;
	tlm_trace_warn_fn warn;
	void *warn_ctx;
	char *service_version;
	uint8_t trace_id[16], run_span[8];
	char trace_hex[33];
	char traceparent[56];
	int sampled;
	int finished;
	/* Engine thread only. */
	tlm_trace_span *open; /* open spans; open[0] is the run's once started */
	size_t nopen, capopen;
	int run_open;
	char *run_id, *workflow;
	size_t not_recorded; /* spans beyond TLM_TRACE_OPEN_MAX */
	/* Shared with the exporter (mu). */
	pthread_mutex_t mu;
	pthread_cond_t cv;
	int thread_started, stop, curl_init;
	pthread_t thread;
	tlm_trace_span *queue;
	size_t nqueue, capqueue;
	size_t dropped;  /* spans lost to a full queue */
	size_t failed;   /* export requests that failed */
	size_t exported; /* spans the collector accepted */
	char last_error[256];
	uint64_t deadline_ms; /* set by finish: the exporter gives up after it */
};

/* Moves a finished span to the export queue (dropping it when full). */
void tlm_trace__enqueue(tlm_trace *t, tlm_trace_span *s);

/* Starts the exporter thread; 0 or -1. */
int tlm_trace__export_start(tlm_trace *t);

/* Exports what is queued within the timeout and joins the thread. */
void tlm_trace__export_stop(tlm_trace *t);

/* Ends every open span at now_ns (spans.c). */
void tlm_trace__close_all(tlm_trace *t, uint64_t now_ns);

#endif
