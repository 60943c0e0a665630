#!/usr/bin/env bash
# Ctrl-Z (SIGTSTP) stops a run only after its journal batch is committed
# (docs/internals/engine.md, "A stopped owner and the write lock"): while it
# is stopped, another process writes the journal at once (`cancel`), and once
# continued the run sees the cancel and tears down.
set -euo pipefail

. "$(dirname "$0")/lib/common.bash"

unset AGAMEMNON_URL NATS_URL AGAMEMNON_API_KEY AGAMEMNON_API_KEY_FILE REQUIRE_TLS LOG_LEVEL LOG_FORMAT
export TELEMACHY_STATE_DIR="$tmp/state"

cat >"$tmp/slow.yaml" <<'YAML'
apiVersion: telemachy/v1
metadata: {name: slow}
agents: [{name: s, program: /bin/sh, args: ['-c', 'sleep 30']}]
teams: [{name: t, agents: [s], tasks: [{subject: nap, description: d}]}]
YAML
"$TLM_BIN" run "$tmp/slow.yaml" >"$tmp/slow.out" 2>"$tmp/slow.err" </dev/null &
pid=$!
cleanup() { kill -CONT $pid 2>/dev/null || true; kill -9 $pid 2>/dev/null || true; rm -rf "$tmp"; }
trap cleanup EXIT
for _ in $(seq 1 100); do grep -qs "submitted" "$tmp/slow.err" && break; sleep 0.1; done
grep -q "submitted" "$tmp/slow.err" || fail "the slow task was not submitted"
run_id=$(sed -n 's/.*\] run \([a-z0-9]*\) of workflow.*/\1/p' "$tmp/slow.err")

# state PID: the process's state letter (T: stopped).
state() { awk '{ print $3 }' "/proc/$1/stat"; }
kill -TSTP $pid
for _ in $(seq 1 100); do [ "$(state $pid)" = T ] && break; sleep 0.05; done
[ "$(state $pid)" = T ] || fail "SIGTSTP did not stop the run (state $(state $pid))"

# The journal's write lock is free: a writer does not wait (a held lock
# would make it wait its 10 s busy timeout and fail "database is locked").
# The cancel request is written; the stopped owner cannot act on it, so
# cancel's own wait runs out (exit 1).
t0=$(date +%s%N)
run 1 cancel --wait 1 "$run_id"
has "$tmp/err" "asked run $run_id's owner"
has "$tmp/err" "still running"
took=$((($(date +%s%N) - t0) / 1000000))
[ "$took" -lt 5000 ] || fail "cancel waited $took ms for a stopped run's journal"
[ "$(state $pid)" = T ] || fail "the run did not stay stopped"

kill -CONT $pid
rc=0
wait $pid || rc=$?
[ "$rc" -eq 130 ] || { cat "$tmp/slow.err" >&2; fail "the cancelled run exited $rc, want 130"; }
has "$tmp/slow.err" "cancelled by \`telemachy cancel\`"
run 0 status "$run_id"
has "$tmp/out" "leftovers: 0"
