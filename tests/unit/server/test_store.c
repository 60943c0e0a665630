/* The control plane's store: ids, paging sorted by id, merge rules, scope,
 * unique names, creation order, persistence across reopen. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness/harness.h"
#include "server/store.h"

static json_t *agent(const char *name)
{
	return json_pack("{s:s,s:s,s:s}", "name", name, "program", "none", "status", "offline");
}

static void test_insert_get_delete(void **state)
{
	tlm_store *st = NULL;
	json_t *a = agent("a1"), *out = NULL, *got = NULL;
	const char *id;
	(void)state;

	assert_int_equal(tlm_store_open(&st, NULL, 0, NULL), 0);
	assert_int_equal(tlm_store_insert(st, TLM_STORE_AGENTS, NULL, a, &out), 0);
	id = json_string_value(json_object_get(out, "id"));
	assert_int_equal(strlen(id), 36);
	assert_int_equal(id[14], '4'); /* UUID v4 */
	assert_non_null(json_object_get(out, "createdAt"));
	assert_int_equal(tlm_store_get(st, TLM_STORE_AGENTS, NULL, id, &got), 0);
	assert_true(json_equal(out, got));
	json_decref(got);
	assert_int_equal(tlm_store_get(st, TLM_STORE_TEAMS, NULL, id, &got), TLM_ENOTFOUND);
	assert_int_equal(tlm_store_find_agent(st, "a1", &got), 0);
	assert_true(json_equal(out, got));
	json_decref(got);
	assert_int_equal(tlm_store_delete(st, TLM_STORE_AGENTS, id), 0);
	assert_int_equal(tlm_store_delete(st, TLM_STORE_AGENTS, id), TLM_ENOTFOUND);
	assert_int_equal(tlm_store_find_agent(st, "a1", &got), TLM_ENOTFOUND);
	json_decref(out);
	json_decref(a);
	tlm_store_close(st);
}

static void test_paging_sorted_by_id(void **state)
{
	tlm_store *st = NULL;
	json_t *items = NULL, *all = json_array();
	size_t total = 0, off, i;
	const char *prev = "";
	(void)state;

	assert_int_equal(tlm_store_open(&st, NULL, 0, NULL), 0);
	for (i = 0; i < 250; i++) {
		json_t *a = agent("x");

		assert_int_equal(tlm_store_insert(st, TLM_STORE_AGENTS, NULL, a, NULL), 0);
		json_decref(a);
	}
	for (off = 0; off < 300; off += 100) {
		assert_int_equal(
			tlm_store_list(st, TLM_STORE_AGENTS, NULL, 100, off, &items, &total), 0);
		assert_int_equal(total, 250);
		assert_int_equal(json_array_size(items), off < 200 ? 100 : 50);
		json_array_extend(all, items);
		json_decref(items);
	}
	for (i = 0; i < json_array_size(all); i++) {
		const char *id = json_string_value(json_object_get(json_array_get(all, i), "id"));

		assert_true(strcmp(prev, id) < 0);
		prev = id;
	}
	json_decref(all);
	tlm_store_close(st);
}

static void test_patch_and_tasks(void **state)
{
	tlm_store *st = NULL;
	json_t *t = json_pack("{s:s,s:s,s:s}", "subject", "s", "assigneeAgentId", "A", "status",
			      "pending");
	json_t *k1 = NULL, *k2 = NULL, *p, *out = NULL, *items = NULL;
	size_t total;
	(void)state;

	assert_int_equal(tlm_store_open(&st, NULL, 0, NULL), 0);
	assert_int_equal(tlm_store_insert(st, TLM_STORE_TASKS, "team1", t, &k1), 0);
	assert_int_equal(tlm_store_insert(st, TLM_STORE_TASKS, "team2", t, &k2), 0);
	assert_string_equal(json_string_value(json_object_get(k1, "teamId")), "team1");
	/* scope: a task is found under its own team only, or by id alone */
	assert_int_equal(tlm_store_get(st, TLM_STORE_TASKS, "team2",
				       json_string_value(json_object_get(k1, "id")), &out),
			 TLM_ENOTFOUND);
	assert_int_equal(tlm_store_list(st, TLM_STORE_TASKS, "team1", 10, 0, &items, &total), 0);
	assert_int_equal(total, 1);
	json_decref(items);
	/* merge: fields replaced, identity kept, completedAt set once */
	p = json_pack("{s:s,s:s,s:s}", "status", "completed", "id", "evil", "teamId", "evil");
	assert_int_equal(tlm_store_patch(st, TLM_STORE_TASKS, NULL,
					 json_string_value(json_object_get(k1, "id")), p, &out),
			 0);
	assert_string_equal(json_string_value(json_object_get(out, "status")), "completed");
	assert_string_equal(json_string_value(json_object_get(out, "teamId")), "team1");
	assert_true(json_equal(json_object_get(out, "id"), json_object_get(k1, "id")));
	assert_non_null(json_object_get(out, "completedAt"));
	assert_string_equal(json_string_value(json_object_get(out, "subject")), "s");
	json_decref(out);
	json_decref(p);
	/* an agent's tasks the runner may act on: k1 completed, so only k2 */
	assert_int_equal(tlm_store_agent_tasks(st, "A", &items), 0);
	assert_int_equal(json_array_size(items), 1);
	assert_true(json_equal(json_object_get(json_array_get(items, 0), "id"),
			       json_object_get(k2, "id")));
	json_decref(items);
	assert_int_equal(tlm_store_patch(st, TLM_STORE_TASKS, NULL, "nope", t, NULL),
			 TLM_ENOTFOUND);
	json_decref(k1);
	json_decref(k2);
	json_decref(t);
	tlm_store_close(st);
}

static void test_unique_names_and_persistence(void **state)
{
	char *dir = tlm_h_tmpdir(), path[512];
	tlm_store *st = NULL;
	json_t *a = agent("solo"), *got = NULL;
	(void)state;

	snprintf(path, sizeof(path), "%s/state.db", dir);
	assert_int_equal(tlm_store_open(&st, path, 1, NULL), 0);
	assert_int_equal(tlm_store_insert(st, TLM_STORE_AGENTS, NULL, a, NULL), 0);
	assert_int_equal(tlm_store_insert(st, TLM_STORE_AGENTS, NULL, a, NULL), TLM_ECONFLICT);
	tlm_store_close(st);
	assert_int_equal(tlm_store_open(&st, path, 0, NULL), 0);
	assert_int_equal(tlm_store_find_agent(st, "solo", &got), 0);
	/* creation order continues after a restart */
	assert_int_equal(tlm_store_insert(st, TLM_STORE_AGENTS, NULL, a, NULL), 0);
	json_decref(got);
	json_decref(a);
	tlm_store_close(st);
	tlm_h_rmrf(dir);
	free(dir);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_insert_get_delete),
		cmocka_unit_test(test_paging_sorted_by_id),
		cmocka_unit_test(test_patch_and_tasks),
		cmocka_unit_test(test_unique_names_and_persistence),
	};

	return cmocka_run_group_tests_name("server.store", tests, NULL, NULL);
}
