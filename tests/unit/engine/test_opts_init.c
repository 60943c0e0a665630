/* The options structs' INIT macros are positional (include/telemachy/):
 * a field added in the middle shifts every value after it.  Each default
 * that is not zero, and each TLS field, is checked by name here, and each
 * struct's layout version is checked by the function that takes it. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "server/events.h"
#include "telemachy/client.h"
#include "telemachy/engine.h"
#include "telemachy/events.h"
#include "telemachy/hooks.h"
#include "telemachy/mcp.h"
#include "telemachy/server.h"
#include "telemachy/trace.h"

static void test_client(void **state)
{
	tlm_client_opts o = TLM_CLIENT_OPTS_INIT;

	(void)state;
	assert_null(o.base_url);
	assert_null(o.api_key);
	assert_int_equal(o.timeout_ms, 30000);
	assert_int_equal(o.connect_timeout_ms, 5000);
	assert_int_equal(o.max_in_flight, 16);
	assert_int_equal(o.fresh_connection, 0);
	assert_int_equal(o.require_tls, 1);
	assert_null(o.ca_file);
	assert_null(o.cert_file);
	assert_null(o.key_file);
	assert_int_equal(o.retry_base_ms, 200);
	assert_int_equal(o.retry_cap_ms, 10000);
	assert_int_equal(o.retry_max_total_ms, 120000);
	assert_int_equal(o.retry_max_attempts, 8);
	assert_true(o.rate_rps == 0);
	assert_int_equal(o.rate_burst, 0);
	assert_int_equal(o.max_connections, 0);
	assert_null(o.gate);
	assert_null(o.gate_ctx);
}

static void test_engine(void **state)
{
	tlm_engine_opts o = TLM_ENGINE_OPTS_INIT;

	(void)state;
	assert_int_equal(o.version, TLM_ENGINE_OPTS_VERSION);
	assert_null(o.spec);
	assert_null(o.control_plane);
	assert_int_equal(o.in_process, 0);
	assert_null(o.nats_url);
	assert_null(o.nats_creds_file);
	assert_null(o.nats_token);
	assert_null(o.nats_ca_file);
	assert_null(o.nats_cert_file);
	assert_null(o.nats_key_file);
	assert_null(o.state_dir);
	assert_int_equal(o.max_concurrent, 0);
	assert_int_equal(o.fresh_connection, -1);
	assert_int_equal(o.max_connections, 0);
	assert_int_equal(o.require_tls, 1);
	assert_null(o.ca_file);
	assert_null(o.client_cert_file);
	assert_null(o.client_key_file);
	assert_int_equal(o.request_timeout_ms, 0);
	assert_int_equal(o.dry_run, 0);
	assert_null(o.interrupts);
	assert_null(o.pauses);
	assert_null(o.pause);
	assert_null(o.resume_run_id);
	assert_int_equal(o.claim_flags, 0);
	assert_null(o.observe);
	assert_null(o.observe_ctx);
}

static void test_watcher(void **state)
{
	tlm_watcher_opts o = TLM_WATCHER_OPTS_INIT;

	(void)state;
	assert_null(o.url);
	assert_null(o.creds_file);
	assert_null(o.token);
	assert_null(o.ca_file);
	assert_null(o.cert_file);
	assert_null(o.key_file);
	assert_int_equal(o.connect_timeout_ms, 0);
	assert_int_equal(o.queue_max, 0);
	assert_null(o.wake);
	assert_null(o.wake_ctx);
}

static void test_server(void **state)
{
	tlm_server_opts o = TLM_SERVER_OPTS_INIT;
	tlm_events_opts e = TLM_EVENTS_OPTS_INIT;

	(void)state;
	assert_string_equal(o.listen, "127.0.0.1:0");
	assert_null(o.nats_url);
	assert_null(o.pass_env);
	assert_null(o.request_log);
	assert_int_equal(o.no_exec, 0);
	assert_null(o.tls_cert_file);
	assert_null(o.tls_key_file);
	assert_null(o.tls_client_ca_file);
	assert_null(o.nats_ca_file);
	assert_null(o.nats_cert_file);
	assert_null(o.nats_key_file);
	assert_null(o.nats_creds_file);
	assert_null(o.nats_token);
	assert_null(e.url);
	assert_null(e.token);
}

/* Options of another layout are refused by every entry point, before
 * anything is opened or sent. */
