#!/usr/bin/env bash
# Load benchmark of `telemachy serve` (bench/README.md, docs/performance.md).
#
#   bench/serve_load.sh
#
# Compiles bench/serve_load.c with cc and pkg-config's libcurl flags into a
# temporary directory (no CMake needed), starts `telemachy serve` on a free
# loopback port, and runs CLIENTS clients x REQUESTS requests twice: first
# each client on one keep-alive connection, then with a new connection per
# request.  Each run prints throughput (req/s), latency p50/p99/max (ms),
# the count of requests over 40 ms (the Nagle stall signature) and the
# connections opened, then the same per kind of request.  Each run gets a
# fresh server, so both start from an empty store.
#
# Environment:
#   TLM_BIN                the binary (default ./build-release/telemachy, from
#                          scripts/bootstrap --release; use a Release build)
#   TLM_BENCH_CLIENTS      concurrent clients (default 16)
#   TLM_BENCH_REQUESTS     requests per client (default 1000)
#   TLM_BENCH_THREADS      the server's --threads (default: the server's, 8)
#   TLM_BENCH_STRICT=1     exit 1 when a target is missed (keep-alive run:
#                          p99 < 5 ms, no request over 40 ms)
#   CC                     the C compiler (default cc)
#
# Exit status: 0, or 1 when a request failed (or a target was missed under
# TLM_BENCH_STRICT=1), 2 on a usage or setup problem.
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
bin=${TLM_BIN:-./build-release/telemachy}
clients=${TLM_BENCH_CLIENTS:-16}
requests=${TLM_BENCH_REQUESTS:-1000}
threads=${TLM_BENCH_THREADS:-}
cc=${CC:-cc}

die() { echo "serve_load.sh: $*" >&2; exit 2; }

[[ -x $bin ]] || die "no binary at '$bin' (set TLM_BIN, or build: scripts/bootstrap --release)"
[[ $clients =~ ^[1-9][0-9]*$ ]] || die "TLM_BENCH_CLIENTS must be a positive integer"
[[ $requests =~ ^[1-9][0-9]*$ ]] || die "TLM_BENCH_REQUESTS must be a positive integer"
[[ -z $threads || $threads =~ ^[1-9][0-9]*$ ]] || die "TLM_BENCH_THREADS must be a positive integer"
command -v "$cc" >/dev/null || die "no C compiler '$cc'"
pkg-config --exists libcurl || die "libcurl's pkg-config file is missing: apt-get install -y libcurl4-openssl-dev pkg-config"

build_type=unknown
cache="$(dirname "$bin")/CMakeCache.txt"
if [[ -f $cache ]]; then
	build_type=$(sed -n 's/^CMAKE_BUILD_TYPE:[A-Z]*=//p' "$cache")
	build_type=${build_type:-none}
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/tlm-bench-serve.XXXXXX")
server_pid=""
stop_server() {
	if [[ -n $server_pid ]]; then
		kill -TERM "$server_pid" 2>/dev/null || true
		# at most 10 s, then SIGKILL
		for _ in $(seq 100); do
			kill -0 "$server_pid" 2>/dev/null || break
			sleep 0.1
		done
		kill -KILL "$server_pid" 2>/dev/null || true
		wait "$server_pid" 2>/dev/null || true
		server_pid=""
	fi
}
trap 'stop_server; rm -rf "$work"' EXIT

# shellcheck disable=SC2046 # pkg-config prints a list of flags
"$cc" -O2 -o "$work/serve_load" "$here/serve_load.c" $(pkg-config --cflags --libs libcurl) -lpthread

# Starts a server; sets server_pid and url (waits at most 10 s for its URL line).
start_server() {
	local args=(serve -q --listen 127.0.0.1:0 --state-dir "$work/state")
	[[ -n $threads ]] && args+=(--threads "$threads")
	rm -rf "$work/state"
	: >"$work/url"
	"$bin" "${args[@]}" >"$work/url" 2>"$work/server.err" &
	server_pid=$!
	url=""
	for _ in $(seq 100); do
		url=$(head -n1 "$work/url")
		[[ -n $url ]] && break
		kill -0 "$server_pid" 2>/dev/null || break
		sleep 0.1
	done
	if [[ -z $url ]]; then
		cat "$work/server.err" >&2
		die "telemachy serve did not start"
	fi
}

echo "# telemachy serve load benchmark, $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
echo "# binary: $bin ($("$bin" --version 2>/dev/null | head -n1 || echo '?')), build type: $build_type"
echo "# machine: $(nproc) cores, $(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n1), $(uname -sr)"
echo "# $clients clients x $requests requests; server threads: ${threads:-default}; $(curl-config --version 2>/dev/null || echo libcurl)"
if [[ $build_type != Release ]]; then
	echo "# warning: not a Release build; figures are not comparable with docs/performance.md" >&2
fi

failed=0
missed=()
for mode in keepalive fresh; do
	start_server
	flags=(-c "$clients" -n "$requests" --label "$mode")
	[[ $mode == fresh ]] && flags+=(--fresh)
	"$work/serve_load" "$url" "${flags[@]}" | tee "$work/$mode.txt" || failed=1
	stop_server
	if [[ $mode == keepalive && -s $work/$mode.txt ]]; then
		line=$(head -n1 "$work/$mode.txt")
		p99=$(sed -n 's/.* p99_ms=\([0-9.]*\).*/\1/p' <<<"$line")
		stalls=$(sed -n 's/.* over40ms=\([0-9]*\).*/\1/p' <<<"$line")
		if awk -v p="$p99" 'BEGIN { exit !(p >= 5) }'; then
			missed+=("keep-alive p99 ${p99} ms (target < 5 ms)")
		fi
		if ((stalls > 0)); then
			missed+=("keep-alive: $stalls requests over 40 ms (target: none)")
		fi
	fi
done
echo
if ((${#missed[@]} > 0)); then
	echo "# targets missed:"
	printf '#   %s\n' "${missed[@]}"
else
	echo "# all targets met (keep-alive: p99 < 5 ms, no request over 40 ms)"
fi
if ((failed)); then
	exit 1
fi
if ((${#missed[@]} > 0)) && [[ ${TLM_BENCH_STRICT:-0} == 1 ]]; then
	exit 1
fi
exit 0
