#!/usr/bin/env bash
# submit and worker on the default SQLite journal (docs/distributed.md):
# one host, no PostgreSQL.  A run cancelled while queued never runs.  Three
# submitted runs of hello-world are driven
# by one worker on the in-process control plane; SIGTERM then stops it
# (exit 0); an invalid file is refused and writes nothing; `submit --wait`
# follows a run to its end (with a worker running) and exits 0.
set -euo pipefail

. "$(dirname "$0")/lib/common.bash"

unset AGAMEMNON_URL NATS_URL AGAMEMNON_API_KEY AGAMEMNON_API_KEY_FILE TELEMACHY_JOURNAL
export TELEMACHY_STATE_DIR="$tmp/state"
ex="$TLM_SOURCE_DIR/examples"

for i in 1 2 3; do
	run 0 submit -q "$ex/hello-world.yaml"
done
# A fourth, cancelled while queued: it never reaches a worker.
run 0 submit -q "$ex/hello-world.yaml"
gone=$(cat "$tmp/out")
run 0 cancel "$gone"
has "$tmp/out" "run $gone: cancelled before it started (it was queued)"
run 0 list --state cancelled -q
[ "$(cat "$tmp/out")" = "$gone" ] || fail "the dequeued run is not cancelled"
run 0 list --state queued -q
[ "$(wc -l <"$tmp/out")" -eq 3 ] || fail "want 3 queued runs"

printf 'apiVersion: telemachy/v1\nmetadata: [\n' >"$tmp/bad.yaml"
run 2 submit "$tmp/bad.yaml"
has "$tmp/err" "bad.yaml:"
run 0 list -q
[ "$(wc -l <"$tmp/out")" -eq 4 ] || fail "an invalid submit wrote a run"

"$TLM_BIN" worker --max-runs 2 --poll 1 >"$tmp/w.out" 2>"$tmp/w.err" &
w=$!
trap 'kill $w 2>/dev/null || true; rm -rf "$tmp"' EXIT
for _ in $(seq 100); do
	run 0 list --state completed -q
	[ "$(wc -l <"$tmp/out")" -eq 3 ] && break
	sleep 0.2
done
[ "$(wc -l <"$tmp/out")" -eq 3 ] || { cat "$tmp/w.err" >&2; fail "the worker did not complete 3 runs"; }

# --wait, while the worker is there to drive it.
run 0 submit --wait "$ex/hello-world.yaml"
has "$tmp/out" "completed"

kill -TERM $w
rc=0
wait $w || rc=$?
[ "$rc" -eq 0 ] || { cat "$tmp/w.err" >&2; fail "worker exited $rc after SIGTERM"; }
has "$tmp/w.err" "claimed run"
has "$tmp/w.err" "worker stopped"
echo "ok"
