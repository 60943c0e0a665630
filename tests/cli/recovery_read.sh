#!/usr/bin/env bash
# The read-only recovery commands and abandon, on a real journal: `list` and
# `status` (text and JSON) on an empty, a missing and a populated state
# directory, unknown runs (exit 2), an owner that is alive (this shell) or
# dead, leftovers and their hints, and `abandon` with its audit entry and its
# refusals (already deleted, unknown, owner alive).
set -euo pipefail

. "$(dirname "$0")/lib/common.bash"

unset AGAMEMNON_URL NATS_URL AGAMEMNON_API_KEY AGAMEMNON_API_KEY_FILE REQUIRE_TLS
export TELEMACHY_STATE_DIR="$tmp/default-state"
sd="$tmp/state"
ex="$TLM_SOURCE_DIR/examples"

# sql STATEMENT...: changes the journal behind telemachy's back, as a crash would.
sql() {
	"$PY" - "$sd/journal.db" "$@" <<'PYEOF'
import sqlite3, sys
c = sqlite3.connect(sys.argv[1])
for s in sys.argv[2:]:
    c.execute(s)
c.commit()
PYEOF
}

# json EXPR: evaluates a Python expression over $tmp/out parsed as `d`.
json() {
	"$PY" -c 'import json, sys; d = json.load(open(sys.argv[1])); print(eval(sys.argv[2]))' \
		"$tmp/out" "$1"
}

# Nothing there yet: list says so, status is "no runs", and neither creates
# the directory (a typo must not leave an empty journal behind).
run 0 list --state-dir "$sd"
has "$tmp/out" "no runs"
run 0 list --state-dir "$sd" --output json
[ "$(json 'len(d["runs"])')" = 0 ] || fail "runs in an empty journal"
run 2 status --state-dir "$sd"
has "$tmp/err" "no runs yet"
run 2 status --state-dir "$sd" abcd1234
has "$tmp/err" "no run abcd1234"
[ ! -e "$sd" ] || fail "status created the state directory"
run 0 list   # the default directory, from TELEMACHY_STATE_DIR
has "$tmp/out" "no runs"
run 2 list --bogus
has "$tmp/err" "unknown option"
run 2 list extra
run 2 status a b
run 0 status --help
has "$tmp/out" "Exit codes"

# Two real runs on the in-process control plane.
run 0 run -q --state-dir "$sd" "$ex/hello-world.yaml"
run 0 run -q --state-dir "$sd" "$ex/hello-world.yaml"
run 0 list --state-dir "$sd" -q
[ "$(wc -l <"$tmp/out")" = 2 ] || fail "want 2 runs"
old=$(sed -n 2p "$tmp/out")
new=$(sed -n 1p "$tmp/out")
# Make the order independent of the clock's resolution.
sql "UPDATE runs SET created_at = '2000-01-01T00:00:00.000Z' WHERE id = '$old'"
run 0 list --state-dir "$sd"
has "$tmp/out" "RUN"
has "$tmp/out" "LIVE"
[ "$(sed -n 2p "$tmp/out" | cut -d' ' -f1)" = "$new" ] || fail "newest run not first"
has "$tmp/out" "completed"
run 0 list --state-dir "$sd" --output json
[ "$(json 'd["runs"][0]["id"]')" = "$new" ] || fail "json: newest first"
[ "$(json 'd["runs"][1]["id"]')" = "$old" ] || fail "json: oldest last"
[ "$(json 'd["runs"][0]["owner"]["state"]')" = "-" ] || fail "json: a completed run has no owner"
[ "$(json 'd["runs"][0]["live_resources"]')" = 0 ] || fail "json: live resources"
[ "$(json 'd["runs"][0]["control_plane"]')" = builtin ] || fail "json: control plane"
run 0 list --state-dir "$sd" --state failed
has "$tmp/out" "no runs"
run 0 list --state-dir "$sd" --workflow hello-world -q
[ "$(wc -l <"$tmp/out")" = 2 ] || fail "--workflow filter"

# status: the newest by default, any by id; text and JSON.
run 0 status --state-dir "$sd"
has "$tmp/out" "run            $new"
has "$tmp/out" "KIND"
has "$tmp/out" "tlm-$new-a-greeter"
has "$tmp/out" "TEAM/SUBJECT"
has "$tmp/out" "leftovers: 0"
hasnt "$tmp/out" "hint"
run 0 status --state-dir "$sd" "$old" --output json
[ "$(json 'd["run"]["id"]')" = "$old" ] || fail "json: run id"
[ "$(json 'd["run"]["state"]')" = completed ] || fail "json: state"
[ "$(json 'd["leftovers"]')" = 0 ] || fail "json: leftovers"
[ "$(json 'sorted(r["state"] for r in d["resources"])')" = "['deleted', 'deleted']" ] ||
	fail "json: resources"
