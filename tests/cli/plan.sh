#!/usr/bin/env bash
# `telemachy plan`: text, JSON, DOT and Mermaid output of small workflows and of
# the examples; exit codes 0 (plan printed), 1 (output not writable), 2 (usage
# error, invalid or unreadable workflow); diagnostics as FILE:LINE:COL.
#
# JSON is checked with /usr/bin/python3 (by path: another python3 earlier in
# PATH is not needed, but this one is always there on the project's machines).
set -euo pipefail

. "$(dirname "$0")/lib/common.bash"

# Checks a JSON plan on stdin against the structure of docs/plan.md and checks
# the waves: every task once, wave = 1 + the latest wave of its dependencies.
cat >"$tmp/check_json.py" <<'EOF'
import json, sys

p = json.load(sys.stdin)
for k in ("apiVersion", "workflow", "teardown", "timeout_seconds", "agents", "teams", "tasks", "waves"):
    assert k in p, "missing key " + k
assert p["apiVersion"] == "telemachy/v1"
assert set(p["workflow"]) >= {"name", "description", "labels", "file"}, p["workflow"]
agent_keys = {"name", "program", "args", "model", "working_dir", "runtime", "docker_image",
              "cpus", "memory", "memory_bytes", "env"}
for a in p["agents"]:
    assert set(a) >= agent_keys, a
    assert (a["docker_image"] is not None) == (a["runtime"] == "docker"), a
agents = {a["name"] for a in p["agents"]}
tasks = {t["id"]: t for t in p["tasks"]}
assert len(tasks) == len(p["tasks"]), "duplicate task ids"
for team in p["teams"]:
    assert set(team["agents"]) <= agents, team
    for s in team["tasks"]:
        assert team["name"] + "/" + s in tasks, s
for t in p["tasks"]:
    assert t["id"] == t["team"] + "/" + t["subject"], t
    assert t["assign_to"] in agents, t
    want = 1 + max((tasks[d]["wave"] for d in t["blocked_by"]), default=-1)
    assert t["wave"] == want, (t["id"], t["wave"], want)
seen = [i for w in p["waves"] for i in w]
assert sorted(seen) == sorted(tasks), "waves do not list every task once"
for n, w in enumerate(p["waves"]):
    assert w, "empty wave %d" % n
    assert all(tasks[i]["wave"] == n for i in w), (n, w)
    assert w == [t["id"] for t in p["tasks"] if t["wave"] == n], "wave %d not in spec order" % n
print(len(p["tasks"]), len(p["waves"]))
EOF

# Checks a DOT graph on stdin: clusters, every edge between declared nodes.
cat >"$tmp/check_dot.py" <<'EOF'
import re, sys

s = sys.stdin.read()
assert s.startswith("digraph "), "not a digraph"
assert s.endswith("\n}\n"), "the digraph is not closed"
nodes = set(re.findall(r"^    (t\d+) \[label=", s, re.M))
edges = re.findall(r"^  (t\d+) -> (t\d+);$", s, re.M)
for a, b in edges:
    assert a in nodes and b in nodes, (a, b)
print(len(re.findall(r"^  subgraph cluster_\d+ \{$", s, re.M)), len(nodes), len(edges))
EOF

# --- usage -------------------------------------------------------------------------
run 0 plan --help
has "$tmp/out" "Usage: telemachy plan"
run 2 plan
has "$tmp/err" "missing the workflow FILE"
run 2 plan a.yaml b.yaml
run 2 plan --no-such-option a.yaml
run 2 plan --graph svg a.yaml
run 2 plan --output yaml a.yaml
run 2 plan --graph dot --output json a.yaml
run 2 --output json plan --graph mermaid a.yaml
has "$tmp/err" "exclude each other"

# --- unreadable and invalid workflows ---------------------------------------------
run 2 plan "$tmp/does-not-exist.yaml"
[ -s "$tmp/err" ] || fail "a missing file gives no message"
[ ! -s "$tmp/out" ] || fail "a missing file still prints a plan"

cat >"$tmp/invalid.yaml" <<'EOF'
apiVersion: telemachy/v1
metadata: {name: bad}
agents: [{name: a, program: none}]
teams:
  - name: t
    agents: [a]
    tasks:
      - subject: one
        description: d
        blocked_by: [two]
      - subject: two
        description: d
        blocked_by: [one]
        colour: red
EOF
run 2 plan "$tmp/invalid.yaml"
[ ! -s "$tmp/out" ] || fail "an invalid file still prints a plan"
grep -qE "^$tmp/invalid\.yaml:[0-9]+:[0-9]+: error: .* \[cycle\]$" "$tmp/err" ||
	{ cat "$tmp/err" >&2; fail "no FILE:LINE:COL cycle error"; }
grep -qE "^$tmp/invalid\.yaml:14:9: error: .* \[unknown-key\]$" "$tmp/err" ||
	{ cat "$tmp/err" >&2; fail "no unknown-key error at 14:9"; }

# --- a diamond across two teams ----------------------------------------------------
cat >"$tmp/diamond.yaml" <<'EOF'
apiVersion: telemachy/v1
metadata:
  name: diamond
  owner: qa
agents:
  - {name: lead, program: none, model: m1}
  - {name: dev, program: none, runtime: docker, docker_image: "img:2", cpus: 3, memory: 1g}
