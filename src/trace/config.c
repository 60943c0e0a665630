/* The tracer's configuration from the OpenTelemetry environment variables
 * (docs/tracing.md, "Variables").  An empty variable counts as unset, an
 * invalid one is warned about and its default used: a typo in telemetry
 * settings must never stop a run.  Header values are secrets: a message
 * names the variable and the entry's position, never its text. */
#include <ctype.h>
#include <errno.h>
#include <stdarg.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "telemachy/error.h"
#include "trace/trace_internal.h"

typedef struct reader {
	tlm_trace_getenv_fn get;
	void *get_ctx;
	tlm_trace_warn_fn warn;
	void *warn_ctx;
} reader;

static void warnf(const reader *r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void warnf(const reader *r, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (r->warn != NULL)
		r->warn(r->warn_ctx, msg);
	else
		fprintf(stderr, "telemachy: warning: %s\n", msg);
}

/* The variable's value, NULL when unset or empty; one longer than
 * TLM_TRACE_ENV_MAX is ignored with a warning. */
static const char *env(const reader *r, const char *name)
{
	const char *v = r->get(r->get_ctx, name);

	if (v == NULL || *v == '\0')
		return NULL;
	if (strnlen(v, TLM_TRACE_ENV_MAX + 1) > TLM_TRACE_ENV_MAX) {
		warnf(r, "%s is longer than %d bytes: ignored", name, TLM_TRACE_ENV_MAX);
		return NULL;
	}
	return v;
}

/* The signal-specific variable when set, else the general one. */
static const char *env2(const reader *r, const char *traces, const char *general,
			const char **which)
{
	const char *v = env(r, traces);

	*which = traces;
	if (v == NULL) {
		v = env(r, general);
		*which = general;
	}
	return v;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

char *tlm_trace_pct_decode(const char *s, size_t n, int *bad)
{
	char *out = malloc(n + 1);
	size_t o = 0;

	*bad = 0;
	if (out == NULL)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '%') {
			int hi = i + 2 < n ? hexval(s[i + 1]) : -1;
			int lo = hi >= 0 ? hexval(s[i + 2]) : -1;

			if (hi < 0 || lo < 0 || (hi == 0 && lo == 0)) {
				*bad = 1;
				free(out);
				return NULL;
			}
			out[o++] = (char)(hi * 16 + lo);
			i += 2;
		} else {
			out[o++] = s[i];
		}
	}
	out[o] = '\0';
	return out;
}

static void trim(const char **s, size_t *n)
{
	while (*n > 0 && isspace((unsigned char)**s)) {
		(*s)++;
		(*n)--;
	}
	while (*n > 0 && isspace((unsigned char)(*s)[*n - 1]))
		(*n)--;
}

/* An HTTP header name (RFC 9110 token). */
static int is_token(const char *s)
{
	if (*s == '\0')
		return 0;
	for (; *s != '\0'; s++)
		if (!isalnum((unsigned char)*s) && strchr("!#$%&'*+-.^_`|~", *s) == NULL)
			return 0;
	return 1;
}

