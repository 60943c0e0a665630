#!/usr/bin/env bash
# `telemachy run` from the command line: usage and configuration errors (exit
# 2, nothing run), an invalid workflow (FILE:LINE:COL, exit 2), every example
# through --dry-run (no network, nothing executed), hello-world for real on the
# in-process control plane, the JSON summary, and the API key never echoed.
# Fault, signal and NATS behaviour is tested in tests/integration/engine.
set -euo pipefail

. "$(dirname "$0")/lib/common.bash"

unset AGAMEMNON_URL NATS_URL AGAMEMNON_API_KEY AGAMEMNON_API_KEY_FILE REQUIRE_TLS
export TELEMACHY_STATE_DIR="$tmp/state"
ex="$TLM_SOURCE_DIR/examples"

run 2 run
has "$tmp/err" "missing the workflow FILE"
run 2 run a.yaml b.yaml
has "$tmp/err" "unexpected argument"
run 2 run --max-concurrent 0 "$ex/hello-world.yaml"
has "$tmp/err" "--max-concurrent must be 1 to 1024"
run 2 run --request-timeout x "$ex/hello-world.yaml"
run 2 run --max-connections 0 "$ex/hello-world.yaml"
run 2 run --connection sometimes "$ex/hello-world.yaml"
has "$tmp/err" "--connection must be fresh or reuse"
run 0 run -q --connection fresh --max-connections 1 "$ex/hello-world.yaml"
run 2 run --bogus "$ex/hello-world.yaml"
has "$tmp/err" "unknown option"
run 0 run --help
has "$tmp/out" "Exit codes"

# An invalid workflow: the validator's messages, nothing run.
printf 'apiVersion: telemachy/v1\nmetadata: {name: x}\nagents: [{name: a, cpus: 0}]\nteams: []\n' >"$tmp/bad.yaml"
run 2 run "$tmp/bad.yaml"
has "$tmp/err" "bad.yaml:3:"
run 2 run "$tmp/missing.yaml"

# Bad settings are errors of run only (and validate does not read them).
REQUIRE_TLS=maybe run 2 run "$ex/hello-world.yaml"
has "$tmp/err" "REQUIRE_TLS must be true or false"
REQUIRE_TLS=maybe run 0 validate "$ex/hello-world.yaml"
AGAMEMNON_API_KEY_FILE="$tmp/nokey" run 2 run "$ex/hello-world.yaml"
has "$tmp/err" "AGAMEMNON_API_KEY_FILE"
# A password in the control plane's URL is never printed; a query (where a
# key often hides) is refused without repeating it.
AGAMEMNON_URL='http://user:sekrit-pw-9@127.0.0.1:1/' run 3 run "$ex/hello-world.yaml"
hasnt "$tmp/err" "sekrit-pw-9"
hasnt "$tmp/out" "sekrit-pw-9"
has "$tmp/err" "http://***@127.0.0.1:1/"
AGAMEMNON_URL='http://127.0.0.1:1/?key=sekrit-q-9' run 2 run "$ex/hello-world.yaml"
hasnt "$tmp/err" "sekrit-q-9"
has "$tmp/err" "must not have a query"
# A key that is set must be a key: empty, blank or padded is an error, never
# "no key" (the same rules as serve's), and never printed.
AGAMEMNON_API_KEY= run 2 run "$ex/hello-world.yaml"
has "$tmp/err" "AGAMEMNON_API_KEY"
AGAMEMNON_API_KEY="   " run 2 run "$ex/hello-world.yaml"
has "$tmp/err" "AGAMEMNON_API_KEY"
printf '  \nsecond-line-key\n' >"$tmp/blankkey"
AGAMEMNON_API_KEY_FILE="$tmp/blankkey" run 2 run "$ex/hello-world.yaml"
hasnt "$tmp/err" "second-line-key"
AGAMEMNON_RATE_LIMIT_RPS=-3 run 2 run "$ex/hello-world.yaml"
# Plain http to a remote host is refused unless REQUIRE_TLS=false; the key
# given is never echoed.
AGAMEMNON_URL=http://example.invalid AGAMEMNON_API_KEY=sekrit-key-42 run 2 run "$ex/hello-world.yaml"
has "$tmp/err" "http"
hasnt "$tmp/err" "sekrit-key-42"
hasnt "$tmp/out" "sekrit-key-42"

# Every example, dry: completes, nothing executed, no network needed (the
# control plane named here does not exist and is not contacted).
for f in "$ex"/*.yaml; do
	AGAMEMNON_URL=http://127.0.0.1:1 NATS_URL=nats://127.0.0.1:1 run 0 run --dry-run -q "$f"
	has "$tmp/out" "dry run: nothing was created"
	hasnt "$tmp/out" "failed"
done

# hello-world for real, with the JSON summary.
run 0 run --output json "$ex/hello-world.yaml"
"$PY" - "$tmp/out" <<'PYEOF'
import json, sys
r = json.load(open(sys.argv[1]))
assert r["outcome"] == "completed" and r["state"] == "completed", r
assert r["exit_code"] == 0 and r["torn_down"] is True and r["dry_run"] is False, r
assert len(r["run_id"]) == 8 and r["leftovers"] == [], r
assert [t["status"] for t in r["tasks"]] == ["completed"], r
assert r["tasks"][0]["attempts"] == 1 and r["tasks"][0]["id"], r
assert r["journal"].endswith("journal.db"), r
PYEOF
test -f "$TELEMACHY_STATE_DIR/journal.db" || fail "no journal in TELEMACHY_STATE_DIR"
[ "$(stat -c %a "$TELEMACHY_STATE_DIR")" = 700 ] || fail "state dir not 0700"

# local programs for real: every task completed, in the text summary.
run 0 run -q "$ex/local-programs.yaml"
has "$tmp/out" "completed"
has "$tmp/out" "teardown: everything the run created was deleted"
echo "ok"