teams:
  - name: core
    agents: [lead, dev]
    tasks:
      - {subject: plan, description: d, assign_to: lead}
      - {subject: left, description: d, assign_to: dev, blocked_by: [plan], timeout_seconds: 90}
      - {subject: 'say "hi"', description: d, assign_to: dev, blocked_by: [plan], retries: 3}
  - name: ship
    agents: [lead]
    tasks:
      - {subject: merge, description: d, blocked_by: ['core/left', 'core/say "hi"']}
teardown: never
timeout_seconds: 600
EOF
run 0 plan "$tmp/diamond.yaml"
out=$tmp/out
has "$out" "Workflow:    diamond"
has "$out" "Teardown:    never"
has "$out" "Timeout:     600s"
has "$out" "tlm-<run>-a-dev"
has "$out" "image img:2"
for w in 0 1 2; do has "$out" "Wave $w:"; done
grep -q "^Wave 3" "$out" && fail "a fourth wave"
grep -qE '^  core/plan +-> lead$' "$out" || { cat "$out" >&2; fail "bad wave 0 line"; }
grep -qE '^  core/left +-> dev +\(after: core/plan\)  timeout 90s$' "$out" ||
	{ cat "$out" >&2; fail "bad line for core/left"; }
grep -qE '^  core/say "hi" +-> dev +\(after: core/plan\)  retries 3$' "$out" ||
	{ cat "$out" >&2; fail "bad line for core/say \"hi\""; }
grep -qE '^  ship/merge +-> lead +\(after: core/left, core/say "hi"\)$' "$out" ||
	{ cat "$out" >&2; fail "bad line for ship/merge"; }
has "$out" "2 agents, 2 teams, 4 tasks in 3 waves"

run 0 plan --output json "$tmp/diamond.yaml"
counts=$("$PY" "$tmp/check_json.py" <"$tmp/out") || fail "bad JSON plan"
[ "$counts" = "4 3" ] || fail "JSON plan has tasks/waves $counts, want 4 3"
"$PY" - "$tmp/out" <<'EOF' || fail "JSON plan content"
import json, sys
p = json.load(open(sys.argv[1]))
assert p["workflow"]["name"] == "diamond" and p["workflow"]["labels"] == {"owner": "qa"}
assert p["teardown"] == "never" and p["timeout_seconds"] == 600
assert p["agents"][1]["docker_image"] == "img:2" and p["agents"][1]["memory_bytes"] == 1 << 30
assert p["waves"] == [["core/plan"], ["core/left", 'core/say "hi"'], ["ship/merge"]], p["waves"]
m = p["tasks"][3]
assert m["blocked_by"] == ["core/left", 'core/say "hi"'] and m["assign_to"] == "lead", m
assert p["tasks"][1]["timeout_seconds"] == 90 and p["tasks"][0]["timeout_seconds"] is None
EOF
run 0 --output json plan "$tmp/diamond.yaml"
"$PY" "$tmp/check_json.py" <"$tmp/out" >/dev/null || fail "--output json before the command"

run 0 plan --graph dot "$tmp/diamond.yaml"
counts=$("$PY" "$tmp/check_dot.py" <"$tmp/out") || fail "bad DOT graph"
[ "$counts" = "2 4 4" ] || fail "DOT has clusters/nodes/edges $counts, want 2 4 4"
has "$tmp/out" 'label="say \"hi\""'
has "$tmp/out" 'label="core";'

run 0 plan --graph mermaid "$tmp/diamond.yaml"
[ "$(head -n1 "$tmp/out")" = "flowchart TD" ] || fail "mermaid does not start with flowchart TD"
[ "$(grep -c '^  subgraph team[0-9]* \["' "$tmp/out")" -eq 2 ] || fail "mermaid subgraphs"
[ "$(grep -c '^  end$' "$tmp/out")" -eq 2 ] || fail "mermaid subgraph ends"
[ "$(grep -cE '^  t[0-9]+ --> t[0-9]+$' "$tmp/out")" -eq 4 ] || fail "mermaid edges"
has "$tmp/out" 't2["say #quot;hi#quot;"]'
grep -q '"hi"' "$tmp/out" && fail "a raw quote in a mermaid label"

# --- output that cannot be written ---------------------------------------------------
if [ -w /dev/full ]; then
	rc=0; "$TLM_BIN" plan "$tmp/diamond.yaml" >/dev/full 2>"$tmp/err" || rc=$?
	[ "$rc" -eq 1 ] || fail "plan >/dev/full exited $rc, want 1"
	[ -s "$tmp/err" ] || fail "plan >/dev/full says nothing"
fi

# --- the examples ----------------------------------------------------------------------
n=0
for f in "$TLM_SOURCE_DIR"/examples/*.yaml; do
	[ -e "$f" ] || continue
	n=$((n + 1))
	run 0 plan "$f"
	grep -q '^Wave 0:$' "$tmp/out" || fail "$f: no Wave 0"
	grep -qE '^[0-9]+ agents?, [0-9]+ teams?, [0-9]+ tasks? in [0-9]+ waves?$' "$tmp/out" ||
		fail "$f: no count line"
	run 0 plan --output json "$f"
	"$PY" "$tmp/check_json.py" <"$tmp/out" >/dev/null || fail "$f: bad JSON plan"
	run 0 plan --graph dot "$f"
	"$PY" "$tmp/check_dot.py" <"$tmp/out" >/dev/null || fail "$f: bad DOT graph"
	run 0 plan --graph mermaid "$f"
	[ "$(head -n1 "$tmp/out")" = "flowchart TD" ] || fail "$f: bad mermaid graph"
done
echo "ok ($n examples)"
