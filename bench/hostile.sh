#!/usr/bin/env bash
# Peak memory and time of `telemachy validate` on hostile files: every shape
# of bench/gen_hostile.py at each size, one run each.  Prints a table with the
# peak RSS as a multiple of the file's size (the limit is 10x, see
# docs/performance.md) and the rule ids reported; exits 1 if a run exceeded
# 10x or TLM_BENCH_MAX_S seconds (default 10).
#
#   bench/hostile.sh                 16 MiB files
#   bench/hostile.sh 1m 64m          other sizes (k/m suffixes)
#   TLM_BIN=build-release/telemachy TLM_BENCH_SHAPES="flow-maps args" bench/hostile.sh
#   TLM_BENCH_GEN_ARGS=--dense bench/hostile.sh   (unpadded: over the node limit)
#   TLM_BENCH_TIMEOUT=60 ...         kill a run after 60 s (default 300)
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
bin=${TLM_BIN:-$here/../build/telemachy}
python=/usr/bin/python3
gen=$here/gen_hostile.py
sizes=${*:-16m}
shapes=${TLM_BENCH_SHAPES:-$("$python" "$gen" --list)}
max_s=${TLM_BENCH_MAX_S:-10}
limit_s=${TLM_BENCH_TIMEOUT:-300} # a run still going then is killed (exit 124)

die() {
	echo "hostile.sh: $*" >&2
	exit 2
}
[[ -x $bin ]] || die "no binary at '$bin' (set TLM_BIN)"
[[ -x /usr/bin/time ]] || die "/usr/bin/time is missing: apt-get install -y time"

work=$(mktemp -d "${TMPDIR:-/tmp}/tlm-hostile.XXXXXX")
trap 'rm -rf "$work"' EXIT

echo "# telemachy validate on hostile files, $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
echo "# binary: $bin; machine: $(nproc) cores, $(uname -sr)"
printf '%-12s %9s %4s %9s %8s %7s  %s\n' shape "file MiB" exit "RSS MiB" RSS/file "wall s" rules
failed=0
for size in $sizes; do
	for shape in $shapes; do
		f=$work/$shape.yaml
		# shellcheck disable=SC2086 # TLM_BENCH_GEN_ARGS is a list of flags
		"$python" "$gen" ${TLM_BENCH_GEN_ARGS:-} "$shape" "$size" "$f"
		bytes=$(stat -c %s "$f")
		rc=0
		/usr/bin/time -o "$work/time" -f '%M %e' timeout "$limit_s" "$bin" validate "$f" \
			>/dev/null 2>"$work/err" || rc=$?
		[ "$rc" = 124 ] && echo "[killed after $limit_s s]" >>"$work/err"
		read -r kib wall < <(tail -n 1 "$work/time")
		rules=$(grep -o '\[[a-z -]*[a-z0-9 ]*\]$' "$work/err" | sort | uniq -c |
			awk '{ printf "%s%s x%s", sep, $2, $1; sep = ", " }' || true)
		ratio=$(awk -v k="$kib" -v b="$bytes" 'BEGIN { printf "%.1f", k * 1024 / b }')
		printf '%-12s %9.2f %4d %9.1f %7sx %7.2f  %s\n' "$shape" \
			"$(awk -v b="$bytes" 'BEGIN { print b / 1048576 }')" "$rc" \
			"$(awk -v k="$kib" 'BEGIN { print k / 1024 }')" "$ratio" "$wall" "${rules:-ok}"
		if awk -v r="$ratio" -v w="$wall" -v m="$max_s" 'BEGIN { exit !(r >= 10 || w > m) }'; then
			failed=1
		fi
		rm -f "$f"
	done
done
exit "$failed"
