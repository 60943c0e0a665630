#!/usr/bin/env bash
# The live progress line (docs/engine.md, "Output"): drawn on a terminal
# (a pseudo-terminal made by script(1)) with the phase, agents, tasks by
# state, elapsed time and the slowest running task, redrawn as time passes;
# bold unless NO_COLOR; never drawn when stderr is not a terminal, with -q,
# or among JSON log records.
set -euo pipefail

. "$(dirname "$0")/lib/common.bash"

unset AGAMEMNON_URL NATS_URL AGAMEMNON_API_KEY AGAMEMNON_API_KEY_FILE REQUIRE_TLS LOG_LEVEL LOG_FORMAT NO_COLOR
export TELEMACHY_STATE_DIR="$tmp/state"
command -v script >/dev/null || fail "script(1) is needed (util-linux)"

cat >"$tmp/p.yaml" <<'YAML'
apiVersion: telemachy/v1
metadata: {name: prog}
agents: [{name: s, program: /bin/sh, args: ['-c', 'sleep 1']}]
teams: [{name: t, agents: [s], tasks: [{subject: nap, description: d}]}]
YAML

# in_pty OUT ARGS...: telemachy ARGS on a 120-column pseudo-terminal.
in_pty() {
	local out=$1 cmd
	shift
	printf -v cmd '%q ' "$TLM_BIN" "$@"
	TERM=xterm script -qec "stty cols 120 rows 40; $cmd" /dev/null >"$out" 2>&1 </dev/null || true
}

# Not a terminal: log lines only.
run 0 run "$tmp/p.yaml"
hasnt "$tmp/err" $'\r'
hasnt "$tmp/err" "agents 1/1"
has "$tmp/err" "task t/nap completed"

in_pty "$tmp/tty" run "$tmp/p.yaml"
has "$tmp/tty" $'\033[1mrunning\033[0m  agents 1/1  tasks 0 done, 0 failed, 1 running, 0 pending'
has "$tmp/tty" "slowest t/nap"
has "$tmp/tty" "task t/nap completed"
# Redrawn while nothing else happens: several elapsed times on screen.
n=$(grep -o 'pending  [0-9.]*s' "$tmp/tty" | sort -u | wc -l)
[ "$n" -ge 3 ] || fail "the line was drawn $n distinct times"

NO_COLOR=1 in_pty "$tmp/nocolor" run "$tmp/p.yaml"
has "$tmp/nocolor" "running  agents 1/1"
hasnt "$tmp/nocolor" $'\033[1m'

in_pty "$tmp/quiet" run -q "$tmp/p.yaml"
hasnt "$tmp/quiet" "agents 1/1"

LOG_FORMAT=json in_pty "$tmp/json" run "$tmp/p.yaml"
hasnt "$tmp/json" "agents 1/1"
has "$tmp/json" '"msg":"task t/nap completed"'
echo "progress: ok"
