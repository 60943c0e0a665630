#!/usr/bin/env bash
# Hostile workflow files (issue 11, item 9): whatever a file holds, `telemachy
# validate` stays under 10x its size in peak memory and finishes in bounded
# time.  Every shape of bench/gen_hostile.py, twice: packed as densely as the
# node limit allows (the most memory a file can make the loader spend) and
# unpadded, over the limit (refused early).  Peak RSS is only meaningful in a
# plain build: under ASan the shadow memory dominates, so there only the time
# is checked.
set -euo pipefail
. "$(dirname "$0")/lib/common.bash"

gen=$TLM_SOURCE_DIR/bench/gen_hostile.py
size=$((8 << 20))
asan=0
if ldd "$TLM_BIN" | grep -q libasan; then
	asan=1
	echo "note: ASan build, peak memory not checked (time only)"
fi
max_s=$((asan ? 60 : 10))

# measure FILE: validate FILE; sets rc, kib (peak RSS), wall (seconds).
measure() {
	rc=0
	/usr/bin/time -o "$tmp/time" -f '%M %e' "$TLM_BIN" validate "$1" >"$tmp/out" 2>"$tmp/err" ||
		rc=$?
	read -r kib wall < <(tail -n 1 "$tmp/time")
}

check() {
	local what=$1 f=$2 bytes
	bytes=$(stat -c %s "$f")
	measure "$f"
	printf '%-24s rc=%d %7.1f MiB %5.1fx %6.2f s\n' "$what" "$rc" "$(awk -v k="$kib" 'BEGIN { print k / 1024 }')" \
		"$(awk -v k="$kib" -v b="$bytes" 'BEGIN { print k * 1024 / b }')" "$wall"
	[ "$rc" -le 2 ] || { cat "$tmp/err" >&2; fail "$what: exit $rc"; }
	awk -v w="$wall" -v m="$max_s" 'BEGIN { exit !(w <= m) }' || fail "$what: took $wall s"
	if [ "$asan" = 0 ]; then
		awk -v k="$kib" -v b="$bytes" 'BEGIN { exit !(k * 1024 < 10 * b) }' ||
			fail "$what: peak RSS $kib KiB is not under 10x the file ($bytes bytes)"
	fi
}

for shape in $("$PY" "$gen" --list); do
	"$PY" "$gen" "$shape" "$size" "$tmp/h.yaml"
	check "$shape (at the limit)" "$tmp/h.yaml"
	hasnt "$tmp/err" "[yaml-nodes]"
done
# Over the limit: refused as soon as the limit is passed, so cheaper still.
for shape in flow-maps tasks keys labels; do
	"$PY" "$gen" --dense "$shape" "$size" "$tmp/h.yaml"
	check "$shape (dense)" "$tmp/h.yaml"
	has "$tmp/err" "[yaml-nodes]"
done

# The issue's own case: a flow list of {} refused with one error, at once.
"$PY" "$gen" --dense flow-maps "$size" "$tmp/h.yaml"
run 2 validate "$tmp/h.yaml"
has "$tmp/err" "h.yaml:1:"
has "$tmp/err" "more YAML nodes than its size allows: at most $(($(stat -c %s "$tmp/h.yaml") / 8)) here"
has "$tmp/err" "[yaml-nodes]"
has "$tmp/err" "h.yaml: 1 error"
