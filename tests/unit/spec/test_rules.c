/* Every validation rule of the spec: the error, its rule id and its position. */
#include <stdlib.h>

#include "unit/spec_helpers.h"

#define AGENT_DEV "agents:\n  - name: dev\n    program: none\n"

static void test_valid_minimal(void **state)
{
	tlm_diags d = TLM_DIAGS_INIT;
	tlm_spec *spec = NULL;
	(void)state;

	assert_int_equal(parse_yaml(SPEC_HEAD, &spec, &d), 0);
	assert_non_null(spec);
	assert_string_equal(spec->name, "wf");
	assert_int_equal(spec->nagents, 0);
	assert_int_equal(spec->teardown, TLM_TEARDOWN_ON_COMPLETION);
	tlm_spec_free(spec);
	tlm_diags_clear(&d);
}

static void test_api_version(void **state)
{
	tlm_diags d = TLM_DIAGS_INIT;
	(void)state;

	expect_errors("apiVersion: telemachy/v2\nmetadata:\n  name: x\n", 1, &d);
	assert_diag(&d, 1, 13, "api-version", "\"telemachy/v2\" is not supported");
	tlm_diags_clear(&d);
	expect_errors("metadata:\n  name: x\n", 1, &d);
	assert_diag(&d, 1, 1, "required", "missing required key \"apiVersion\"");
	tlm_diags_clear(&d);
}

static void test_metadata(void **state)
{
	tlm_diags d = TLM_DIAGS_INIT;
	tlm_spec *spec = NULL;
	(void)state;

	expect_errors("apiVersion: telemachy/v1\nmetadata:\n  name: \"\"\n", 1, &d);
	assert_diag(&d, 3, 9, "empty", "\"name\" of \"metadata\" must not be empty");
	tlm_diags_clear(&d);
	expect_errors("apiVersion: telemachy/v1\nmetadata:\n  description: x\n", 1, &d);
	assert_diag(&d, 3, 3, "required", "missing required key \"name\"");
	tlm_diags_clear(&d);
	expect_errors("apiVersion: telemachy/v1\n", 1, &d);
	assert_diag(&d, 1, 1, "required", "\"metadata\"");
	tlm_diags_clear(&d);
	expect_errors("apiVersion: telemachy/v1\nmetadata: [a]\n", 1, &d);
	assert_diag(&d, 2, 11, "type", "\"metadata\" must be a map, got a list");
	tlm_diags_clear(&d);
	/* Other scalar keys are labels; collections are not. */
	expect_errors(SPEC_HEAD "  owner: ops\n  tier: 2\n  tags: [a]\n", 1, &d);
	assert_diag(&d, 6, 9, "type", "metadata label \"tags\" must be a string");
	tlm_diags_clear(&d);
	assert_int_equal(parse_yaml(SPEC_HEAD "  owner: ops\n  tier: 2\n", &spec, &d), 0);
	assert_int_equal(spec->nlabels, 2);
	assert_string_equal(spec->labels[0].key, "owner");
	assert_string_equal(spec->labels[1].value, "2");
	tlm_spec_free(spec);
}

static void test_unknown_keys(void **state)
{
	tlm_diags d = TLM_DIAGS_INIT;
	(void)state;

	expect_errors(SPEC_HEAD "agnets: []\n" AGENT_DEV "    progam: x\n"
				"teams:\n  - name: t\n    agents: [dev]\n    taks: []\n"
				"    tasks:\n      - subject: s\n        description: d\n"
				"        blocked: [x]\n",
		      4, &d);
	assert_diag(&d, 4, 1, "unknown-key",
		    "unknown key \"agnets\" in the workflow (did you mean \"agents\"?)");
	assert_diag(&d, 8, 5, "unknown-key",
		    "unknown key \"progam\" in agent \"dev\" (did you mean \"program\"?)");
	assert_diag(&d, 12, 5, "unknown-key", "\"taks\" in team \"t\" (did you mean \"tasks\"?)");
	assert_diag(&d, 16, 9, "unknown-key",
		    "\"blocked\" in task \"s\" (did you mean \"blocked_by\"?)");
	tlm_diags_clear(&d);
	expect_errors(SPEC_HEAD "zzzzzz: 1\n", 1, &d);
	assert_string_equal(d.items[0].message, "unknown key \"zzzzzz\" in the workflow");
	tlm_diags_clear(&d);
}

