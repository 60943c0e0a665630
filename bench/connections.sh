#!/usr/bin/env bash
# Connection policy of `telemachy run` against a control plane with upstream's
# listen backlog (docs/agamemnon.md, "Connection policy"; bench/README.md).
#
#   bench/connections.sh
#
# Starts `telemachy serve --backlog B --threads T` on a loopback port the
# system picks, for each backlog of TLM_BENCH_BACKLOGS and each thread count of
# TLM_BENCH_THREADS, and times `telemachy run` of two
# workflows with program "none" (every task completes at once, so what is
# measured is the requests and their connections): examples/multi-team.yaml
# (5 agents, 2 teams, 5 tasks) and a wider one (bench/gen_workflow.py: 20
# agents, 4 teams, 40 tasks).  A small backlog drops connection attempts
# only when they come faster than the server accepts them: with 8 threads
# serve accepts at once, with 1 thread (which accepts and answers, as one
# event loop does) it does not, which is how upstream's backlog of 5 shows.  Every combination of --connection and
# --max-connections runs TLM_BENCH_RUNS times; the table shows the median,
# min and max wall time in ms, and "stalled": the runs at least 900 ms slower
# than the cell's fastest (a dropped connection attempt waits out a 1 s SYN
# retransmit), and the kernel's count of connections its listen queue
# dropped during the cell (TcpExtListenDrops, from /proc/net/netstat; the
# whole machine's).  A benchmark, not a test: not in CI.
#
# Environment:
#   TLM_BIN             the binary (default ./build/telemachy)
#   TLM_BENCH_RUNS      runs per cell (default 5)
#   TLM_BENCH_BACKLOGS  serve's listen backlogs (default "5 128")
#   TLM_BENCH_THREADS   serve's HTTP threads (default "1 8")
#   TLM_BENCH_MODES     --connection values (default "fresh reuse")
#   TLM_BENCH_CONNS     --max-connections values (default "1 2 4 8")
#   TLM_BENCH_ARGS      more arguments for every run (default none)
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
bin=${TLM_BIN:-./build/telemachy}
runs=${TLM_BENCH_RUNS:-5}
backlogs=${TLM_BENCH_BACKLOGS:-"5 128"}
threads=${TLM_BENCH_THREADS:-"1 8"}
modes=${TLM_BENCH_MODES:-"fresh reuse"}
conns=${TLM_BENCH_CONNS:-"1 2 4 8"}
read -r -a extra <<<"${TLM_BENCH_ARGS:-}"
python=/usr/bin/python3
tmp=$(mktemp -d)
serve_pid=""
cleanup() {
	if [ -n "$serve_pid" ]; then kill "$serve_pid" 2>/dev/null || true; wait "$serve_pid" 2>/dev/null || true; fi
	rm -rf "$tmp"
}
trap cleanup EXIT
export TELEMACHY_STATE_DIR="$tmp/state"
unset AGAMEMNON_URL NATS_URL AGAMEMNON_API_KEY AGAMEMNON_API_KEY_FILE

sed 's/program: claude-code/program: none/' "$here/../examples/multi-team.yaml" >"$tmp/multi-team.yaml"
"$python" "$here/gen_workflow.py" --agents 20 --teams 4 --tasks 40 --depth 4 --seed 1 \
	-o "$tmp/wide-20.yaml"

# start_serve BACKLOG THREADS: sets url and serve_pid.
start_serve() {
	local i
	"$bin" serve -q --listen 127.0.0.1:0 --backlog "$1" --threads "$2" >"$tmp/url" 2>"$tmp/serve.err" &
	serve_pid=$!
	for ((i = 0; i < 100; i++)); do
		url=$(head -n1 "$tmp/url" 2>/dev/null || true)
		[ -n "$url" ] && return 0
		sleep 0.05
	done
	echo "serve did not start:" >&2
	cat "$tmp/serve.err" >&2
	exit 1
}

stop_serve() {
	kill "$serve_pid"
	wait "$serve_pid" 2>/dev/null || true
	serve_pid=""
}

# The machine's count of connections dropped by full listen queues.
listen_drops() {
	awk '/^TcpExt:/ { if (!n) { for (i = 1; i <= NF; i++) if ($i == "ListenDrops") k = i; n = 1 } else print $k }' /proc/net/netstat
}

# cell WORKFLOW MODE CONNS: prints "median min max stalled drops".
cell() {
	local i t0 t1 d0 times=()
	d0=$(listen_drops)
	for ((i = 0; i < runs; i++)); do
		t0=$(date +%s%N)
		"$bin" run -q --output json --control-plane "$url" --connection "$2" \
			--max-connections "$3" "${extra[@]}" "$tmp/$1.yaml" >"$tmp/out.json" 2>"$tmp/run.err" ||
			{ echo "run failed ($1 $2 $3):" >&2; cat "$tmp/run.err" >&2; exit 1; }
		t1=$(date +%s%N)
		times+=($(((t1 - t0) / 1000000)))
	done
	printf '%s\n' "${times[@]}" | sort -n |
		awk -v drops=$(($(listen_drops) - d0)) '{a[NR]=$1} END {for (i = 1; i <= NR; i++) s += a[i] >= a[1] + 900; print a[int((NR+1)/2)], a[1], a[NR], s "/" NR, drops}'
}

row='%-12s %7s %7s %6s %5s %9s %7s %7s %8s %6s\n'
printf "$row" workflow backlog threads mode conns "median ms" "min" "max" stalled drops
for b in $backlogs; do
	for t in $threads; do
		start_serve "$b" "$t"
		for wf in multi-team wide-20; do
			for m in $modes; do
				for c in $conns; do
					read -r med lo hi st dr < <(cell "$wf" "$m" "$c")
					printf "$row" "$wf" "$b" "$t" "$m" "$c" "$med" "$lo" "$hi" "$st" "$dr"
				done
			done
		done
		stop_serve
	done
done
