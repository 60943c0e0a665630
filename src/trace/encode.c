/* OTLP/HTTP with the JSON encoding (docs/tracing.md, "Export"): an
 * ExportTraceServiceRequest — resourceSpans, scopeSpans, spans — whose ids
 * are lowercase hex (not base64, as the JSON mapping of OTLP asks) and
 * whose 64-bit times are strings. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>

#include "telemachy/error.h"
#include "trace/trace_internal.h"

#define SPAN_KIND_INTERNAL 1

/* A string value; one that is not valid UTF-8 (a message quoting a
 * program's bytes) is replaced rather than losing the span. */
static json_t *str(const char *s)
{
	json_t *v = json_string(s);

	return v != NULL ? v : json_string("(not UTF-8)");
}

static json_t *kv_str(const char *key, const char *value)
{
	return json_pack("{s:s, s:{s:o}}", "key", key, "value", "stringValue", str(value));
}

static json_t *kv_int(const char *key, int64_t value)
{
	char buf[32];

	/* int64 is a string in OTLP's JSON mapping. */
	snprintf(buf, sizeof(buf), "%" PRId64, value);
	return json_pack("{s:s, s:{s:s}}", "key", key, "value", "intValue", buf);
}

static json_t *ns(uint64_t v)
{
	char buf[32];

	snprintf(buf, sizeof(buf), "%" PRIu64, v);
	return json_string(buf);
}

static int push(json_t *arr, json_t *v)
{
	return v != NULL ? json_array_append_new(arr, v) : -1;
}

static json_t *span_json(const tlm_trace_span *s, const char *trace_hex)
{
	char id[17], parent[17];
	json_t *o, *attrs = json_array(), *events = json_array(), *status;
	int rc = attrs != NULL && events != NULL ? 0 : -1;

	tlm_trace_hex(s->span_id, 8, id);
	tlm_trace_hex(s->parent_id, 8, parent);
	for (size_t i = 0; rc == 0 && i < s->nattrs; i++)
		rc = push(attrs, s->attrs[i].str != NULL
					 ? kv_str(s->attrs[i].key, s->attrs[i].str)
					 : kv_int(s->attrs[i].key, s->attrs[i].int_value));
	for (size_t i = 0; rc == 0 && i < s->nevents; i++)
		rc = push(events, json_pack("{s:o, s:s}", "timeUnixNano", ns(s->events[i].time_ns),
					    "name", s->events[i].name));
	status = json_pack("{s:i}", "code", s->status);
	if (rc != 0 || status == NULL) {
		json_decref(attrs);
		json_decref(events);
		json_decref(status);
		return NULL;
	}
	if (s->status_message != NULL)
		json_object_set_new(status, "message", str(s->status_message));
	o = json_pack("{s:s, s:s, s:o, s:i, s:o, s:o, s:o, s:o, s:o}", "traceId", trace_hex,
		      "spanId", id, "name", str(s->name), "kind", SPAN_KIND_INTERNAL,
		      "startTimeUnixNano", ns(s->start_ns), "endTimeUnixNano", ns(s->end_ns),
		      "attributes", attrs, "events", events, "status", status);
	if (o != NULL && s->has_parent &&
	    json_object_set_new(o, "parentSpanId", json_string(parent)) != 0) {
		json_decref(o);
		o = NULL;
	}
	return o;
}

int tlm_trace_encode(const tlm_trace_resource *r, const uint8_t trace_id[16],
		     const tlm_trace_span *spans, size_t n, char **out)
{
	char trace_hex[33];
	json_t *res_attrs = json_array(), *arr = json_array(), *doc = NULL;
	int rc = res_attrs != NULL && arr != NULL ? 0 : -1;

	*out = NULL;
	tlm_trace_hex(trace_id, 16, trace_hex);
	/* service.name and service.version win over the same keys of
	 * OTEL_RESOURCE_ATTRIBUTES (the specification's precedence). */
	if (rc == 0)
		rc = push(res_attrs, kv_str("service.name", r->service_name));
	if (rc == 0 && r->service_version != NULL)
		rc = push(res_attrs, kv_str("service.version", r->service_version));
	for (size_t i = 0; rc == 0 && i < r->nattrs; i++) {
		if (strcmp(r->attrs[i].key, "service.name") == 0 ||
		    strcmp(r->attrs[i].key, "service.version") == 0)
			continue;
		rc = push(res_attrs, kv_str(r->attrs[i].key, r->attrs[i].value));
	}
	for (size_t i = 0; rc == 0 && i < n; i++)
		rc = push(arr, span_json(&spans[i], trace_hex));
	if (rc == 0) {
		doc = json_pack("{s:[{s:{s:o}, s:[{s:{s:s, s:s}, s:o}]}]}", "resourceSpans",
				"resource", "attributes", res_attrs, "scopeSpans", "scope", "name",
				"telemachy", "version",
				r->service_version != NULL ? r->service_version : "", "spans", arr);
		res_attrs = arr = NULL; /* stolen, even on failure */
	}
	json_decref(res_attrs);
	json_decref(arr);
	if (doc != NULL)
		*out = json_dumps(doc, JSON_COMPACT);
	json_decref(doc);
	return *out != NULL ? 0 : TLM_ERROR;
}