static void test_types(void **state)
{
	tlm_diags d = TLM_DIAGS_INIT;
	(void)state;

	expect_errors(SPEC_HEAD "agents:\n  name: dev\n", 1, &d);
	assert_diag(&d, 5, 3, "type", "\"agents\" must be a list, got a map");
	tlm_diags_clear(&d);
	expect_errors(SPEC_HEAD "agents:\n  - dev\n", 1, &d);
	assert_diag(&d, 5, 5, "type", "an agent must be a map, got a string");
	tlm_diags_clear(&d);
	expect_errors(SPEC_HEAD "agents:\n  - name: 42\n    program: [a]\n    cpus: \"2\"\n", 3,
		      &d);
	assert_diag(&d, 5, 11, "type",
		    "\"name\" of agents[0] must be a string, got an integer; quote it");
	assert_diag(&d, 6, 14, "type", "\"program\" of agents[0] must be a string, got a list");
	assert_diag(&d, 7, 11, "type",
		    "\"cpus\" of agents[0] must be an integer, got a string; remove the quotes");
	tlm_diags_clear(&d);
	expect_errors(SPEC_HEAD "teams: {}\n", 1, &d);
	assert_diag(&d, 4, 8, "type", "\"teams\" must be a list, got a map");
	tlm_diags_clear(&d);
	expect_errors(SPEC_HEAD AGENT_DEV "    args: [a, {b: c}, 3, true]\n", 1, &d);
	assert_diag(&d, 7, 15, "type",
		    "\"args\" entries must be a string, number or boolean, got a map");
	tlm_diags_clear(&d);
	expect_errors("- a\n- b\n", 1, &d);
	assert_diag(&d, 1, 1, "type", "the workflow must be a map, got a list");
	tlm_diags_clear(&d);
}

static void test_duplicate_keys(void **state)
{
	tlm_diags d = TLM_DIAGS_INIT;
	char yaml[2048];
	size_t n, i;
	(void)state;

	expect_errors(SPEC_HEAD AGENT_DEV "    program: other\n", 1, &d);
	assert_diag(&d, 7, 5, "duplicate-key",
		    "duplicate key \"program\" in agent \"dev\" (first at line 6)");
	tlm_diags_clear(&d);
	/* A big map (here 40 labels) is checked by sorting its keys: each
	 * later copy is reported, against the first. */
	n = (size_t)snprintf(yaml, sizeof(yaml), SPEC_HEAD);
	for (i = 0; i < 40; i++)
		n += (size_t)snprintf(yaml + n, sizeof(yaml) - n, "  k%zu: 1\n",
				      i == 30 || i == 35 ? 7
				      : i == 33          ? 20
							 : i);
	expect_errors(yaml, 3, &d);
	assert_diag(&d, 34, 3, "duplicate-key",
		    "duplicate key \"k7\" in \"metadata\" (first at line 11)");
	assert_diag(&d, 37, 3, "duplicate-key",
		    "duplicate key \"k20\" in \"metadata\" (first at line 24)");
	assert_diag(&d, 39, 3, "duplicate-key",
		    "duplicate key \"k7\" in \"metadata\" (first at line 11)");
	tlm_diags_clear(&d);
}

static void test_agent_names(void **state)
{
	tlm_diags d = TLM_DIAGS_INIT;
	(void)state;

	expect_errors(
		SPEC_HEAD
		"agents:\n  - name: dev\n  - name: ok.x-1_2\n  - name: dev\n"
		"  - name: \"bad name\"\n  - program: x\n"
		"  - name: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\n",
		4, &d);
	assert_diag(&d, 7, 5, "duplicate-name",
		    "duplicate agent name \"dev\" (first defined at line 5)");
	assert_diag(&d, 8, 11, "name-format", "agent name \"bad name\" must be 1 to 63 characters");
	assert_diag(&d, 9, 5, "required", "agents[4] is missing required key \"name\"");
	assert_diag(&d, 10, 11, "name-format", "must be 1 to 63 characters");
	tlm_diags_clear(&d);
}

