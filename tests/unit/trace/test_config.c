/* The tracer's configuration from the OTEL_* variables (src/trace/config.c,
 * docs/tracing.md "Variables"): endpoints, headers with percent-encoding,
 * the sampler and its argument, disabled, unsupported protocols, bad
 * values (a warning that never quotes a header value, and the default),
 * TRACEPARENT; and the ratio sampler's boundaries. */
#include <stdlib.h>
#include <string.h>

#include "harness/harness.h"
#include "trace/trace_internal.h"

static const char *const *vars; /* "NAME=value" */
static char warnings[4096];
static int nwarnings;

static const char *get(void *ctx, const char *name)
{
	size_t n = strlen(name);

	(void)ctx;
	for (size_t i = 0; vars != NULL && vars[i] != NULL; i++)
		if (strncmp(vars[i], name, n) == 0 && vars[i][n] == '=')
			return vars[i] + n + 1;
	return NULL;
}

static void warn(void *ctx, const char *msg)
{
	(void)ctx;
	nwarnings++;
	strncat(warnings, msg, sizeof(warnings) - strlen(warnings) - 2);
	strcat(warnings, "\n");
}

static void read_cfg(tlm_trace_config *cfg, const char *const *v)
{
	vars = v;
	warnings[0] = '\0';
	nwarnings = 0;
	assert_int_equal(tlm_trace_config_read(cfg, get, NULL, warn, NULL), 0);
}

static void test_unset(void **state)
{
	const char *const v[] = { "OTEL_SERVICE_NAME=x", "OTEL_TRACES_SAMPLER=nonsense", NULL };
	tlm_trace_config cfg;
	tlm_trace_opts o = TLM_TRACE_OPTS_INIT;

	(void)state;
	read_cfg(&cfg, v);
	assert_false(cfg.enabled);
	assert_int_equal(nwarnings, 0); /* nothing else is read */
	tlm_trace_config_clear(&cfg);
	o.getenv = get;
	o.warn = warn;
	assert_null(tlm_trace_new_from_env(&o));
	assert_null(tlm_trace_traceparent(NULL));
	tlm_trace_on_event(NULL, NULL);
	tlm_trace_free(NULL);
}

static void test_endpoints(void **state)
{
	const char *const base[] = { "OTEL_EXPORTER_OTLP_ENDPOINT=http://c:4318", NULL };
	const char *const slash[] = { "OTEL_EXPORTER_OTLP_ENDPOINT=https://c:4318/otel/", NULL };
	const char *const traces[] = { "OTEL_EXPORTER_OTLP_ENDPOINT=http://c:4318",
				       "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT=http://t:1/custom",
				       NULL };
	const char *const notes[] = { "OTEL_EXPORTER_OTLP_ENDPOINT=c:4318", NULL };
	tlm_trace_config cfg;

	(void)state;
	read_cfg(&cfg, base);
	assert_true(cfg.enabled);
	assert_string_equal(cfg.endpoint, "http://c:4318/v1/traces");
	assert_string_equal(cfg.service_name, "telemachy");
	assert_int_equal(cfg.timeout_ms, 10000);
	assert_int_equal(cfg.sampler, TLM_TRACE_PB_ALWAYS_ON);
	tlm_trace_config_clear(&cfg);
	read_cfg(&cfg, slash);
	assert_string_equal(cfg.endpoint, "https://c:4318/otel/v1/traces");
	tlm_trace_config_clear(&cfg);
	read_cfg(&cfg, traces);
	assert_string_equal(cfg.endpoint, "http://t:1/custom");
	tlm_trace_config_clear(&cfg);
	read_cfg(&cfg, notes);
	assert_false(cfg.enabled);
	assert_int_equal(nwarnings, 1);
	tlm_trace_config_clear(&cfg);
}

static void test_headers(void **state)
{
	const char *const v[] = {
		"OTEL_EXPORTER_OTLP_ENDPOINT=http://c",
		"OTEL_EXPORTER_OTLP_HEADERS= Authorization = Bearer%20s3cr%2Ct ,x-b=1%3D2,,"
		"novalue,bad key=hidden1,x-c=%zzhidden2,x-d=ok%0Ahidden3",
		NULL
	};
	const char *const traces[] = { "OTEL_EXPORTER_OTLP_ENDPOINT=http://c",
				       "OTEL_EXPORTER_OTLP_HEADERS=a=1",
				       "OTEL_EXPORTER_OTLP_TRACES_HEADERS=b=2", NULL };
	tlm_trace_config cfg;

	(void)state;
	read_cfg(&cfg, v);
	assert_true(cfg.enabled);
	assert_int_equal(cfg.nheaders, 2);
	assert_string_equal(cfg.headers[0], "Authorization: Bearer s3cr,t");
	assert_string_equal(cfg.headers[1], "x-b: 1=2");
	/* novalue, "bad key", a bad escape, a newline: four warnings that
	 * say where, never what. */
	assert_int_equal(nwarnings, 4);
	assert_null(strstr(warnings, "hidden"));
	assert_null(strstr(warnings, "s3cr"));
	assert_non_null(strstr(warnings, "OTEL_EXPORTER_OTLP_HEADERS: entry 4"));
	tlm_trace_config_clear(&cfg);
	read_cfg(&cfg, traces);
	assert_int_equal(cfg.nheaders, 1);
	assert_string_equal(cfg.headers[0], "b: 2");
	tlm_trace_config_clear(&cfg);
}

