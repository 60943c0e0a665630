#!/usr/bin/env bash
# Hostile workflow files (issue 11, item 9): whatever a file holds, `telemachy
# validate` stays under 10x its size in peak memory and finishes in bounded
# time.  Every shape of bench/gen_hostile.py, twice: packed as densely as the
# node limit allows (the most memory a file can make the loader spend) and
# unpadded, over the limit (refused early).  Peak RSS is only meaningful in a
# plain build: under ASan the shadow memory dominates, so there only the time
# is checked.  Then what is not a workflow file: a FIFO, a directory or a
# device (refused at once, never waited on) and UTF-16/UTF-32 text.
set -euo pipefail
. "$(dirname "$0")/lib/common.bash"

gen=$TLM_SOURCE_DIR/bench/gen_hostile.py
size=$((8 << 20))
asan=0
if ldd "$TLM_BIN" 2>/dev/null | grep libasan >/dev/null; then
	# Slower (a Debug build), and its memory is mostly shadow: smaller
	# files, time only.
	asan=1
	size=$((2 << 20))
	echo "note: ASan build: 2 MiB files, peak memory not checked (time only)"
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

# Only regular files: a FIFO with no writer used to block validate, plan and
# run forever; now each says what the path is, at once, exit 2.
mkfifo "$tmp/fifo.yaml"
export TELEMACHY_STATE_DIR="$tmp/state"
for cmd in validate plan "run --dry-run"; do
	rc=0
	# shellcheck disable=SC2086 # cmd is a command and its flags
	timeout 10 "$TLM_BIN" $cmd "$tmp/fifo.yaml" >"$tmp/out" 2>"$tmp/err" </dev/null || rc=$?
	[ "$rc" = 2 ] || fail "$cmd on a FIFO exited $rc (124: it blocked), want 2"
	has "$tmp/err" "$tmp/fifo.yaml: is a FIFO, not a regular file"
done
run 2 validate "$tmp"
has "$tmp/err" "$tmp: is a directory, not a regular file"
run 2 validate /dev/null
has "$tmp/err" "/dev/null: is a character device, not a regular file"

# UTF-16 and UTF-32 are refused with a clear error (a UTF-16 file with a byte
# order mark used to validate); UTF-8 with a byte order mark is fine.
"$PY" - "$tmp" <<'PY'
import sys
text = "apiVersion: telemachy/v1\nmetadata:\n  name: enc\n"
for enc in ("utf-16", "utf-16-le", "utf-16-be", "utf-32", "utf-32-be", "utf-8-sig"):
    open("%s/%s.yaml" % (sys.argv[1], enc), "wb").write(text.encode(enc))
PY
run 2 validate "$tmp/utf-16.yaml"
has "$tmp/err" "utf-16.yaml: error: the file is UTF-16LE (its byte order mark says so); a workflow must be UTF-8: convert it, e.g. with iconv -f UTF-16LE -t UTF-8 [yaml-encoding]"
run 2 validate "$tmp/utf-16-le.yaml"
has "$tmp/err" "the file is UTF-16LE (it starts with NUL bytes, as such text does)"
run 2 validate "$tmp/utf-16-be.yaml"
has "$tmp/err" "the file is UTF-16BE"
run 2 validate "$tmp/utf-32.yaml"
has "$tmp/err" "the file is UTF-32LE (its byte order mark says so)"
run 2 validate "$tmp/utf-32-be.yaml"
has "$tmp/err" "the file is UTF-32BE"
run 2 run --dry-run "$tmp/utf-16.yaml"
has "$tmp/err" "[yaml-encoding]"
run 0 validate "$tmp/utf-8-sig.yaml"