static void test_agent_fields(void **state)
{
	tlm_diags d = TLM_DIAGS_INIT;
	tlm_spec *spec = NULL;
	(void)state;

	expect_errors(SPEC_HEAD
		      "agents:\n  - name: a\n    cpus: 0\n  - name: b\n    cpus: 257\n"
		      "  - name: c\n    memory: 4x\n  - name: d\n    memory: \"0g\"\n"
		      "  - name: e\n    runtime: vm\n  - name: f\n    working_dir: relative/dir\n"
		      "  - name: g\n    env:\n      GOOD: 1\n      bad-name: x\n      EMPTY: ~\n",
		      8, &d);
	assert_diag(&d, 6, 11, "range", "\"cpus\" of agent \"a\" must be between 1 and 256, got 0");
	assert_diag(&d, 8, 11, "range", "must be between 1 and 256, got 257");
	assert_diag(&d, 10, 13, "memory-format",
		    "must be a size with a unit k, m, g or t (e.g. \"512m\", \"4g\"), got \"4x\"");
	assert_diag(&d, 12, 13, "memory-format", "got \"0g\"");
	assert_diag(&d, 14, 14, "enum",
		    "\"runtime\" of agent \"e\" must be one of local, docker, got \"vm\"");
	assert_diag(&d, 16, 18, "working-dir", "must be an absolute path, got \"relative/dir\"");
	assert_diag(&d, 20, 7, "env-name", "environment variable name \"bad-name\" must match");
	assert_diag(&d, 21, 14, "type",
		    "environment variable \"EMPTY\" must be a string, number or boolean, got null");
	tlm_diags_clear(&d);

	assert_int_equal(parse_yaml(SPEC_HEAD
				    "agents:\n  - name: a\n    args: [--port, 8080]\n"
				    "    memory: 512m\n    model: opus\n    env: {DEBUG: 1}\n",
				    &spec, &d),
			 0);
	assert_string_equal(spec->agents[0].program, "claude-code");
	assert_string_equal(spec->agents[0].working_dir, "/tmp");
	assert_int_equal(spec->agents[0].cpus, 2);
	assert_int_equal(spec->agents[0].memory_bytes, 512ull << 20);
	assert_int_equal(spec->agents[0].nargs, 2);
	assert_string_equal(spec->agents[0].args[1], "8080");
	assert_string_equal(spec->agents[0].model, "opus");
	assert_string_equal(spec->agents[0].env[0].key, "DEBUG");
	assert_string_equal(spec->agents[0].env[0].value, "1");
	assert_null(spec->agents[0].docker_image);
	tlm_spec_free(spec);
}

static void test_docker_image(void **state)
{
	tlm_diags d = TLM_DIAGS_INIT;
	tlm_spec *spec = NULL;
	(void)state;

	expect_errors(SPEC_HEAD "agents:\n  - name: a\n    runtime: docker\n"
				"  - name: b\n    docker_image: alpine:3\n",
		      2, &d);
	assert_diag(&d, 5, 5, "docker-image",
		    "agent \"a\" has runtime: docker but no \"docker_image\"");
	assert_diag(&d, 8, 19, "docker-image",
		    "\"docker_image\" of agent \"b\" needs runtime: docker");
	tlm_diags_clear(&d);
	assert_int_equal(parse_yaml(SPEC_HEAD
				    "agents:\n  - name: a\n    runtime: docker\n"
				    "    docker_image: alpine:3\n    cpus: 4\n    memory: 2Gi\n",
				    &spec, &d),
			 0);
	assert_int_equal(spec->agents[0].runtime, TLM_RUNTIME_DOCKER);
	assert_string_equal(spec->agents[0].docker_image, "alpine:3");
	assert_int_equal(spec->agents[0].memory_bytes, 2ull << 30);
	tlm_spec_free(spec);
}

/* A buffer of n copies of c, NUL-terminated (caller frees). */
static char *repeat_char(char c, size_t n)
{
	char *s = malloc(n + 1);

	assert_non_null(s);
	memset(s, c, n);
	s[n] = '\0';
	return s;
}

/* A spec that validates must be one that can run (issue 11, item 11): every
 * value within what the journal stores and the control plane accepts. */
