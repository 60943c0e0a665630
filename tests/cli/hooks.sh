#!/usr/bin/env bash
# Hooks (docs/hooks.md) with real processes on the in-process control plane
# (and `telemachy serve` for a teardown that fails): a command hook for each
# of the 7 events, checked for its payload, its environment and its event id;
# hooks that hang, fail or print garbage; --hook; webhooks to a receiver that
# checks the signature, one that answers 500 then 200, and one that is down.
# None of them may change the run's result or delay it past the hook's
# timeout.  Every wait is bounded.  As cli.hooks-pg, the journal is
# PostgreSQL (journal_from_env), and its password must reach no hook.
set -euo pipefail

. "$(dirname "$0")/lib/common.bash"

unset AGAMEMNON_URL NATS_URL AGAMEMNON_API_KEY AGAMEMNON_API_KEY_FILE REQUIRE_TLS
export TELEMACHY_STATE_DIR="$tmp/state"
pids=()
cleanup() {
	local p
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
	journal_stop
	rm -rf "$tmp"
}
trap cleanup EXIT
journal_from_env

# rec.sh FILE: one line per call: the payload, then the TLM_* variables and
# three others (two secrets a hook must not get, one it must), tab-separated.
cat >"$tmp/rec.sh" <<'SH'
#!/bin/sh
payload=$(cat)
printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$payload" "$TLM_RUN" "$TLM_EVENT" "$TLM_EVENT_ID" \
	"$TLM_TEAM" "$TLM_TASK" "$TLM_STATUS" \
	"${MY_SERVICE_TOKEN-unset}|${PGPASSWORD-unset}|${NORMAL_VAR-unset}" >>"$1"
SH
chmod +x "$tmp/rec.sh"
rec="$tmp/rec.sh"

# check FILE EVENT [KEY=VALUE...]: FILE has exactly one line for EVENT whose
# payload and environment agree, with the given payload fields.
check() {
	"$PY" - "$@" <<'PY' || fail "check $*"
import json, re, sys
path, event, want = sys.argv[1], sys.argv[2], sys.argv[3:]
lines = [l.rstrip("\n").split("\t") for l in open(path) if l.strip()]
hits = [l for l in lines if json.loads(l[0])["event"] == event]
if len(hits) != 1:
    sys.exit("want one %s, got %d in %r" % (event, len(hits), lines))
payload, run, ev, eid, team, task, status, others = hits[0]
p = json.loads(payload)
assert set(p) >= {"id", "event", "run", "workflow", "team", "task", "attempt", "status",
                  "message", "at"}, p
assert ev == event and eid == p["id"] and run == p["run"], (ev, eid, p)
assert team == (p["team"] or "") and task == (p["task"] or "") and status == p["status"], p
assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$", p["at"]), p["at"]
if p["task"] is not None:
    assert p["id"] == "%s:%s:%s/%s:%d" % (p["run"], event, p["team"], p["task"], p["attempt"]), p
elif event.startswith("run_"):
    assert p["id"] == "%s:%s:%s" % (p["run"], event, p["status"]), p
else:
    assert p["id"] == "%s:%s" % (p["run"], event), p
assert others == "unset|unset|visible", "environment: " + others
for kv in want:
    k, v = kv.split("=", 1)
    got = p[k]
    if v == "null":
        assert got is None, (k, got)
    elif v.startswith("~"):
        assert got is not None and v[1:] in str(got), (k, got)
    else:
        assert str(got) == v, (k, got, v)
PY
}

export MY_SERVICE_TOKEN=s3cret-token NORMAL_VAR=visible
# On PostgreSQL the real password is set already (journal_from_env).
[ "${TLM_TEST_JOURNAL:-}" = postgres ] || export PGPASSWORD=s3cret-pg

