#!/usr/bin/env bash
# telemachy doctor (docs/doctor.md): a healthy setup (serve with a key, the
# matching AGAMEMNON_API_KEY, a fresh state directory, a nats-server) is all
# ok and exit 0; each broken piece is reported with its status, hint and exit
# code: a wrong key, an unreachable URL, a bad LOG_LEVEL, a 0755 state
# directory, a journal that is not SQLite, a stranded run, NATS_URL to a
# closed port.  JSON parses, and the key never appears in any output.
set -euo pipefail

. "$(dirname "$0")/lib/common.bash"

unset AGAMEMNON_URL NATS_URL AGAMEMNON_API_KEY AGAMEMNON_API_KEY_FILE REQUIRE_TLS \
	AUDIT_LOG_PATH LOG_LEVEL LOG_FORMAT NATS_TOKEN_FILE NATS_CREDS
export TELEMACHY_STATE_DIR="$tmp/state"
key=doctor-sekrit-key-4711
ex="$TLM_SOURCE_DIR/examples"
pids=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	rm -rf "$tmp"
}
trap cleanup EXIT

free_port() {
	"$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# line STATUS NAME: $tmp/out has the check NAME with STATUS.
line() {
	grep -qE "^$1 +$2 " "$tmp/out" || { cat "$tmp/out" >&2; fail "no \"$1 $2\" line"; }
}

# secret_free: the key is in neither output.
secret_free() {
	hasnt "$tmp/out" "$key"
	hasnt "$tmp/err" "$key"
}

# --- a healthy setup ------------------------------------------------------------
printf '%s\n' "$key" >"$tmp/key"
chmod 600 "$tmp/key"
"$TLM_BIN" serve --listen 127.0.0.1:0 --api-key-file "$tmp/key" --state-dir "$tmp/srv" \
	>"$tmp/url" 2>"$tmp/serve.err" &
pids+=($!)
for _ in $(seq 50); do [ -s "$tmp/url" ] && break; sleep 0.1; done
url=$(head -1 "$tmp/url")
[ -n "$url" ] || fail "serve printed no URL"
nport=$(free_port)
nats-server -a 127.0.0.1 -p "$nport" >"$tmp/nats.log" 2>&1 &
pids+=($!)
for _ in $(seq 50); do
	(exec 3<>"/dev/tcp/127.0.0.1/$nport") 2>/dev/null && break
	sleep 0.1
done

export AGAMEMNON_URL="$url" AGAMEMNON_API_KEY="$key" NATS_URL="nats://127.0.0.1:$nport"
run 0 doctor
for c in config logging api-key audit-log state-dir control-plane nats clock; do line ok "$c"; done
hasnt "$tmp/out" "fail"
hasnt "$tmp/out" "warn"
has "$tmp/out" "answered (HTTP 200)"
has "$tmp/out" "connected"
secret_free
run 0 doctor --output json --strict
"$PY" -c 'import json, sys; d = json.load(open(sys.argv[1]))
assert d["ok"] is True, d
assert all(c["status"] == "ok" and c["fix"] is None for c in d["checks"]), d
assert {"config", "state-dir", "control-plane", "nats", "clock"} <= {c["name"] for c in d["checks"]}
' "$tmp/out"
secret_free

# The key from a file: group-readable is a warning (exit 0), and never shown.
unset AGAMEMNON_API_KEY
export AGAMEMNON_API_KEY_FILE="$tmp/key"
chmod 640 "$tmp/key"
run 0 doctor
line warn api-key
has "$tmp/out" "fix: chmod 600"
secret_free
run 1 doctor --strict
chmod 600 "$tmp/key"
unset AGAMEMNON_API_KEY_FILE

# --- a wrong key: fail with the hint ---------------------------------------------
AGAMEMNON_API_KEY=not-the-key run 1 doctor
line fail control-plane
has "$tmp/out" "HTTP 401"
has "$tmp/out" "check AGAMEMNON_API_KEY"
export AGAMEMNON_API_KEY="$key"

# --- an unreachable URL: fail, within the timeout ---------------------------------
dead=$(free_port)
start=$SECONDS
AGAMEMNON_URL="http://user:pw-in-url@127.0.0.1:$dead" run 1 doctor --timeout 2
line fail control-plane
has "$tmp/out" "is it running"
hasnt "$tmp/out" "pw-in-url"
[ $((SECONDS - start)) -lt 15 ] || fail "an unreachable control plane took $((SECONDS - start)) s"
run 1 doctor --control-plane "http://127.0.0.1:$dead" --timeout 1 --output json
"$PY" -c 'import json, sys; d = json.load(open(sys.argv[1]))
c = {c["name"]: c for c in d["checks"]}
assert d["ok"] is False and c["control-plane"]["status"] == "fail" and c["control-plane"]["fix"], d
' "$tmp/out"

# --- NATS_URL to a closed port: fail ----------------------------------------------
NATS_URL="nats://127.0.0.1:$dead" run 1 doctor --timeout 2
line fail nats
line ok control-plane

# --- settings that do not parse ---------------------------------------------------
LOG_LEVEL=loud run 1 doctor
line fail logging
has "$tmp/out" "LOG_LEVEL=error|warn|info|debug"
LOG_LEVEL=loud run 2 list # every other command still refuses it
REQUIRE_TLS=maybe run 1 doctor
line fail config
has "$tmp/out" "REQUIRE_TLS must be true or false"
line warn control-plane # not checked with settings that do not parse
AGAMEMNON_URL=http://example.invalid:8080 REQUIRE_TLS=true run 1 doctor --timeout 1
line fail tls
AUDIT_LOG_PATH= run 1 doctor
line fail audit-log

# --- usage errors -----------------------------------------------------------------
run 2 doctor --timeout 0
run 2 doctor --timeout 61
run 2 doctor extra
run 2 doctor --bogus
run 0 doctor --help
has "$tmp/out" "Exit codes"

# --- the state directory and its journal ------------------------------------------
unset AGAMEMNON_URL AGAMEMNON_API_KEY NATS_URL
run 0 doctor
line ok state-dir
has "$tmp/out" "does not exist yet"
[ ! -e "$TELEMACHY_STATE_DIR" ] || fail "doctor created the state directory"
line ok control-plane
has "$tmp/out" "built-in control plane (in-process)"
has "$tmp/out" "not configured: completions by REST only"

# A real journal with one finished run: ok, integrity and schema current.
run 0 run -q "$ex/hello-world.yaml"
run 0 doctor
line ok journal
has "$tmp/out" "integrity ok, schema version"
line ok runs

# 0755: a warning with the chmod, exit 0 (1 with --strict).
chmod 755 "$TELEMACHY_STATE_DIR"
run 0 doctor
line warn state-dir
has "$tmp/out" "fix: chmod 700"
run 1 doctor --strict
chmod 700 "$TELEMACHY_STATE_DIR"

# A stranded run: its owner's pid gone, the run not ended.
id=$("$TLM_BIN" list -q | head -1)
sh -c 'exit 0' &
gone=$!
wait "$gone"
"$PY" - "$TELEMACHY_STATE_DIR/journal.db" "$id" "$gone" <<'PYEOF'
import sqlite3, sys
c = sqlite3.connect(sys.argv[1])
c.execute("UPDATE runs SET state = 'running', owner_pid = ? WHERE id = ?", (int(sys.argv[3]), sys.argv[2]))
c.commit()
PYEOF
run 0 doctor
line warn runs
has "$tmp/out" "1 stranded"
has "$tmp/out" "$id"
has "$tmp/out" "telemachy teardown RUN"

# A journal that is not SQLite: fail.
printf 'not a database, just text\n%.0s' $(seq 200) >"$TELEMACHY_STATE_DIR/journal.db"
rm -f "$TELEMACHY_STATE_DIR"/journal.db-*
run 1 doctor
line fail journal
has "$tmp/out" "move it aside"
run 1 doctor --output json
"$PY" -c 'import json, sys; d = json.load(open(sys.argv[1]))
assert d["ok"] is False and [c for c in d["checks"] if c["name"] == "journal"][0]["status"] == "fail", d
' "$tmp/out"
echo "doctor: ok"
