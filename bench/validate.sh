#!/usr/bin/env bash
# Benchmark of `telemachy validate` on synthetic workflows (bench/README.md).
#
#   bench/validate.sh [TASKS...]        default: 1000 10000 100000
#
# For each size and shape (random DAG, chain in file order, chain in reverse
# file order) it generates a workflow with bench/gen_workflow.py, runs
# `telemachy validate FILE` TLM_BENCH_RUNS times (default 3) and prints the best
# wall time, the CPU time of that run, the peak RSS (largest over the runs),
# the file size, RSS/file and the time growth from the previous size.
#
# Environment:
#   TLM_BIN              the binary (default ./build/telemachy; use a Release build)
#   TLM_BENCH_SIZES      sizes when none are given as arguments
#   TLM_BENCH_SHAPES     any of: dag chain chain-reversed (default all three)
#   TLM_BENCH_RUNS       runs per file, best time is kept (default 3)
#   TLM_BENCH_GEN_ARGS   extra flags for gen_workflow.py
#                        (default: --agents 32 --teams 8 --depth 20 --max-deps 3 --seed 1)
#   TLM_BENCH_KEEP=1     keep the generated files (their directory is printed)
#   TLM_BENCH_STRICT=1   exit 1 when a target is missed (see docs/performance.md)
#
# Exit status: 0, or 1 when validate failed on a generated file (or a target
# was missed under TLM_BENCH_STRICT=1), 2 on a usage or setup problem.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
gen="$here/gen_workflow.py"
python=/usr/bin/python3
bin=${TLM_BIN:-./build/telemachy}
runs=${TLM_BENCH_RUNS:-3}
shapes=${TLM_BENCH_SHAPES:-"dag chain chain-reversed"}
gen_args=${TLM_BENCH_GEN_ARGS:-"--agents 32 --teams 8 --depth 20 --max-deps 3 --seed 1"}
if (($# > 0)); then
	sizes="$*"
else
	sizes=${TLM_BENCH_SIZES:-"1000 10000 100000"}
fi

die() { echo "validate.sh: $*" >&2; exit 2; }

[[ -x $bin ]] || die "no binary at '$bin' (set TLM_BIN, or build: cmake -S . -B build -DCMAKE_BUILD_TYPE=Release && cmake --build build)"
[[ -x $python ]] || die "$python is needed to generate workflows"
[[ -x /usr/bin/time ]] || die "/usr/bin/time is missing: apt-get install -y time"
[[ $runs =~ ^[1-9][0-9]*$ ]] || die "TLM_BENCH_RUNS must be a positive integer"
for t in $sizes; do
	[[ $t =~ ^[1-9][0-9]*$ ]] || die "bad size '$t'"
done
for s in $shapes; do
	case $s in dag | chain | chain-reversed) ;; *) die "bad shape '$s'" ;; esac
done

# The build type, when the binary sits in a CMake build directory.
build_type=unknown
cache="$(dirname "$bin")/CMakeCache.txt"
if [[ -f $cache ]]; then
	build_type=$(sed -n 's/^CMAKE_BUILD_TYPE:[A-Z]*=//p' "$cache")
	build_type=${build_type:-none}
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/tlm-bench.XXXXXX")
if [[ ${TLM_BENCH_KEEP:-0} == 1 ]]; then
	echo "# files kept in $work"
else
	trap 'rm -rf "$work"' EXIT
fi

echo "# telemachy validate benchmark, $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
echo "# binary: $bin ($("$bin" --version 2>/dev/null | head -n1 || echo '?')), build type: $build_type"
echo "# machine: $(nproc) cores, $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n1), $(uname -sr)"
echo "# generator: gen_workflow.py $gen_args; best of $runs runs"
if [[ $build_type != Release ]]; then
	echo "# warning: not a Release build; figures are not comparable with docs/performance.md" >&2
fi
echo

# seconds with microseconds from bash's clock; /usr/bin/time's %e has only
# centiseconds, too coarse for the small files.
now() { echo "${EPOCHREALTIME/,/.}"; }

failed=0
missed=()
printf '%-15s %8s %9s %9s %9s %10s %9s %10s\n' \
	shape tasks "file MiB" "wall s" "cpu s" "RSS MiB" "RSS/file" "time x"
