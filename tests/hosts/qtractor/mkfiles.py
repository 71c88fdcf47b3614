#!/usr/bin/env python3
"""Write a MIDI file and a Qtractor session (.qtr) with Rebar.clap on its one MIDI track.

  mkfiles.py DIR NUM DEN [BARS] [CLAP] [PARAMS_JSON]

DIR/clip.mid: SMF format 0, 480 PPQ, 120 quarter-note BPM, time signature NUM/DEN,
BARS (default 8) bars of quarter notes (C4 E4 G4 C5 repeating), channel 1.
DIR/session.qtr: one MIDI track playing that file from the song start, Rebar on the track.
PARAMS_JSON: {"name": [qtractor_param_index, value]} written as <param>s (Qtractor 0.9.31 did
not pass these on to Rebar in testing). REBAR_SET_VIA=state: Rebar's state carries
Capture = "Bars from song start" and Capture bars = BARS (what run.sh uses).
"""
import json, struct, sys
from pathlib import Path
from xml.sax.saxutils import escape

out = Path(sys.argv[1]); num = int(sys.argv[2]); den = int(sys.argv[3])
bars = int(sys.argv[4]) if len(sys.argv) > 4 else 8
clap = sys.argv[5] if len(sys.argv) > 5 else str(Path.home() / ".clap/Rebar.clap")
params = json.loads(sys.argv[6]) if len(sys.argv) > 6 else {}
out.mkdir(parents=True, exist_ok=True)

PPQ = 480
def vlq(n):
    b = [n & 0x7F]; n >>= 7
    while n: b.append(0x80 | (n & 0x7F)); n >>= 7
    return bytes(reversed(b))

quarters_per_bar = num * 4 // den
ev = []  # (tick, bytes)
ev.append((0, b"\xff\x51\x03" + (500000).to_bytes(3, "big")))
ev.append((0, b"\xff\x58\x04" + bytes([num, den.bit_length() - 1, 24, 8])))
pitches = [60, 64, 67, 72]
n = bars * quarters_per_bar
for i in range(n):
    t = i * PPQ
    ev.append((t, bytes([0x90, pitches[i % 4], 100])))
    ev.append((t + PPQ * 3 // 4, bytes([0x80, pitches[i % 4], 0])))
end_tick = n * PPQ
ev.sort(key=lambda e: (e[0], e[1][0] != 0x80))
data = b""; last = 0
for t, b in ev:
    data += vlq(t - last) + b; last = t
data += vlq(end_tick - last) + b"\xff\x2f\x00"
(out / "clip.mid").write_bytes(b"MThd" + struct.pack(">IHHH", 6, 0, 1, PPQ) + b"MTrk" + struct.pack(">I", len(data)) + data)

SR = 48000
# Qtractor's tempo counts quarter notes, whatever the time signature (seen: "60 2/2" plays 4 s bars).
tempo = 120.0
clip_frames = int(end_tick / PPQ * 0.5 * SR)
beat_divisor = den.bit_length() - 1  # 4 -> 2, 2 -> 1
# Rebar's state as Qtractor keeps it: config "state" = base64(qCompress(nih-plug's CLAP state:
# u64 LE length + JSON)). Qtractor applies it after the <params>, so the capture settings go here.
import base64, os, zlib
state = {"version": "0.1.0", "params": {"capture-bars": {"i32": bars}, "capture-source": {"i32": 1}},
         "fields": {"session": json.dumps({"version": 1, "clip": None, "history": []})}}
blob = json.dumps(state, separators=(",", ":")).encode()
blob = struct.pack("<Q", len(blob)) + blob
state_b64 = base64.b64encode(struct.pack(">I", len(blob)) + zlib.compress(blob)).decode()
configs = f'<configs><config key="state">{state_b64}</config></configs>' if os.environ.get("REBAR_SET_VIA") == "state" else "<configs/>"
param_xml = "".join(f'<param index="{i}" name="{escape(nm)}">{v}</param>' for nm, (i, v) in params.items())
qtr = f"""<?xml version="1.0" encoding="UTF-8"?>
<!DOCTYPE qtractorSession>
<session version="0.9.31" name="rebar{num}{den}">
 <properties>
  <directory>{out}</directory>
  <description>Rebar capture test {num}/{den}</description>
  <sample-rate>{SR}</sample-rate>
  <tempo>{tempo}</tempo>
  <ticks-per-beat>960</ticks-per-beat>
  <beats-per-bar>{num}</beats-per-bar>
  <beat-divisor>{beat_divisor}</beat-divisor>
 </properties>
 <state>
  <loop-start>0</loop-start>
  <loop-end>0</loop-end>
  <punch-in>0</punch-in>
  <punch-out>0</punch-out>
 </state>
 <devices>
  <audio-engine>
   <audio-control><transport-mode>none</transport-mode><timebase>0</timebase></audio-control>
   <audio-bus mode="duplex" name="Master">
    <monitor>0</monitor><channels>2</channels><auto-connect>0</auto-connect>
    <input-gain>1</input-gain><input-panning>0</input-panning>
    <output-gain>1</output-gain><output-panning>0</output-panning>
   </audio-bus>
  </audio-engine>
  <midi-engine>
   <midi-control><mmc-mode>none</mmc-mode><mmc-device>127</mmc-device><spp-mode>none</spp-mode><clock-mode>none</clock-mode></midi-control>
   <midi-bus mode="duplex" name="Master">
    <monitor>0</monitor>
   </midi-bus>
  </midi-engine>
 </devices>
 <tracks>
  <track name="Notes" type="midi">
   <properties>
    <input-bus>Master</input-bus><output-bus>Master</output-bus>
    <midi-omni>1</midi-omni><midi-channel>0</midi-channel><midi-drums>0</midi-drums>
   </properties>
   <state><mute>0</mute><solo>0</solo><record>0</record><monitor>0</monitor><gain>1</gain><panning>0</panning></state>
   <view><height>96</height></view>
   <controllers/>
   <clips>
    <clip name="clip">
     <properties>
      <name>clip</name><start>0</start><offset>0</offset><length>{clip_frames}</length>
      <gain>1</gain><panning>0</panning><mute>0</mute>
      <fade-in type="Linear">0</fade-in><fade-out type="Linear">0</fade-out>
     </properties>
     <midi-clip><filename>{out / 'clip.mid'}</filename><track-channel>0</track-channel><revision>0</revision></midi-clip>
    </clip>
   </clips>
   <plugins>
    <plugin type="CLAP">
     <filename>{clap}</filename>
     <index>0</index>
     <label>invalid.example.rebar</label>
     <activated>1</activated>
     {configs}
     <params>{param_xml}</params>
    </plugin>
   </plugins>
  </track>
 </tracks>
</session>
"""
(out / "session.qtr").write_text(qtr)
print(out / "session.qtr", "clip frames", clip_frames, "tempo", tempo)
