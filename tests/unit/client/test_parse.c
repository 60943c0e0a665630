/* Reply, paging, error-body and event parsing for both contract generations
 * (docs/contract.md §4–§8): every shape the servers send, and the ones they should
 * not (malformed JSON, wrong types, huge input). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "client/client_internal.h"
#include "util/json.h"

#define S(lit) lit, sizeof(lit) - 1

/* ---- agents ------------------------------------------------------------ */

static void test_agent_create_shapes(void **state)
{
	tlm_client_resource r = TLM_CLIENT_RESOURCE_INIT;
	tlm_error err = TLM_ERROR_INIT;
	(void)state;

	/* v2: {"agent":A,"id":ID} */
	assert_int_equal(tlm_client__parse_agent_create(
				 &r,
				 S("{\"agent\":{\"id\":\"a1\",\"name\":\"tlm-x\",\"status\":"
				   "\"offline\"},\"id\":\"a1\"}"),
				 &err),
			 0);
	assert_string_equal(r.id, "a1");
	assert_string_equal(r.name, "tlm-x");
	assert_string_equal(r.status, "offline");
	assert_non_null(r.object);
	assert_string_equal(json_string_value(json_object_get(r.object, "name")), "tlm-x");
	tlm_client__resource_clear(&r);

	/* {"agent":A} */
	assert_int_equal(tlm_client__parse_agent_create(
				 &r, S("{\"agent\":{\"id\":\"a2\",\"name\":\"n\"}}"), &err),
			 0);
	assert_string_equal(r.id, "a2");
	assert_null(r.status);
	tlm_client__resource_clear(&r);

	/* bare A */
	assert_int_equal(
		tlm_client__parse_agent_create(&r, S("{\"id\":\"a3\",\"name\":\"n\"}"), &err), 0);
	assert_string_equal(r.id, "a3");
	tlm_client__resource_clear(&r);

	/* the id only at the top level */
	assert_int_equal(tlm_client__parse_agent_create(
				 &r, S("{\"agent\":{\"name\":\"n\"},\"id\":\"a4\"}"), &err),
			 0);
	assert_string_equal(r.id, "a4");
	assert_string_equal(r.name, "n");
	tlm_client__resource_clear(&r);

	/* stray "agent":null means bare */
	assert_int_equal(
		tlm_client__parse_agent_create(&r, S("{\"agent\":null,\"id\":\"a5\"}"), &err), 0);
	assert_string_equal(r.id, "a5");
	tlm_client__resource_clear(&r);
	tlm_client__resource_clear(&r); /* twice is harmless */
	tlm_client__resource_clear(NULL);
}

static void test_agent_create_refused(void **state)
{
	tlm_client_resource r = TLM_CLIENT_RESOURCE_INIT;
	tlm_error err = TLM_ERROR_INIT;
	(void)state;

	/* two ids */
	assert_int_equal(tlm_client__parse_agent_create(
				 &r, S("{\"agent\":{\"id\":\"a\"},\"id\":\"b\"}"), &err),
			 TLM_EINVALID);
	assert_null(r.id);
	assert_null(r.object);
	/* no id anywhere */
	assert_int_equal(
		tlm_client__parse_agent_create(&r, S("{\"agent\":{\"name\":\"n\"}}"), &err),
		TLM_EINVALID);
	assert_non_null(strstr(err.message, "no \"id\""));
	/* a number where the id belongs, inside and outside */
	assert_int_equal(tlm_client__parse_agent_create(&r, S("{\"agent\":{\"id\":42}}"), &err),
			 TLM_EINVALID);
	assert_non_null(strstr(err.message, "not a string"));
	assert_int_equal(tlm_client__parse_agent_create(
				 &r, S("{\"agent\":{\"name\":\"n\"},\"id\":42}"), &err),
			 TLM_EINVALID);
	assert_int_equal(tlm_client__parse_agent_create(&r, S("{\"id\":\"\"}"), &err),
			 TLM_EINVALID);
	assert_int_equal(tlm_client__parse_agent_create(
				 &r, S("{\"agent\":{\"name\":\"n\"},\"id\":\"\"}"), &err),
			 TLM_EINVALID);
	/* agent of the wrong type, and a name of the wrong type */
	assert_int_equal(tlm_client__parse_agent_create(&r, S("{\"agent\":\"a1\"}"), &err),
			 TLM_EINVALID);
	assert_int_equal(tlm_client__parse_agent_create(&r, S("{\"id\":\"a\",\"name\":[1]}"), &err),
			 TLM_EINVALID);
	/* not an object, not JSON, empty */
	assert_int_equal(tlm_client__parse_agent_create(&r, S("[\"a1\"]"), &err), TLM_EINVALID);
	assert_int_equal(tlm_client__parse_agent_create(&r, S("\"a1\""), &err), TLM_EINVALID);
	assert_int_equal(tlm_client__parse_agent_create(&r, S("{\"id\":\"a1\""), &err),
			 TLM_EINVALID);
	assert_int_equal(tlm_client__parse_agent_create(&r, S(""), &err), TLM_EINVALID);
	assert_int_equal(tlm_client__parse_agent_create(&r, NULL, 0, &err), TLM_EINVALID);
	/* An error reply on a 2xx is not an agent. */
	assert_int_equal(
		tlm_client__parse_agent_create(&r, S("{\"error\":\"unauthorized\"}"), &err),
		TLM_EINVALID);
	assert_null(r.id);
}

static void test_no_secret_echo(void **state)
{
	tlm_client_resource r = TLM_CLIENT_RESOURCE_INIT;
	tlm_error err = TLM_ERROR_INIT;
	(void)state;

	/* jansson's own message would quote the token near the error. */
	assert_int_equal(tlm_client__parse_agent(&r, S("{\"key\": sk-SECRET-123}"), &err),
			 TLM_EINVALID);
	assert_null(strstr(err.message, "SECRET"));
	assert_non_null(strstr(err.message, "not valid JSON"));
	assert_int_equal(tlm_client__parse_agent(&r,
						 S("{\"agent\":{\"id\":\"sk-SECRET\","
						   "\"name\":{\"x\":\"sk-SECRET\"}}}"),
						 &err),
			 TLM_EINVALID);
	assert_null(strstr(err.message, "SECRET"));
	assert_int_equal(tlm_client__parse_agent(&r, S("sk-SECRET"), &err), TLM_EINVALID);
	assert_null(strstr(err.message, "SECRET"));
}

