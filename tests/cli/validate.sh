#!/usr/bin/env bash
# `telemachy validate` and the CLI basics: exit codes, every error of every
# file with FILE:LINE:COL, JSON output, usage errors, --help, --version.
set -euo pipefail
. "$(dirname "$0")/lib/common.bash"

# The shipped examples are valid.
run 0 validate "$TLM_SOURCE_DIR"/examples/*.yaml
for f in "$TLM_SOURCE_DIR"/examples/*.yaml; do has "$tmp/out" "$f: ok"; done
run 0 -q validate "$TLM_SOURCE_DIR/examples/hello-world.yaml"
[ ! -s "$tmp/out" ] || fail "-q printed: $(cat "$tmp/out")"

cat >"$tmp/bad.yaml" <<'YAML'
apiVersion: telemachy/v1
metadata:
  name: demo
agents:
  - name: dev
teams:
  - name: core
    agents: [dev]
    tasks:
      - subject: Build
        description: build it
      - subject: Deploy
        description: ship it
        blocked_by: [Buld]
YAML
# One bad file among good ones: exit 2, the good ones still reported ok.
run 2 validate "$TLM_SOURCE_DIR/examples/hello-world.yaml" "$tmp/bad.yaml"
has "$tmp/out" "hello-world.yaml: ok"
has "$tmp/err" "$tmp/bad.yaml:14:22: error: task \"Deploy\" is blocked by unknown task \"Buld\" in team \"core\" (did you mean \"Build\"?)"
has "$tmp/err" "[blocked-by-unknown]"
has "$tmp/err" "$tmp/bad.yaml: 1 error"

# JSON: one document for all files.
run 2 --output json validate "$TLM_SOURCE_DIR/examples/hello-world.yaml" "$tmp/bad.yaml"
$PY - "$tmp/out" <<'PY'
import json, sys
doc = json.load(open(sys.argv[1]))
assert doc["valid"] is False, doc
ok, bad = doc["files"]
assert ok["valid"] and ok["errors"] == [] and ok["error_count"] == 0, ok
assert not bad["valid"] and bad["error_count"] == 1, bad
e = bad["errors"][0]
assert (e["line"], e["col"], e["rule"]) == (14, 22, "blocked-by-unknown"), e
assert "did you mean" in e["message"], e
PY
# Flags after the command work too.
run 0 validate --output json "$TLM_SOURCE_DIR/examples/hello-world.yaml"
$PY -c 'import json,sys; assert json.load(open(sys.argv[1]))["valid"] is True' "$tmp/out"

# Several errors in one file: all reported, sorted by position.
cat >"$tmp/many.yaml" <<'YAML'
apiVersion: telemachy/v1
metadata: {name: x}
agents:
  - name: a
    cpus: 0
  - name: a
teams:
  - name: t
    agents: [a]
    tasks:
      - subject: s
        description: d
        blocked_by: [s]
teardown: later
YAML
run 2 validate "$tmp/many.yaml"
grep -E '^[^ ]+:[0-9]+:[0-9]+: error: ' "$tmp/err" | cut -d: -f2,3 >"$tmp/pos"
[ "$(cat "$tmp/pos" | tr '\n' ' ')" = "5:11 6:5 13:22 14:11 " ] || fail "positions: $(cat "$tmp/pos")"
has "$tmp/err" "many.yaml: 4 errors"

# Unreadable input.
run 2 validate "$tmp/missing.yaml"
has "$tmp/err" "$tmp/missing.yaml: cannot open: No such file or directory"
printf 'a: [\n' >"$tmp/syntax.yaml"
run 2 validate "$tmp/syntax.yaml"
has "$tmp/err" "[yaml-syntax]"

# Usage errors exit 2 and point to --help.
run 2 validate
has "$tmp/err" "no workflow file given"
run 2 validate --bogus x.yaml
has "$tmp/err" "unknown option '--bogus'"
run 2 --output xml validate x.yaml
has "$tmp/err" "--output must be text or json"
run 2 frobnicate
has "$tmp/err" "unknown command \"frobnicate\""
run 2
has "$tmp/err" "Usage: telemachy"

# Help and version.
run 0 validate --help
has "$tmp/out" "Usage: telemachy validate"
run 0 --help
has "$tmp/out" "Exit codes:"
for c in validate plan schema version; do
	run 0 "$c" --help
	has "$tmp/out" "Usage: telemachy $c"
done
run 0 --version
grep -qE '^telemachy [0-9]+\.[0-9]+\.[0-9]+( \(test hooks[^)]*\))?$' "$tmp/out" || fail "version: $(cat "$tmp/out")"
run 0 version --output json
$PY -c 'import json,sys; assert json.load(open(sys.argv[1]))["name"] == "telemachy"' "$tmp/out"
echo "validate: all checks passed"
