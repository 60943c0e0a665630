#!/usr/bin/env bash
# `cmake --install` into a temporary prefix puts every piece where README.md
# ("Install") says, the public headers each compile alone, and a program
# built with `pkg-config --cflags --libs telemachy` against the installed
# library (shared, then the static archive) loads a workflow and runs.
set -euo pipefail

. "$(dirname "$0")/lib/common.bash"

build=$(dirname "$TLM_BIN")
p=$tmp/prefix
cmake --install "$build" --prefix "$p" >"$tmp/install.log" 2>&1 ||
	{ cat "$tmp/install.log" >&2; fail "cmake --install exited $?"; }

# --- the layout ---------------------------------------------------------------
for f in bin/telemachy lib/libtelemachy.a lib/pkgconfig/telemachy.pc \
	share/telemachy/workflow.schema.json \
	share/bash-completion/completions/telemachy share/zsh/site-functions/_telemachy \
	share/fish/vendor_completions.d/telemachy.fish share/man/man1/telemachy.1; do
	[ -f "$p/$f" ] || fail "not installed: $f"
done
"$p/bin/telemachy" --help | awk '/^Commands:/ { on = 1; next } on && NF == 0 { on = 0 } on { print $1 }' |
	while read -r c; do
		[ -f "$p/share/man/man1/telemachy-$c.1" ] || fail "not installed: share/man/man1/telemachy-$c.1"
	done
# The shared library: the real file, the SONAME link, the link-time name.
real=$(cd "$p/lib" && ls libtelemachy.so.*.*.*)
soname=$(objdump -p "$p/lib/$real" | awk '$1 == "SONAME" { print $2 }')
[ -n "$soname" ] || fail "$real has no SONAME"
[ -L "$p/lib/$soname" ] || fail "no $soname link"
[ -L "$p/lib/libtelemachy.so" ] || fail "no libtelemachy.so link"
"$p/bin/telemachy" version >"$tmp/version" || fail "installed telemachy version exited $?"
cmp -s "$p/share/telemachy/workflow.schema.json" "$TLM_SOURCE_DIR/src/spec/schema.json" ||
	fail "installed schema differs from src/spec/schema.json"
[ ! -e "$p/include/telemachy/server.h" ] || fail "server.h installed without its library"
[ ! -e "$p/include/telemachy/ui.h" ] || fail "ui.h installed without its library"

# --- only the public API is exported (docs/library.md) ---------------------------
nm -D --defined-only "$p/lib/$real" | awk '$2 ~ /^[TDBRVW]$/ { sub(/@.*/, "", $3); print $3 }' |
	sort -u >"$tmp/exported"
! grep -v '^tlm_' "$tmp/exported" >"$tmp/bad" || { cat "$tmp/bad" >&2; fail "exports symbols outside tlm_"; }
! grep '__' "$tmp/exported" >"$tmp/bad" || { cat "$tmp/bad" >&2; fail "exports module internals"; }
for internal in tlm_spawn_detached tlm_db_prepare tlm_redact_url tlm_json_loadb tlm_strmap_put; do
	! grep -qx "$internal" "$tmp/exported" || fail "exports the internal $internal"
done
for api in tlm_engine_run tlm_engine_teardown tlm_spec_load tlm_spec_parse tlm_plan_new \
	tlm_journal_open tlm_journal_runs tlm_report_run tlm_error_set; do
	grep -qx "$api" "$tmp/exported" || fail "does not export $api"
done

# --- every public header compiles alone (the installed ones, server.h, ui.h) ---
export PKG_CONFIG_PATH=$p/lib/pkgconfig
cflags=$(pkg-config --cflags telemachy) || fail "pkg-config --cflags telemachy exited $?"
for h in "$p"/include/telemachy/*.h "$TLM_SOURCE_DIR/include/telemachy/server.h" \
	"$TLM_SOURCE_DIR/include/telemachy/ui.h"; do
	printf '#include "telemachy/%s"\n' "$(basename "$h")" >"$tmp/h.c"
	# shellcheck disable=SC2086
	cc -std=c11 -Wall -Wextra -Werror -pedantic -fsyntax-only $cflags -I"$TLM_SOURCE_DIR/include" \
		"$tmp/h.c" 2>"$tmp/h.err" || { cat "$tmp/h.err" >&2; fail "$(basename "$h") does not compile alone"; }
done

# --- a program against the installed library ------------------------------------
# A library built with the sanitizers (scripts/bootstrap --sanitize) needs
# its programs built with them too.
san=""
! objdump -p "$p/lib/$real" | grep 'NEEDED  *libasan' >/dev/null || san=-fsanitize=address,undefined
[ "$(pkg-config --modversion telemachy)" = "$(sed -n 's/^project(telemachy VERSION \([0-9.]*\).*/\1/p' \
	"$TLM_SOURCE_DIR/CMakeLists.txt")" ] || fail "pkg-config --modversion is not the project's version"
cat >"$tmp/prog.c" <<'C'
#include <stdio.h>
#include <string.h>

#include <telemachy/spec.h>

