#!/usr/bin/env bash
# LOG_LEVEL and LOG_FORMAT (docs/logging.md): bad values exit 2; JSON records
# parse line by line, each with ts, level, cmd and msg, and every record of
# a run names the run; levels filter (-q and -v win over LOG_LEVEL); errors
# always show; validate's diagnostics carry file, line, col and rule; the
# API key never appears.
set -euo pipefail

. "$(dirname "$0")/lib/common.bash"

unset AGAMEMNON_URL NATS_URL AGAMEMNON_API_KEY AGAMEMNON_API_KEY_FILE REQUIRE_TLS LOG_LEVEL LOG_FORMAT
export TELEMACHY_STATE_DIR="$tmp/state"
ex="$TLM_SOURCE_DIR/examples"

LOG_LEVEL=loud run 2 list
has "$tmp/err" 'LOG_LEVEL must be error, warn, info or debug, not "loud"'
LOG_FORMAT=xml run 2 list
has "$tmp/err" 'LOG_FORMAT must be plain or json, not "xml"'
LOG_LEVEL= LOG_FORMAT= run 0 version

# json_lines FILE [RUN]: every line is one JSON object with the four keys;
# with RUN, every record has "run": RUN.  Prints the number of records.
json_lines() {
	"$PY" - "$@" <<'PY'
import json, sys
path = sys.argv[1]
run = sys.argv[2] if len(sys.argv) > 2 else None
n = 0
for i, line in enumerate(open(path, encoding="ascii"), 1):
    rec = json.loads(line)
    assert isinstance(rec, dict), f"line {i}: not an object"
    for k in ("ts", "level", "cmd", "msg"):
        assert k in rec, f"line {i}: no {k}: {line}"
    assert rec["level"] in ("debug", "info", "warn", "error"), line
    assert rec["ts"].endswith("Z") and "T" in rec["ts"], line
    if run is not None:
        assert rec.get("run") == run, f"line {i}: run {rec.get('run')!r}, want {run!r}"
    n += 1
print(n)
PY
}

# A real run on the in-process control plane, logged as JSON.
LOG_FORMAT=json AGAMEMNON_API_KEY=sekrit-key-42 run 0 run --output json "$ex/hello-world.yaml"
id=$("$PY" -c 'import json,sys; print(json.load(open(sys.argv[1]))["run_id"])' "$tmp/out")
n=$(json_lines "$tmp/err" "$id")
[ "$n" -ge 5 ] || fail "only $n records"
has "$tmp/err" '"msg":"task hello/Say hello completed"'
has "$tmp/err" '"elapsed_ms":'
hasnt "$tmp/err" "sekrit-key-42"
hasnt "$tmp/err" $'\r'

# Levels: warn and -q hide info; -v shows debug even under LOG_LEVEL=error.
LOG_LEVEL=warn run 0 run "$ex/hello-world.yaml"
hasnt "$tmp/err" "created as"
LOG_LEVEL=debug run 0 run "$ex/hello-world.yaml"
has "$tmp/err" "created as"
LOG_LEVEL=error run 0 run -v "$ex/hello-world.yaml"
has "$tmp/err" "created as"
LOG_LEVEL=info run 0 run -q "$ex/hello-world.yaml"
hasnt "$tmp/err" "created as"

# Errors show whatever the level; a later command on the run names it.
LOG_LEVEL=error LOG_FORMAT=json run 2 status zzzzzzzz
json_lines "$tmp/err" >/dev/null
has "$tmp/err" '"level":"error"'
has "$tmp/err" '"cmd":"status"'
LOG_FORMAT=json run 2 resume "$id"
json_lines "$tmp/err" "$id" >/dev/null
has "$tmp/err" "nothing to resume"

# Diagnostics as fields; plain output unchanged.
printf 'apiVersion: telemachy/v1\nmetadata: {name: x}\nagentz: []\n' >"$tmp/bad.yaml"
LOG_FORMAT=json run 2 validate "$tmp/bad.yaml"
json_lines "$tmp/err" >/dev/null
has "$tmp/err" '"line":3,"col":1'
has "$tmp/err" '"rule":"unknown-key"'
run 2 validate "$tmp/bad.yaml"
has "$tmp/err" "bad.yaml:3:1: error: unknown key"
hasnt "$tmp/err" '"level"'

# Usage errors are records too (no "Try --help" line in JSON).
LOG_FORMAT=json run 2 run --bogus "$ex/hello-world.yaml"
json_lines "$tmp/err" >/dev/null
hasnt "$tmp/err" "Try 'telemachy"

# Control characters and non-ASCII never reach the terminal raw.
printf 'apiVersion: telemachy/v1\nmetadata: {name: x}\nagentz\x1b[31m: []\n' >"$tmp/esc.yaml"
LOG_FORMAT=json run 2 validate "$tmp/esc.yaml"
hasnt "$tmp/err" $'\x1b'
json_lines "$tmp/err" >/dev/null
echo "logging: ok"
