/* The four renderings of a plan, on one small spec with two teams, a
 * cross-team dependency, timeouts, and subjects that need escaping. */
#include <jansson.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "telemachy/plan.h"
#include "telemachy/spec.h"

/* Task 1's subject holds a quote, a backslash, a newline and the characters
 * Mermaid and HTML treat specially. */
static const char yaml[] = "apiVersion: telemachy/v1\n"
			   "metadata:\n"
			   "  name: demo\n"
			   "  description: A small plan\n"
			   "  owner: platform\n"
			   "agents:\n"
			   "  - name: planner\n"
			   "    model: claude-opus-4-1\n"
			   "  - name: coder\n"
			   "    runtime: docker\n"
			   "    docker_image: img:1\n"
			   "    cpus: 4\n"
			   "    memory: 8g\n"
			   "    args: [--fast]\n"
			   "    env: {A: '1'}\n"
			   "teams:\n"
			   "  - name: back\n"
			   "    agents: [planner, coder]\n"
			   "    tasks:\n"
			   "      - subject: design\n"
			   "        description: d\n"
			   "        assign_to: planner\n"
			   "      - subject: \"say \\\"hi\\\" \\\\ now\\nthen <b>#1&`x`\"\n"
			   "        description: d\n"
			   "        assign_to: coder\n"
			   "        blocked_by: [design]\n"
			   "        timeout_seconds: 60\n"
			   "        retries: 2\n"
			   "  - name: front\n"
			   "    agents: [coder]\n"
			   "    tasks:\n"
			   "      - subject: ui\n"
			   "        description: d\n"
			   "        blocked_by: [back/design]\n"
			   "teardown: always\n";

#define QUOTED_SUBJECT "say \"hi\" \\ now\nthen <b>#1&`x`"
#define QUOTED_ID      "back/" QUOTED_SUBJECT

typedef struct fixture {
	tlm_spec *spec;
	tlm_plan *plan;
} fixture;

static int setup(void **state)
{
	fixture *f = calloc(1, sizeof(*f));
	tlm_diags diags = TLM_DIAGS_INIT;
	tlm_error err = TLM_ERROR_INIT;
	size_t i;

	if (f == NULL)
		return -1;
	*state = f;
	if (tlm_spec_parse(&f->spec, "demo.yaml", yaml, strlen(yaml), &diags, &err) != 0) {
		for (i = 0; i < diags.count; i++)
			print_error("demo.yaml:%u:%u: %s\n", diags.items[i].pos.line,
				    diags.items[i].pos.col, diags.items[i].message);
		print_error("%s\n", err.message);
		tlm_diags_clear(&diags);
		return -1;
	}
	return tlm_plan_new(&f->plan, f->spec, &err) == 0 ? 0 : -1;
}

static int teardown(void **state)
{
	fixture *f = *state;

	tlm_plan_free(f->plan);
	tlm_spec_free(f->spec);
	free(f);
	return 0;
}

typedef int (*render_fn)(const tlm_plan *, FILE *, tlm_error *);

/* The rendering as a NUL-terminated string; caller frees. */
static char *render(const fixture *f, render_fn fn)
{
	char *buf = NULL;
	size_t len = 0;
	FILE *out = open_memstream(&buf, &len);
	tlm_error err = TLM_ERROR_INIT;

	assert_non_null(out);
	assert_int_equal(fn(f->plan, out, &err), 0);
	assert_int_equal(fclose(out), 0);
	return buf;
}

static void assert_contains(const char *hay, const char *needle)
{
	if (strstr(hay, needle) == NULL)
		fail_msg("expected to find\n%s\nin\n%s", needle, hay);
}

static void test_text(void **state)
{
	char *s = render(*state, tlm_plan_render_text);

	assert_contains(s, "Workflow:    demo\n");
	assert_contains(s, "Teardown:    always\n");
	assert_contains(s, "Timeout:     none\n");
	assert_contains(s, "Labels:      owner=platform\n");
	assert_contains(s, "tlm-<run>-a-coder"); /* what run creates */
	assert_contains(s, "image img:1");
	assert_contains(s, "model claude-opus-4-1");
	assert_contains(s, "\nWave 0:\n  back/design");
	assert_contains(s, "\n  front/ui ");
	assert_contains(s, "(after: back/design)");
	assert_contains(s, "\nWave 1:\n");
	/* the newline is shown escaped: one task, one line */
	assert_contains(s, "  back/say \"hi\" \\ now\\nthen <b>#1&`x`  -> coder    "
			   "(after: back/design)  timeout 60s, retries 2\n");
	/* columns: ids padded to the longest, assignees to "planner" */
	assert_contains(s, "\n  back/design                          -> planner\n");
	assert_contains(s, "\n2 agents, 2 teams, 3 tasks in 2 waves\n");
	free(s);
}

