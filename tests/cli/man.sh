#!/usr/bin/env bash
# The man pages (man/*.1): what scripts/gen-docs makes of the built binary's
# --help texts (regenerate with `cmake --build build --target gen-docs`), one
# page per command and telemachy.1, each rendering at 80 columns without a
# warning and naming every option its --help names.
#
# Needs man-db and groff-base (scripts/bootstrap installs them).
set -euo pipefail

. "$(dirname "$0")/lib/common.bash"

command -v man >/dev/null || fail "man is not installed (man-db; scripts/bootstrap installs it)"
man=$TLM_SOURCE_DIR/man

# --- the committed pages are what the generator makes now ------------------------
"$PY" "$TLM_SOURCE_DIR/scripts/gen-docs" "$TLM_BIN" "$tmp/gen" || fail "scripts/gen-docs exited $?"
diff -ru "$man" "$tmp/gen/man" >"$tmp/diff" ||
	{ cat "$tmp/diff" >&2; fail "man/ is stale: run cmake --build build --target gen-docs"; }

# --- one page per command, no other ----------------------------------------------
"$TLM_BIN" --help | awk '/^Commands:/ { on = 1; next } on && NF == 0 { on = 0 } on { print $1 }' \
	>"$tmp/commands"
[ "$(wc -l <"$tmp/commands")" -ge 13 ] || fail "telemachy --help lists $(wc -l <"$tmp/commands") commands"
{
	echo telemachy.1
	sed 's/.*/telemachy-&.1/' "$tmp/commands"
} | sort >"$tmp/want"
(cd "$man" && ls -- *.1) | sort >"$tmp/have"
diff -u "$tmp/want" "$tmp/have" || fail "man/ does not have exactly one page per command"

# --- each renders cleanly and names its options ------------------------------------
export MANWIDTH=80
while read -r page; do
	name=${page%.1}
	warn=$(man --warnings -l "$man/$page" 2>&1 >/dev/null) || fail "man -l $page exited $?"
	[ -z "$warn" ] || fail "man --warnings -l $page: $warn"
	man -l "$man/$page" 2>/dev/null | col -b >"$tmp/$name.txt"
	has "$tmp/$name.txt" "NAME"
	has "$tmp/$name.txt" "${name}"
	cmd=${name#telemachy}
	cmd=${cmd#-}
	# shellcheck disable=SC2086
	{ "$TLM_BIN" $cmd --help | grep -o -- '--[a-z][a-z0-9-]*' || true; } | sort -u >"$tmp/flags"
	while read -r flag; do
		has "$tmp/$name.txt" "$flag"
	done <"$tmp/flags"
done <"$tmp/have"
has "$tmp/telemachy.txt" "telemachy-run(1)"
has "$tmp/telemachy-run.txt" "EXIT STATUS"
echo "ok"
