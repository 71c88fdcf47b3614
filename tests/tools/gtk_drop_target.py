"""A GTK 3 window that accepts dropped files (text/uri-list), as a DAW built on GTK does (Reaper's
SWELL on Linux is GTK 3). Used by plugin/tests/xdnd_drop.rs to check Rebar's XDND drag source
against a real toolkit's drop target: prints READY once mapped, then RECEIVED <uri> per drop.

usage: python3 gtk_drop_target.py X Y
"""
import sys

import gi

gi.require_version("Gtk", "3.0")
from gi.repository import GLib, Gdk, Gtk  # noqa: E402

window = Gtk.Window(title="GTK drop target")
window.set_default_size(200, 200)
window.move(int(sys.argv[1]), int(sys.argv[2]))
label = Gtk.Label(label="drop a file here")
window.add(label)
window.drag_dest_set(Gtk.DestDefaults.ALL, [Gtk.TargetEntry.new("text/uri-list", 0, 0)], Gdk.DragAction.COPY)


def received(_widget, _context, _x, _y, data, _info, _time):
    for uri in data.get_uris():
        print("RECEIVED", uri, flush=True)
    label.set_text("\n".join(data.get_uris()))


def ready(*_):
    print("READY", flush=True)
    return False


window.connect("drag-data-received", received)
window.connect("map-event", lambda *_: GLib.timeout_add(200, ready))
window.connect("destroy", Gtk.main_quit)
window.show_all()
Gtk.main()
