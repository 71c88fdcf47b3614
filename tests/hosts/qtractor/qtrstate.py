#!/usr/bin/env python3
"""Summarise Rebar's state in a Qtractor session: qtrstate.py SESSION.qtr [--full]

Qtractor keeps a CLAP plugin's state as <config key="state">: base64 of qCompress (4-byte
big-endian length + zlib) of the plugin's stream, which for Rebar (nih-plug) is an 8-byte
length and then JSON whose fields.session holds the captured clip and the history. Prints the
capture parameters, the clip (notes counted) and the number of history entries, one JSON line;
--full also prints the session."""
import base64, json, sys, zlib
import xml.etree.ElementTree as ET
root = ET.parse(sys.argv[1]).getroot()
found = False
for p in root.iter("plugin"):
    if p.get("type") != "CLAP" or "Rebar" not in (p.findtext("filename") or ""):
        continue
    for c in p.iter("config"):
        if c.get("key") != "state":
            continue
        raw = base64.b64decode("".join(c.text.split()))
        data = zlib.decompress(raw[4:])  # qCompress: 4-byte big-endian length + zlib
        data = data[data.index(b"{"):]  # nih-plug's CLAP state: 8-byte length, then JSON
        found = True
        try:
            st = json.loads(data)
        except Exception:
            print(data[:2000]); continue
        sess = json.loads(st["fields"]["session"])
        clip = sess.get("clip")
        print(json.dumps({"params": {k: list(v.values())[0] for k, v in st["params"].items() if k.startswith("capture")},
                          "clip": None if clip is None else {k: (v if k != "notes" else len(v)) for k, v in clip.items()},
                          "history": len(sess.get("history", []))}))
        if "--full" in sys.argv:
            print(json.dumps(sess, indent=1)[:8000])
if not found:
    print("no Rebar state in", sys.argv[1]); sys.exit(1)