static void test_huge_input(void **state)
{
	tlm_client_resource r = TLM_CLIENT_RESOURCE_INIT;
	tlm_client_event ev = TLM_CLIENT_EVENT_INIT;
	tlm_client_pager p;
	tlm_error err = TLM_ERROR_INIT;
	size_t n = TLM_CLIENT_MAX_BODY + 1;
	char *big = malloc(n);
	json_t *items;
	int more;
	(void)state;

	assert_non_null(big);
	memset(big, ' ', n);
	big[0] = '{';
	big[n - 1] = '}';
	assert_int_equal(tlm_client__parse_agent_create(&r, big, n, &err), TLM_ETOOBIG);
	assert_int_equal(tlm_client__parse_agent(&r, big, n, &err), TLM_ETOOBIG);
	assert_int_equal(tlm_client__parse_team(&r, big, n, &err), TLM_ETOOBIG);
	assert_int_equal(tlm_client__parse_task(&r, big, n, &err), TLM_ETOOBIG);
	tlm_client__pager_init(&p, "agents", 100);
	assert_int_equal(tlm_client__pager_feed(&p, big, n, &items, &more, &err), TLM_ETOOBIG);
	assert_null(items);
	assert_int_equal(more, 0);
	tlm_client__pager_clear(&p);
	assert_int_equal(tlm_client__parse_event(&ev, "hi.tasks.t.k.completed", big, n, &err),
			 TLM_ETOOBIG);
	/* Exactly at the cap is parsed. */
	big[n - 2] = '}';
	memcpy(big, "{\"id\":\"x\"", 9);
	assert_int_equal(tlm_client__parse_agent(&r, big, n - 1, &err), 0);
	assert_string_equal(r.id, "x");
	tlm_client__resource_clear(&r);
	free(big);
}

static void test_agent_get(void **state)
{
	tlm_client_resource r = TLM_CLIENT_RESOURCE_INIT;
	tlm_error err = TLM_ERROR_INIT;
	(void)state;

	assert_int_equal(tlm_client__parse_agent(&r,
						 S("{\"agent\":{\"id\":\"a\",\"name\":\"tlm-r-x\","
						   "\"status\":\"online\",\"tags\":[]}}"),
						 &err),
			 0);
	assert_string_equal(r.id, "a");
	assert_string_equal(r.name, "tlm-r-x");
	assert_string_equal(r.status, "online");
	tlm_client__resource_clear(&r);
	assert_int_equal(
		tlm_client__parse_agent(&r, S("{\"agent\":{\"id\":\"a\",\"status\":1}}"), &err),
		TLM_EINVALID);
	assert_int_equal(tlm_client__parse_agent(&r, S("{\"agent\":[]}"), &err), TLM_EINVALID);
	assert_int_equal(tlm_client__parse_agent(&r, S("{\"agent\":{}}"), &err), TLM_EINVALID);
}

/* ---- teams and tasks ------------------------------------------------------ */

static void test_team(void **state)
{
	tlm_client_resource r = TLM_CLIENT_RESOURCE_INIT;
	tlm_error err = TLM_ERROR_INIT;
	(void)state;

	assert_int_equal(tlm_client__parse_team(&r,
						S("{\"team\":{\"id\":\"t1\",\"name\":\"tlm-r-t\","
						  "\"agentIds\":[\"a\"],\"createdAt\":\"x\"}}"),
						&err),
			 0);
	assert_string_equal(r.id, "t1");
	assert_string_equal(r.name, "tlm-r-t");
	assert_null(r.status);
	assert_int_equal(json_array_size(json_object_get(r.object, "agentIds")), 1);
	tlm_client__resource_clear(&r);
	assert_int_equal(tlm_client__parse_team(&r, S("{\"id\":\"t2\",\"name\":\"n\"}"), &err), 0);
	assert_string_equal(r.id, "t2");
	tlm_client__resource_clear(&r);
	assert_int_equal(tlm_client__parse_team(&r, S("{\"team\":{\"id\":7}}"), &err),
			 TLM_EINVALID);
	assert_int_equal(tlm_client__parse_team(&r, S("{\"team\":true}"), &err), TLM_EINVALID);
	assert_int_equal(tlm_client__parse_team(&r, S("{\"deleted\":\"t1\"}"), &err), TLM_EINVALID);
}

static void test_task(void **state)
{
	tlm_client_resource r = TLM_CLIENT_RESOURCE_INIT;
	tlm_error err = TLM_ERROR_INIT;
	(void)state;

	/* v2 */
	assert_int_equal(tlm_client__parse_task(&r,
						S("{\"task\":{\"id\":\"k1\",\"teamId\":\"t1\","
						  "\"status\":\"pending\",\"completedAt\":null}}"),
						&err),
			 0);
	assert_string_equal(r.id, "k1");
	assert_string_equal(r.team_id, "t1");
	assert_string_equal(r.status, "pending");
	assert_null(r.name);
	tlm_client__resource_clear(&r);
	/* v1 bare K, with and without the stray "task":null */
	assert_int_equal(tlm_client__parse_task(&r,
						S("{\"id\":\"k2\",\"teamId\":\"t1\",\"status\":"
						  "\"completed\",\"task\":null}"),
						&err),
			 0);
	assert_string_equal(r.id, "k2");
	assert_string_equal(r.status, "completed");
	tlm_client__resource_clear(&r);
	assert_int_equal(
		tlm_client__parse_task(&r, S("{\"id\":\"k3\",\"status\":\"running\"}"), &err), 0);
	assert_string_equal(r.id, "k3");
	assert_null(r.team_id);
	tlm_client__resource_clear(&r);
	/* wrong types */
	assert_int_equal(tlm_client__parse_task(&r, S("{\"task\":{\"id\":1.5}}"), &err),
			 TLM_EINVALID);
	assert_int_equal(
		tlm_client__parse_task(&r, S("{\"task\":{\"id\":\"k\",\"teamId\":3}}"), &err),
		TLM_EINVALID);
	assert_int_equal(tlm_client__parse_task(&r, S("{\"task\":\"k\"}"), &err), TLM_EINVALID);
	assert_int_equal(tlm_client__parse_task(&r, S("{\"task\":null}"), &err), TLM_EINVALID);
	assert_int_equal(tlm_client__parse_task(&r, S("null"), &err), TLM_EINVALID);
	assert_int_equal(tlm_client__parse_task(&r, S("{\"task\":{\"id\":\"k\"}} trailing"), &err),
			 TLM_EINVALID);
}