static void test_run_limits(void **state)
{
	tlm_diags d = TLM_DIAGS_INIT;
	tlm_spec *spec = NULL;
	char *x256 = repeat_char('x', 256), *x1025 = repeat_char('x', 1025);
	char *x4096 = repeat_char('x', 4096), *yaml = malloc(1 << 22);
	size_t n, i;
	(void)state;

	assert_non_null(yaml);
	/* Workflow names are journaled: at most 255 bytes. */
	snprintf(yaml, 1 << 22, "apiVersion: telemachy/v1\nmetadata:\n  name: %s\n", x256);
	expect_errors(yaml, 1, &d);
	assert_diag(&d, 3, 9, "too-long",
		    "\"name\" of \"metadata\" is 256 bytes long; the journal accepts at most 255");
	tlm_diags_clear(&d);
	x256[255] = '\0'; /* 255 bytes: fine */
	snprintf(yaml, 1 << 22, "apiVersion: telemachy/v1\nmetadata:\n  name: %s\n", x256);
	assert_int_equal(parse_yaml(yaml, &spec, &d), 0);
	tlm_spec_free(spec);
	x256[255] = 'x';

	/* Agent fields, as the control plane limits them. */
	snprintf(yaml, 1 << 22,
		 SPEC_HEAD "agents:\n  - name: a\n    program: %s\n    model: %.257s\n"
			   "    working_dir: /%s\n"
			   "  - name: b\n    runtime: docker\n    docker_image: %s\n",
		 x1025, x1025, x4096, x1025);
	expect_errors(yaml, 4, &d);
	assert_diag(&d, 6, 14, "too-long",
		    "\"program\" of agent \"a\" is 1025 bytes long; the control plane accepts "
		    "at most 1024");
	assert_diag(&d, 7, 12, "too-long", "\"model\" of agent \"a\" is 257 bytes long");
	assert_diag(&d, 8, 18, "too-long",
		    "\"working_dir\" of agent \"a\" is 4097 bytes long; the control plane "
		    "accepts at most 4096");
	assert_diag(&d, 11, 19, "too-long", "\"docker_image\" of agent \"b\" is 1025 bytes long");
	tlm_diags_clear(&d);

	/* At most 1,000 args and 1,000 env entries. */
	n = (size_t)snprintf(yaml, 1 << 22, SPEC_HEAD "agents:\n  - name: a\n    args: [");
	for (i = 0; i < 1001; i++)
		n += (size_t)snprintf(yaml + n, (1 << 22) - n, "%sa", i ? "," : "");
	n += (size_t)snprintf(yaml + n, (1 << 22) - n, "]\n    env: {");
	for (i = 0; i < 1001; i++)
		n += (size_t)snprintf(yaml + n, (1 << 22) - n, "%sE%zu: 1", i ? "," : "", i);
	snprintf(yaml + n, (1 << 22) - n, "}\n");
	expect_errors(yaml, 2, &d);
	assert_diag(&d, 6, 11, "too-many",
		    "\"args\" of agent \"a\" has 1001 entries; the control plane accepts at "
		    "most 1000");
	assert_diag(&d, 7, 10, "too-many", "\"env\" of agent \"a\" has 1001 entries");
	tlm_diags_clear(&d);

	/* The create request is at most 1 MiB: 300 args of 4,000 bytes are. */
	n = (size_t)snprintf(yaml, 1 << 22, SPEC_HEAD "agents:\n  - name: a\n    args:\n");
	for (i = 0; i < 300; i++)
		n += (size_t)snprintf(yaml + n, (1 << 22) - n, "      - %.4000s\n", x4096);
	expect_errors(yaml, 1, &d);
	assert_diag(&d, 5, 5, "request-size", "agent \"a\" would be created with a request of");
	assert_diag(&d, 5, 5, "request-size", "the control plane accepts at most 1048576");
	tlm_diags_clear(&d);
	/* Counted as JSON: a newline is written as two bytes, a control
	 * character as six.  140 env values of 4,000 tabs fit as YAML, not
	 * as JSON. */
	n = (size_t)snprintf(yaml, 1 << 22, SPEC_HEAD "agents:\n  - name: a\n    env:\n");
	for (i = 0; i < 140; i++) {
		n += (size_t)snprintf(yaml + n, (1 << 22) - n, "      E%zu: \"", i);
		memset(yaml + n, '\t', 4000);
		n += 4000;
		n += (size_t)snprintf(yaml + n, (1 << 22) - n, "\"\n");
	}
	expect_errors(yaml, 1, &d);
	assert_diag(&d, 5, 5, "request-size", "(\"args\" 0 and \"env\" 1121");
	tlm_diags_clear(&d);

	/* A team's agents and a task's blocked_by: at most 10,000 entries. */
	n = (size_t)snprintf(yaml, 1 << 22,
			     SPEC_HEAD "agents:\n  - name: a\n"
				       "teams:\n  - name: t\n    agents: [");
	for (i = 0; i < 10001; i++)
		n += (size_t)snprintf(yaml + n, (1 << 22) - n, "%sa", i ? "," : "");
	n += (size_t)snprintf(yaml + n, (1 << 22) - n,
			      "]\n    tasks:\n      - subject: s\n        description: d\n"
			      "        assign_to: a\n        blocked_by: [");
	for (i = 0; i < 10001; i++)
		n += (size_t)snprintf(yaml + n, (1 << 22) - n, "%sx", i ? "," : "");
	snprintf(yaml + n, (1 << 22) - n, "]\n");
	assert_int_equal(parse_yaml(yaml, &spec, &d), TLM_EINVALID);
	assert_diag(&d, 8, 13, "too-many",
		    "\"agents\" of team \"t\" has 10001 entries; the control plane accepts at "
		    "most 10000");
	assert_diag(&d, 13, 21, "too-many", "\"blocked_by\" of task \"s\" has 10001 entries");
	tlm_diags_clear(&d);
	free(yaml);
	free(x256);
	free(x1025);
	free(x4096);
}

