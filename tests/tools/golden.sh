#!/usr/bin/env bash
# Golden outputs of a `rebar` binary: every fixture infilled with fixed seeds (bars 5-8 with a
# key and range, bars 5-8 in 4 variations, bar 3 alone, bars 9-16 with the 1000-step ancestral
# sampler) and 16 bars generated, written to OUT_DIR with their SHA-256 sums (sums.txt) and the
# errors refused inputs give (errors.txt). Two binaries behave the same when both files match:
#
#   tests/tools/golden.sh OLD_REBAR /tmp/golden-old && tests/tools/golden.sh target/release/rebar /tmp/golden-new
#   diff /tmp/golden-old/sums.txt /tmp/golden-new/sums.txt && diff /tmp/golden-old/errors.txt /tmp/golden-new/errors.txt
set -uo pipefail
rebar=$(realpath "$1")
out=$2
cd "$(dirname "$0")/../.."
mkdir -p "$out"
: >"$out/errors.txt"
run() {
  local name=$1
  shift
  "$rebar" "$@" -o "$out/$name.mid" >/dev/null 2>"$out/stderr" || {
    echo "$name: $(grep -m1 '^Error' "$out/stderr")" >>"$out/errors.txt"
  }
}
for f in tests/fixtures/*.mid; do
  b=$(basename "$f" .mid)
  run "$b-infill-keyrange" infill "$f" --bars 5-8 --key D --range 60-84 --seed 11
  run "$b-infill-5-8" infill "$f" --bars 5-8 --variations 4 --seed 0
  run "$b-infill-3" infill "$f" --bars 3 --variations 1 --seed 7
  run "$b-infill-ancestral" infill "$f" --bars 9-16 --variations 2 --seed 3 --sampler ancestral --steps 1000
done
run generate generate --bars 16 --variations 4 --seed 0
rm -f "$out/stderr"
(cd "$out" && sha256sum -- *.mid >sums.txt)
wc -l <"$out/sums.txt"
