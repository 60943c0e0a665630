#!/usr/bin/env bash
# `telemachy logs` and the summary's stderr line (docs/logs.md): a completed
# and a failed task's exit status and output tails, one task, JSON, usage
# errors, output that tries to drive the terminal, and a task that is still
# running (nothing collected yet), then ended by an interrupt (its note).
# As cli.logs-pg, the journal is PostgreSQL (journal_from_env): there a
# task's result is a queued write of the teardown's batch
# (docs/internals/journal.md).
set -euo pipefail

. "$(dirname "$0")/lib/common.bash"

unset AGAMEMNON_URL NATS_URL AGAMEMNON_API_KEY AGAMEMNON_API_KEY_FILE REQUIRE_TLS LOG_LEVEL LOG_FORMAT
export TELEMACHY_STATE_DIR="$tmp/state"
trap 'journal_stop; rm -rf "$tmp"' EXIT
journal_from_env

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

# -f: needs a task, and a control plane other processes can reach.
run 2 logs -f "$slow"
has "$tmp/err" "--follow needs the TEAM/TASK"
run 2 logs -f "$slow" t/nap
has "$tmp/err" "in-process control plane of its own process"

# -f against `telemachy serve`: the output as it grows, stdout and stderr
# apart, until the task ends.
"$TLM_BIN" serve --listen 127.0.0.1:0 >"$tmp/serve.url" 2>"$tmp/serve.err" &
spid=$!
trap 'kill $spid 2>/dev/null || true; journal_stop; rm -rf "$tmp"' EXIT
for _ in $(seq 1 100); do [ -s "$tmp/serve.url" ] && break; sleep 0.1; done
url=$(head -1 "$tmp/serve.url")
cat >"$tmp/tick.yaml" <<'YAML'
apiVersion: telemachy/v1
metadata: {name: tick}
agents: [{name: s, program: /bin/sh, args: ['-c', 'for i in 1 2 3; do echo tick $i; printf "oops \033[2J$i\n" >&2; sleep 0.5; done']}]
teams: [{name: t, agents: [s], tasks: [{subject: x, description: d}]}]
YAML
AGAMEMNON_URL=$url "$TLM_BIN" run "$tmp/tick.yaml" >"$tmp/tick.out" 2>"$tmp/tick.err" &
rpid=$!
for _ in $(seq 1 100); do grep -qs "submitted" "$tmp/tick.err" && break; sleep 0.1; done
tick=$(sed -n 's/.*\] run \([a-z0-9]*\) of workflow.*/\1/p' "$tmp/tick.err")
AGAMEMNON_URL=$url run 0 logs -f "$tick" t/x
[ "$(cat "$tmp/out")" = "$(printf 'tick 1\ntick 2\ntick 3')" ] || { cat "$tmp/out"; fail "stdout as followed"; }
has "$tmp/err" 'oops \x1b[2J3'
hasnt "$tmp/err" $'\033'
rc=0; wait $rpid || rc=$?
[ "$rc" -eq 0 ] || fail "the followed run exited $rc"
# The endpoint refuses what it does not serve.
run 0 status --output json "$tick"
"$PY" - "$tmp/out" "$url" <<'PY'
import json, sys, urllib.error, urllib.request
st = json.load(open(sys.argv[1]))
team = [r["remote_id"] for r in st["resources"] if r["kind"] == "team"][0]
task = [t["remote_id"] for t in st["tasks"]][0]
base = f"{sys.argv[2]}/v1/teams/{team}/tasks"
def code(path):
    try:
        with urllib.request.urlopen(base + path, timeout=10) as r:
            return r.status, json.load(r)
    except urllib.error.HTTPError as e:
        return e.code, None
c, body = code(f"/{task}/output?stream=stderr&offset=5")
assert c == 200 and body["data"].startswith("\x1b[2J1") and body["done"], (c, body)
for bad in ("?stream=stdin", "?offset=-1", "?offset=1x"):
    assert code(f"/{task}/output{bad}")[0] == 400, bad
assert code("/no-such-task/output")[0] == 404
PY
kill $spid
journal_check_clean
echo "logs: ok"