static void test_resource_from_json(void **state)
{
	tlm_client_resource r = TLM_CLIENT_RESOURCE_INIT;
	tlm_error err = TLM_ERROR_INIT;
	json_t *o = json_pack("{s:s, s:s}", "id", "x", "teamId", "t");
	(void)state;

	assert_int_equal(tlm_client__resource_from_json(&r, "task", o, &err), 0);
	assert_string_equal(r.team_id, "t");
	json_decref(o); /* r holds its own reference */
	assert_string_equal(json_string_value(json_object_get(r.object, "id")), "x");
	tlm_client__resource_clear(&r);
	assert_int_equal(tlm_client__resource_from_json(&r, "agent", NULL, &err), TLM_EINVALID);
}

/* ---- paging ---------------------------------------------------------------- */

static void feed_ok(tlm_client_pager *p, const char *body, size_t want_items, int want_more)
{
	tlm_error err = TLM_ERROR_INIT;
	json_t *items = NULL;
	int more = -1;

	assert_int_equal(tlm_client__pager_feed(p, body, strlen(body), &items, &more, &err), 0);
	assert_non_null(items);
	assert_int_equal(json_array_size(items), want_items);
	assert_int_equal(more, want_more);
	json_decref(items);
}

static void test_paging_v2(void **state)
{
	tlm_client_pager p;
	(void)state;

	tlm_client__pager_init(&p, "agents", 2);
	feed_ok(&p,
		"{\"agents\":[{\"id\":\"a\"},{\"id\":\"b\"}],\"total\":5,\"limit\":2,\"offset\":0}",
		2, 1);
	assert_int_equal(p.offset, 2);
	feed_ok(&p,
		"{\"agents\":[{\"id\":\"c\"},{\"id\":\"d\"}],\"total\":5,\"limit\":2,\"offset\":2}",
		2, 1);
	feed_ok(&p, "{\"agents\":[{\"id\":\"e\"}],\"total\":5,\"limit\":2,\"offset\":4}", 1, 0);
	assert_int_equal(p.offset, 5);
	assert_int_equal(p.pages, 3);
	tlm_client__pager_clear(&p);

	/* exact multiple: ends on total, not on an extra empty page */
	tlm_client__pager_init(&p, "teams", 2);
	feed_ok(&p, "{\"teams\":[{\"id\":\"a\"},{\"id\":\"b\"}],\"total\":4}", 2, 1);
	feed_ok(&p, "{\"teams\":[{\"id\":\"c\"},{\"id\":\"d\"}],\"total\":4}", 2, 0);
	tlm_client__pager_clear(&p);

	/* empty list */
	tlm_client__pager_init(&p, "tasks", 0);
	assert_int_equal(p.limit, 100);
	feed_ok(&p, "{\"tasks\":[],\"total\":0,\"limit\":100,\"offset\":0}", 0, 0);
	tlm_client__pager_clear(&p);

	/* the server clamps limit (1000): a short page still continues by total */
	tlm_client__pager_init(&p, "agents", 5000);
	feed_ok(&p, "{\"agents\":[{\"id\":\"a\"}],\"total\":3,\"limit\":1000}", 1, 1);
	tlm_client__pager_clear(&p);
}

static void test_paging_total_but_fewer(void **state)
{
	tlm_client_pager p;
	tlm_error err = TLM_ERROR_INIT;
	json_t *items;
	int more, i;
	(void)state;

	/* total says 10 but the server runs dry (items deleted meanwhile, or a
	 * lying server): the empty page ends paging instead of looping. */
	tlm_client__pager_init(&p, "agents", 2);
	feed_ok(&p, "{\"agents\":[{\"id\":\"a\"},{\"id\":\"b\"}],\"total\":10}", 2, 1);
	feed_ok(&p, "{\"agents\":[],\"total\":10}", 0, 0);
	assert_int_equal(p.done, 1);
	/* feeding after the end is a programming slip, reported, not a loop */
	assert_int_equal(tlm_client__pager_feed(&p, S("{\"agents\":[]}"), &items, &more, &err),
			 TLM_EINVALID);
	tlm_client__pager_clear(&p);

	/* a server that ignores offset but reports a total: page one again ends it */
	tlm_client__pager_init(&p, "agents", 2);
	feed_ok(&p, "{\"agents\":[{\"id\":\"a\"},{\"id\":\"b\"}],\"total\":10}", 2, 1);
	for (i = 0; i < 1; i++)
		feed_ok(&p, "{\"agents\":[{\"id\":\"a\"},{\"id\":\"b\"}],\"total\":10}", 0, 0);
	tlm_client__pager_clear(&p);
}

