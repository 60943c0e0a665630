#!/usr/bin/env bash
# Runs libFuzzer targets for a fixed time each (`make fuzz`; tests/fuzz/README.md).
#
#   tests/fuzz/run.sh BUILD_DIR SECONDS TARGET...
#
# Each target starts from its seed corpus (tests/fuzz/corpus/<target>, only
# read) and keeps what it finds in BUILD_DIR/fuzz/corpus-<target>; a crash,
# leak, timeout or out-of-memory input is written to BUILD_DIR/fuzz/artifacts-
# <target>/.  Prints the runs of each target; exits 1 if any target found
# something (all targets run first).
set -uo pipefail

[ $# -ge 3 ] || { echo "usage: $0 BUILD_DIR SECONDS TARGET..." >&2; exit 2; }
build=$1 seconds=$2
shift 2
src=$(cd "$(dirname "$0")" && pwd)
failed=()

for t in "$@"; do
	bin=$build/tests/fuzz/fuzz_$t
	[ -x "$bin" ] || { echo "fuzz: no $bin (build it: make fuzz)" >&2; exit 2; }
	work=$build/fuzz
	mkdir -p "$work/corpus-$t" "$work/artifacts-$t"
	dict=()
	[ -f "$src/$t.dict" ] && dict=(-dict="$src/$t.dict")
	echo "== fuzz_$t for $seconds s"
	rc=0
	"$bin" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
		-artifact_prefix="$work/artifacts-$t/" "${dict[@]}" \
		"$work/corpus-$t" "$src/corpus/$t" >"$work/log-$t" 2>&1 || rc=$?
	runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$work/log-$t" | tail -n 1)
	cov=$(grep -o 'cov: [0-9]*' "$work/log-$t" | tail -n 1)
	echo "fuzz_$t: ${runs:-?} runs, ${cov:-cov: ?}, exit $rc"
	if [ "$rc" != 0 ]; then
		grep -E 'ERROR|broken promise|SUMMARY|Test unit written' "$work/log-$t" | head -n 20
		echo "(full log: $work/log-$t)"
		failed+=("$t")
	fi
done
if [ ${#failed[@]} -gt 0 ]; then
	echo "fuzz: found something in: ${failed[*]}" >&2
	exit 1
fi
echo "fuzz: nothing found"