# --- usage --------------------------------------------------------------------
run 2 run --hook 'task_done=true' "$TLM_SOURCE_DIR/examples/hello-world.yaml"
has "$tmp/err" 'unknown event "task_done"'
run 2 run --hook 'run_completed' "$TLM_SOURCE_DIR/examples/hello-world.yaml"
has "$tmp/err" "--hook must be EVENT=COMMAND"
run 2 run --hook '=x' "$TLM_SOURCE_DIR/examples/hello-world.yaml"
run 0 run --help
has "$tmp/out" "--hook EVENT=COMMAND"
run 0 resume --help
has "$tmp/out" "--hook EVENT=COMMAND"
run 0 worker --help
has "$tmp/out" "--hook EVENT=COMMAND"

# --- a failed run: task_completed, task_failed, task_skipped, run_failed ------
cat >"$tmp/failing.yaml" <<YAML
apiVersion: telemachy/v1
metadata: {name: hooked}
agents:
  - {name: ok, program: none}
  - {name: bad, program: /bin/sh, args: ["-c", "cat >/dev/null; echo oops >&2; exit 3"]}
teams:
  - name: t
    agents: [ok, bad]
    tasks:
      - {subject: good, description: d, assign_to: ok}
      - {subject: broken, description: d, assign_to: bad}
      - {subject: after, description: d, assign_to: ok, blocked_by: [broken]}
hooks:
  - {event: task_completed, command: [$rec, $tmp/a.log]}
  - {event: task_failed, command: [$rec, $tmp/a.log]}
  - {event: task_skipped, command: [$rec, $tmp/a.log]}
  - {event: run_failed, command: [$rec, $tmp/a.log]}
  - {event: run_completed, command: [$rec, $tmp/a.log]}
YAML
run 1 run -q "$tmp/failing.yaml"
check "$tmp/a.log" task_completed team=t task=good attempt=1 status=completed workflow=hooked
check "$tmp/a.log" task_failed team=t task=broken attempt=1 status=failed "message=~status 3"
check "$tmp/a.log" task_skipped team=t task=after status=skipped "message=~did not complete"
check "$tmp/a.log" run_failed team=null task=null attempt=null status=failed "message=~t/broken"
[ "$(wc -l <"$tmp/a.log")" -eq 4 ] || fail "a.log: want 4 events, got $(cat "$tmp/a.log")"

# --- a completed run, with hooks that fail, hang and print garbage ------------
cat >"$tmp/garbage.sh" <<'SH'
#!/bin/sh
cat >/dev/null
printf 'line one\n\033]0;owned\007\033[31mred\r\n\x01'
exit 1
SH
chmod +x "$tmp/garbage.sh"
cat >"$tmp/ok.yaml" <<YAML
apiVersion: telemachy/v1
metadata: {name: hooked-ok}
agents: [{name: ok, program: none}]
teams:
  - name: t
    agents: [ok]
    tasks: [{subject: only, description: d}]
hooks:
  - {event: run_completed, command: [$rec, $tmp/b.log]}
  - {event: run_completed, command: [$tmp/garbage.sh]}
  - {event: run_completed, command: [/nonexistent/hook]}
  - {event: run_completed, command: [/bin/sh, -c, "sleep 617 & sleep 617"], timeout_seconds: 1}
YAML
start=$(date +%s)
run 0 run -q --metrics-textfile "$tmp/metrics.prom" "$tmp/ok.yaml"
elapsed=$(($(date +%s) - start))
# The hanging hook is killed at 1 s (+2 s grace at most): the process exits
# well within the drain's bound.
[ "$elapsed" -le 8 ] || fail "run with a hanging hook took ${elapsed}s"
check "$tmp/b.log" run_completed status=completed workflow=hooked-ok message=null
has "$tmp/err" "failed for event"
has "$tmp/err" "exited with status 1"
has "$tmp/err" "could not run /nonexistent/hook: No such file or directory"
has "$tmp/err" "timed out; its process group was killed after 1 s"
# Garbage is logged escaped: no escape character, no carriage return.
has "$tmp/err" 'line one\n\x1b]0;owned\x07\x1b[31mred\x0d\n\x01'
if grep -q $'\033' "$tmp/err" || grep -q $'\r' "$tmp/err"; then fail "raw control characters logged"; fi
has "$tmp/metrics.prom" 'telemachy_hook_failures_total{event="run_completed",kind="command"} 3'
has "$tmp/metrics.prom" 'telemachy_hook_deliveries_total{event="run_completed",kind="command"} 1'
# Nothing the hanging hook started is left: its process group was killed.
for _ in $(seq 20); do pgrep -u "$(id -u)" -f "sleep 6[1]7" >/dev/null || break; sleep 0.1; done
if pgrep -u "$(id -u)" -f "sleep 6[1]7" >/dev/null; then fail "the hanging hook's children live on"; fi