static void test_engine_version(void **state)
{
	tlm_engine_opts o = TLM_ENGINE_OPTS_INIT;
	tlm_engine_result res;
	tlm_engine_cancel_result cres;
	tlm_error err = TLM_ERROR_INIT;

	(void)state;
	o.version = TLM_ENGINE_OPTS_VERSION + 1;
	assert_int_equal(tlm_engine_run(&o, &res, &err), TLM_EINVALID);
	assert_non_null(strstr(err.message, "TLM_ENGINE_OPTS_INIT"));
	tlm_engine_result_clear(&res);
	assert_int_equal(tlm_engine_teardown(&o, "abcdefgh", &res, &err), TLM_EINVALID);
	tlm_engine_result_clear(&res);
	assert_int_equal(tlm_engine_cancel(&o, "abcdefgh", 0, &cres, &err), TLM_EINVALID);
	assert_int_equal(tlm_engine_check_nats(&o, 100, &err), TLM_EINVALID);
}

static const char *otel_env(void *ctx, const char *name)
{
	(void)ctx;
	return strcmp(name, "OTEL_EXPORTER_OTLP_ENDPOINT") == 0 ? "http://127.0.0.1:1" : NULL;
}

/* Every installed options struct starts with its layout version, set by
 * its INIT macro; the function that takes it refuses another version
 * (docs/library.md), and takes its own. */
static void test_other_versions(void **state)
{
	tlm_client_opts co = TLM_CLIENT_OPTS_INIT;
	tlm_watcher_opts wo = TLM_WATCHER_OPTS_INIT;
	tlm_hooks_opts ho = TLM_HOOKS_OPTS_INIT;
	tlm_mcp_opts mo = TLM_MCP_OPTS_INIT;
	tlm_trace_opts to = TLM_TRACE_OPTS_INIT;
	tlm_error err = TLM_ERROR_INIT;
	tlm_client *c = NULL;
	tlm_watcher *w = NULL;
	tlm_hooks *h = NULL;
	tlm_mcp *m = NULL;
	tlm_trace *t;

	(void)state;
	assert_int_equal(co.version, TLM_CLIENT_OPTS_VERSION);
	assert_int_equal(wo.version, TLM_WATCHER_OPTS_VERSION);
	assert_int_equal(ho.version, TLM_HOOKS_OPTS_VERSION);
	assert_int_equal(mo.version, TLM_MCP_OPTS_VERSION);
	assert_int_equal(to.version, TLM_TRACE_OPTS_VERSION);
	assert_string_equal(mo.server_name, "telemachy");
	assert_string_equal(mo.server_version, "0");
	assert_int_equal(mo.run_wait_ms, 15000);

	co.base_url = "http://127.0.0.1:1";
	co.version = 0;
	assert_int_equal(tlm_client_new(&c, &co, &err), TLM_EINVALID);
	assert_non_null(strstr(err.message, "TLM_CLIENT_OPTS_INIT"));
	co.version = TLM_CLIENT_OPTS_VERSION;
	assert_int_equal(tlm_client_new(&c, &co, &err), 0);
	tlm_client_free(c);

	wo.url = "nats://127.0.0.1:1";
	wo.version = 7;
	assert_int_equal(tlm_watcher_new(&w, &wo, &err), TLM_EINVALID);
	assert_non_null(strstr(err.message, "TLM_WATCHER_OPTS_INIT"));
	assert_null(w);

	ho.version = 0;
	assert_int_equal(tlm_hooks_new(&h, &ho, &err), TLM_EINVALID);
	assert_non_null(strstr(err.message, "TLM_HOOKS_OPTS_INIT"));
	ho.version = TLM_HOOKS_OPTS_VERSION;
	assert_int_equal(tlm_hooks_new(&h, &ho, &err), 0);
	tlm_hooks_free(h);

	mo.version = 2;
	assert_int_equal(tlm_mcp_new(&m, &mo, &err), TLM_EINVALID);
	assert_non_null(strstr(err.message, "TLM_MCP_OPTS_INIT"));
	mo.version = TLM_MCP_OPTS_VERSION;
	assert_int_equal(tlm_mcp_new(&m, &mo, &err), 0);
	tlm_mcp_free(m);

	to.getenv = otel_env;
	to.version = 0;
	assert_null(tlm_trace_new_from_env(&to));
	to.version = TLM_TRACE_OPTS_VERSION;
	t = tlm_trace_new_from_env(&to);
	assert_non_null(t);
	tlm_trace_free(t);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_client),         cmocka_unit_test(test_engine),
		cmocka_unit_test(test_engine_version), cmocka_unit_test(test_watcher),
		cmocka_unit_test(test_server),         cmocka_unit_test(test_other_versions),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