static void test_paging_v1(void **state)
{
	tlm_client_pager p;
	(void)state;

	/* v1: the whole list, no total, shorter than limit: done */
	tlm_client__pager_init(&p, "agents", 100);
	feed_ok(&p, "{\"agents\":[{\"id\":\"a\"},{\"id\":\"b\"}]}", 2, 0);
	tlm_client__pager_clear(&p);

	/* longer than limit: the server ignored limit and sent everything */
	tlm_client__pager_init(&p, "agents", 2);
	feed_ok(&p, "{\"agents\":[{\"id\":\"a\"},{\"id\":\"b\"},{\"id\":\"c\"}]}", 3, 0);
	tlm_client__pager_clear(&p);

	/* a full page: continue; v1 ignores offset and repeats page one, which is
	 * recognised and contributes nothing */
	tlm_client__pager_init(&p, "agents", 2);
	feed_ok(&p, "{\"agents\":[{\"id\":\"a\"},{\"id\":\"b\"}]}", 2, 1);
	feed_ok(&p, "{\"agents\":[{\"id\":\"a\"},{\"id\":\"b\"}]}", 0, 0);
	tlm_client__pager_clear(&p);

	/* ... also when its items have no id (found by fuzzing: paged until
	 * the 100,000-page cap) */
	tlm_client__pager_init(&p, "tasks", 3);
	feed_ok(&p, "{\"tasks\":[{\"if\":\"a\"},{\"id\":\"b\"},{\"id\":\"c\"}]}", 3, 1);
	feed_ok(&p, "{\"tasks\":[{\"if\":\"a\"},{\"id\":\"b\"},{\"id\":\"c\"}]}", 0, 0);
	tlm_client__pager_clear(&p);
	/* by id when there is one: other fields may change between requests */
	tlm_client__pager_init(&p, "agents", 1);
	feed_ok(&p, "{\"agents\":[{\"id\":\"a\",\"status\":\"offline\"}]}", 1, 1);
	feed_ok(&p, "{\"agents\":[{\"id\":\"a\",\"status\":\"online\"}]}", 0, 0);
	tlm_client__pager_clear(&p);

	/* a server without total that does page: full pages, then a short one */
	tlm_client__pager_init(&p, "tasks", 2);
	feed_ok(&p, "{\"tasks\":[{\"id\":\"a\"},{\"id\":\"b\"}],\"limit\":2}", 2, 1);
	feed_ok(&p, "{\"tasks\":[{\"id\":\"c\"},{\"id\":\"d\"}],\"limit\":2}", 2, 1);
	feed_ok(&p, "{\"tasks\":[{\"id\":\"e\"}],\"limit\":2}", 1, 0);
	tlm_client__pager_clear(&p);

	/* full pages then an empty one */
	tlm_client__pager_init(&p, "tasks", 1);
	feed_ok(&p, "{\"tasks\":[{\"id\":\"a\"}]}", 1, 1);
	feed_ok(&p, "{\"tasks\":[]}", 0, 0);
	tlm_client__pager_clear(&p);

	/* "total": null counts as absent */
	tlm_client__pager_init(&p, "tasks", 100);
	feed_ok(&p, "{\"tasks\":[{\"id\":\"a\"}],\"total\":null}", 1, 0);
	tlm_client__pager_clear(&p);
}

static void test_paging_malformed(void **state)
{
	static const char *const bad[] = {
		"{\"teams\":[]}",                  /* wrong key */
		"{\"agents\":{}}",                 /* not an array */
		"{\"agents\":[],\"total\":\"3\"}", /* total as a string */
		"{\"agents\":[],\"total\":-1}",
		"{\"agents\":[],\"limit\":1.5}",
		"[]",
		"{\"agents\":[",
		"",
	};
	tlm_client_pager p;
	tlm_error err = TLM_ERROR_INIT;
	json_t *items;
	int more;
	size_t i;
	(void)state;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		tlm_client__pager_init(&p, "agents", 10);
		assert_int_equal(
			tlm_client__pager_feed(&p, bad[i], strlen(bad[i]), &items, &more, &err),
			TLM_EINVALID);
		assert_null(items);
		assert_int_equal(more, 0);
		assert_int_equal(p.done, 1);
		tlm_client__pager_clear(&p);
	}
}

static void test_paging_page_cap(void **state)
{
	tlm_client_pager p;
	tlm_error err = TLM_ERROR_INIT;
	json_t *items;
	char body[128];
	int more = 1, rc = 0;
	size_t i;
	(void)state;

	/* an endless server with fresh ids on every page: the page cap ends it */
	tlm_client__pager_init(&p, "agents", 1);
	for (i = 0; more && rc == 0; i++) {
		int n = snprintf(body, sizeof(body), "{\"agents\":[{\"id\":\"x%zu\"}]}", i);

		rc = tlm_client__pager_feed(&p, body, (size_t)n, &items, &more, &err);
		json_decref(items);
	}
	assert_int_equal(rc, TLM_ETOOBIG);
	assert_int_equal(i, TLM_CLIENT_MAX_PAGES);
	tlm_client__pager_clear(&p);
}

/* ---- error bodies ------------------------------------------------------------ */

static void test_error_text(void **state)
{
	char out[512], big[600];
	(void)state;

	tlm_client__error_text(out, sizeof(out), S("{\"error\":\"unauthorized\"}"));
	assert_string_equal(out, "unauthorized");
	tlm_client__error_text(out, sizeof(out),
			       S("{\"error\":\"rate limit exceeded\",\"retry_after_seconds\":2}"));
	assert_string_equal(out, "rate limit exceeded");
	tlm_client__error_text(out, sizeof(out), S("{\"detail\":\"Not Found\"}"));
	assert_string_equal(out, "Not Found");
	/* error wins over detail; an empty or non-string error falls back */
	tlm_client__error_text(out, sizeof(out), S("{\"detail\":\"d\",\"error\":\"e\"}"));
	assert_string_equal(out, "e");
	tlm_client__error_text(out, sizeof(out), S("{\"error\":\"\",\"detail\":\"d\"}"));
	assert_string_equal(out, "d");
	tlm_client__error_text(out, sizeof(out), S("{\"error\":5,\"detail\":\"d\"}"));
	assert_string_equal(out, "d");
	/* neither: the raw text */
	tlm_client__error_text(out, sizeof(out), S("{\"detail\":[{\"loc\":1}]}"));
	assert_string_equal(out, "{\"detail\":[{\"loc\":1}]}");
	tlm_client__error_text(out, sizeof(out), S("Bad Gateway"));
	assert_string_equal(out, "Bad Gateway");
	tlm_client__error_text(out, sizeof(out), "", 0);
	assert_string_equal(out, "(empty body)");
	tlm_client__error_text(out, sizeof(out), NULL, 0);
	assert_string_equal(out, "(empty body)");
	/* control characters and non-ASCII are escaped: no forged log lines */
	tlm_client__error_text(out, sizeof(out), S("a\nb\r\tc\x1b[31m\\\xc3\xa9"));
	assert_string_equal(out, "a\\nb\\r\\tc\\x1b[31m\\\\\\xc3\\xa9");
	tlm_client__error_text(out, sizeof(out), S("{\"error\":\"x\\ny\\u0000z\"}"));
	assert_string_equal(out, "x\\ny\\x00z");
	/* truncated at ~200 bytes */
	memset(big, 'A', sizeof(big));
	tlm_client__error_text(out, sizeof(out), big, sizeof(big));
	assert_int_equal(strlen(out), TLM_CLIENT_ERRTEXT_MAX + 3);
	assert_string_equal(out + TLM_CLIENT_ERRTEXT_MAX, "...");
	/* a small buffer is never overrun */
	tlm_client__error_text(out, 8, big, sizeof(big));
	assert_true(strlen(out) < 8);
	tlm_client__error_text(out, 4, S("\n\n\n"));
	assert_true(strlen(out) < 4);
	out[0] = 'x';
	tlm_client__error_text(out, 0, S("abc")); /* writes nothing */
	assert_int_equal(out[0], 'x');
}

