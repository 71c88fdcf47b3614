#!/usr/bin/env bash
# Runs a Windows program under Wine in Rebar's own Wine prefix: cargo's runner for the
# x86_64-pc-windows-gnu target (.cargo/config.toml), so that
#
#   cargo test --target x86_64-pc-windows-gnu -p rebar-tests --test plugin_clap --test plugin_vst3
#
# builds the end-to-end tests and the plugin DLL for Windows and runs them under Wine.
#
#   tests/hosts/wine/run.sh PROGRAM.exe [ARGS...]
#
# The prefix lives in target/wine-null or target/wine-x11 (below; WINEPREFIX overrides it) and is
# made on first use: wineboot,
# then process_prng.c built with mingw-w64 into system32's bcryptprimitives.dll, which Wine 8.0
# lacks and every Rust program built for Windows imports. Output from Wine itself is silenced
# (WINEDEBUG=-all) unless WINEDEBUG is set.
# Needs: wine wine64 gcc-mingw-w64-x86-64.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../../.." && pwd)"
(($#)) || { echo "usage: $0 PROGRAM.exe [ARGS...]" >&2; exit 2; }
for tool in wine x86_64-w64-mingw32-gcc; do
	command -v "$tool" >/dev/null || { echo "$tool is not installed (apt-get install wine wine64 gcc-mingw-w64-x86-64)" >&2; exit 2; }
done
# Two prefixes: without a display, Wine's null graphics driver (windows exist, the VST3 wrapper's
# hidden message window among them, but nothing is drawn); with DISPLAY set (an X server such as
# Xvfb), Wine's X11 driver, which the drag-and-drop test needs for a real pointer.
if [ -n "${DISPLAY:-}" ]; then graphics=x11; else graphics=null; fi
export WINEPREFIX="${WINEPREFIX:-$root/target/wine-$graphics}"
export WINEDEBUG="${WINEDEBUG:--all}"
export WINEARCH=win64

shim="$WINEPREFIX/drive_c/windows/system32/bcryptprimitives.dll"
if [ ! -f "$shim" ]; then
	mkdir -p "$(dirname "$WINEPREFIX")"
	exec 9>"$WINEPREFIX.lock"
	flock 9
	if [ ! -f "$shim" ]; then
		wineboot --init >/dev/null 2>&1
		if [ "$graphics" = null ]; then
			wine reg add 'HKCU\Software\Wine\Drivers' /v Graphics /d null /f >/dev/null 2>&1
		fi
		wineserver --wait
		x86_64-w64-mingw32-gcc -O2 -shared -o "$shim.tmp" "$here/process_prng.c" -ladvapi32
		mv "$shim.tmp" "$shim"
	fi
	flock -u 9
fi
exec wine "$@"