#define TWO_AGENTS "agents:\n  - name: dev\n  - name: qa\n"

static void test_teams(void **state)
{
	tlm_diags d = TLM_DIAGS_INIT;
	(void)state;

	expect_errors(SPEC_HEAD TWO_AGENTS "teams:\n  - name: core\n    agents: [dev, dve, dev]\n"
					   "  - name: core\n  - name: \"x/y\"\n  - agents: [qa]\n",
		      5, &d);
	assert_diag(&d, 9, 19, "unknown-agent",
		    "team \"core\" lists unknown agent \"dve\" (did you mean \"dev\"?)");
	assert_diag(&d, 9, 24, "duplicate-member",
		    "agent \"dev\" is listed twice in team \"core\"");
	assert_diag(&d, 10, 5, "duplicate-name",
		    "duplicate team name \"core\" (first defined at line 8)");
	assert_diag(&d, 11, 11, "name-format", "team name \"x/y\"");
	assert_diag(&d, 12, 5, "required", "teams[3] is missing required key \"name\"");
	tlm_diags_clear(&d);
}

static void test_task_fields(void **state)
{
	tlm_diags d = TLM_DIAGS_INIT;
	(void)state;

	expect_errors(SPEC_HEAD AGENT_DEV
		      "teams:\n  - name: t\n    agents: [dev]\n    tasks:\n"
		      "      - subject: a\n        description: x\n"
		      "      - subject: a\n        description: y\n"
		      "      - subject: \"  \"\n        description: z\n"
		      "      - description: w\n"
		      "      - subject: b\n"
		      "      - subject: c\n        description: c\n        timeout_seconds: 0\n"
		      "        retries: -1\n"
		      "      - subject: d\n        description: d\n        retries: 101\n",
		      7, &d);
	assert_diag(&d, 13, 9, "duplicate-name",
		    "duplicate task subject \"a\" in team \"t\" (first at line 11)");
	assert_diag(&d, 15, 18, "empty",
		    "\"subject\" of tasks[2] of team \"t\" must not be empty or blank");
	assert_diag(&d, 17, 9, "required",
		    "tasks[3] of team \"t\" is missing required key \"subject\"");
	assert_diag(&d, 18, 9, "required", "task \"b\" is missing required key \"description\"");
	assert_diag(&d, 21, 26, "range", "\"timeout_seconds\" of task \"c\" must be between 1 and");
	assert_diag(&d, 22, 18, "range",
		    "\"retries\" of task \"c\" must be between 0 and 100, got -1");
	assert_diag(&d, 25, 18, "range",
		    "\"retries\" of task \"d\" must be between 0 and 100, got 101");
	tlm_diags_clear(&d);
}

static void test_task_lengths(void **state)
{
	tlm_diags d = TLM_DIAGS_INIT;
	char yaml[8192];
	char subject[TLM_SPEC_SUBJECT_MAX + 2];
	(void)state;

	memset(subject, 's', sizeof(subject) - 1);
	subject[sizeof(subject) - 1] = '\0';
	snprintf(yaml, sizeof(yaml),
		 SPEC_HEAD AGENT_DEV "teams:\n  - name: t\n    agents: [dev]\n    tasks:\n"
				     "      - subject: %s\n        description: x\n",
		 subject);
	expect_errors(yaml, 1, &d);
	assert_diag(&d, 11, 18, "too-long", "longer than 512 bytes");
	tlm_diags_clear(&d);
}