static void test_retry_after_header(void **state)
{
	(void)state;
	assert_int_equal(tlm_client__parse_retry_after("3"), 3);
	assert_int_equal(tlm_client__parse_retry_after(" 120 "), 120);
	assert_int_equal(tlm_client__parse_retry_after("0"), 0);
	assert_int_equal(tlm_client__parse_retry_after("99999999999999999999"), 86400);
	assert_int_equal(tlm_client__parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"), -1);
	assert_int_equal(tlm_client__parse_retry_after("-1"), -1);
	assert_int_equal(tlm_client__parse_retry_after("1.5"), -1);
	assert_int_equal(tlm_client__parse_retry_after(""), -1);
	assert_int_equal(tlm_client__parse_retry_after(NULL), -1);
}

static void test_body_retry_after(void **state)
{
	(void)state;
	assert_int_equal(tlm_client__body_retry_after(S(
				 "{\"error\":\"rate limit exceeded\",\"retry_after_seconds\":3}")),
			 3);
	assert_int_equal(tlm_client__body_retry_after(S("{\"retry_after_seconds\":1e9}")), -1);
	assert_int_equal(tlm_client__body_retry_after(S("{\"retry_after_seconds\":\"3\"}")), -1);
	assert_int_equal(tlm_client__body_retry_after(S("{\"retry_after_seconds\":-2}")), -1);
	assert_int_equal(tlm_client__body_retry_after(S("{\"retry_after_seconds\":999999}")),
			 86400);
	assert_int_equal(tlm_client__body_retry_after(S("[3]")), -1);
	assert_int_equal(tlm_client__body_retry_after(S("nope")), -1);
	assert_int_equal(tlm_client__body_retry_after(NULL, 0), -1);
}

static void test_http_code(void **state)
{
	(void)state;
	assert_int_equal(tlm_client__http_code(200), 0);
	assert_int_equal(tlm_client__http_code(201), 0);
	assert_int_equal(tlm_client__http_code(404), TLM_ENOTFOUND);
	assert_int_equal(tlm_client__http_code(409), TLM_ECONFLICT);
	assert_int_equal(tlm_client__http_code(429), TLM_ERATELIMIT);
	assert_int_equal(tlm_client__http_code(408), TLM_ETIMEOUT);
	assert_int_equal(tlm_client__http_code(504), TLM_ETIMEOUT);
	assert_int_equal(tlm_client__http_code(413), TLM_ETOOBIG);
	assert_int_equal(tlm_client__http_code(400), TLM_EINVALID);
	assert_int_equal(tlm_client__http_code(401), TLM_EINVALID);
	assert_int_equal(tlm_client__http_code(500), TLM_ERROR);
	assert_int_equal(tlm_client__http_code(302), TLM_ERROR);
	assert_int_equal(tlm_client__http_code(0), TLM_ERROR);
}

/* ---- status vocabulary and events --------------------------------------------- */

static void test_vocabulary(void **state)
{
	static const char *const terminal[] = { "completed", "failed", "cancelled",
						"canceled",  "error",  "timed_out" };
	static const char *const active[] = { "pending", "running", "blocked", "in_progress" };
	size_t i;
	(void)state;

	for (i = 0; i < sizeof(terminal) / sizeof(terminal[0]); i++)
		assert_true(tlm_client__status_is_terminal(terminal[i]));
	for (i = 0; i < sizeof(active) / sizeof(active[0]); i++) {
		assert_false(tlm_client__status_is_terminal(active[i]));
		assert_int_equal(tlm_client__task_state(active[i]), TLM_TASK_ACTIVE);
	}
	assert_int_equal(tlm_client__task_state("completed"), TLM_TASK_COMPLETED);
	assert_int_equal(tlm_client__task_state("COMPLETED"), TLM_TASK_COMPLETED);
	assert_int_equal(tlm_client__task_state("timed_out"), TLM_TASK_FAILED);
	/* unknown: not terminal, flagged as unknown */
	assert_int_equal(tlm_client__task_state("done"), TLM_TASK_UNKNOWN);
	assert_false(tlm_client__status_is_terminal("done"));
	assert_int_equal(tlm_client__task_state(""), TLM_TASK_UNKNOWN);
	assert_int_equal(tlm_client__task_state(NULL), TLM_TASK_UNKNOWN);
	assert_false(tlm_client__status_is_terminal(NULL));
}

static void expect_event(const char *subject, const char *payload, const char *team,
			 const char *task, const char *status, tlm_task_state st)
{
	tlm_client_event ev = TLM_CLIENT_EVENT_INIT;
	tlm_error err = TLM_ERROR_INIT;

	assert_int_equal(
		tlm_client__parse_event(&ev, subject, payload, payload ? strlen(payload) : 0, &err),
		0);
	assert_string_equal(ev.team_id, team);
	assert_string_equal(ev.task_id, task);
	assert_string_equal(ev.status, status);
	assert_int_equal(ev.state, st);
	tlm_client__event_clear(&ev);
}

static void test_event_precedence(void **state)
{
	const char *subj = "hi.tasks.T1.K1.updated";
	(void)state;

	/* each source alone */
	expect_event(subj, "{\"task\":{\"id\":\"K1\",\"status\":\"completed\"}}", "T1", "K1",
		     "completed", TLM_TASK_COMPLETED);
	expect_event(subj, "{\"id\":\"K1\",\"status\":\"running\",\"task\":null}", "T1", "K1",
		     "running", TLM_TASK_ACTIVE);
	expect_event(subj, "{\"data\":{\"status\":\"failed\"}}", "T1", "K1", "failed",
		     TLM_TASK_FAILED);
	expect_event(subj, "{\"newStatus\":\"blocked\"}", "T1", "K1", "blocked", TLM_TASK_ACTIVE);
	/* pairwise precedence: task.status > status > data.status > newStatus */
	expect_event(subj,
		     "{\"newStatus\":\"d\",\"data\":{\"status\":\"c\"},\"status\":\"b\","
		     "\"task\":{\"status\":\"a\"}}",
		     "T1", "K1", "a", TLM_TASK_UNKNOWN);
	expect_event(subj, "{\"newStatus\":\"d\",\"data\":{\"status\":\"c\"},\"status\":\"b\"}",
		     "T1", "K1", "b", TLM_TASK_UNKNOWN);
	expect_event(subj, "{\"newStatus\":\"d\",\"data\":{\"status\":\"c\"}}", "T1", "K1", "c",
		     TLM_TASK_UNKNOWN);
	expect_event(subj, "{\"newStatus\":\"d\",\"task\":{\"id\":\"x\"}}", "T1", "K1", "d",
		     TLM_TASK_UNKNOWN);
	/* wrong types and empty strings fall through to the next source */
	expect_event(subj,
		     "{\"task\":{\"status\":5},\"status\":\"\",\"data\":\"x\","
		     "\"newStatus\":\"pending\"}",
		     "T1", "K1", "pending", TLM_TASK_ACTIVE);
	/* the payload beats the verb */
	expect_event("hi.tasks.T1.K1.completed", "{\"status\":\"failed\"}", "T1", "K1", "failed",
		     TLM_TASK_FAILED);
	/* verbs when the payload has no status */
	expect_event("hi.tasks.T1.K1.completed", "{\"task_id\":\"K1\"}", "T1", "K1", "completed",
		     TLM_TASK_COMPLETED);
	expect_event("hi.tasks.T1.K1.completed", "{\"data\":{\"task_id\":\"K1\"}}", "T1", "K1",
		     "completed", TLM_TASK_COMPLETED);
	expect_event("hi.tasks.T1.K1.failed", "{\"task_id\":\"K1\",\"error\":\"x\"}", "T1", "K1",
		     "failed", TLM_TASK_FAILED);
	expect_event("hi.tasks.T1.K1.started", "{\"task_id\":\"K1\"}", "T1", "K1", "running",
		     TLM_TASK_ACTIVE);
	/* unreadable or absent payloads still give the verb */
	expect_event("hi.tasks.T1.K1.completed", "not json", "T1", "K1", "completed",
		     TLM_TASK_COMPLETED);
	expect_event("hi.tasks.T1.K1.failed", NULL, "T1", "K1", "failed", TLM_TASK_FAILED);
	expect_event("hi.tasks.T1.K1.started", "[1,2]", "T1", "K1", "running", TLM_TASK_ACTIVE);
	/* the task id comes from the subject, not the payload */
	expect_event("hi.tasks.T2.K9.updated",
		     "{\"task\":{\"id\":\"OTHER\",\"status\":\"failed\"}}", "T2", "K9", "failed",
		     TLM_TASK_FAILED);
}

/* The fast reading of an event's status (src/client/event_status.c) answers
 * only where jansson would answer the same, and declines the rest. */
static void expect_fast(const char *payload, size_t len, int want, const char *status)
{
	char *fast = NULL;
	json_t *root;
	const char *ref;
	int rc = tlm_client__event_status_fast(payload, len, &fast), oom = 0;

	if (rc != want)
		fail_msg("%.*s: fast reading gave %d, want %d", (int)len, payload, rc, want);
	if (status != NULL)
		assert_string_equal(fast, status);
	else
		assert_null(fast);
	if (rc != TLM_FAST_DECLINED) {
		root = tlm_json_loadb(payload, len, 0, NULL, &oom);
		ref = tlm_client__event_status_json(root);
		if (fast != NULL || ref != NULL) {
			assert_non_null(ref);
			assert_non_null(fast);
			assert_string_equal(fast, ref);
		}
		json_decref(root);
	}
	free(fast);
}

/* A document of exactly len bytes: head, then 'y' up to tail. */
static void long_doc(size_t len, const char *head, const char *tail, int want)
{
	char *doc = malloc(len);
	size_t h = strlen(head), t = strlen(tail);

	assert_non_null(doc);
	memcpy(doc, head, h);
	memset(doc + h, 'y', len - h - t);
	memcpy(doc + len - t, tail, t);
	expect_fast(doc, len, want, want == TLM_FAST_FOUND ? "a" : NULL);
	free(doc);
}

#define FAST(lit, want, status) expect_fast(lit, sizeof(lit) - 1, want, status)

static void test_event_fast_reading(void **state)
{
	char deep[200];
	(void)state;

	/* what serve and upstream send */
	FAST("{\"task\":{\"id\":\"K\",\"team_id\":\"T\",\"status\":\"completed\",\"n\":3,"
	     "\"x\":1.5,\"ok\":true,\"z\":null,\"labels\":[\"a\",{\"status\":\"no\"}]}}",
	     TLM_FAST_FOUND, "completed");
	FAST("{\"id\":\"K\",\"status\":\"running\",\"task\":null}", TLM_FAST_FOUND, "running");
	FAST(" {\"task_id\":\"K\"} \r\n\t", TLM_FAST_NONE, NULL);
	/* the last duplicate key wins, as in the tree jansson builds */
	FAST("{\"task\":{\"status\":\"a\",\"status\":\"b\"}}", TLM_FAST_FOUND, "b");
	FAST("{\"task\":{\"status\":\"a\"},\"task\":{\"id\":\"x\"}}", TLM_FAST_NONE, NULL);
	FAST("{\"task\":{\"status\":\"a\"},\"task\":7,\"status\":\"r\"}", TLM_FAST_FOUND, "r");
	FAST("{\"status\":\"a\",\"status\":5}", TLM_FAST_NONE, NULL);
	FAST("{\"status\":\"a\",\"status\":[\"b\"]}", TLM_FAST_NONE, NULL);
	FAST("{\"task\":{\"status\":\"a\",\"status\":\"\"}}", TLM_FAST_NONE, NULL);
	FAST("{\"data\":{\"status\":\"c\"},\"data\":null,\"newStatus\":\"d\"}", TLM_FAST_FOUND,
	     "d");
	/* only the places the contract names */
	FAST("{\"task\":{\"meta\":{\"status\":\"x\"}}}", TLM_FAST_NONE, NULL);
	FAST("{\"task\":[{\"status\":\"x\"}],\"other\":{\"status\":\"y\"}}", TLM_FAST_NONE, NULL);
	FAST("{\"task\":{\"list\":[\"status\",\"x\"]}}", TLM_FAST_NONE, NULL);
	FAST("[{\"status\":\"a\"}]", TLM_FAST_NONE, NULL);
	FAST("\"status\"", TLM_FAST_NONE, NULL);
	FAST("{\"newStatus\":{\"status\":\"x\"}}", TLM_FAST_NONE, NULL);
	/* escapes both read the same way */
	FAST("{\"status\":\"a\\\"b\\\\c\\/d\\n\"}", TLM_FAST_FOUND, "a\"b\\c/d\n");
	FAST("{\"st\\/atus\":\"a\",\"sta\\tus\":\"b\"}", TLM_FAST_NONE, NULL);
	/* where the parsers may differ, jansson decides */
	FAST("{\"status\":\"\\u0061\"}", TLM_FAST_DECLINED, NULL);
	FAST("{\"status\":\"a\\u0000b\"}", TLM_FAST_DECLINED, NULL);
	FAST("{\"status\":\"\\ud800\"}", TLM_FAST_DECLINED, NULL);
	FAST("{\"status\":\"caf\xc3\xa9\"}", TLM_FAST_DECLINED, NULL);
	FAST("{\"status\":\"\xc0\xaf\"}", TLM_FAST_DECLINED, NULL);
	FAST("\xef\xbb\xbf{\"status\":\"a\"}", TLM_FAST_DECLINED, NULL);
	FAST("{\"status\":\"a\"}\f", TLM_FAST_DECLINED, NULL);
	FAST("{\"status\":\"a\"}\v", TLM_FAST_DECLINED, NULL);
	FAST("{\"status\":\"a\tb\"}", TLM_FAST_DECLINED, NULL);
	FAST("{\"status\":\"a\nb\"}", TLM_FAST_DECLINED, NULL);
	FAST("{\"status\":\"a\0b\"}", TLM_FAST_DECLINED, NULL);
	FAST("{\"n\":1e999,\"status\":\"a\"}", TLM_FAST_DECLINED, NULL);
	FAST("{\"n\":1E2,\"status\":\"a\"}", TLM_FAST_DECLINED, NULL);
	FAST("{\"n\":12345678901234567890,\"status\":\"a\"}", TLM_FAST_DECLINED, NULL);
	FAST("{\"n\":-9223372036854775808,\"status\":\"a\"}", TLM_FAST_DECLINED, NULL);
	FAST("{\"n\":-92233720368547758,\"status\":\"a\"}", TLM_FAST_FOUND, "a");
	FAST("{\"n\":01,\"status\":\"a\"}", TLM_FAST_DECLINED, NULL);
	FAST("{\"n\":-,\"status\":\"a\"}", TLM_FAST_DECLINED, NULL);
	FAST("{\"n\":.5,\"status\":\"a\"}", TLM_FAST_DECLINED, NULL);
	FAST("{\"status\":\"a\"} x", TLM_FAST_DECLINED, NULL);
	FAST("{\"status\":\"a\"}{}", TLM_FAST_DECLINED, NULL);
	FAST("{\"status\":\"a\"}\"n", TLM_FAST_DECLINED, NULL);
	FAST("{\"status\":\"a\"} tr", TLM_FAST_DECLINED, NULL);
	FAST("{\"status\":\"a\"}1", TLM_FAST_DECLINED, NULL);
	FAST("{\"status\":\"a\",}", TLM_FAST_DECLINED, NULL);
	FAST("{\"status\":\"a\"/**/}", TLM_FAST_DECLINED, NULL);
	FAST("{\"status\":'a'}", TLM_FAST_DECLINED, NULL);
	FAST("{\"status\":\"a\"", TLM_FAST_DECLINED, NULL);
	FAST("{\"status\":\"a\",\"x\":tru}", TLM_FAST_DECLINED, NULL);
	/* the largest document read, with yajl's buffers at their largest
	 * (a long string with an escape; an unfinished token at the end) */
	long_doc(TLM_SCAN_MAX_LEN, "{\"status\":\"a\",\"x\":\"\\n", "\"}", TLM_FAST_FOUND);
	long_doc(TLM_SCAN_MAX_LEN, "{\"status\":\"a\"}\"", "", TLM_FAST_DECLINED);
	long_doc(TLM_SCAN_MAX_LEN + 1, "{\"status\":\"a\",\"x\":\"", "\"}", TLM_FAST_DECLINED);
	/* deep documents go to jansson too */
	memset(deep, '[', 40);
	memset(deep + 40, ']', 40);
	expect_fast(deep, 80, TLM_FAST_DECLINED, NULL);
	memset(deep, '[', 20);
	memset(deep + 20, ']', 20);
	expect_fast(deep, 40, TLM_FAST_NONE, NULL);
}

/* The id of a task create's reply read without a tree
 * (src/client/task_reply.c): found only where tlm_client__parse_task
 * succeeds, with its id. */
static void expect_task_id(const char *body, size_t len, int want, const char *id)
{
	tlm_client_resource k = TLM_CLIENT_RESOURCE_INIT;
	tlm_error err = TLM_ERROR_INIT;
	char *fast = NULL;
	int rc = tlm_client__task_reply_id_fast(body, len, &fast);
	int parsed = tlm_client__parse_task(&k, body, len, &err);

	if (rc != want)
		fail_msg("%.*s: fast reading gave %d, want %d", (int)len, body, rc, want);
	if (rc == TLM_FAST_FOUND) {
		assert_int_equal(parsed, 0);
		assert_string_equal(fast, id);
		assert_string_equal(k.id, id);
	} else {
		assert_null(fast);
	}
	free(fast);
	tlm_client__resource_clear(&k);
}

#define TASK_ID(lit, want, id) expect_task_id(lit, sizeof(lit) - 1, want, id)

static void test_task_reply_fast_reading(void **state)
{
	(void)state;

	/* v2, v1, v1 with the stray "task":null */
	TASK_ID("{\"task\":{\"id\":\"k1\",\"teamId\":\"t\",\"status\":\"pending\",\"n\":2,"
		"\"blockedBy\":[\"a\"],\"meta\":{\"id\":5}}}",
		TLM_FAST_FOUND, "k1");
	TASK_ID("{\"id\":\"k2\",\"status\":null,\"teamId\":null}", TLM_FAST_FOUND, "k2");
	TASK_ID("{\"id\":\"k3\",\"task\":null}", TLM_FAST_FOUND, "k3");
	/* the last duplicate wins, as in jansson's tree */
	TASK_ID("{\"task\":{\"id\":\"a\",\"id\":\"b\"}}", TLM_FAST_FOUND, "b");
	TASK_ID("{\"task\":{\"id\":\"a\"},\"task\":{\"id\":\"c\"}}", TLM_FAST_FOUND, "c");
	TASK_ID("{\"task\":{\"id\":\"a\"},\"task\":null,\"id\":\"r\"}", TLM_FAST_FOUND, "r");
	TASK_ID("{\"task\":{\"id\":\"a\",\"id\":null}}", TLM_FAST_DECLINED, NULL);
	TASK_ID("{\"id\":\"r\",\"task\":{\"id\":\"a\"},\"task\":{}}", TLM_FAST_DECLINED, NULL);
	TASK_ID("{\"task\":{\"id\":\"a\",\"status\":\"s\",\"status\":[]}}", TLM_FAST_DECLINED,
		NULL);
	/* what parse_task refuses, the fast reading declines */
	TASK_ID("{\"task\":{\"id\":7}}", TLM_FAST_DECLINED, NULL);
	TASK_ID("{\"task\":{\"id\":\"\"}}", TLM_FAST_DECLINED, NULL);
	TASK_ID("{\"task\":{\"name\":\"x\"}}", TLM_FAST_DECLINED, NULL);
	TASK_ID("{\"task\":{\"id\":\"a\",\"status\":1}}", TLM_FAST_DECLINED, NULL);
	TASK_ID("{\"task\":{\"id\":\"a\",\"teamId\":{}}}", TLM_FAST_DECLINED, NULL);
	TASK_ID("{\"task\":\"k\"}", TLM_FAST_DECLINED, NULL);
	TASK_ID("{\"task\":[{\"id\":\"a\"}]}", TLM_FAST_DECLINED, NULL);
	TASK_ID("[{\"id\":\"a\"}]", TLM_FAST_DECLINED, NULL);
	TASK_ID("\"a\"", TLM_FAST_DECLINED, NULL);
	TASK_ID("<html>201 Created</html>", TLM_FAST_DECLINED, NULL);
	TASK_ID("{\"id\":\"a\"}x", TLM_FAST_DECLINED, NULL);
	TASK_ID("{\"id\":\"a\"}\"", TLM_FAST_DECLINED, NULL);
	/* where the parsers may differ, jansson reads it (and here succeeds) */
	TASK_ID("{\"task\":{\"id\":\"\\u0061\"}}", TLM_FAST_DECLINED, NULL);
	TASK_ID("{\"task\":{\"id\":\"a\",\"n\":1e3}}", TLM_FAST_DECLINED, NULL);
	/* the ids upstream and serve make */
	TASK_ID("{\"task\":{\"id\":\"7c1f2a9e-3b4d-4e5f-8a6b-1c2d3e4f5a6b\"}}", TLM_FAST_FOUND,
		"7c1f2a9e-3b4d-4e5f-8a6b-1c2d3e4f5a6b");
	TASK_ID("{\"task\":{\"id\":\"a\\/b\\\"c\"}}", TLM_FAST_FOUND, "a/b\"c");
}

static void test_event_ignored(void **state)
{
	static const char *const subjects[] = {
		"hi.tasks.created",
		"hi.tasks.T.K",
		"hi.tasks.T.K.completed.x",
		"hi.agents.T.K.updated",
		"hi.tasks..K.completed",
		"hi.tasks.T..completed",
		"hi.tasks.T.K.",
		"",
		"hix.tasks.T.K.completed",
		"hi.tasksx.T.K.completed",
	};
	tlm_client_event ev = TLM_CLIENT_EVENT_INIT;
	tlm_error err = TLM_ERROR_INIT;
	size_t i;
	(void)state;

	for (i = 0; i < sizeof(subjects) / sizeof(subjects[0]); i++) {
		assert_int_equal(tlm_client__parse_event(&ev, subjects[i],
							 S("{\"status\":\"failed\"}"), &err),
				 TLM_ENOTFOUND);
		assert_null(ev.task_id);
	}
	assert_int_equal(tlm_client__parse_event(&ev, NULL, S("{}"), &err), TLM_ENOTFOUND);
	/* an update without a status, and an unknown verb without one */
	assert_int_equal(
		tlm_client__parse_event(&ev, "hi.tasks.T.K.updated", S("{\"task\":{}}"), &err),
		TLM_ENOTFOUND);
	assert_int_equal(tlm_client__parse_event(&ev, "hi.tasks.T.K.deleted", S("{}"), &err),
			 TLM_ENOTFOUND);
	assert_null(ev.status);
	tlm_client__event_clear(&ev);
	tlm_client__event_clear(NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_agent_create_shapes),
		cmocka_unit_test(test_agent_create_refused),
		cmocka_unit_test(test_no_secret_echo),
		cmocka_unit_test(test_huge_input),
		cmocka_unit_test(test_agent_get),
		cmocka_unit_test(test_team),
		cmocka_unit_test(test_task),
		cmocka_unit_test(test_resource_from_json),
		cmocka_unit_test(test_paging_v2),
		cmocka_unit_test(test_paging_total_but_fewer),
		cmocka_unit_test(test_paging_v1),
		cmocka_unit_test(test_paging_malformed),
		cmocka_unit_test(test_paging_page_cap),
		cmocka_unit_test(test_error_text),
		cmocka_unit_test(test_retry_after_header),
		cmocka_unit_test(test_body_retry_after),
		cmocka_unit_test(test_http_code),
		cmocka_unit_test(test_vocabulary),
		cmocka_unit_test(test_event_precedence),
		cmocka_unit_test(test_event_ignored),
		cmocka_unit_test(test_event_fast_reading),
		cmocka_unit_test(test_task_reply_fast_reading),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
