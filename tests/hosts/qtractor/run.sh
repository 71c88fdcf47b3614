#!/usr/bin/env bash
# Rebar's CLAP in Qtractor 0.9.31 (Debian bookworm), headless: Xvfb and JACK's dummy driver.
# Qtractor will not start its engine without an ALSA sequencer (/dev/snd/seq: "The audio/MIDI
# engine could not be started"), so fakeseq.c, LD_PRELOADed, fakes one: Qtractor's snd_seq_*
# calls succeed and MIDI sent to the "sequencer" is dropped. Plugins on a MIDI track still get
# the clip's notes: Qtractor feeds them through its own MIDI manager, not through ALSA.
#
#   tests/hosts/qtractor/run.sh NUM DEN [PLAY_SECONDS]
#
# mkfiles.py writes the session: one MIDI track playing 8 bars of quarter notes in NUM/DEN at
# 120 quarter notes a minute, Rebar on it with Capture = "Bars from song start", 8 bars (set in
# Rebar's state). Loading that state makes Qtractor count the session modified, so the script
# saves first (SIGUSR1 = File > Save), then plays from the start for PLAY_SECONDS (default 20;
# 8 bars take 16 s), stops, reads the window title ("[modified]" when Qtractor counts a change),
# saves again and decodes Rebar's state from the .qtr (qtrstate.py). Then it opens Rebar's
# editor and greps Qtractor's output for "resize hints".
# PASS: a captured clip with notes, the title marked modified after the play, no "resize hints".
# Exits 0 PASS, 1 FAIL, 2 cannot run. About 60 s a run on 2 cores.
#
# Environment: REBAR_CLAP (default target/debug/deps/librebar_plugin.so, the plugin `cargo
# test` builds, else target/bundled/Rebar.clap; copied, so a rebuild during the run does not matter), REBAR_KEEP=1
# keeps the temp folder (logs, session, screenshots), REBAR_BLOCK (JACK period, default 1024),
# REBAR_VERBOSE=1 prints Qtractor's output.
# Needs: qtractor jackd2 xvfb xdotool gcc libasound2-dev python3 (imagemagick: screenshots).
set -u
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../../.." && pwd)"
num="${1:-}"; den="${2:-}"; play="${3:-20}"
if ! [[ "$num" =~ ^[0-9]+$ && "$den" =~ ^[0-9]+$ ]]; then echo "usage: $0 NUM DEN [PLAY_SECONDS]" >&2; exit 2; fi
for t in qtractor jackd Xvfb xdotool gcc python3; do
	command -v "$t" >/dev/null || { echo "SKIP: $t not found" >&2; exit 2; }
done
clap="${REBAR_CLAP:-}"
[ -z "$clap" ] && for c in "$root/target/debug/deps/librebar_plugin.so" "$root/target/bundled/Rebar.clap"; do
	[ -f "$c" ] && { clap="$c"; break; }; done
[ -f "$clap" ] || { echo "ERROR: no Rebar CLAP binary" >&2; exit 2; }

tmp="$(mktemp -d "${TMPDIR:-/tmp}/rebar-qtractor-$num$den.XXXXXX")"
pids=()
cleanup() {
	# Newest first (Qtractor, then JACK, then the display); Qtractor needs no clean exit.
	local i
	# A polite stop first: JACK removes its shared-memory entries only when it exits cleanly.
	for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
		kill "${pids[i]}" 2>/dev/null; sleep 1; kill -9 "${pids[i]}" 2>/dev/null
	done
	[ "${REBAR_KEEP:-0}" = 1 ] && echo "kept $tmp" >&2 || rm -rf "$tmp"
}
trap cleanup EXIT
export HOME="$tmp/home" XDG_CONFIG_HOME="$tmp/config" XDG_RUNTIME_DIR="$tmp/run"
mkdir -p "$HOME/.clap" "$XDG_CONFIG_HOME" "$XDG_RUNTIME_DIR"; chmod 700 "$XDG_RUNTIME_DIR"
cp "$clap" "$HOME/.clap/Rebar.clap"
# Qtractor's settings: its messages (and the plugins' stderr) to files, no autosave.
mkdir -p "$XDG_CONFIG_HOME/rncbc.org"
cat >"$XDG_CONFIG_HOME/rncbc.org/Qtractor.conf" <<CONF
[AutoSave]
Enabled=false

[Options]
Display\\StdoutCapture=false
Logging\\MessagesLog=true
Logging\\MessagesLogPath=$tmp/messages.log
CONF
gcc -shared -fPIC -O1 -o "$tmp/fakeseq.so" "$here/fakeseq.c" -lasound || { echo "ERROR: shim build failed (libasound2-dev?)" >&2; exit 2; }

