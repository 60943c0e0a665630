#!/usr/bin/env bash
# The audit log (docs/audit.md) from the command line: `telemachy run` with
# AUDIT_LOG_PATH records the run's state changes (run states, agent
# created/started/deleted, task attempt statuses), each with the run id and
# the workflow; the hashes are recomputable by another tool from the
# documented canonical form; a second run continues the chain; a bad
# AUDIT_LOG_PATH stops the run (exit 2) naming the file; `audit verify`
# reports intact (0), tampering at the right line (1), usage errors (2).
set -euo pipefail

. "$(dirname "$0")/lib/common.bash"

unset AGAMEMNON_URL NATS_URL AGAMEMNON_API_KEY AGAMEMNON_API_KEY_FILE REQUIRE_TLS AUDIT_LOG_PATH
export TELEMACHY_STATE_DIR="$tmp/state"
ex="$TLM_SOURCE_DIR/examples"
log="$tmp/audit.jsonl"

# Usage errors of audit verify: exit 2.
run 2 audit
run 2 audit verify
has "$tmp/err" "verify needs a FILE"
run 2 audit check "$log"
run 2 audit verify "$tmp/missing.jsonl"
has "$tmp/err" "missing.jsonl"
run 0 audit --help
has "$tmp/out" "Exit codes"

# A run records its state changes.
AUDIT_LOG_PATH="$log" run 0 run -q --output json "$ex/hello-world.yaml"
id=$($PY -c 'import json,sys; print(json.load(open(sys.argv[1]))["run_id"])' "$tmp/out")
[ "$(stat -c %a "$log")" = 600 ] || fail "audit log mode $(stat -c %a "$log"), want 600"
$PY - "$log" "$id" <<'PY'
import json, sys
recs = [json.loads(l) for l in open(sys.argv[1])]
rid = sys.argv[2]
assert all(r["run"] == rid and r["workflow"] == "hello-world" for r in recs), recs
assert all(set(r["actor"]) == {"user", "host", "pid"} for r in recs)
def changes(kind):
    return [(r["from"], r["to"]) for r in recs if r["kind"] == kind]
run = changes("run")
assert run[0] == (None, "pending") and run[-1] == ("tearing_down", "completed"), run
assert ("provisioning", "running") in run, run
agent = [t for f, t in changes("agent")]
assert agent == ["intent", "created", "started", "deleting", "deleted"], agent
task = [t for f, t in changes("task")]
assert task[0] == "pending" and task[-1] == "completed", task
PY
run 0 audit verify "$log"
has "$tmp/out" "audit.jsonl: 17 records, chain intact"

# The documented canonical form, recomputed by another implementation.
check_chain() {
	$PY - "$1" <<'PY'
import hashlib, json, sys
prev = "0" * 64
for n, line in enumerate(open(sys.argv[1], encoding="utf-8"), 1):
    rec = json.loads(line)
    h = rec.pop("hash")
    assert rec["prev"] == prev, n
    canon = json.dumps(rec, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert hashlib.sha256(canon.encode("utf-8")).hexdigest() == h, n
    prev = h
PY
}
check_chain "$log"

# A second run (another process) continues the chain.
AUDIT_LOG_PATH="$log" run 0 run -q "$ex/hello-world.yaml"
run 0 audit verify --output json "$log"
$PY -c 'import json,sys; d=json.load(open(sys.argv[1])); assert d["intact"] and d["records"] == 34, d' "$tmp/out"
check_chain "$log"
# Commands that only read the journal accept it too.
AUDIT_LOG_PATH="$log" run 0 status "$id"
# A teardown of the (ended) run claims it: a takeover and its audit action.
AUDIT_LOG_PATH="$log" run 0 teardown "$id"
tail -n 2 "$log" >"$tmp/last2"
has "$tmp/last2" '"action":"takeover"'
has "$tmp/last2" "previous owner pid"
has "$tmp/last2" '"action":"teardown"'
run 0 audit verify "$log"
has "$tmp/out" "36 records, chain intact"
check_chain "$log"

# Tampering: the first broken line, exit 1.
cp "$log" "$tmp/edited.jsonl"
sed -i '5s/"to":"started"/"to":"deleted"/' "$tmp/edited.jsonl"
run 1 audit verify "$tmp/edited.jsonl"
has "$tmp/out" "edited.jsonl:5: hash does not match its record (edited?)"
sed '3d' "$log" >"$tmp/deleted.jsonl"
run 1 audit verify "$tmp/deleted.jsonl"
has "$tmp/out" "deleted.jsonl:3: prev does not match line 2's hash (a line deleted or reordered?)"
run 1 audit verify --output json "$tmp/deleted.jsonl"
$PY -c 'import json,sys; d=json.load(open(sys.argv[1])); assert not d["intact"] and d["line"] == 3 and d["records"] == 2 and d["flaw"] == "prev_mismatch", d' "$tmp/out"
{ head -n 2 "$log"; echo 'not json'; } >"$tmp/junk.jsonl"
run 1 audit verify "$tmp/junk.jsonl"
has "$tmp/out" "junk.jsonl:3: not a JSON record"

# A damaged end stops the next run before it journals anything (exit 2).
cp "$tmp/junk.jsonl" "$tmp/damaged.jsonl"
runs() { $PY -c 'import json,sys; print(len(json.load(open(sys.argv[1]))["runs"]))' "$tmp/out"; }
run 0 list --output json
before=$(runs)
AUDIT_LOG_PATH="$tmp/damaged.jsonl" run 2 run -q "$ex/hello-world.yaml"
has "$tmp/err" "damaged.jsonl"
has "$tmp/err" "last line is not a record"
run 0 list --output json
[ "$(runs)" = "$before" ] || fail "a refused run was journaled"

# A bad AUDIT_LOG_PATH: the run stops (exit 2), naming the file.
AUDIT_LOG_PATH= run 2 run -q "$ex/hello-world.yaml"
has "$tmp/err" "AUDIT_LOG_PATH is set but empty"
AUDIT_LOG_PATH="$tmp" run 2 run -q "$ex/hello-world.yaml"
has "$tmp/err" "audit log $tmp: cannot open for appending"
ln -s "$log" "$tmp/link.jsonl"
AUDIT_LOG_PATH="$tmp/link.jsonl" run 2 run -q "$ex/hello-world.yaml"
has "$tmp/err" "link.jsonl"
has "$tmp/err" "symlink"
# Nothing of those runs reached the log.
run 0 audit verify "$log"
has "$tmp/out" "36 records, chain intact"
# A dry run records nothing.
AUDIT_LOG_PATH="$log" run 0 run -q --dry-run "$ex/hello-world.yaml"
run 0 audit verify "$log"
has "$tmp/out" "36 records, chain intact"
echo ok
