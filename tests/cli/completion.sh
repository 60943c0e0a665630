#!/usr/bin/env bash
# The shell completions (completions/): what scripts/gen-docs makes of the
# built binary's --help texts (regenerate with `cmake --build build --target
# gen-docs`); each loads in its shell and completes commands, flags, flag
# values and workflow files.
#
# Needs zsh and fish (scripts/bootstrap installs them).
set -euo pipefail

. "$(dirname "$0")/lib/common.bash"

comp=$TLM_SOURCE_DIR/completions
for sh in zsh fish; do
	command -v "$sh" >/dev/null || fail "$sh is not installed (scripts/bootstrap installs it)"
done

# --- the committed files are what the generator makes now -------------------------
"$PY" "$TLM_SOURCE_DIR/scripts/gen-docs" "$TLM_BIN" "$tmp/gen" || fail "scripts/gen-docs exited $?"
diff -ru "$comp" "$tmp/gen/completions" >"$tmp/diff" ||
	{ cat "$tmp/diff" >&2; fail "completions/ is stale: run cmake --build build --target gen-docs"; }

# Files to complete: two workflows, one other file, a directory.
mkdir "$tmp/w" "$tmp/w/sub"
touch "$tmp/w/a.yaml" "$tmp/w/b.yml" "$tmp/w/c.txt"
cd "$tmp/w"

# --- bash: COMP_WORDS as bash sets them, the words _telemachy offers ------------
# bash_comp WANT WORD...: the completions of the last WORD are exactly WANT.
bash_comp() {
	local want=$1 got
	shift
	got=$(bash --norc --noprofile -c '
		source "$1"; shift
		complete -p telemachy | grep -- "-F _telemachy" >/dev/null || exit 3
		COMP_WORDS=("$@"); COMP_CWORD=$((${#COMP_WORDS[@]} - 1))
		_telemachy
		printf "%s\n" "${COMPREPLY[@]}" | sort | xargs' _ "$comp/telemachy.bash" "$@") ||
		fail "bash: completing \"$*\" exited $?"
	[ "$got" = "$want" ] || fail "bash: \"$*\" completes to \"$got\", want \"$want\""
}
bash_comp "run" telemachy ru
bash_comp "--output" telemachy run --ou
bash_comp "json text" telemachy run --output ""
bash_comp "plan" telemachy --output json pl
bash_comp "mermaid" telemachy plan --graph m
bash_comp "--max-concurrent --max-connections" telemachy resume --max-con
bash_comp "a.yaml b.yml sub" telemachy validate ""
bash_comp "" telemachy validate c
bash_comp "sub" telemachy list --state-dir ""
bash_comp "a.yaml b.yml c.txt sub" telemachy serve --state ""
bash_comp "" telemachy list --state ""

# --- zsh: a real completion in an interactive zsh (zpty), one TAB ----------------
# zsh_comp WANT LINE: LINE followed by a TAB becomes WANT.
zsh_comp() {
	local got
	rm -f "$tmp/zout"
	timeout 20 zsh -f -c '
		zmodload zsh/zpty
		zpty z zsh -f -i
		zpty -w z "PS1= RPROMPT=; fpath=($1 \$fpath); autoload -U compinit; compinit -u -D"
		zpty -w z "(( \$+_comps[telemachy] )) || print nocomp >$3"
		zpty -w z "_out() { print -r -- \"\$BUFFER\" >>$3; BUFFER=; zle accept-line }; zle -N _out; bindkey ^X _out"
		zpty -w -n z "$2"$'"'"'\t\x18'"'"'
		for i in {1..100}; do [[ -s $3 ]] && break; sleep 0.1; done
		zpty -d z' _ "$comp" "$2" "$tmp/zout" || fail "zsh: completing \"$2\" exited $?"
	got=$(cat "$tmp/zout" 2>/dev/null || true)
	[ "$got" = "$1" ] || fail "zsh: \"$2<TAB>\" gives \"$got\", want \"$1\""
}
zsh_comp "telemachy run " "telemachy ru"
zsh_comp "telemachy run --output " "telemachy run --ou"
zsh_comp "telemachy run --output json " "telemachy run --output j"
zsh_comp "telemachy plan --graph mermaid " "telemachy plan --graph m"
zsh_comp "telemachy validate a.yaml " "telemachy validate a"

# --- fish: complete -C --------------------------------------------------------------
# fish_comp WANT LINE: the words fish offers for LINE are exactly WANT.
fish_comp() {
	local got
	got=$(fish --no-config -c 'source $argv[1]; complete -C$argv[2]' "$comp/telemachy.fish" "$2" |
		cut -f1 | sort | xargs) || fail "fish: completing \"$2\" exited $?"
	[ "$got" = "$1" ] || fail "fish: \"$2\" completes to \"$got\", want \"$1\""
}
fish_comp "run" "telemachy ru"
fish_comp "--output" "telemachy run --ou"
fish_comp "json text" "telemachy run --output "
fish_comp "plan" "telemachy --output json pl"
fish_comp "a.yaml b.yml sub/" "telemachy validate "
fish_comp "--max-concurrent --max-connections" "telemachy resume --max-con"
echo "ok"