static json_t *get(json_t *o, const char *path)
{
	char key[64];
	const char *dot, *full = path;
	json_t *v = o;

	while (v && *path) {
		dot = strchr(path, '.');
		snprintf(key, sizeof(key), "%.*s", (int)(dot ? (size_t)(dot - path) : strlen(path)),
			 path);
		v = json_is_array(v) ? json_array_get(v, strtoul(key, NULL, 10))
				     : json_object_get(v, key);
		path = dot ? dot + 1 : "";
	}
	if (v == NULL)
		fail_msg("no %s in the JSON plan", full);
	return v;
}

static void assert_json_str(json_t *root, const char *path, const char *want)
{
	assert_string_equal(json_string_value(get(root, path)), want);
}

static void test_json(void **state)
{
	char *s = render(*state, tlm_plan_render_json);
	json_error_t jerr;
	json_t *root = json_loads(s, 0, &jerr);

	if (root == NULL)
		fail_msg("invalid JSON: %s at %d:%d", jerr.text, jerr.line, jerr.column);
	assert_json_str(root, "apiVersion", "telemachy/v1");
	assert_json_str(root, "workflow.name", "demo");
	assert_json_str(root, "workflow.file", "demo.yaml");
	assert_json_str(root, "workflow.labels.owner", "platform");
	assert_json_str(root, "teardown", "always");
	assert_true(json_is_null(get(root, "timeout_seconds")));
	assert_json_str(root, "agents.1.docker_image", "img:1");
	assert_json_str(root, "agents.1.args.0", "--fast");
	assert_json_str(root, "agents.1.env.A", "1");
	assert_int_equal(json_integer_value(get(root, "agents.1.memory_bytes")), 8LL << 30);
	assert_true(json_is_null(get(root, "agents.1.model")));
	assert_json_str(root, "teams.1.agents.0", "coder");
	assert_json_str(root, "teams.0.tasks.1", QUOTED_SUBJECT);
	assert_json_str(root, "tasks.1.id", QUOTED_ID);
	assert_json_str(root, "tasks.1.blocked_by.0", "back/design");
	assert_int_equal(json_integer_value(get(root, "tasks.1.wave")), 1);
	assert_int_equal(json_integer_value(get(root, "tasks.1.timeout_seconds")), 60);
	assert_int_equal(json_integer_value(get(root, "tasks.1.retries")), 2);
	assert_true(json_is_null(get(root, "tasks.0.timeout_seconds")));
	assert_json_str(root, "tasks.2.id", "front/ui");
	assert_json_str(root, "tasks.2.assign_to", "coder");
	assert_int_equal(json_array_size(get(root, "waves")), 2);
	assert_json_str(root, "waves.0.0", "back/design");
	assert_json_str(root, "waves.1.0", QUOTED_ID);
	assert_json_str(root, "waves.1.1", "front/ui");
	json_decref(root);
	free(s);
}

static void test_dot(void **state)
{
	char *s = render(*state, tlm_plan_render_dot);

	assert_contains(s, "digraph \"demo\" {\n");
	assert_contains(s, "  subgraph cluster_0 {\n    label=\"back\";\n");
	assert_contains(s, "  subgraph cluster_1 {\n    label=\"front\";\n");
	assert_contains(s, "    t0 [label=\"design\"];\n");
	assert_contains(s, "    t1 [label=\"say \\\"hi\\\" \\\\ now\\nthen <b>#1&`x`\"];\n");
	assert_contains(s, "    t2 [label=\"ui\"];\n  }\n");
	assert_contains(s, "  t0 -> t1;\n");
	assert_contains(s, "  t0 -> t2;\n");
	assert_true(s[strlen(s) - 2] == '}');
	free(s);
}

static void test_mermaid(void **state)
{
	char *s = render(*state, tlm_plan_render_mermaid);

	assert_int_equal(strncmp(s, "flowchart TD\n", 13), 0);
	assert_contains(s, "  subgraph team0 [\"back\"]\n    t0[\"design\"]\n");
	assert_contains(s,
			"    t1[\"say #quot;hi#quot; \\ now then #60;b#62;#35;1#38;#96;x#96;\"]\n");
	assert_contains(s, "  end\n  subgraph team1 [\"front\"]\n    t2[\"ui\"]\n  end\n");
	assert_contains(s, "  t0 --> t1\n");
	assert_contains(s, "  t0 --> t2\n");
	free(s);
}

/* A stream that refuses writes: every renderer reports it. */
static void test_write_error(void **state)
{
	const fixture *f = *state;
	static const render_fn fns[] = { tlm_plan_render_text, tlm_plan_render_json,
					 tlm_plan_render_dot, tlm_plan_render_mermaid };
	size_t i;

	for (i = 0; i < sizeof(fns) / sizeof(fns[0]); i++) {
		FILE *ro = fopen("/dev/null", "r");
		tlm_error err = TLM_ERROR_INIT;

		assert_non_null(ro);
		assert_int_equal(fns[i](f->plan, ro, &err), TLM_ERROR);
		assert_int_equal(err.code, TLM_ERROR);
		fclose(ro);
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_text),        cmocka_unit_test(test_json),
		cmocka_unit_test(test_dot),         cmocka_unit_test(test_mermaid),
		cmocka_unit_test(test_write_error),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
