#!/usr/bin/env bash
# Benchmark of `telemachy run` on the in-process control plane (bench/README.md).
#
#   bench/run.sh [TASKS...]          default: 100 1000
#
# Runs examples/hello-world.yaml, then synthetic workflows (bench/gen_workflow.py,
# program "none": the control plane completes each task at once, so what is
# measured is the engine: journal writes, REST round trips, scheduling) and
# prints the best wall time of TLM_BENCH_RUNS runs (default 3), the engine's own
# elapsed time from the JSON summary, and time per task.
#
# Environment:
#   TLM_BIN            the binary (default ./build/telemachy; use a Release build)
#   TLM_BENCH_RUNS     runs per workflow, best kept (default 3)
#   TLM_BENCH_AGENTS   agents in the synthetic workflows (default 100)
#   NATS_URL           set to follow tasks by NATS events too (default: REST only)
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
bin=${TLM_BIN:-./build/telemachy}
runs=${TLM_BENCH_RUNS:-3}
agents=${TLM_BENCH_AGENTS:-100}
python=/usr/bin/python3
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
export TELEMACHY_STATE_DIR="$tmp/state"
unset AGAMEMNON_URL

# bench_one NAME FILE TASKS
bench_one() {
	local best="" eng="" i t0 t1 ms e
	for ((i = 0; i < runs; i++)); do
		t0=$(date +%s%N)
		"$bin" run -q --output json "$2" >"$tmp/out.json"
		t1=$(date +%s%N)
		ms=$(((t1 - t0) / 1000000))
		e=$("$python" -c 'import json,sys; r=json.load(open(sys.argv[1])); assert r["outcome"]=="completed", r["error"]; print(r["elapsed_ms"])' "$tmp/out.json")
		if [ -z "$best" ] || [ "$ms" -lt "$best" ]; then best=$ms; eng=$e; fi
	done
	printf '%-28s %8d tasks  wall %6d ms  engine %6d ms  %8.2f ms/task\n' "$1" "$3" "$best" "$eng" \
		"$(awk -v a="$best" -v b="$3" 'BEGIN { print a / b }')"
}

bench_one hello-world "$here/../examples/hello-world.yaml" 1
for n in "${@:-100 1000}"; do
	for size in $n; do
		"$python" "$here/gen_workflow.py" --agents "$agents" --teams 10 --tasks "$size" \
			--depth 10 -o "$tmp/w$size.yaml"
		bench_one "dag-d10 ($agents agents)" "$tmp/w$size.yaml" "$size"
	done
done