static void test_assign_to(void **state)
{
	tlm_diags d = TLM_DIAGS_INIT;
	tlm_spec *spec = NULL;
	(void)state;

	expect_errors(SPEC_HEAD TWO_AGENTS
		      "  - name: ops\n"
		      "teams:\n  - name: t\n    agents: [dev, qa]\n    tasks:\n"
		      "      - subject: a\n        description: x\n        assign_to: ops\n"
		      "      - subject: b\n        description: x\n        assign_to: dve\n"
		      "      - subject: c\n        description: x\n",
		      3, &d);
	assert_diag(&d, 14, 20, "assign-to",
		    "task \"a\" is assigned to agent \"ops\", which is not a member of team \"t\"");
	assert_diag(&d, 17, 20, "assign-to",
		    "task \"b\" is assigned to unknown agent \"dve\" (did you mean \"dev\"?)");
	assert_diag(&d, 18, 9, "assign-to",
		    "task \"c\" has no \"assign_to\" and team \"t\" has 2 agents");
	tlm_diags_clear(&d);

	/* A one-agent team needs no assign_to. */
	assert_int_equal(parse_yaml(SPEC_HEAD TWO_AGENTS
				    "teams:\n  - name: t\n    agents: [qa]\n    tasks:\n"
				    "      - subject: a\n        description: x\n",
				    &spec, &d),
			 0);
	assert_int_equal(spec->tasks[0].agent, 1);
	tlm_spec_free(spec);
}

#define TEAM_HEAD(name) "  - name: " name "\n    agents: [dev]\n    tasks:\n"
#define TASK(s)         "      - subject: " s "\n        description: d\n"
#define DEPS(list)      "        blocked_by: " list "\n"

static void test_blocked_by(void **state)
{
	tlm_diags d = TLM_DIAGS_INIT;
	tlm_spec *spec = NULL;
	(void)state;

	expect_errors(SPEC_HEAD AGENT_DEV "teams:\n" TEAM_HEAD("core") TASK("Build") TASK("Deploy")
			      DEPS("[Buld]") TASK("Test") DEPS("[Test]") TASK("Ship")
				      DEPS("[web/Styles, nope/x, 3]") TEAM_HEAD("web")
					      TASK("Style"),
		      5, &d);
	assert_diag(
		&d, 15, 22, "blocked-by-unknown",
		"task \"Deploy\" is blocked by unknown task \"Buld\" in team \"core\" (did you mean \"Build\"?)");
	assert_diag(&d, 18, 22, "self-dependency", "task \"Test\" is blocked by itself");
	assert_diag(
		&d, 21, 22, "blocked-by-unknown",
		"task \"Ship\" is blocked by unknown task \"Styles\" in team \"web\" (did you mean \"Style\"?)");
	assert_diag(&d, 21, 34, "blocked-by-unknown", "unknown task \"nope/x\" in team \"core\"");
	assert_diag(&d, 21, 42, "type",
		    "\"blocked_by\" entries must be task subjects, got an integer");
	tlm_diags_clear(&d);

	/* Same-team subject, cross-team reference, and a duplicate entry,
	 * which is ignored rather than reported as a cycle. */
	assert_int_equal(parse_yaml(SPEC_HEAD AGENT_DEV "teams:\n" TEAM_HEAD("core") TASK("a") TASK(
					    "b") DEPS("[a, a, web/c]") TEAM_HEAD("web") TASK("c"),
				    &spec, &d),
			 0);
	assert_int_equal(spec->ntasks, 3);
	assert_int_equal(spec->tasks[1].ndeps, 2);
	assert_int_equal(spec->tasks[1].deps[0], 0);
	assert_int_equal(spec->tasks[1].deps[1], 2);
	assert_int_equal(spec->teams[1].first_task, 2);
	assert_int_equal(spec->tasks[2].team, 1);
	tlm_spec_free(spec);
}

static void test_subject_with_slash(void **state)
{
	tlm_diags d = TLM_DIAGS_INIT;
	tlm_spec *spec = NULL;
	(void)state;

	/* A same-team subject that contains "/" wins over a team/subject reading. */
	assert_int_equal(parse_yaml(SPEC_HEAD AGENT_DEV "teams:\n" TEAM_HEAD("core") TASK("web/c")
					    TASK("b") DEPS("[web/c]") TEAM_HEAD("web") TASK("c"),
				    &spec, &d),
			 0);
	assert_int_equal(spec->tasks[1].deps[0], 0);
	tlm_spec_free(spec);
}

