#!/usr/bin/env bash
# Metrics (docs/metrics.md): --metrics-textfile after a hello-world run (the
# counters' values, the file replaced whole), GET /metrics scraped during a
# run whose agent sleeps (--metrics-listen 127.0.0.1:0, the port read from
# stderr), METRICS_TEXTFILE as the default, a non-loopback address refused,
# the exporter's 404 and Host check, and serve's exporter with its gauges.
# Every text passes `promtool check metrics` (Debian's prometheus package;
# scripts/bootstrap installs it): without promtool the test fails at once.
set -euo pipefail

. "$(dirname "$0")/lib/common.bash"

unset AGAMEMNON_URL NATS_URL AGAMEMNON_API_KEY AGAMEMNON_API_KEY_FILE REQUIRE_TLS LOG_LEVEL \
	LOG_FORMAT METRICS_LISTEN METRICS_TEXTFILE
export TELEMACHY_STATE_DIR="$tmp/state"

promtool=$(command -v promtool || true)
[ -n "$promtool" ] || fail "promtool is not installed (Debian: prometheus; scripts/bootstrap installs it)"
promcheck() {
	"$promtool" check metrics <"$1" || fail "promtool check metrics: $1"
}

# fetch URL [HOST]: the body on stdout; exit 1 with the status on stderr
# unless 200.
fetch() {
	"$PY" - "$@" <<'PY'
import sys, urllib.request, urllib.error
req = urllib.request.Request(sys.argv[1])
if len(sys.argv) > 2:
    req.add_header("Host", sys.argv[2])
try:
    with urllib.request.urlopen(req, timeout=5) as r:
        assert r.headers["Content-Type"].startswith("text/plain; version=0.0.4"), r.headers
        sys.stdout.write(r.read().decode())
except urllib.error.HTTPError as e:
    print(e.code, file=sys.stderr)
    sys.exit(1)
PY
}

# metrics_port FILE: waits for "metrics at http://127.0.0.1:PORT/metrics".
metrics_port() {
	local i
	for i in $(seq 100); do
		if grep -q 'metrics at http://127.0.0.1:' "$1" 2>/dev/null; then
			sed -n 's|.*metrics at http://127.0.0.1:\([0-9]*\)/metrics.*|\1|p' "$1" | head -1
			return 0
		fi
		sleep 0.1
	done
	cat "$1" >&2
	fail "no metrics address in $(basename "$1")"
}

# --- the textfile after hello-world
hello="$TLM_SOURCE_DIR/examples/hello-world.yaml"
echo stale >"$tmp/hello.prom.tmp"
run 0 run --metrics-textfile "$tmp/hello.prom" "$hello"
[ ! -e "$tmp/hello.prom.tmp" ] || fail "the textfile's .tmp was left behind"
promcheck "$tmp/hello.prom"
for line in 'telemachy_runs_total{outcome="completed"} 1' \
	'telemachy_runs_total{outcome="failed"} 0' \
	'telemachy_resources_created_total{kind="agent"} 1' \
	'telemachy_resources_created_total{kind="team"} 1' \
	'telemachy_resources_deleted_total{kind="agent"} 1' \
	'telemachy_resources_deleted_total{kind="team"} 1' \
	'telemachy_resource_failures_total{kind="agent",op="create"} 0' \
	'telemachy_tasks_total{state="completed"} 1' \
	'telemachy_client_requests_total{method="POST",route="/v1/agents/{id}/start",status_class="2xx"} 1' \
	'telemachy_server_requests_total{method="POST",route="/v1/teams/{id}/tasks",status_class="2xx"} 1' \
	'telemachy_client_request_duration_seconds_count{route="/v1/agents"}' \
	'telemachy_journal_commit_duration_seconds_bucket{le="+Inf"}' \
	'# TYPE telemachy_client_request_duration_seconds histogram'; do
	has "$tmp/hello.prom" "$line"
done
# Ids never become labels: routes are templates.
hasnt "$tmp/hello.prom" 'tlm-'
grep -q 'route="/v1/agents/[0-9a-f]' "$tmp/hello.prom" && fail "a raw id in a route label"

# --- METRICS_TEXTFILE is the default; the file is replaced, not appended to
METRICS_TEXTFILE="$tmp/hello.prom" run 0 run "$hello"
[ "$(grep -c '^# TYPE telemachy_runs_total' "$tmp/hello.prom")" -eq 1 ] || fail "appended"
has "$tmp/hello.prom" 'telemachy_runs_total{outcome="completed"} 1'

# --- scraped during a run
cat >"$tmp/slow.yaml" <<'YAML'
apiVersion: telemachy/v1
metadata: {name: slow}
agents: [{name: s, program: /bin/sh, args: ['-c', 'sleep 3']}]
teams: [{name: t, agents: [s], tasks: [{subject: nap, description: d}]}]
YAML
"$TLM_BIN" run --metrics-listen 127.0.0.1:0 --metrics-textfile "$tmp/slow.prom" "$tmp/slow.yaml" \
	>"$tmp/slow.out" 2>"$tmp/slow.err" </dev/null &
pid=$!
port=$(metrics_port "$tmp/slow.err")
for i in $(seq 50); do
	fetch "http://127.0.0.1:$port/metrics" >"$tmp/during.prom"
	grep -qF 'telemachy_tasks_total' "$tmp/during.prom" || fail "no tasks family"
	grep -qF "/v1/teams/{id}/tasks\",status_class=\"2xx\"" "$tmp/during.prom" && break
	sleep 0.1
done
has "$tmp/during.prom" 'telemachy_resources_created_total{kind="agent"} 1'
has "$tmp/during.prom" 'telemachy_runs_total{outcome="completed"} 0'
has "$tmp/during.prom" 'telemachy_tasks_total{state="completed"} 0'
promcheck "$tmp/during.prom"
# The exporter answers /metrics only, and only to a loopback Host.
fetch "http://127.0.0.1:$port/other" >/dev/null 2>"$tmp/code" && fail "/other answered"
has "$tmp/code" 404
fetch "http://127.0.0.1:$port/metrics" evil.example >/dev/null 2>"$tmp/code" && fail "foreign Host"
has "$tmp/code" 403
wait "$pid" || fail "the slow run exited $?"
has "$tmp/slow.prom" 'telemachy_runs_total{outcome="completed"} 1'
has "$tmp/slow.prom" 'telemachy_tasks_total{state="completed"} 1'
promcheck "$tmp/slow.prom"

# --- not loopback: refused before anything runs
run 2 run --metrics-listen 0.0.0.0:0 "$hello"
has "$tmp/err" "only a loopback address"
METRICS_LISTEN=192.0.2.1:9 run 2 run "$hello"
has "$tmp/err" "only a loopback address"

# --- serve
"$TLM_BIN" serve --metrics-listen 127.0.0.1:0 >"$tmp/serve.out" 2>"$tmp/serve.err" </dev/null &
spid=$!
port=$(metrics_port "$tmp/serve.err")
fetch "http://127.0.0.1:$port/metrics" >"$tmp/serve.prom"
kill "$spid"
wait "$spid" || fail "serve exited $?"
has "$tmp/serve.prom" '# TYPE telemachy_server_tasks gauge'
has "$tmp/serve.prom" 'telemachy_server_agents{state="online"} 0'
has "$tmp/serve.prom" '# TYPE telemachy_server_requests_total counter'
promcheck "$tmp/serve.prom"
run 2 serve --metrics-listen '[::]:0'
has "$tmp/err" "only a loopback address"

echo "metrics: ok"
