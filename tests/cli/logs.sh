#!/usr/bin/env bash
# `telemachy logs` and the summary's stderr line (docs/logs.md): a completed
# and a failed task's exit status and output tails, one task, JSON, usage
# errors, output that tries to drive the terminal, and a task that is still
# running (nothing collected yet), then ended by an interrupt (its note).
set -euo pipefail

. "$(dirname "$0")/lib/common.bash"

unset AGAMEMNON_URL NATS_URL AGAMEMNON_API_KEY AGAMEMNON_API_KEY_FILE REQUIRE_TLS LOG_LEVEL LOG_FORMAT
export TELEMACHY_STATE_DIR="$tmp/state"

cat >"$tmp/w.yaml" <<'YAML'
apiVersion: telemachy/v1
metadata: {name: out}
agents:
  - {name: ok, program: /bin/sh, args: ['-c', 'echo hello from ok; printf "\033]0;pwned\007\n" >&2']}
  - {name: bad, program: /bin/sh, args: ['-c', 'echo building; echo "error: cannot find foo.h" >&2; exit 2']}
teams:
  - name: t
    agents: [ok, bad]
    tasks:
      - {subject: good, description: d, assign_to: ok}
      - {subject: broken, description: d, assign_to: bad}
YAML

run 1 run "$tmp/w.yaml"
has "$tmp/out" "stderr: error: cannot find foo.h"
run 1 run --output json "$tmp/w.yaml"
id=$("$PY" -c 'import json,sys; d=json.load(open(sys.argv[1])); t={x["subject"]: x for x in d["tasks"]}; assert t["broken"]["stderr_last"] == "error: cannot find foo.h", t; print(d["run_id"])' "$tmp/out")

run 0 logs "$id"
has "$tmp/out" "== t/broken, attempt 1: failed (exited with status 2)"
has "$tmp/out" "exit status 2"
has "$tmp/out" "building"
has "$tmp/out" "error: cannot find foo.h"
has "$tmp/out" "== t/good, attempt 1: completed"
has "$tmp/out" "hello from ok"
hasnt "$tmp/out" $'\033'
hasnt "$tmp/out" $'\007'
has "$tmp/out" '\x1b]0;pwned\x07'

run 0 logs "$id" t/good
hasnt "$tmp/out" "t/broken"
run 0 logs --output json "$id" t/broken
"$PY" -c 'import json,sys; d=json.load(open(sys.argv[1])); a=d["attempts"]; assert len(a)==1 and a[0]["said"]["result"]["exitCode"]==2 and a[0]["said"]["result"]["stdout"]=="building\n", a' "$tmp/out"

run 2 logs
has "$tmp/err" "missing the RUN"
run 2 logs zzzzzzzz
has "$tmp/err" "no run zzzzzzzz"
run 2 logs "$id" t/nope
has "$tmp/err" "has no task t/nope"
run 2 logs "$id" t/good extra

# A running task: nothing collected yet; interrupted, it is ended with a note.
cat >"$tmp/slow.yaml" <<'YAML'
apiVersion: telemachy/v1
metadata: {name: slow}
agents: [{name: s, program: /bin/sh, args: ['-c', 'sleep 30']}]
teams: [{name: t, agents: [s], tasks: [{subject: nap, description: d}]}]
YAML
"$TLM_BIN" run "$tmp/slow.yaml" >"$tmp/slow.out" 2>"$tmp/slow.err" &
pid=$!
for _ in $(seq 1 100); do grep -qs "submitted" "$tmp/slow.err" && break; sleep 0.1; done
grep -q "submitted" "$tmp/slow.err" || { kill -9 $pid; fail "the slow task was not submitted"; }
slow=$(sed -n 's/.*\] run \([a-z0-9]*\) of workflow.*/\1/p' "$tmp/slow.err")
run 0 logs "$slow"
has "$tmp/out" "== t/nap, attempt 1:"
has "$tmp/out" "nothing kept"
kill -INT $pid
rc=0; wait $pid || rc=$?
[ "$rc" -eq 130 ] || fail "interrupted run exited $rc"
run 0 logs "$slow"
has "$tmp/out" "cancelled by telemachy: run $slow interrupted"
echo "logs: ok"