int main(void)
{
	static const char yaml[] = "apiVersion: telemachy/v1\n"
				   "metadata: {name: installed}\n"
				   "agents: [{name: a1, program: none}]\n";
	tlm_spec *spec = NULL;
	tlm_diags diags = TLM_DIAGS_INIT;
	tlm_error err = TLM_ERROR_INIT;
	int rc = tlm_spec_parse(&spec, "t.yaml", yaml, strlen(yaml), &diags, &err);

	if (rc != 0) {
		fprintf(stderr, "tlm_spec_parse: %d %s\n", rc, diags.count ? diags.items[0].message : err.message);
		return 1;
	}
	printf("%s %zu %s\n", spec->name, spec->nagents,
	       strstr(tlm_spec_json_schema(), "2020-12") ? "schema" : "no-schema");
	tlm_spec_free(spec);
	tlm_diags_clear(&diags);
	return 0;
}
C
# shellcheck disable=SC2046,SC2086
cc -std=c11 -Wall -Werror $san -o "$tmp/prog" "$tmp/prog.c" $(pkg-config --cflags --libs telemachy) \
	2>"$tmp/cc.err" || { cat "$tmp/cc.err" >&2; fail "linking against the shared library failed"; }
objdump -p "$tmp/prog" | grep "NEEDED  *$soname" >/dev/null || fail "the program does not need $soname"
LD_LIBRARY_PATH=$p/lib "$tmp/prog" >"$tmp/prog.out" || fail "the program exited $?"
has "$tmp/prog.out" "installed 1 schema"

# The static archive with the dependencies' shared libraries, as the .pc file
# declares them (Requires.private, Libs.private).  `pkg-config --static`
# would also list the dependencies' own private libraries (libcurl's:
# nghttp2, ssh2, ldap...), which only a system with their static builds has.
deps=$(pkg-config --print-requires-private telemachy | awk '{ print $1 }')
# shellcheck disable=SC2086
libs="$(pkg-config --libs jansson $deps) $(sed -n 's/^Libs.private: //p' "$p/lib/pkgconfig/telemachy.pc")"
# shellcheck disable=SC2086
cc -std=c11 -Wall -Werror $san -o "$tmp/prog-static" "$tmp/prog.c" $cflags "$p/lib/libtelemachy.a" $libs \
	2>"$tmp/cc.err" || { cat "$tmp/cc.err" >&2; fail "linking against libtelemachy.a failed"; }
! objdump -p "$tmp/prog-static" | grep "NEEDED  *libtelemachy" >/dev/null || fail "the static program needs libtelemachy.so"
"$tmp/prog-static" >"$tmp/prog.out" || fail "the static program exited $?"
has "$tmp/prog.out" "installed 1 schema"

# --- examples/embed.c runs a workflow from C against the installed serve --------
# shellcheck disable=SC2046,SC2086
cc -std=c11 -Wall -Wextra -Werror $san -o "$tmp/embed" "$TLM_SOURCE_DIR/examples/embed.c" \
	$(pkg-config --cflags --libs telemachy) 2>"$tmp/cc.err" ||
	{ cat "$tmp/cc.err" >&2; fail "examples/embed.c does not build"; }
"$p/bin/telemachy" serve -q --listen 127.0.0.1:0 --state-dir "$tmp/serve" \
	>"$tmp/serve.url" 2>"$tmp/serve.err" </dev/null &
spid=$!
trap 'kill $spid 2>/dev/null || true; rm -rf "$tmp"' EXIT
for _ in $(seq 1 100); do [ -s "$tmp/serve.url" ] && break; sleep 0.1; done
url=$(head -n1 "$tmp/serve.url")
[ -n "$url" ] || { cat "$tmp/serve.err" >&2; fail "serve did not start"; }
AGAMEMNON_URL=$url TELEMACHY_STATE_DIR=$tmp/state LD_LIBRARY_PATH=$p/lib \
	"$tmp/embed" "$TLM_SOURCE_DIR/examples/hello-world.yaml" >"$tmp/embed.out" 2>"$tmp/embed.err" ||
	{ cat "$tmp/embed.out" "$tmp/embed.err" >&2; fail "examples/embed.c's run exited $?"; }
has "$tmp/embed.out" "plan: 1 tasks in 1 waves"
has "$tmp/embed.out" "hello/Say hello (attempt 1): completed"
has "$tmp/embed.out" ": completed, 0 leftovers"
printf 'apiVersion: telemachy/v1\nmetadata: {name: x}\nagents: [{name: a, program: none, bogus: 1}]\n' \
	>"$tmp/bad.yaml"
rc=0
AGAMEMNON_URL=$url LD_LIBRARY_PATH=$p/lib "$tmp/embed" "$tmp/bad.yaml" >/dev/null 2>"$tmp/embed.err" || rc=$?
[ "$rc" -eq 2 ] || fail "examples/embed.c on an invalid workflow exited $rc, want 2"
has "$tmp/embed.err" "bad.yaml:3:"
kill $spid
wait $spid 2>/dev/null || true
echo "ok"
