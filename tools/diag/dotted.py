#!/usr/bin/env python3
"""Does an infill keep the rhythm of the bars around it?

Runs `rebar infill --bars 5-12` on every 4/4 MIDI file of a folder (one variation, seed 0) and
compares note lengths, in sixteenths, in bars 5-12 of the input and of the output:

- the histogram of note lengths (input / output);
- for tunes whose kept bars (1-4, 13-16) are dotted (more than 20% of their notes last 1 or 3
  sixteenths) and for the others: the share of such notes in the kept bars, in the true bars
  5-12 and in the generated ones.

Usage: python3 tools/diag/dotted.py DIR [extra rebar infill args...]
Run from the repository root; needs `pip install mido` and a release build (target/release/rebar).
"""
import collections
import glob
import os
import subprocess
import sys
import tempfile

import mido


def notes(path):
    """(start beat, length in beats, pitch) of every note, sorted."""
    midi = mido.MidiFile(path)
    out = []
    for track in midi.tracks:
        t, sounding = 0, {}
        for msg in track:
            t += msg.time
            if msg.type == "note_on" and msg.velocity > 0:
                sounding[msg.note] = t
            elif msg.type in ("note_off", "note_on") and msg.note in sounding:
                start = sounding.pop(msg.note)
                out.append((start / midi.ticks_per_beat, (t - start) / midi.ticks_per_beat, msg.note))
    return sorted(out)


def bars(ns, first, last):
    """Notes starting in bars first..=last (1-based, 4 beats each)."""
    return [n for n in ns if (first - 1) * 4 <= n[0] < last * 4]


def sixteenths(n):
    return round(n[1] * 4)


def dotted_share(ns):
    return sum(1 for n in ns if sixteenths(n) in (1, 3)) / max(1, len(ns))


def is_four_four(path):
    """Whether the file states 4/4 first; an unreadable file is left out."""
    try:
        meters = [m for t in mido.MidiFile(path).tracks for m in t if m.type == "time_signature"]
    except (OSError, ValueError, EOFError):
        return False
    return bool(meters) and (meters[0].numerator, meters[0].denominator) == (4, 4)


def main():
    folder, extra = sys.argv[1], sys.argv[2:]
    inputs = sorted(p for p in glob.glob(os.path.join(folder, "**", "*.mid"), recursive=True) if is_four_four(p))
    true_lengths, generated_lengths = collections.Counter(), collections.Counter()
    rows = []
    with tempfile.TemporaryDirectory() as out:
        for i, path in enumerate(inputs):
            target = os.path.join(out, f"{i}.mid")
            run = subprocess.run(
                ["target/release/rebar", "infill", path, "--bars", "5-12", "--variations", "1", "-o", target, *extra],
                capture_output=True,
            )
            if run.returncode != 0:  # shorter than 12 bars, or no melody
                continue
            source, generated = notes(path), notes(target)
            true_lengths.update(sixteenths(n) for n in bars(source, 5, 12))
            generated_lengths.update(sixteenths(n) for n in bars(generated, 5, 12))
            kept = bars(source, 1, 4) + bars(source, 13, 16)
            rows.append((dotted_share(kept), dotted_share(bars(source, 5, 12)), dotted_share(bars(generated, 5, 12))))
    print(f"{len(rows)} tunes infilled of {len(inputs)} in 4/4")
    print("note length (16ths): true / generated")
    for length in sorted(set(true_lengths) | set(generated_lengths)):
        print(f"  {length:2d}: {true_lengths[length]:5d} / {generated_lengths[length]:5d}")
    for name, group in (("dotted kept bars", [r for r in rows if r[0] > 0.2]), ("plain kept bars", [r for r in rows if r[0] <= 0.2])):
        if group:
            kept, true, generated = (sum(r[k] for r in group) / len(group) for k in range(3))
            print(f"{name} ({len(group)} tunes): share of 1- or 3-sixteenth notes: kept {kept:.3f}, true 5-12 {true:.3f}, generated {generated:.3f}")


if __name__ == "__main__":
    main()
