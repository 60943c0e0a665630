#!/usr/bin/env bash
# `telemachy status --graph dot|mermaid`: the run's task graph from the
# journal's copy of the spec, each task coloured by its last attempt's
# state (completed, failed, skipped, never started); labels escaped; a bad
# format is a usage error.
set -euo pipefail

. "$(dirname "$0")/lib/common.bash"

unset AGAMEMNON_URL NATS_URL AGAMEMNON_API_KEY AGAMEMNON_API_KEY_FILE REQUIRE_TLS LOG_LEVEL LOG_FORMAT
export TELEMACHY_STATE_DIR="$tmp/state"

cat >"$tmp/w.yaml" <<'YAML'
apiVersion: telemachy/v1
metadata: {name: graph}
agents:
  - {name: ok, program: none}
  - {name: bad, program: /bin/sh, args: ['-c', 'exit 1']}
teams:
  - name: t
    agents: [ok, bad]
    tasks:
      - {subject: 'good "one"', description: d, assign_to: ok}
      - {subject: broken, description: d, assign_to: bad}
      - {subject: after, description: d, assign_to: ok, blocked_by: [broken]}
YAML
run 1 run --output json "$tmp/w.yaml"
id=$("$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))["run_id"])' "$tmp/out")

run 0 status --graph dot "$id"
has "$tmp/out" 'digraph "graph" {'
has "$tmp/out" 't0 [label="good \"one\"\n(completed)", style="rounded,filled", fillcolor="#c8e6c9"];'
has "$tmp/out" 't1 [label="broken\n(failed)", style="rounded,filled", fillcolor="#ffcdd2"];'
has "$tmp/out" 't2 [label="after\n(skipped)", style="rounded,filled", fillcolor="#e0e0e0"];'
has "$tmp/out" "t1 -> t2;"

run 0 status --graph mermaid "$id"
has "$tmp/out" 'flowchart TD'
has "$tmp/out" 't0["good #quot;one#quot; (completed)"]'
has "$tmp/out" 'style t1 fill:#ffcdd2'
has "$tmp/out" 't1 --> t2'

# The newest run by default; a bad format or run is a usage error.
run 0 status --graph dot
has "$tmp/out" "(failed)"
run 2 status --graph svg "$id"
has "$tmp/err" '--graph must be dot or mermaid, not "svg"'
run 2 status --graph dot zzzzzzzz
echo "graph: ok"