static void test_resource(void **state)
{
	const char *const v[] = { "OTEL_EXPORTER_OTLP_ENDPOINT=http://c",
				  "OTEL_RESOURCE_ATTRIBUTES=service.name=from-attrs,k=a%20b",
				  NULL };
	const char *const both[] = { "OTEL_EXPORTER_OTLP_ENDPOINT=http://c",
				     "OTEL_RESOURCE_ATTRIBUTES=service.name=from-attrs",
				     "OTEL_SERVICE_NAME=svc", NULL };
	tlm_trace_config cfg;

	(void)state;
	read_cfg(&cfg, v);
	assert_string_equal(cfg.service_name, "from-attrs");
	assert_int_equal(cfg.nresource, 2);
	assert_string_equal(cfg.resource[1].key, "k");
	assert_string_equal(cfg.resource[1].value, "a b");
	tlm_trace_config_clear(&cfg);
	read_cfg(&cfg, both);
	assert_string_equal(cfg.service_name, "svc");
	tlm_trace_config_clear(&cfg);
}

static void test_sampler(void **state)
{
	const char *const ratio[] = { "OTEL_EXPORTER_OTLP_ENDPOINT=http://c",
				      "OTEL_TRACES_SAMPLER=parentbased_traceidratio",
				      "OTEL_TRACES_SAMPLER_ARG=0.25", NULL };
	const char *const bad_arg[] = { "OTEL_EXPORTER_OTLP_ENDPOINT=http://c",
					"OTEL_TRACES_SAMPLER=traceidratio",
					"OTEL_TRACES_SAMPLER_ARG=1.5", NULL };
	const char *const bad[] = { "OTEL_EXPORTER_OTLP_ENDPOINT=http://c",
				    "OTEL_TRACES_SAMPLER=jaeger_remote",
				    "OTEL_EXPORTER_OTLP_TIMEOUT=soon", NULL };
	const char *const off[] = { "OTEL_EXPORTER_OTLP_ENDPOINT=http://c",
				    "OTEL_TRACES_SAMPLER=ALWAYS_OFF",
				    "OTEL_EXPORTER_OTLP_TIMEOUT=250", NULL };
	tlm_trace_config cfg;

	(void)state;
	read_cfg(&cfg, ratio);
	assert_int_equal(cfg.sampler, TLM_TRACE_PB_RATIO);
	assert_true(cfg.ratio == 0.25);
	assert_int_equal(nwarnings, 0);
	tlm_trace_config_clear(&cfg);
	read_cfg(&cfg, bad_arg);
	assert_int_equal(cfg.sampler, TLM_TRACE_RATIO);
	assert_true(cfg.ratio == 1.0);
	assert_int_equal(nwarnings, 1);
	tlm_trace_config_clear(&cfg);
	read_cfg(&cfg, bad);
	assert_true(cfg.enabled);
	assert_int_equal(cfg.sampler, TLM_TRACE_PB_ALWAYS_ON);
	assert_int_equal(cfg.timeout_ms, 10000);
	assert_int_equal(nwarnings, 2);
	tlm_trace_config_clear(&cfg);
	read_cfg(&cfg, off);
	assert_int_equal(cfg.sampler, TLM_TRACE_ALWAYS_OFF);
	assert_int_equal(cfg.timeout_ms, 250);
	tlm_trace_config_clear(&cfg);
}

static void test_disabled(void **state)
{
	const char *const dis[] = { "OTEL_EXPORTER_OTLP_ENDPOINT=http://c",
				    "OTEL_SDK_DISABLED=TRUE", NULL };
	const char *const typo[] = { "OTEL_EXPORTER_OTLP_ENDPOINT=http://c",
				     "OTEL_SDK_DISABLED=yes", NULL };
	const char *const none[] = { "OTEL_EXPORTER_OTLP_ENDPOINT=http://c",
				     "OTEL_TRACES_EXPORTER=none", NULL };
	const char *const proto[] = { "OTEL_EXPORTER_OTLP_ENDPOINT=http://c",
				      "OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf", NULL };
	const char *const json[] = { "OTEL_EXPORTER_OTLP_ENDPOINT=http://c",
				     "OTEL_EXPORTER_OTLP_PROTOCOL=grpc",
				     "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL=http/json", NULL };
	tlm_trace_config cfg;

	(void)state;
	read_cfg(&cfg, dis);
	assert_false(cfg.enabled);
	assert_int_equal(nwarnings, 0);
	read_cfg(&cfg, typo);
	assert_true(cfg.enabled); /* not "true": false, with a warning */
	assert_int_equal(nwarnings, 1);
	tlm_trace_config_clear(&cfg);
	read_cfg(&cfg, none);
	assert_false(cfg.enabled);
	read_cfg(&cfg, proto);
	assert_false(cfg.enabled);
	assert_non_null(strstr(warnings, "http/json"));
	read_cfg(&cfg, json);
	assert_true(cfg.enabled);
	tlm_trace_config_clear(&cfg);
}

