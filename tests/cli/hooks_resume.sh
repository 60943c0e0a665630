#!/usr/bin/env bash
# Hooks at least once (docs/hooks.md, "At least once"): a run is killed
# (SIGKILL) while a hook is still running for an event.  The process that
# picks the run up again — `resume`, in a second round `teardown` —
# delivers that event to the hook that did not finish, does not deliver it
# again to the hook that did, and delivers its own events; `resume --hook`
# adds a hook.  A third round has `worker --once` take the run over.
# Everything runs on the in-process control plane; every wait is bounded.
# As cli.hooks_resume-pg, the journal is PostgreSQL (journal_from_env):
# there an event's journal row is a queued write of its batch
# (docs/internals/journal.md), and the password must reach no hook.
set -euo pipefail

. "$(dirname "$0")/lib/common.bash"

unset AGAMEMNON_URL NATS_URL AGAMEMNON_API_KEY AGAMEMNON_API_KEY_FILE REQUIRE_TLS
export TELEMACHY_STATE_DIR="$tmp/state"
runpid=
cleanup() {
	[ -n "$runpid" ] && kill -9 "$runpid" 2>/dev/null || true
	pkill -9 -f "$tmp/" 2>/dev/null || true
	journal_stop
	rm -rf "$tmp"
}
trap cleanup EXIT
journal_from_env

# fast.sh LOG: one line per call, "EVENT_ID"; its environment to LOG.env.
cat >"$tmp/fast.sh" <<'SH'
#!/bin/sh
cat >/dev/null
echo "$TLM_EVENT_ID" >>"$1"
env >>"$1.env"
SH
# stuck.sh LOG ONCE: the first call (ONCE absent) says "stuck ID" and hangs;
# the others record "ID" and the payload's id.
cat >"$tmp/stuck.sh" <<'SH'
#!/bin/sh
payload=$(cat)
if [ ! -e "$2" ]; then
	: >"$2"
	echo "stuck $TLM_EVENT_ID" >>"$1"
	exec sleep 300
fi
echo "$TLM_EVENT_ID $(printf '%s' "$payload" | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')" >>"$1"
SH
chmod +x "$tmp/fast.sh" "$tmp/stuck.sh"

# spec ROUND: the first task completes at once; the second waits for the file
# $tmp/go.ROUND, so the run is still going when it is killed.
spec() {
	cat >"$tmp/w$1.yaml" <<YAML
apiVersion: telemachy/v1
metadata: {name: hooked-$1}
agents:
  - {name: quick, program: none}
  - name: gate
    program: /bin/sh
    args: ["-c", "cat >/dev/null; i=0; while [ ! -e $tmp/go.$1 ] && [ \$i -lt 600 ]; do sleep 0.1; i=\$((i+1)); done"]
teams:
  - name: t
    agents: [quick, gate]
    tasks:
      - {subject: first, description: d, assign_to: quick}
      - {subject: second, description: d, assign_to: gate}
hooks:
  - {event: task_completed, command: [$tmp/fast.sh, $tmp/fast$1.log]}
  - {event: task_completed, command: [$tmp/stuck.sh, $tmp/stuck$1.log, $tmp/once$1], timeout_seconds: 600}
  - {event: run_completed, command: [$tmp/fast.sh, $tmp/fast$1.log]}
  - {event: run_cancelled, command: [$tmp/fast.sh, $tmp/fast$1.log]}
YAML
}

# start ROUND: runs the workflow in the background until the stuck hook
# hangs on the first task's event, then kills telemachy and the hook with
# SIGKILL (nothing gets to clean up).  Sets $run.
start() {
	spec "$1"
	"$TLM_BIN" run -q "$tmp/w$1.yaml" >"$tmp/run$1.out" 2>"$tmp/run$1.err" </dev/null &
	runpid=$!
	for _ in $(seq 200); do
		grep -q "^stuck " "$tmp/stuck$1.log" 2>/dev/null && break
		sleep 0.1
	done
	grep -q "^stuck " "$tmp/stuck$1.log" 2>/dev/null ||
		{ cat "$tmp/run$1.err" >&2; fail "round $1: the stuck hook never ran"; }
	kill -9 "$runpid"
	wait "$runpid" 2>/dev/null || true
	runpid=
	pkill -9 -f "sleep 300" 2>/dev/null || true
	pkill -9 -f "$tmp/go.$1" 2>/dev/null || true
	run=$("$TLM_BIN" list -q 2>/dev/null | head -1)
	[ -n "$run" ] || fail "round $1: no run in the journal"
	first="$run:task_completed:t/first:1"
	[ "$(cat "$tmp/fast$1.log")" = "$first" ] || fail "round $1 before the kill: $(cat "$tmp/fast$1.log")"
	[ "$(cat "$tmp/stuck$1.log")" = "stuck $first" ] || fail "round $1 stuck: $(cat "$tmp/stuck$1.log")"
}