# --- --hook adds to the spec's hooks, run by /bin/sh -c -----------------------
run 0 run -v --hook "run_completed=echo \"flag \$TLM_EVENT \$TLM_EVENT_ID\" >>$tmp/c.log" \
	--hook "task_completed=cat >>$tmp/c.json; echo >>$tmp/c.json" \
	"$TLM_SOURCE_DIR/examples/hello-world.yaml"
grep -qE '^flag run_completed [a-z0-9]+:run_completed:completed$' "$tmp/c.log" || fail "--hook: $(cat "$tmp/c.log")"
grep -q '"event":"task_completed"' "$tmp/c.json" || fail "--hook task_completed"

# A dry run runs no hook.
run 0 run -q --dry-run --hook "run_completed=touch $tmp/dry" "$TLM_SOURCE_DIR/examples/hello-world.yaml"
[ ! -e "$tmp/dry" ] || fail "a dry run ran a hook"

# worker --once takes --hook too (each run it drives gets it).
run 0 submit -q "$TLM_SOURCE_DIR/examples/hello-world.yaml"
run 0 worker --once -q --hook "run_completed=cat >>$tmp/w.json; echo >>$tmp/w.json"
grep -q '"event":"run_completed"' "$tmp/w.json" || fail "worker --hook: $(cat "$tmp/w.json" 2>&1)"

# --- run_cancelled: a first SIGINT cancels the run ----------------------------
cat >"$tmp/slow.yaml" <<YAML
apiVersion: telemachy/v1
metadata: {name: hooked-slow}
agents: [{name: s, program: /bin/sh, args: ["-c", "cat >/dev/null; sleep 30"]}]
teams:
  - name: t
    agents: [s]
    tasks: [{subject: slow, description: d}]
hooks:
  - {event: run_cancelled, command: [$rec, $tmp/d.log]}
  - {event: run_failed, command: [$rec, $tmp/d.log]}
YAML
"$TLM_BIN" run -q "$tmp/slow.yaml" >"$tmp/out" 2>"$tmp/err" </dev/null &
runpid=$!
pids+=("$runpid")
for _ in $(seq 100); do
	"$TLM_BIN" list 2>/dev/null | grep -q running && break
	sleep 0.1
done
"$TLM_BIN" list 2>/dev/null | grep -q running || fail "the slow run never showed as running"
kill -INT "$runpid"
rc=0
timeout 20 tail --pid="$runpid" -f /dev/null || fail "cancelled run did not exit"
wait "$runpid" || rc=$?
[ "$rc" -eq 130 ] || { cat "$tmp/err" >&2; fail "cancelled run exited $rc, want 130"; }
check "$tmp/d.log" run_cancelled status=cancelled

# --- teardown_failed: serve refuses every agent delete ------------------------
"$TLM_BIN" serve --listen 127.0.0.1:0 \
	--fault "fail:route=DELETE /v1/agents/*,status=400,count=0" \
	>"$tmp/serve.out" 2>"$tmp/serve.err" </dev/null &
pids+=("$!")
for _ in $(seq 100); do [ -s "$tmp/serve.out" ] && break; sleep 0.1; done
url=$(head -1 "$tmp/serve.out")
[ -n "$url" ] || fail "serve printed no URL: $(cat "$tmp/serve.err")"
cat >"$tmp/td.yaml" <<YAML
apiVersion: telemachy/v1
metadata: {name: hooked-td}
teardown: always
agents: [{name: ok, program: none}]
teams:
  - name: t
    agents: [ok]
    tasks: [{subject: only, description: d}]
hooks:
  - {event: teardown_failed, command: [$rec, $tmp/e.log]}
  - {event: run_failed, command: [$rec, $tmp/e.log]}
  - {event: run_completed, command: [$rec, $tmp/e.log]}