static void test_traceparent(void **state)
{
	const char *const v[] = {
		"OTEL_EXPORTER_OTLP_ENDPOINT=http://c",
		"TRACEPARENT=00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00", NULL
	};
	const char *const bad[] = {
		"OTEL_EXPORTER_OTLP_ENDPOINT=http://c",
		"TRACEPARENT=00-00000000000000000000000000000000-00f067aa0ba902b7-01", NULL
	};
	tlm_trace_config cfg;
	uint8_t tid[16], sid[8];
	int sampled;
	tlm_trace_opts o = TLM_TRACE_OPTS_INIT;
	tlm_trace *t;

	(void)state;
	assert_int_equal(tlm_trace_parse_traceparent(
				 "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01", tid,
				 sid, &sampled),
			 0);
	assert_int_equal(sampled, 1);
	assert_int_equal(tid[0], 0x4b);
	assert_int_equal(sid[7], 0xb7);
	assert_int_equal(tlm_trace_parse_traceparent(
				 "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01", tid,
				 sid, &sampled),
			 -1);
	assert_int_equal(tlm_trace_parse_traceparent(
				 "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01", tid,
				 sid, &sampled),
			 -1);
	assert_int_equal(tlm_trace_parse_traceparent("00-4bf9", tid, sid, &sampled), -1);
	read_cfg(&cfg, v);
	assert_true(cfg.has_parent);
	assert_false(cfg.parent_sampled);
	/* parentbased_always_on follows an unsampled parent. */
	assert_false(tlm_trace_should_sample(&cfg, cfg.parent_trace));
	tlm_trace_config_clear(&cfg);
	read_cfg(&cfg, bad);
	assert_false(cfg.has_parent);
	assert_int_equal(nwarnings, 1);
	tlm_trace_config_clear(&cfg);

	/* The tracer keeps the parent's trace id; unsampled, it still has a
	 * traceparent (flags 00) and starts no exporter. */
	vars = v;
	o.getenv = get;
	o.warn = warn;
	t = tlm_trace_new_from_env(&o);
	assert_non_null(t);
	assert_string_equal(tlm_trace_trace_id(t), "4bf92f3577b34da6a3ce929d0e0e4736");
	assert_int_equal(
		strncmp(tlm_trace_traceparent(t), "00-4bf92f3577b34da6a3ce929d0e0e4736-", 36), 0);
	assert_string_equal(tlm_trace_traceparent(t) + 52, "-00");
	assert_false(t->thread_started);
	tlm_trace_free(t);
}

static void test_ratio(void **state)
{
	uint8_t id[16];

	(void)state;
	memset(id, 0, sizeof(id));
	assert_false(tlm_trace_ratio_sampled(id, 0.0)); /* 0: never, even the lowest id */
	assert_true(tlm_trace_ratio_sampled(id, 1e-9));
	memset(id + 8, 0xff, 8);
	assert_true(tlm_trace_ratio_sampled(id, 1.0)); /* 1: always, even the highest */
	assert_false(tlm_trace_ratio_sampled(id, 0.999999));
	/* Half: the top bit of the last 8 bytes decides. */
	memset(id + 8, 0, 8);
	id[8] = 0x7f;
	assert_true(tlm_trace_ratio_sampled(id, 0.5));
	id[8] = 0x80;
	assert_false(tlm_trace_ratio_sampled(id, 0.5));
	/* Over many random ids, about the ratio. */
	{
		int hits = 0;

		for (int i = 0; i < 20000; i++) {
			assert_int_equal(tlm_trace_random_id(id, sizeof(id)), 0);
			hits += tlm_trace_ratio_sampled(id, 0.25);
		}
		assert_true(hits > 4500 && hits < 5500);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_unset),       cmocka_unit_test(test_endpoints),
		cmocka_unit_test(test_headers),     cmocka_unit_test(test_resource),
		cmocka_unit_test(test_sampler),     cmocka_unit_test(test_disabled),
		cmocka_unit_test(test_traceparent), cmocka_unit_test(test_ratio),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
