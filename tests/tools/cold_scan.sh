#!/bin/sh
# The plugin scan from a cold page cache, as a host scanning after a reboot sees it: drops the
# page cache, reads back the C runtime and the bench (a host has them loaded already), then
# times the first load, scan and instantiation of the plugin in a fresh process and counts how
# much of the binary that read from disk. Needs root (drop_caches, read_ahead_kb).
#
#   tests/tools/cold_scan.sh [PLUGIN] [READ_AHEAD_KB] [RUNS]
#
# READ_AHEAD_KB, when given, sets the disk's readahead for the runs (and restores it after):
# 128 is the kernel's default; some virtual disks use 8192, and then a single page fault reads
# 8 MB of the binary around it.
set -eu
plugin=${1:-target/bundled/Rebar.clap}
read_ahead=${2:-}
runs=${3:-5}
bench=$(ls -t target/release/deps/plugin_scan-* | grep -v '\.d$' | head -n 1)
disk=$(df --output=source "$plugin" | tail -n 1 | sed 's#^/dev/##; s#[0-9]*$##')
setting=/sys/block/$disk/queue/read_ahead_kb
saved=$(cat "$setting")
restore() { echo "$saved" > "$setting"; }
trap restore EXIT
if [ -n "$read_ahead" ]; then echo "$read_ahead" > "$setting"; fi
echo "disk $disk, read_ahead_kb $(cat "$setting") (was $saved), plugin $plugin ($(du -h "$plugin" | cut -f1))"
for run in $(seq "$runs"); do
    sync
    echo 3 > /proc/sys/vm/drop_caches
    for lib in "$bench" $(ldd "$bench" | awk '/=>/ { print $3 } /ld-linux/ { print $1 }'); do
        cat "$lib" > /dev/null
    done
    REBAR_CLAP=$plugin "$bench" --bench nothing-matches 2>&1 | grep 'first load'
    python3 "$(dirname "$0")/resident_pages.py" "$plugin"
done