YAML
AGAMEMNON_URL="$url" run 4 run -q "$tmp/td.yaml"
check "$tmp/e.log" teardown_failed status=teardown_failed leftovers=1 team=null
check "$tmp/e.log" run_failed status=teardown_failed
[ "$(wc -l <"$tmp/e.log")" -eq 2 ] || fail "e.log: $(cat "$tmp/e.log")"

# --- webhooks -----------------------------------------------------------------
# receiver NAME STATUS...: starts one; its port in $tmp/NAME.port.
receiver() {
	local name=$1
	shift
	"$PY" "$(dirname "$0")/lib/hook_receiver.py" "$tmp/$name.port" "$tmp/$name.log" "$@" \
		</dev/null >/dev/null 2>&1 &
	pids+=("$!")
	for _ in $(seq 100); do [ -s "$tmp/$name.port" ] && return 0; sleep 0.1; done
	fail "receiver $name did not start"
}
receiver good 200
receiver flaky 500 200
printf 'hook-key-123\n' >"$tmp/hook.key"
# A port nobody listens on: bound, then closed.
down=$("$PY" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
cat >"$tmp/wh.yaml" <<YAML
apiVersion: telemachy/v1
metadata: {name: hooked-web}
agents:
  - {name: ok, program: none}
  - {name: bad, program: /bin/sh, args: ["-c", "cat >/dev/null; exit 3"]}
teams:
  - name: t
    agents: [ok, bad]
    tasks:
      - {subject: good, description: d, assign_to: ok}
      - {subject: broken, description: d, assign_to: bad}
      - {subject: after, description: d, assign_to: ok, blocked_by: [broken]}
hooks:
  - {event: task_completed, url: "http://127.0.0.1:$(cat "$tmp/good.port")/tc", secret_file: $tmp/hook.key}
  - {event: task_failed, url: "http://127.0.0.1:$(cat "$tmp/good.port")/tf", secret_file: $tmp/hook.key}
  - {event: task_skipped, url: "http://localhost:$(cat "$tmp/good.port")/ts"}
  - {event: run_failed, url: "http://127.0.0.1:$(cat "$tmp/flaky.port")/rf"}
  - {event: run_failed, url: "http://127.0.0.1:$down/down", timeout_seconds: 3}
YAML
start=$(date +%s)
run 1 run -q "$tmp/wh.yaml"
elapsed=$(($(date +%s) - start))
[ "$elapsed" -le 10 ] || fail "run with a receiver down took ${elapsed}s"
has "$tmp/err" "hook run_failed http://127.0.0.1:$down/down failed"
has "$tmp/err" "attempts)"
"$PY" - "$tmp/good.log" "$tmp/flaky.log" "$tmp/hook.key" <<'PY' || fail "webhook checks"
import hashlib, hmac, json, sys
good = [json.loads(l) for l in open(sys.argv[1])]
flaky = [json.loads(l) for l in open(sys.argv[2])]
key = open(sys.argv[3]).read().strip().encode()
by_path = {r["path"]: r for r in good}
assert set(by_path) == {"/tc", "/tf", "/ts"}, by_path.keys()
for path, event in (("/tc", "task_completed"), ("/tf", "task_failed"), ("/ts", "task_skipped")):
    r = by_path[path]
    h, body = r["headers"], json.loads(r["body"])
    assert h["content-type"] == "application/json", h
    assert h["x-telemachy-event"] == event and body["event"] == event, (h, body)
    assert h["x-telemachy-event-id"] == body["id"], (h, body)
    if path == "/ts":
        assert "x-telemachy-signature" not in h, h
    else:
        want = "sha256=" + hmac.new(key, r["body"].encode(), hashlib.sha256).hexdigest()
        assert hmac.compare_digest(h["x-telemachy-signature"], want), (h, want)
# 500 then 200: retried, delivered once, with the same id.
assert [r["status"] for r in flaky] == [500, 200], flaky
ids = {json.loads(r["body"])["id"] for r in flaky}
assert len(ids) == 1 and ids.pop().endswith(":run_failed:failed"), flaky
PY
journal_check_clean
echo ok