for shape in $shapes; do
	prev_s=""
	prev_t=""
	for t in $sizes; do
		f="$work/$shape-$t.yaml"
		case $shape in
		dag) extra=() ;;
		chain) extra=(--chain --chain-order listed) ;;
		chain-reversed) extra=(--chain --chain-order reversed) ;;
		esac
		# shellcheck disable=SC2086 # gen_args is a list of flags
		"$python" "$gen" $gen_args --tasks "$t" "${extra[@]}" -o "$f"
		bytes=$(stat -c %s "$f")

		best=""
		best_cpu=""
		peak_kib=0
		for ((r = 0; r < runs; r++)); do
			t0=$(now)
			rc=0
			/usr/bin/time -o "$work/time" -f '%e %M %U %S' \
				"$bin" validate "$f" >"$work/out" 2>"$work/err" || rc=$?
			t1=$(now)
			if ((rc != 0)); then
				echo "validate.sh: '$bin validate $f' exited $rc:" >&2
				head -n 20 "$work/err" "$work/out" >&2
				failed=1
				best=""
				break
			fi
			read -r _ kib usr sys <"$work/time"
			wall=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.4f", b - a }')
			cpu=$(awk -v u="$usr" -v s="$sys" 'BEGIN { printf "%.2f", u + s }')
			if [[ -z $best ]] || awk -v w="$wall" -v b="$best" 'BEGIN { exit !(w < b) }'; then
				best=$wall
				best_cpu=$cpu
			fi
			((kib > peak_kib)) && peak_kib=$kib
		done
		if [[ -z $best ]]; then
			printf '%-15s %8d %9s %9s\n' "$shape" "$t" \
				"$(awk -v b="$bytes" 'BEGIN { printf "%.2f", b / 1048576 }')" FAILED
			prev_s=""
			continue
		fi

		growth="-"
		if [[ -n $prev_s ]]; then
			growth=$(awk -v a="$prev_s" -v b="$best" -v ta="$prev_t" -v tb="$t" \
				'BEGIN { printf "%.1f/%g", (a > 0 ? b / a : 0), tb / ta }')
			# ~12x time for 10x tasks, i.e. an exponent of log(12)/log(10).
			if awk -v a="$prev_s" -v b="$best" -v ta="$prev_t" -v tb="$t" \
				'BEGIN { exit !(b / a > exp(log(tb / ta) * log(12) / log(10))) }'; then
				missed+=("$shape: time grew ${growth%/*}x for ${growth#*/}x tasks ($prev_t -> $t)")
			fi
		fi
		ratio=$(awk -v k="$peak_kib" -v b="$bytes" 'BEGIN { printf "%.1f", k * 1024 / b }')
		printf '%-15s %8d %9.2f %9.4f %9s %10.1f %9s %10s\n' "$shape" "$t" \
			"$(awk -v b="$bytes" 'BEGIN { print b / 1048576 }')" "$best" "$best_cpu" \
			"$(awk -v k="$peak_kib" 'BEGIN { print k / 1024 }')" "$ratio" "$growth"
		# The time target is stated for 100,000 tasks; other sizes are held
		# to the growth target only.
		if ((t == 100000)) && awk -v b="$best" 'BEGIN { exit !(b >= 1) }'; then
			missed+=("$shape: $t tasks took ${best}s (target < 1 s)")
		fi
		# The RSS target is about large files; a small one is all fixed cost.
		if ((bytes >= 1048576)) && awk -v r="$ratio" 'BEGIN { exit !(r >= 10) }'; then
			missed+=("$shape: $t tasks peak RSS is ${ratio}x the file (target < 10x)")
		fi
		prev_s=$best
		prev_t=$t
	done
done
echo
echo "# time x: wall-time growth from the previous size / task growth (target: at most ~12 for 10)"
if ((${#missed[@]} > 0)); then
	echo "# targets missed:"
	printf '#   %s\n' "${missed[@]}"
else
	echo "# all targets met"
fi
if ((failed)); then
	exit 1
fi
if ((${#missed[@]} > 0)) && [[ ${TLM_BENCH_STRICT:-0} == 1 ]]; then
	exit 1
fi
exit 0
