#!/usr/bin/env bash
# Rebar's VST3 in Ardour 7, headless: scans the bundle with Ardour's own VST3 scanner, then runs
# rebar_session.lua in ardour7-lua with the "None (Dummy)" backend at one engine block size
# (48 kHz), and prints a PASS/FAIL summary with the MIDI counts of each pass. Exits 0 on PASS,
# 1 on FAIL, 2 when it cannot run (no ardour7-lua, no bundle).
#
#   tests/hosts/ardour/run.sh BLOCK_SIZE
#
# Everything Ardour writes (its configuration, the scanner's cache, the session) goes to a temp
# folder, removed afterwards unless REBAR_KEEP=1. Ardour's own output is printed only on FAIL,
# or always with REBAR_VERBOSE=1.
#
# Environment:
#   REBAR_VST3_BUNDLE  the bundle to test (default: target/bundled/Rebar.vst3); it is copied, so
#                      a rebuild during the run does not change what Ardour loads
#   ARDOUR_LUA         the Lua session tool (default: ardour7-lua on PATH)
#   REBAR_SPEED        the dummy backend's driver (default "Normal Speed", i.e. real time)
#   REBAR_MODEL_WAIT   seconds to wait for the variations after Regenerate (default 5)
#   REBAR_TIMEOUT      seconds before the Ardour run is killed (default 110)
set -u

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../../.." && pwd)"
block="${1:-}"
if ! [[ "$block" =~ ^[0-9]+$ ]]; then
	echo "usage: $0 BLOCK_SIZE" >&2
	exit 2
fi

ardour_lua="${ARDOUR_LUA:-$(command -v ardour7-lua || true)}"
if [ -z "$ardour_lua" ] || [ ! -x "$ardour_lua" ]; then
	echo "SKIP: ardour7-lua not found (Debian/Ubuntu package: ardour)" >&2
	exit 2
fi
bundle="${REBAR_VST3_BUNDLE:-$root/target/bundled/Rebar.vst3}"
if [ ! -d "$bundle" ]; then
	echo "ERROR: no VST3 bundle at $bundle (build it with: cargo xtask bundle rebar-plugin --release)" >&2
	exit 2
fi
# ardour7-lua is a wrapper that sets Ardour's paths and runs .../luasession; the scanner sits
# next to luasession.
libdir="$(sed -n 's/^export ARDOUR_DLL_PATH=//p' "$ardour_lua" 2>/dev/null)"
libdir="${libdir:-/usr/lib/ardour7}"
scanner="$libdir/ardour-vst3-scanner"

tmp="$(mktemp -d "${TMPDIR:-/tmp}/rebar-ardour-$block.XXXXXX")"
cleanup() { [ "${REBAR_KEEP:-0}" = 1 ] && echo "kept $tmp" >&2 || rm -rf "$tmp"; }
trap cleanup EXIT

export HOME="$tmp/home"
export XDG_CONFIG_HOME="$tmp/config"
export XDG_CACHE_HOME="$tmp/cache"
export XDG_DATA_HOME="$tmp/data"
export VST3_PATH="$tmp/vst3"
mkdir -p "$HOME" "$XDG_CONFIG_HOME/ardour7/scripts" "$XDG_CACHE_HOME" "$XDG_DATA_HOME" "$VST3_PATH"
cp -R "$bundle" "$VST3_PATH/Rebar.vst3"
# Ardour takes a cache file as stale unless it is newer than the module, and the scanner writes
# whole seconds: a module copied in the same second as the scan would not load.
find "$VST3_PATH/Rebar.vst3" -exec touch -h -d '2 seconds ago' {} +
cp "$here/rebar_test_notes.lua" "$here/rebar_test_counter.lua" "$XDG_CONFIG_HOME/ardour7/scripts/"
log="$tmp/ardour.log"

t0=$(date +%s.%N)
# Index the bundle as Ardour does before a plugin can be added: its scanner loads the module in
# a process of its own and writes the cache that Ardour reads.
if [ -x "$scanner" ]; then
	LD_LIBRARY_PATH="$libdir${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" \
		"$scanner" -f "$VST3_PATH/Rebar.vst3" >"$tmp/scan.log" 2>&1
	scan_rc=$?
else
	echo "no VST3 scanner at $scanner" >"$tmp/scan.log"
	scan_rc=127
fi
t1=$(date +%s.%N)

REBAR_BLOCK="$block" REBAR_SESSION_DIR="$tmp/session" \
	timeout --kill-after=10 "${REBAR_TIMEOUT:-110}" "$ardour_lua" "$here/rebar_session.lua" </dev/null >"$log" 2>&1
rc=$?
t2=$(date +%s.%N)

result="$(grep -E '^RESULT ' "$log" | tail -n 1)"
status=FAIL
[ "$result" = "RESULT PASS" ] && status=PASS
if [ $rc -eq 124 ] || [ $rc -eq 137 ]; then
	result="timed out after ${REBAR_TIMEOUT:-110} s${result:+, $result}"
elif [ -z "$result" ]; then
	result="no RESULT line: the session script stopped early (exit $rc)"
fi

if [ "$status" != PASS ] || [ "${REBAR_VERBOSE:-0}" = 1 ]; then
	echo "---- ardour-vst3-scanner (exit $scan_rc) ----"
	cat "$tmp/scan.log"
	echo "---- ardour7-lua (exit $rc) ----"
	grep -v -E '^(CHECK|COUNTS|RESULT) ' "$log"
	echo "----"
fi
grep -E '^(COUNTS|CHECK) ' "$log"
awk -v b="$block" -v s="$status" -v t0="$t0" -v t1="$t1" -v t2="$t2" -v r="$result" \
	'BEGIN { printf "ardour block=%s: %s (scan %.1f s, session %.1f s): %s\n", b, s, t1 - t0, t2 - t1, r }'
[ "$status" = PASS ]