static void test_cycles(void **state)
{
	tlm_diags d = TLM_DIAGS_INIT;
	(void)state;

	expect_errors(SPEC_HEAD AGENT_DEV "teams:\n" TEAM_HEAD("core") TASK("a") DEPS("[b]")
			      TASK("b") DEPS("[c]") TASK("c") DEPS("[a]") TASK("d") DEPS("[a]"),
		      1, &d);
	assert_diag(&d, 11, 9, "cycle", "core/a -> core/b -> core/c -> core/a");
	tlm_diags_clear(&d);

	/* Across teams, and two independent cycles both reported. */
	expect_errors(SPEC_HEAD AGENT_DEV "teams:\n" TEAM_HEAD("core") TASK("a") DEPS("[web/b]")
			      TASK("x") DEPS("[y]") TASK("y") DEPS("[x]") TEAM_HEAD("web") TASK("b")
				      DEPS("[core/a]"),
		      2, &d);
	assert_diag(&d, 11, 9, "cycle", "core/a -> web/b -> core/a");
	assert_diag(&d, 14, 9, "cycle", "core/x -> core/y -> core/x");
	tlm_diags_clear(&d);
}

static void test_teardown_and_timeout(void **state)
{
	tlm_diags d = TLM_DIAGS_INIT;
	tlm_spec *spec = NULL;
	(void)state;

	expect_errors(SPEC_HEAD "teardown: sometimes\ntimeout_seconds: -5\n", 2, &d);
	assert_diag(&d, 4, 11, "enum",
		    "must be one of on_completion, on_failure, always, never, got \"sometimes\"");
	assert_diag(&d, 5, 18, "range",
		    "\"timeout_seconds\" of the workflow must be between 1 and");
	tlm_diags_clear(&d);
	assert_int_equal(
		parse_yaml(SPEC_HEAD "teardown: never\ntimeout_seconds: 0x10\n", &spec, &d), 0);
	assert_int_equal(spec->teardown, TLM_TEARDOWN_NEVER);
	assert_int_equal(spec->timeout_seconds, 16);
	assert_string_equal(tlm_teardown_name(spec->teardown), "never");
	tlm_spec_free(spec);
}

static void test_errors_sorted_and_capped(void **state)
{
	tlm_diags d = TLM_DIAGS_INIT;
	tlm_spec *spec = NULL;
	char *yaml = malloc(64 * 2000 + 128);
	size_t i, len;
	(void)state;

	len = (size_t)sprintf(yaml, SPEC_HEAD "agents:\n");
	for (i = 0; i < 1500; i++)
		len += (size_t)sprintf(yaml + len, "  - name: a\n");
	assert_int_equal(parse_yaml(yaml, &spec, &d), TLM_EINVALID);
	assert_int_equal(d.count, TLM_SPEC_MAX_DIAGS);
	assert_int_equal(d.dropped, 1499 - TLM_SPEC_MAX_DIAGS);
	for (i = 1; i < d.count; i++)
		assert_true(d.items[i - 1].pos.line <= d.items[i].pos.line);
	tlm_diags_clear(&d);
	free(yaml);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_valid_minimal),
		cmocka_unit_test(test_api_version),
		cmocka_unit_test(test_metadata),
		cmocka_unit_test(test_unknown_keys),
		cmocka_unit_test(test_types),
		cmocka_unit_test(test_duplicate_keys),
		cmocka_unit_test(test_agent_names),
		cmocka_unit_test(test_agent_fields),
		cmocka_unit_test(test_docker_image),
		cmocka_unit_test(test_run_limits),
		cmocka_unit_test(test_teams),
		cmocka_unit_test(test_task_fields),
		cmocka_unit_test(test_task_lengths),
		cmocka_unit_test(test_assign_to),
		cmocka_unit_test(test_blocked_by),
		cmocka_unit_test(test_subject_with_slash),
		cmocka_unit_test(test_cycles),
		cmocka_unit_test(test_teardown_and_timeout),
		cmocka_unit_test(test_errors_sorted_and_capped),
	};

	return cmocka_run_group_tests_name("spec.rules", tests, NULL, NULL);
}