# A display and a JACK server of our own.
disp=":$(( 100 + RANDOM % 800 ))"
Xvfb "$disp" -screen 0 1600x1000x24 >"$tmp/xvfb.log" 2>&1 & pids+=($!); disown $!
# JACK lists its servers in /dev/shm; a server killed hard leaves its entries behind, and after
# a handful JACK refuses to start another ("Too many servers already active"). With no jackd
# running, every entry there is stale.
pgrep -x jackd >/dev/null || rm -f /dev/shm/jack-shm-registry /dev/shm/jack_* /dev/shm/jack-*
export JACK_DEFAULT_SERVER="rebar-tests"
jackd --no-realtime -d dummy -r 48000 -p "${REBAR_BLOCK:-1024}" >"$tmp/jackd.log" 2>&1 & pids+=($!); disown $!
sleep 2
export DISPLAY="$disp"

# Capture = "Bars from song start", Capture bars = 8, set in the state mkfiles.py writes.
REBAR_SET_VIA=state python3 "$here/mkfiles.py" "$tmp/s" "$num" "$den" 8 "$HOME/.clap/Rebar.clap" '{"Capture": [13, 1]}' >/dev/null || exit 2
t0=$(date +%s)
( cd "$tmp/s" && LD_PRELOAD="$tmp/fakeseq.so" exec qtractor "$tmp/s/session.qtr" >"$tmp/qtractor.log" 2>&1 ) & qpid=$!; pids+=($qpid); disown $qpid
win=""
for _ in $(seq 60); do
	win="$(xdotool search --name 'session\.qtr' 2>/dev/null | head -1)"
	[ -n "$win" ] && grep -q "Open session" "$tmp/qtractor.log" 2>/dev/null && break
	sleep 0.5
done
[ -n "$win" ] || { echo "FAIL: no Qtractor window"; cat "$tmp/qtractor.log"; exit 1; }
sleep 2
title_load="$(xdotool getwindowname "$win")"
# Loading Rebar's state makes it rescan its parameter values, which Qtractor counts as a change:
# save once so that the play is the only thing that can mark the session modified.
cp "$tmp/s/session.qtr" "$tmp/s/session.orig.qtr"
kill -USR1 "$qpid"
for _ in $(seq 20); do sleep 0.5; cmp -s "$tmp/s/session.qtr" "$tmp/s/session.orig.qtr" || break; done
sleep 1
title0="$(xdotool getwindowname "$win")"
xdotool windowfocus --sync "$win" 2>/dev/null; sleep 0.3
xdotool key --window "$win" space          # Transport > Play
sleep "$play"
xdotool key --window "$win" space          # stop
sleep 2
title1="$(xdotool getwindowname "$win")"
command -v import >/dev/null && import -window root "$tmp/after-play.png" 2>/dev/null
cp "$tmp/s/session.qtr" "$tmp/s/session.before.qtr"
kill -USR1 "$qpid"                          # File > Save
for _ in $(seq 20); do sleep 0.5; cmp -s "$tmp/s/session.qtr" "$tmp/s/session.before.qtr" || break; done
sleep 1
title2="$(xdotool getwindowname "$win")"
# Open Rebar's editor (double-click on the plugin in the track list: Qtractor's layout is the same
# on every fresh start at this screen size), so that Qtractor's GUI messages show up in the log.
gui="not opened"
xdotool mousemove 172 180 click --repeat 2 --delay 80 1
for _ in $(seq 20); do
	sleep 0.5
	xdotool search --name '^Rebar - ' >/dev/null 2>&1 && { gui="opened"; break; }
done
sleep 2
command -v import >/dev/null && import -window root "$tmp/editor.png" 2>/dev/null
t1=$(date +%s)
state="$(python3 "$here/qtrstate.py" "$tmp/s/session.qtr")"
resize="$(cat "$tmp/qtractor.log" "$tmp/messages.log" 2>/dev/null | grep -ci 'resize hints')"
echo "$num/$den: Rebar $(md5sum <"$clap" | cut -c1-12), block ${REBAR_BLOCK:-1024}, played ${play}s, run $((t1 - t0))s"
echo "  title at load:     $title_load"
echo "  title after save:  $title0"
echo "  title after play:  $title1"
echo "  title after save2: $title2"
echo "  rebar state:       $state"
echo "  Rebar editor:      $gui"
echo "  'resize hints' lines in Qtractor's log: $resize"
[ "${REBAR_VERBOSE:-0}" = 1 ] && cat "$tmp/qtractor.log" "$tmp/messages.log"
ok=1
echo "$state" | grep -q '"clip": null' && { echo "  FAIL: nothing captured"; ok=0; }
echo "$state" | grep -q '"notes": [1-9]' || { echo "  FAIL: no captured notes"; ok=0; }
[ "$title1" != "$title0" ] || { echo "  FAIL: the session was not marked modified"; ok=0; }
[ "$resize" = 0 ] || { echo "  FAIL: Qtractor logged 'resize hints'"; ok=0; }
[ $ok = 1 ] && { echo "PASS"; exit 0; } || exit 1