# count FILE LINE: how many lines of FILE are exactly LINE.
count() { grep -cxF -- "$2" "$1" || true; }

# --- resume: the event the stuck hook never finished is delivered to it ------
start 1
touch "$tmp/go.1"
run 0 resume -q --hook "run_completed=echo \"extra \$TLM_EVENT_ID\" >>$tmp/extra.log" "$run"
# On the in-process control plane the resumed run makes everything again:
# the unfinished task is a new attempt.
second=$(grep -F "$run:task_completed:t/second:" "$tmp/fast1.log" || true)
[ "$(printf '%s\n' "$second" | grep -c .)" = 1 ] || fail "fast hook, second task: $(cat "$tmp/fast1.log")"
end="$run:run_completed:completed"
# The fast hook had the first event before the kill: not again.
[ "$(count "$tmp/fast1.log" "$first")" = 1 ] || fail "fast hook got $first again: $(cat "$tmp/fast1.log")"
[ "$(count "$tmp/fast1.log" "$second")" = 1 ] || fail "fast hook: $(cat "$tmp/fast1.log")"
[ "$(count "$tmp/fast1.log" "$end")" = 1 ] || fail "fast hook, run end: $(cat "$tmp/fast1.log")"
# The stuck hook gets the first event now, with the same id in its payload.
[ "$(count "$tmp/stuck1.log" "$first $first")" = 1 ] || fail "stuck hook, resumed: $(cat "$tmp/stuck1.log")"
[ "$(count "$tmp/stuck1.log" "$second $second")" = 1 ] || fail "stuck hook: $(cat "$tmp/stuck1.log")"
[ "$(wc -l <"$tmp/stuck1.log")" = 3 ] || fail "stuck hook, extra lines: $(cat "$tmp/stuck1.log")"
# --hook on resume runs with the spec's hooks.
[ "$(cat "$tmp/extra.log")" = "extra $end" ] || fail "resume --hook: $(cat "$tmp/extra.log" 2>&1)"
# A second resume of the ended run has nothing to do and delivers nothing.
"$TLM_BIN" resume -q "$run" >"$tmp/out" 2>"$tmp/err" </dev/null || true
[ "$(wc -l <"$tmp/fast1.log")" = 3 ] || fail "after the end: $(cat "$tmp/fast1.log")"

# --- teardown: it delivers the journaled event and the run's own end -----------
start 2
run 0 teardown -q "$run"
[ "$(count "$tmp/fast2.log" "$first")" = 1 ] || fail "teardown: fast hook got $first again"
[ "$(count "$tmp/stuck2.log" "$first $first")" = 1 ] || fail "teardown, stuck hook: $(cat "$tmp/stuck2.log")"
[ "$(count "$tmp/fast2.log" "$run:run_cancelled:cancelled")" = 1 ] ||
	fail "teardown: no run_cancelled: $(cat "$tmp/fast2.log")"
# A second teardown finds every event delivered.
run 0 teardown -q "$run"
[ "$(wc -l <"$tmp/fast2.log")" = 2 ] || fail "second teardown: $(cat "$tmp/fast2.log")"
[ "$(wc -l <"$tmp/stuck2.log")" = 2 ] || fail "second teardown, stuck: $(cat "$tmp/stuck2.log")"

# --- a worker that takes the dead owner's run over delivers the same way ------
start 3
touch "$tmp/go.3"
run 0 worker --once -q
[ "$(count "$tmp/fast3.log" "$first")" = 1 ] || fail "worker: fast hook got $first again"
[ "$(count "$tmp/stuck3.log" "$first $first")" = 1 ] || fail "worker, stuck hook: $(cat "$tmp/stuck3.log")"
[ "$(count "$tmp/fast3.log" "$run:run_completed:completed")" = 1 ] ||
	fail "worker: no run_completed: $(cat "$tmp/fast3.log")"
if [ "${TLM_TEST_JOURNAL:-}" = postgres ]; then
	[ -s "$tmp/fast3.log.env" ] || fail "the fast hook recorded no environment"
	n=$("$TLM_BIN" list -q | wc -l)
	[ "$n" = 3 ] || fail "the PostgreSQL journal lists $n runs, want 3"
	[ "$(env -u TELEMACHY_JOURNAL "$TLM_BIN" list -q 2>/dev/null | wc -l)" = 0 ] ||
		fail "the runs are in the local journal"
fi
journal_check_clean
echo ok