[ "$(json 'd["tasks"][0]["attempt"]')" = 1 ] || fail "json: task attempt"
[ "$(json 'd["audit"]')" = "[]" ] || fail "json: audit"
run 2 status --state-dir "$sd" zzzz9999
has "$tmp/err" "no run zzzz9999"
run 2 status --state-dir "$sd" NOT-AN-ID
has "$tmp/err" "no run NOT-AN-ID"

# abandon refuses what needs no abandoning, and unknown runs and resources.
run 2 abandon --state-dir "$sd" "$old" agent/greeter
has "$tmp/err" "already deleted"
run 2 abandon --state-dir "$sd" "$old" agent/nobody
has "$tmp/err" "no resource agent/nobody"
run 2 abandon --state-dir "$sd" zzzz9999 agent/greeter
has "$tmp/err" "no run zzzz9999"
run 2 abandon --state-dir "$sd" "$old"
has "$tmp/err" "missing the RESOURCE"

# A crashed run: resources left created, the run still "running", its owner
# gone (a pid that no longer exists on this host, heartbeat fresh).
sh -c 'exit 0' &
gone=$!
wait "$gone"
sql "UPDATE resources SET state = 'created' WHERE run_id = '$old'" \
	"UPDATE runs SET state = 'running', owner_pid = $gone,
	 heartbeat_at = strftime('%Y-%m-%dT%H:%M:%fZ', 'now') WHERE id = '$old'"
run 0 status --state-dir "$sd" "$old"
has "$tmp/out" "(dead, epoch 1)"
has "$tmp/out" "leftovers: 2"
has "$tmp/out" "its owner died: \`telemachy resume $old\` or \`telemachy teardown $old\`"
run 0 list --state-dir "$sd" --state running
has "$tmp/out" "dead"
[ "$(awk 'NR == 2 {print $NF}' "$tmp/out")" = 2 ] || fail "text: LIVE is not 2: $(cat "$tmp/out")"
run 0 list --state-dir "$sd" --output json --state running
[ "$(json 'd["runs"][0]["live_resources"]')" = 2 ] || fail "json: 2 live resources"
[ "$(json 'd["runs"][0]["owner"]["state"]')" = dead ] || fail "json: owner dead"

# The owner alive (this shell: its pid and its start time, field 22 of its
# stat line): status says so, abandon refuses.
start=$(sed 's/.*) //' /proc/$$/stat | cut -d' ' -f20)
sql "UPDATE runs SET owner_pid = $$, owner_start = $start WHERE id = '$old'"
run 0 status --state-dir "$sd" "$old"
has "$tmp/out" "pid $$@"
has "$tmp/out" "(alive, epoch 1)"
hasnt "$tmp/out" "its owner died"
run 2 abandon --state-dir "$sd" "$old" agent/greeter
has "$tmp/err" "run $old is owned by pid $$ on "
has "$tmp/err" "cancel it first, or --force"

# The run ends failed with leftovers: the teardown hint; abandon one by spec
# name, the other by full name, each audited.
sql "UPDATE runs SET state = 'failed' WHERE id = '$old'"
run 0 status --state-dir "$sd" "$old"
has "$tmp/out" "delete them with \`telemachy teardown $old\`"
run 0 abandon --state-dir "$sd" "$old" agent/greeter --reason "control plane decommissioned"
has "$tmp/out" "abandoned agent tlm-$old-a-greeter"
run 0 abandon -q --state-dir "$sd" "$old" "tlm-$old-t-hello"
[ ! -s "$tmp/out" ] || fail "abandon -q printed"
run 2 abandon --state-dir "$sd" "$old" team/hello
has "$tmp/err" "already abandoned"
run 0 status --state-dir "$sd" "$old" --output json
[ "$(json 'd["leftovers"]')" = 0 ] || fail "json: leftovers after abandon"
[ "$(json 'len(d["audit"])')" = 2 ] || fail "json: two audit entries"
[ "$(json 'd["audit"][0]["action"]')" = abandon ] || fail "json: audit action"
json 'd["audit"][0]["detail"]' >"$tmp/detail"
has "$tmp/detail" "agent tlm-$old-a-greeter (id "
has "$tmp/detail" "control plane decommissioned"
[ "$(json '[r["last_error"] for r in d["resources"] if r["kind"] == "agent"][0]')" = \
	"control plane decommissioned" ] || fail "json: last_error is the reason"
[ "$(json 'd["audit"][0]["pid"] > 0 and bool(d["audit"][0]["user"])')" = True ] ||
	fail "json: audit who"
run 0 status --state-dir "$sd" "$old"
has "$tmp/out" "leftovers: 0"
has "$tmp/out" "abandon by "
hasnt "$tmp/out" "hint"
echo "ok"
