#!/usr/bin/env bash
# `cpack -G DEB` makes a Debian package of the build that TLM_BIN is in:
# its control fields, its dependencies (dpkg-shlibdeps), every file where
# README.md ("Install") says; unpacked, its telemachy runs.
#
# With TLM_PACKAGE_INSTALL=1, as root, on a machine without a telemachy
# package (.ci/run does that, with the release build), it also installs the
# package with `dpkg -i`, uses it as a user would, and removes it with
# `dpkg --purge`.  Otherwise that part is skipped and the test says so (exit 77,
# "Skipped" in ctest): the other checks have run.
#
# Needs dpkg-dev (dpkg-shlibdeps; scripts/bootstrap installs it).
set -euo pipefail

. "$(dirname "$0")/lib/common.bash"

command -v dpkg-shlibdeps >/dev/null || fail "dpkg-shlibdeps is not installed (dpkg-dev; scripts/bootstrap installs it)"
build=$(cd "$(dirname "$TLM_BIN")" && pwd)
cpack --config "$build/CPackConfig.cmake" -G DEB -B "$tmp/pkg" >"$tmp/cpack.log" 2>&1 ||
	{ cat "$tmp/cpack.log" >&2; fail "cpack -G DEB exited $?"; }
debs=("$tmp"/pkg/telemachy_*.deb)
[ "${#debs[@]}" -eq 1 ] && [ -f "${debs[0]}" ] || fail "cpack made no single telemachy_*.deb"
deb=${debs[0]}

# --- control fields -----------------------------------------------------------------
field() { dpkg-deb -f "$deb" "$1"; }
[ "$(field Package)" = telemachy ] || fail "Package: $(field Package)"
version=$("$TLM_BIN" version | awk '{ print $2 }')
[ "$(field Version)" = "$version" ] || fail "Version: $(field Version), want $version"
[ "$(field Architecture)" = "$(dpkg --print-architecture)" ] || fail "Architecture: $(field Architecture)"
[ "$(field Section)" = utils ] || fail "Section: $(field Section)"
field Maintainer | grep '<.*@.*>' >/dev/null || fail "Maintainer has no address: $(field Maintainer)"
field Description | grep 'workflow' >/dev/null || fail "Description: $(field Description)"
# The runtime libraries of everything linked in (the package names carry the
# SONAME's version: libnats3.4, libssl3...).
field Depends | tr ',' '\n' | sed 's/^ *//; s/[ (].*//' >"$tmp/depends"
for lib in libc6 libyaml-0- libjansson libyajl libnats libsqlite3- libpq5 libcurl libssl libmicrohttpd libgnutls; do
	grep -q "^$lib" "$tmp/depends" || { cat "$tmp/depends" >&2; fail "Depends has no $lib*"; }
done
dpkg-deb -I "$deb" shlibs | grep '^libtelemachy ' >/dev/null || fail "no shlibs entry for libtelemachy"

# --- contents ------------------------------------------------------------------------
dpkg-deb -c "$deb" | awk '{ print $6 }' | sed 's|^\./|/|' >"$tmp/files"
for f in /usr/bin/telemachy /usr/lib/libtelemachy.a /usr/lib/libtelemachy.so \
	/usr/lib/pkgconfig/telemachy.pc /usr/include/telemachy/spec.h /usr/share/man/man1/telemachy.1 \
	/usr/share/man/man1/telemachy-run.1 /usr/share/bash-completion/completions/telemachy \
	/usr/share/zsh/site-functions/_telemachy /usr/share/fish/vendor_completions.d/telemachy.fish \
	/usr/share/telemachy/workflow.schema.json; do
	grep -qx -- "$f" "$tmp/files" || fail "the package has no $f"
done
dpkg-deb -x "$deb" "$tmp/root"
"$tmp/root/usr/bin/telemachy" version >"$tmp/version" || fail "the packaged telemachy exited $?"
has "$tmp/version" "telemachy $version"

# --- dpkg -i, use, dpkg --purge ----------------------------------------------------------
if [ "${TLM_PACKAGE_INSTALL:-0}" != 1 ] || [ "$(id -u)" -ne 0 ]; then
	echo "package built and checked; dpkg -i not tried (needs root and TLM_PACKAGE_INSTALL=1)"
	exit 77
fi
if dpkg-query -W telemachy >/dev/null 2>&1; then
	echo "a telemachy package is installed already: dpkg -i not tried"
	exit 77
fi
trap 'dpkg --purge telemachy >/dev/null 2>&1 || true; rm -rf "$tmp"' EXIT
dpkg -i "$deb" >"$tmp/dpkg.log" 2>&1 || { cat "$tmp/dpkg.log" >&2; fail "dpkg -i exited $?"; }
[ "$(command -v telemachy)" = /usr/bin/telemachy ] || fail "telemachy is not /usr/bin/telemachy in PATH"
telemachy version >"$tmp/version" || fail "telemachy version exited $?"
has "$tmp/version" "telemachy $version"
telemachy validate "$TLM_SOURCE_DIR/examples/hello-world.yaml" >/dev/null || fail "telemachy validate exited $?"
man -w telemachy-run >/dev/null || fail "man -w telemachy-run found no page"
[ "$(pkg-config --modversion telemachy)" = "$version" ] || fail "pkg-config does not find telemachy.pc"
ldconfig -p | grep 'libtelemachy\.so\.' >/dev/null || fail "ldconfig does not know libtelemachy"
dpkg --purge telemachy >"$tmp/dpkg.log" 2>&1 || { cat "$tmp/dpkg.log" >&2; fail "dpkg --purge exited $?"; }
[ ! -e /usr/bin/telemachy ] || fail "dpkg --purge left /usr/bin/telemachy"
echo "ok"
