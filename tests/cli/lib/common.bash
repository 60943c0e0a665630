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

# journal_from_env: with TLM_TEST_JOURNAL=postgres (ctest "cli.<name>-pg"),
# starts a throwaway PostgreSQL cluster (tests/tools/pg_cluster.c) and points
# every telemachy command at a fresh database on it: TELEMACHY_JOURNAL, and
# PGPASSWORD, which libpq reads.  The cluster stops at journal_stop, or when
# this shell exits (the helper's input ends).  Without it: nothing.
journal_from_env() {
	[ "${TLM_TEST_JOURNAL:-}" = postgres ] || return 0
	: "${TLM_TEST_PG:?}"
	coproc TLM_PG { exec "$TLM_TEST_PG"; }
	read -r -t 60 -u "${TLM_PG[0]}" pg_uri || fail "the PostgreSQL cluster did not start"
	read -r -t 5 -u "${TLM_PG[0]}" pg_password || fail "no password from the cluster"
	export TELEMACHY_JOURNAL=$pg_uri PGPASSWORD=$pg_password
}

# journal_check_clean: on PostgreSQL, that the run wrote no local journal
# ($tmp/state) and that the database password is in no file under $tmp.
journal_check_clean() {
	[ "${TLM_TEST_JOURNAL:-}" = postgres ] || return 0
	[ ! -e "$tmp/state/journal.db" ] || fail "a local journal was written beside PostgreSQL"
	! grep -rqF -- "$PGPASSWORD" "$tmp" ||
		fail "the database password reached $(grep -rlF -- "$PGPASSWORD" "$tmp")"
}

# journal_stop: stops the cluster of journal_from_env and waits (bounded).
journal_stop() {
	local pid=${TLM_PG_PID:-}
	[ -n "$pid" ] || return 0
	eval "exec ${TLM_PG[1]}>&-"
	for _ in $(seq 600); do
		kill -0 "$pid" 2>/dev/null || break
		sleep 0.1
	done
	kill -9 "$pid" 2>/dev/null || true
}
