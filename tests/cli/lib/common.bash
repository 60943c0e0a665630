# Shared helpers for the CLI tests (sourced; not a test itself).
# Needs TLM_BIN; gives $tmp (removed on exit), fail, run, has, hasnt.
: "${TLM_BIN:?}" "${TLM_SOURCE_DIR:?}"
PY=/usr/bin/python3
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

fail() {
	echo "FAIL: $*" >&2
	exit 1
}

# run WANT_RC ARGS...: runs telemachy, stdout to $tmp/out, stderr to $tmp/err;
# fails unless it exits WANT_RC.
run() {
	local want=$1 rc=0
	shift
	"$TLM_BIN" "$@" >"$tmp/out" 2>"$tmp/err" </dev/null || rc=$?
	if [ "$rc" -ne "$want" ]; then
		echo "--- stdout" >&2; cat "$tmp/out" >&2
		echo "--- stderr" >&2; cat "$tmp/err" >&2
		fail "telemachy $* exited $rc, want $want"
	fi
}

# has FILE TEXT: FILE contains the fixed string TEXT.
has() {
	grep -qF -- "$2" "$1" || { cat "$1" >&2; fail "no \"$2\" in $(basename "$1")"; }
}

# hasnt FILE TEXT: FILE does not contain TEXT.
hasnt() {
	! grep -qF -- "$2" "$1" || { cat "$1" >&2; fail "unexpected \"$2\" in $(basename "$1")"; }
}
