/* The OTLP/HTTP JSON encoding of a small span tree (src/trace/encode.c):
 * ids as lowercase hex, times and int attributes as strings, the parent
 * link, status codes and messages, events, the resource's attributes (the
 * service's name and version winning over OTEL_RESOURCE_ATTRIBUTES), and
 * strings that are not UTF-8. */
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "harness/harness.h"
#include "harness/serve.h"
#include "trace/trace_internal.h"

static const uint8_t trace_id[16] = { 0x4b, 0xf9, 0x2f, 0x35, 0x77, 0xb3, 0x4d, 0xa6,
				      0xa3, 0xce, 0x92, 0x9d, 0x0e, 0x0e, 0x47, 0x36 };

static void span(tlm_trace_span *s, uint8_t id, int parent, const char *name)
{
	memset(s, 0, sizeof(*s));
	memset(s->span_id, 0, 8);
	s->span_id[7] = id;
	s->span_id[0] = 0xab;
	if (parent > 0) {
		s->has_parent = 1;
		s->parent_id[0] = 0xab;
		s->parent_id[7] = (uint8_t)parent;
	}
	s->name = strdup(name);
	s->start_ns = 1700000000000000000ull + id;
	s->end_ns = s->start_ns + 5000000ull;
	s->attrs[0].key = "telemachy.run.id";
	s->attrs[0].str = strdup("abcd1234");
	s->nattrs = 1;
}

static const json_t *attr_value(const json_t *attrs, const char *key)
{
	size_t i;
	json_t *a;

	json_array_foreach(attrs, i, a)
	{
		if (strcmp(json_string_value(json_object_get(a, "key")), key) == 0)
			return json_object_get(a, "value");
	}
	fail_msg("no attribute %s in %s", key, tlm_h_dump(attrs));
	return NULL;
}

static void test_tree(void **state)
{
	tlm_trace_kv kv[] = { { "service.name", "ignored" }, { "deployment.environment", "ci" } };
	tlm_trace_resource r = { "svc", "0.1.0", kv, 2 };
	tlm_trace_span s[3];
	char *out = NULL;
	json_t *doc, *rs, *ss, *spans, *root, *task, *v;

	(void)state;
	span(&s[0], 1, 0, "run w");
	s[0].status = TLM_TRACE_STATUS_ERROR;
	s[0].status_message = strdup("task t/b failed");
	span(&s[1], 2, 1, "provisioning");
	span(&s[2], 3, 1, "task t/\xc3\xa9t\xc3\xa9");
	s[2].status = TLM_TRACE_STATUS_OK;
	s[2].attrs[1].key = "telemachy.task.attempt";
	s[2].attrs[1].int_value = 2;
	s[2].attrs[2].key = "telemachy.task.subject";
	s[2].attrs[2].str = strdup("bad \xff byte");
	s[2].nattrs = 3;
	s[2].events[0].name = "running";
	s[2].events[0].time_ns = s[2].start_ns + 1;
	s[2].nevents = 1;

	assert_int_equal(tlm_trace_encode(&r, trace_id, s, 3, &out), 0);
	doc = json_loads(out, 0, NULL);
	assert_non_null(doc);
	rs = json_array_get(json_object_get(doc, "resourceSpans"), 0);
	v = json_object_get(json_object_get(rs, "resource"), "attributes");
	assert_string_equal(
		json_string_value(json_object_get(attr_value(v, "service.name"), "stringValue")),
		"svc");
	assert_string_equal(
		json_string_value(json_object_get(attr_value(v, "service.version"), "stringValue")),
		"0.1.0");
	assert_string_equal(json_string_value(json_object_get(
				    attr_value(v, "deployment.environment"), "stringValue")),
			    "ci");
	assert_int_equal(json_array_size(v), 3); /* the second service.name is left out */
	ss = json_array_get(json_object_get(rs, "scopeSpans"), 0);
	assert_string_equal(
		json_string_value(json_object_get(json_object_get(ss, "scope"), "name")),
		"telemachy");
	spans = json_object_get(ss, "spans");
	assert_int_equal(json_array_size(spans), 3);

	root = json_array_get(spans, 0);
	assert_string_equal(json_string_value(json_object_get(root, "traceId")),
			    "4bf92f3577b34da6a3ce929d0e0e4736");
	assert_string_equal(json_string_value(json_object_get(root, "spanId")), "ab00000000000001");
	assert_null(json_object_get(root, "parentSpanId"));
	assert_string_equal(json_string_value(json_object_get(root, "startTimeUnixNano")),
			    "1700000000000000001");
	assert_string_equal(json_string_value(json_object_get(root, "endTimeUnixNano")),
			    "1700000000005000001");
	assert_int_equal(json_integer_value(json_object_get(root, "kind")), 1);
	v = json_object_get(root, "status");
	assert_int_equal(json_integer_value(json_object_get(v, "code")), 2);
	assert_string_equal(json_string_value(json_object_get(v, "message")), "task t/b failed");
	assert_string_equal(
		json_string_value(json_object_get(
			attr_value(json_object_get(root, "attributes"), "telemachy.run.id"),
			"stringValue")),
		"abcd1234");

	assert_string_equal(
		json_string_value(json_object_get(json_array_get(spans, 1), "parentSpanId")),
		"ab00000000000001");
	assert_int_equal(json_integer_value(json_object_get(
				 json_object_get(json_array_get(spans, 1), "status"), "code")),
			 0);

	task = json_array_get(spans, 2);
	assert_string_equal(json_string_value(json_object_get(task, "name")),
			    "task t/\xc3\xa9t\xc3\xa9");
	assert_int_equal(
		json_integer_value(json_object_get(json_object_get(task, "status"), "code")), 1);
	assert_null(json_object_get(json_object_get(task, "status"), "message"));
	v = json_object_get(task, "attributes");
	assert_string_equal(json_string_value(json_object_get(
				    attr_value(v, "telemachy.task.attempt"), "intValue")),
			    "2");
	assert_string_equal(json_string_value(json_object_get(
				    attr_value(v, "telemachy.task.subject"), "stringValue")),
			    "(not UTF-8)");
	v = json_array_get(json_object_get(task, "events"), 0);
	assert_string_equal(json_string_value(json_object_get(v, "name")), "running");
	assert_string_equal(json_string_value(json_object_get(v, "timeUnixNano")),
			    "1700000000000000004");

	json_decref(doc);
	free(out);
	for (int i = 0; i < 3; i++)
		tlm_trace_span_clear(&s[i]);
}

static void test_caps(void **state)
{
	char big[3000];
	char *c;

	(void)state;
	/* 1023 'a' then a 2-byte character across the cap: cut before it. */
	memset(big, 'a', sizeof(big));
	big[1023] = '\xc3';
	big[1024] = '\xa9';
	big[sizeof(big) - 1] = '\0';
	c = tlm_trace_strdup_cap(big);
	assert_int_equal(strlen(c), 1023);
	free(c);
	assert_null(tlm_trace_strdup_cap(NULL));
	c = tlm_trace_pct_decode("a%2", 3, &(int){ 0 });
	assert_null(c);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_tree),
		cmocka_unit_test(test_caps),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