static int has_ctl(const char *s)
{
	for (; *s != '\0'; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return 1;
	return 0;
}

/* "k=v,k2=v2" (values percent-decoded) into kv pairs.  Bad entries are
 * warned about by position and skipped.  headers: keys must be header
 * names and values free of control characters, and the text of a value is
 * never quoted.  -1 only when out of memory. */
static int parse_list(const reader *r, const char *name, const char *v, int headers,
		      tlm_trace_kv **out, size_t *nout)
{
	size_t entry = 0;

	while (v != NULL && *v != '\0') {
		const char *comma = strchr(v, ','), *eq;
		size_t len = comma != NULL ? (size_t)(comma - v) : strlen(v), klen, vlen;
		const char *k = v, *val;
		char *key = NULL, *value = NULL;
		int bad = 0;

		entry++;
		v = comma != NULL ? comma + 1 : NULL;
		eq = memchr(k, '=', len);
		if (eq == NULL) {
			trim(&k, &len);
			if (len > 0)
				warnf(r, "%s: entry %zu has no '=': ignored", name, entry);
			continue;
		}
		klen = (size_t)(eq - k);
		val = eq + 1;
		vlen = len - klen - 1;
		trim(&k, &klen);
		trim(&val, &vlen);
		if (*nout >= TLM_TRACE_LIST_MAX) {
			warnf(r, "%s: more than %d entries: the rest are ignored", name,
			      TLM_TRACE_LIST_MAX);
			break;
		}
		key = tlm_trace_pct_decode(k, klen, &bad);
		if (key != NULL)
			value = tlm_trace_pct_decode(val, vlen, &bad);
		if (key == NULL || value == NULL) {
			free(key);
			free(value);
			if (!bad)
				return -1;
			warnf(r, "%s: entry %zu has a bad percent-escape: ignored", name, entry);
			continue;
		}
		if (*key == '\0' || (headers && (!is_token(key) || has_ctl(value)))) {
			warnf(r, "%s: entry %zu is not a valid %s: ignored", name, entry,
			      headers ? "header" : "attribute");
			free(key);
			if (value != NULL)
				memset(value, 0, strlen(value));
			free(value);
			continue;
		}
		tlm_trace_kv *grown = realloc(*out, (*nout + 1) * sizeof(**out));

		if (grown == NULL) {
			free(key);
			free(value);
			return -1;
		}
		*out = grown;
		grown[*nout].key = key;
		grown[*nout].value = value;
		(*nout)++;
	}
	return 0;
}

static int read_headers(tlm_trace_config *cfg, const reader *r)
{
	const char *which, *v = env2(r, "OTEL_EXPORTER_OTLP_TRACES_HEADERS",
				     "OTEL_EXPORTER_OTLP_HEADERS", &which);
	tlm_trace_kv *kv = NULL;
	size_t n = 0;
	int rc = parse_list(r, which, v, 1, &kv, &n);

	if (rc == 0 && n > 0 && (cfg->headers = calloc(n, sizeof(char *))) == NULL)
		rc = -1;
	for (size_t i = 0; i < n; i++) {
		size_t len = strlen(kv[i].key) + strlen(kv[i].value) + 3;

		if (rc == 0 && (cfg->headers[i] = malloc(len)) != NULL) {
			snprintf(cfg->headers[i], len, "%s: %s", kv[i].key, kv[i].value);
			cfg->nheaders++;
		} else {
			rc = -1;
		}
		memset(kv[i].value, 0, strlen(kv[i].value));
		free(kv[i].key);
		free(kv[i].value);
	}
	free(kv);
	return rc;
}

/* The endpoint: the traces one as it is, or the general one's base with
 * v1/traces appended. */
static int read_endpoint(tlm_trace_config *cfg, const reader *r)
{
	const char *v = env(r, "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT");
	size_t n;

	if (v != NULL) {
		cfg->endpoint = strdup(v);
		return cfg->endpoint != NULL ? 0 : -1;
	}
	v = env(r, "OTEL_EXPORTER_OTLP_ENDPOINT");
	if (v == NULL)
		return 0;
	n = strlen(v) + sizeof("/v1/traces");
	if ((cfg->endpoint = malloc(n)) == NULL)
		return -1;
	snprintf(cfg->endpoint, n, "%s%s", v, v[strlen(v) - 1] == '/' ? "v1/traces" : "/v1/traces");
	return 0;
}

static int check_endpoint(tlm_trace_config *cfg, const reader *r)
{
	if (strncasecmp(cfg->endpoint, "http://", 7) != 0 &&
	    strncasecmp(cfg->endpoint, "https://", 8) != 0) {
		warnf(r, "the OTLP endpoint is not an http:// or https:// URL: traces are not "
			 "exported");
		return 0;
	}
	return 1;
}

static void read_timeout(tlm_trace_config *cfg, const reader *r)
{
	const char *which, *v = env2(r, "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT",
				     "OTEL_EXPORTER_OTLP_TIMEOUT", &which);
	char *end;
	long ms;

	cfg->timeout_ms = TLM_TRACE_TIMEOUT_MS;
	if (v == NULL)
		return;
	errno = 0;
	ms = strtol(v, &end, 10);
	if (errno != 0 || end == v || *end != '\0' || ms <= 0 || ms > 600000) {
		warnf(r, "%s=%.64s is not a number of milliseconds from 1 to 600000: using %d",
		      which, v, TLM_TRACE_TIMEOUT_MS);
		return;
	}
	cfg->timeout_ms = ms;
}

static const struct {
	const char *name;
	tlm_trace_sampler s;
} samplers[] = {
	{ "always_on", TLM_TRACE_ALWAYS_ON },
	{ "always_off", TLM_TRACE_ALWAYS_OFF },
	{ "traceidratio", TLM_TRACE_RATIO },
	{ "parentbased_always_on", TLM_TRACE_PB_ALWAYS_ON },
	{ "parentbased_always_off", TLM_TRACE_PB_ALWAYS_OFF },
	{ "parentbased_traceidratio", TLM_TRACE_PB_RATIO },
};

static void read_sampler(tlm_trace_config *cfg, const reader *r)
{
	const char *v = env(r, "OTEL_TRACES_SAMPLER"), *arg;
	char *end;
	double d;

	cfg->sampler = TLM_TRACE_PB_ALWAYS_ON;
	cfg->ratio = 1.0;
	if (v != NULL) {
		size_t i;

		for (i = 0; i < sizeof(samplers) / sizeof(samplers[0]); i++)
			if (strcasecmp(v, samplers[i].name) == 0)
				break;
		if (i < sizeof(samplers) / sizeof(samplers[0]))
			cfg->sampler = samplers[i].s;
		else
			warnf(r,
			      "OTEL_TRACES_SAMPLER=%.64s is not supported: using "
			      "parentbased_always_on",
			      v);
	}
	if (cfg->sampler != TLM_TRACE_RATIO && cfg->sampler != TLM_TRACE_PB_RATIO)
		return;
	if ((arg = env(r, "OTEL_TRACES_SAMPLER_ARG")) == NULL)
		return;
	errno = 0;
	d = strtod(arg, &end);
	if (errno != 0 || end == arg || *end != '\0' || isnan(d) || d < 0.0 || d > 1.0) {
		warnf(r, "OTEL_TRACES_SAMPLER_ARG=%.64s is not a ratio from 0 to 1: using 1.0",
		      arg);
		return;
	}
	cfg->ratio = d;
}

/* OTEL_SDK_DISABLED: a boolean of the specification, only "true" (any
 * case) is true; anything else but "false" is warned about. */
static int disabled(const reader *r)
{
	const char *v = env(r, "OTEL_SDK_DISABLED");

	if (v == NULL || strcasecmp(v, "false") == 0)
		return 0;
	if (strcasecmp(v, "true") == 0)
		return 1;
	warnf(r, "OTEL_SDK_DISABLED=%.64s is not true or false: taken as false", v);
	return 0;
}

/* OTEL_TRACES_EXPORTER: otlp (the default) or none. */
static int exporter_none(const reader *r)
{
	const char *v = env(r, "OTEL_TRACES_EXPORTER");

	if (v == NULL || strcasecmp(v, "otlp") == 0)
		return 0;
	if (strcasecmp(v, "none") == 0)
		return 1;
	warnf(r,
	      "OTEL_TRACES_EXPORTER=%.64s is not supported (otlp, none): traces are not "
	      "exported",
	      v);
	return 1;
}

/* Only the JSON encoding over HTTP: a collector told to expect protobuf or
 * gRPC would reject every request, so nothing is sent and the operator is
 * told why. */
static int protocol_ok(const reader *r)
{
	const char *which, *v = env2(r, "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
				     "OTEL_EXPORTER_OTLP_PROTOCOL", &which);

	if (v == NULL || strcmp(v, "http/json") == 0)
		return 1;
	warnf(r, "%s=%.64s: telemachy exports traces only as http/json: traces are not exported",
	      which, v);
	return 0;
}

static void read_parent(tlm_trace_config *cfg, const reader *r)
{
	const char *v = env(r, "TRACEPARENT");

	if (v == NULL)
		return;
	if (tlm_trace_parse_traceparent(v, cfg->parent_trace, cfg->parent_span,
					&cfg->parent_sampled) != 0) {
		warnf(r, "TRACEPARENT is not a W3C traceparent: ignored");
		return;
	}
	cfg->has_parent = 1;
}

int tlm_trace_config_read(tlm_trace_config *cfg, tlm_trace_getenv_fn get, void *get_ctx,
			  tlm_trace_warn_fn warn, void *warn_ctx)
{
	reader r = { get, get_ctx, warn, warn_ctx };
	const char *v;

	memset(cfg, 0, sizeof(*cfg));
	cfg->timeout_ms = TLM_TRACE_TIMEOUT_MS;
	/* Unset: nothing more is read (no cost, no warning). */
	if (env(&r, "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") == NULL &&
	    env(&r, "OTEL_EXPORTER_OTLP_ENDPOINT") == NULL)
		return 0;
	if (disabled(&r) || exporter_none(&r) || !protocol_ok(&r))
		return 0;
	if (read_endpoint(cfg, &r) != 0)
		goto oom;
	if (!check_endpoint(cfg, &r)) {
		tlm_trace_config_clear(cfg);
		return 0;
	}
	if (read_headers(cfg, &r) != 0)
		goto oom;
	read_timeout(cfg, &r);
	read_sampler(cfg, &r);
	read_parent(cfg, &r);
	if (parse_list(&r, "OTEL_RESOURCE_ATTRIBUTES", env(&r, "OTEL_RESOURCE_ATTRIBUTES"), 0,
		       &cfg->resource, &cfg->nresource) != 0)
		goto oom;
	v = env(&r, "OTEL_SERVICE_NAME");
	if (v == NULL) {
		/* service.name of OTEL_RESOURCE_ATTRIBUTES, else ours. */
		v = "telemachy";
		for (size_t i = 0; i < cfg->nresource; i++)
			if (strcmp(cfg->resource[i].key, "service.name") == 0)
				v = cfg->resource[i].value;
	}
	if ((cfg->service_name = strdup(v)) == NULL)
		goto oom;
	cfg->enabled = 1;
	return 0;
oom:
	tlm_trace_config_clear(cfg);
	return TLM_ERROR;
}

void tlm_trace_config_clear(tlm_trace_config *cfg)
{
	free(cfg->endpoint);
	for (size_t i = 0; i < cfg->nheaders; i++) {
		memset(cfg->headers[i], 0, strlen(cfg->headers[i]));
		free(cfg->headers[i]);
	}
	free(cfg->headers);
	for (size_t i = 0; i < cfg->nresource; i++) {
		free(cfg->resource[i].key);
		free(cfg->resource[i].value);
	}
	free(cfg->resource);
	free(cfg->service_name);
	memset(cfg, 0, sizeof(*cfg));
}
