#!/usr/bin/env python3
"""Peak memory of the `rebar` CLI on hostile MIDI files of at most 1 MB.

Writes the files to a scratch folder, runs `rebar inspect`, `rebar infill` and `rebar dataset`
on each under `/usr/bin/time -v`, and prints one line per run: the file, its size, the command,
the exit status and the peak resident set size. Exits non-zero if any run peaks above the limit
(500 MB) or is killed.

    cargo build --release --bin rebar && python3 tests/tools/peak_memory.py target/release/rebar
"""

import os
import struct
import subprocess
import sys
import tempfile

LIMIT_MB = 500


def vlq(n):
    out = [n & 0x7F]
    n >>= 7
    while n:
        out.append(0x80 | (n & 0x7F))
        n >>= 7
    return bytes(reversed(out))


def smf(ppq, tracks):
    header = b"MThd" + struct.pack(">IHHH", 6, 1 if len(tracks) > 1 else 0, len(tracks), ppq)
    return header + b"".join(b"MTrk" + struct.pack(">I", len(t)) + t for t in tracks)


def track(events):
    """(delta, bytes) events, then end of track."""
    return b"".join(vlq(d) + e for d, e in events) + b"\x00\xff\x2f\x00"


def far_apart_notes():
    """53 bytes: two one-tick notes 0x0FFFFFFF ticks apart at 1 tick a beat."""
    return smf(1, [track([(0, b"\x90\x3c\x40"), (1, b"\x80\x3c\x00"), (0x0FFFFFFF, b"\x90\x3c\x40"), (1, b"\x80\x3c\x00")])])


def dense_melody(bars):
    """A 16th-note melody over `bars` bars of 4/4 (about 8 bytes a note)."""
    events = [(0, b"\xff\x58\x04\x04\x02\x18\x08")]
    for step in range(bars * 16):
        key = 60 + (step * 5) % 24
        events += [(0 if step == 0 else 12, bytes([0x90, key, 80])), (12, bytes([0x80, key, 0]))]
    return smf(96, [track(events)])


def chords(count):
    """`count` notes all at once, 128 keys on 16 channels over and over."""
    events = []
    for i in range(count):
        events.append((0, bytes([0x90 | (i // 128) % 16, i % 128, 64])))
    events.append((96, b"\x80\x3c\x00"))
    return smf(96, [track(events)])


def many_tracks(count):
    """`count` tracks (the most a header can name is 65,535), each with one note."""
    return smf(96, [track([(0, b"\x90\x3c\x40"), (96, b"\x80\x3c\x00")]) for _ in range(count)])


def files():
    yield "far_apart_notes.mid", far_apart_notes()
    yield "dense_64_bars.mid", dense_melody(64)
    yield "dense_4000_bars.mid", dense_melody(4000)
    yield "dense_8000_bars.mid", dense_melody(8000)
    yield "chord_of_260k_notes.mid", chords(260_000)
    yield "52000_tracks.mid", many_tracks(52_000)


def peak(command):
    # Without RUST_BACKTRACE: symbolizing a backtrace for an error message costs ~100 MB.
    env = {k: v for k, v in os.environ.items() if k != "RUST_BACKTRACE"}
    run = subprocess.run(["/usr/bin/time", "-v"] + command, capture_output=True, text=True, timeout=600, env=env)
    kb = next(int(l.split()[-1]) for l in run.stderr.splitlines() if "Maximum resident set size" in l)
    status = next(l.split()[-1] for l in run.stderr.splitlines() if "Exit status" in l)
    return int(status), kb / 1024


def main():
    rebar = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else "target/release/rebar")
    worst = 0.0
    failed = False
    with tempfile.TemporaryDirectory() as scratch:
        for name, data in files():
            assert len(data) <= 1 << 20, (name, len(data))
            folder = os.path.join(scratch, name + ".d")
            os.mkdir(folder)
            path = os.path.join(folder, name)
            with open(path, "wb") as f:
                f.write(data)
            commands = [
                ("inspect", [rebar, "inspect", path]),
                ("infill", [rebar, "infill", path, "--bars", "5-60", "--variations", "8", "-o", os.path.join(scratch, "out.mid")]),
                ("dataset", [rebar, "dataset", "--midi-dir", folder, "--out", os.path.join(scratch, "cache.safetensors")]),
            ]
            for label, command in commands:
                status, mb = peak(command)
                worst = max(worst, mb)
                failed |= mb > LIMIT_MB or status > 1
                print(f"{name:26} {len(data):>8} B  {label:8} exit {status}  peak {mb:7.1f} MB")
    print(f"worst peak {worst:.1f} MB (limit {LIMIT_MB} MB)")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
