//! The XDND drag source against a real X server (Xvfb) and a drop target written here to the
//! protocol: the pointer is pressed over a "plugin window", moved onto the target and released
//! with XTEST, as a user's hand would, and the target reads the dropped `text/uri-list`.
//!
//! Needs `Xvfb` (Debian: `xvfb`). Without it the tests say so and pass, unless
//! `REBAR_REQUIRE_XVFB` is set, as `.ci/run` does, where a missing Xvfb fails them.
#![cfg(target_os = "linux")]

use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rebar_plugin::drag::xdnd::{drag_uri_list, file_uri_list, DragOutcome, XDND_VERSION};
use x11rb::connection::Connection;
use x11rb::protocol::xproto::{
    AtomEnum, ClientMessageEvent, ConnectionExt as _, CreateWindowAux, EventMask, PropMode, Window, WindowClass,
};
use x11rb::protocol::xtest::ConnectionExt as _;
use x11rb::protocol::Event;
use x11rb::rust_connection::RustConnection;
use x11rb::wrapper::ConnectionExt as _;
use x11rb::CURRENT_TIME;

/// Says a test skipped for want of `what` (Debian `packages`), or fails it where
/// `REBAR_REQUIRE_XVFB` says it must run.
fn skip_without(what: &str, packages: &str) {
    assert!(std::env::var_os("REBAR_REQUIRE_XVFB").is_none(), "REBAR_REQUIRE_XVFB is set but {what} is not installed");
    eprintln!("skipped: {what} is not installed (apt-get install {packages})");
}

/// An Xvfb server on a free display, killed on drop.
struct Xvfb {
    child: Child,
    display: String,
    number: u32,
}

impl Xvfb {
    fn start() -> Option<Self> {
        let installed = Command::new("sh").args(["-c", "command -v Xvfb"]).stdout(Stdio::null()).status();
        if !installed.is_ok_and(|s| s.success()) {
            skip_without("Xvfb", "xvfb");
            return None;
        }
        // Tests run in parallel: each takes its own display number, and one already in use by
        // another process shows as a lock file or a server that exits at once.
        static NEXT: AtomicU32 = AtomicU32::new(140);
        loop {
            let number = NEXT.fetch_add(1, Ordering::Relaxed);
            assert!(number < 240, "could not start Xvfb on any display from :140 to :239");
            if Path::new(&format!("/tmp/.X11-unix/X{number}")).exists()
                || Path::new(&format!("/tmp/.X{number}-lock")).exists()
            {
                continue;
            }
            let display = format!(":{number}");
            let Ok(mut child) = Command::new("Xvfb")
                .args([display.as_str(), "-screen", "0", "800x600x24", "-nolisten", "tcp", "-noreset"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
            else {
                continue;
            };
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if child.try_wait().ok().flatten().is_some() {
                    break; // lost the race for this number
                }
                if x11rb::connect(Some(&display)).is_ok() && child.try_wait().ok().flatten().is_none() {
                    return Some(Xvfb { child, display, number });
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            // Not ours (or not up): its files, if any, belong to whoever won the number.
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Xvfb {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        // A killed server leaves its socket and lock behind, which would mark the number taken
        // for every later run.
        let _ = std::fs::remove_file(format!("/tmp/.X11-unix/X{}", self.number));
        let _ = std::fs::remove_file(format!("/tmp/.X{}-lock", self.number));
    }
}

x11rb::atom_manager! {
    TargetAtoms: TargetAtomsCookie {
        XdndAware, XdndSelection, XdndEnter, XdndPosition, XdndStatus, XdndLeave, XdndDrop, XdndFinished,
        XdndActionCopy, REBAR_DROP, URI_LIST: b"text/uri-list",
    }
}

/// What the drop target saw.
#[derive(Debug, Default)]
struct Received {
    entered_with: Vec<u32>,
    positions: usize,
    left: bool,
    dropped: Option<String>,
}

/// A mapped top-level window at (x, y), 200 × 200; XDND-aware (version 5) if `aware`.
fn window(conn: &RustConnection, x: i16, y: i16, aware: bool) -> Window {
    let root = conn.setup().roots[0].root;
    let id = conn.generate_id().unwrap();
    let aux = CreateWindowAux::new().event_mask(EventMask::PROPERTY_CHANGE);
    conn.create_window(0, id, root, x, y, 200, 200, 0, WindowClass::INPUT_OUTPUT, 0, &aux).unwrap();
    if aware {
        let atom = conn.intern_atom(false, b"XdndAware").unwrap().reply().unwrap().atom;
        conn.change_property32(PropMode::REPLACE, id, atom, AtomEnum::ATOM, &[XDND_VERSION]).unwrap();
    }
    conn.map_window(id).unwrap();
    conn.flush().unwrap();
    id
}

fn pointer(conn: &RustConnection, kind: u8, detail: u8, x: i16, y: i16) {
    let root = conn.setup().roots[0].root;
    conn.xtest_fake_input(kind, detail, CURRENT_TIME, root, x, y, 0).unwrap();
    // A round trip: the server has acted on the input before anyone looks at the pointer.
    conn.get_input_focus().unwrap().reply().unwrap();
}

const MOTION: u8 = 6; // MotionNotify
const PRESS: u8 = 4; // ButtonPress
const RELEASE: u8 = 5; // ButtonRelease

/// Plays the target's side until a leave or a drop, or until `drag_over` says the source has
/// finished, accepting the drop if `accept`.
fn serve_target(
    conn: &RustConnection,
    target: Window,
    atoms: &TargetAtoms,
    accept: bool,
    drag_over: &dyn Fn() -> bool,
) -> Received {
    let mut received = Received::default();
    let deadline = Instant::now() + Duration::from_secs(20);
    while Instant::now() < deadline {
        let event = match conn.poll_for_event().unwrap() {
            Some(event) => event,
            None if drag_over() => {
                // A round trip, so whatever the source sent last has arrived, then one more look.
                conn.get_input_focus().unwrap().reply().unwrap();
                match conn.poll_for_event().unwrap() {
                    Some(event) => event,
                    None => break,
                }
            }
            None => {
                std::thread::sleep(Duration::from_millis(2));
                continue;
            }
        };
        match event {
            Event::ClientMessage(m) if m.type_ == atoms.XdndEnter => {
                let d = m.data.as_data32();
                assert_eq!(d[1] >> 24, XDND_VERSION, "enter carries the version both sides speak");
                received.entered_with = d[2..].iter().copied().filter(|&a| a != 0).collect();
            }
            Event::ClientMessage(m) if m.type_ == atoms.XdndPosition => {
                received.positions += 1;
                let source = m.data.as_data32()[0];
                let status = [target, u32::from(accept), 0, 0, if accept { atoms.XdndActionCopy } else { 0 }];
                let reply = ClientMessageEvent::new(32, source, atoms.XdndStatus, status);
                conn.send_event(false, source, EventMask::NO_EVENT, reply).unwrap();
                conn.flush().unwrap();
            }
            Event::ClientMessage(m) if m.type_ == atoms.XdndLeave => {
                received.left = true;
                return received;
            }
            Event::ClientMessage(m) if m.type_ == atoms.XdndDrop => {
                let source = m.data.as_data32()[0];
                conn.convert_selection(target, atoms.XdndSelection, atoms.URI_LIST, atoms.REBAR_DROP, CURRENT_TIME)
                    .unwrap();
                conn.flush().unwrap();
                // Wait for the source to answer, then read what it wrote.
                loop {
                    match conn.wait_for_event().unwrap() {
                        Event::SelectionNotify(n) => {
                            assert_eq!(n.property, atoms.REBAR_DROP, "the source converted the selection");
                            let value =
                                conn.get_property(true, target, atoms.REBAR_DROP, atoms.URI_LIST, 0, 4096).unwrap();
                            received.dropped = Some(String::from_utf8(value.reply().unwrap().value).unwrap());
                            break;
                        }
                        _ => continue,
                    }
                }
                let finished =
                    ClientMessageEvent::new(32, source, atoms.XdndFinished, [target, 1, atoms.XdndActionCopy, 0, 0]);
                conn.send_event(false, source, EventMask::NO_EVENT, finished).unwrap();
                conn.flush().unwrap();
                return received;
            }
            _ => {}
        }
    }
    received
}

/// Presses button 1 at (100, 100), starts the drag there, and (on another thread) moves the
/// pointer to (x, y) in steps, as a hand would, and releases it there.
fn start_drag(server: &Xvfb, x: i16, y: i16, uri_list: &str) -> (JoinHandle<DragOutcome>, JoinHandle<()>) {
    let (conn, _) = x11rb::connect(Some(&server.display)).unwrap();
    pointer(&conn, MOTION, 0, 100, 100);
    pointer(&conn, PRESS, 1, 100, 100);
    let display = server.display.clone();
    let uri_list = uri_list.to_string();
    let drag = std::thread::spawn(move || drag_uri_list(Some(&display), &uri_list).unwrap());
    let mover = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(100));
        for step in 1..=10i16 {
            pointer(&conn, MOTION, 0, 100 + (x - 100) * step / 10, 100 + (y - 100) * step / 10);
            std::thread::sleep(Duration::from_millis(30));
        }
        std::thread::sleep(Duration::from_millis(150));
        pointer(&conn, RELEASE, 1, x, y);
    });
    (drag, mover)
}

/// Drags from the plugin window at (0, 0) to (x, y), where this test's target window at
/// (400, 200) answers; returns the drag's outcome and what the target saw.
fn drag_to(server: &Xvfb, x: i16, y: i16, accept: bool, uri_list: &str) -> (DragOutcome, Received) {
    let (conn, _) = x11rb::connect(Some(&server.display)).unwrap();
    let atoms = TargetAtoms::new(&conn).unwrap().reply().unwrap();
    let _plugin_window = window(&conn, 0, 0, false);
    let target = window(&conn, 400, 200, true);
    let (drag, mover) = start_drag(server, x, y, uri_list);
    let received = serve_target(&conn, target, &atoms, accept, &|| drag.is_finished());
    mover.join().unwrap();
    (drag.join().unwrap(), received)
}

#[test]
fn a_file_dropped_on_an_xdnd_target_arrives_as_its_uri() {
    let Some(server) = Xvfb::start() else { return };
    let uri_list = file_uri_list(Path::new("/home/ann/Music/Rebar/rebar-1-variation 2.mid"));
    let (outcome, received) = drag_to(&server, 500, 300, true, &uri_list);
    assert!(matches!(outcome, DragOutcome::Dropped { .. }), "{outcome:?} {received:?}");
    assert_eq!(received.dropped.as_deref(), Some("file:///home/ann/Music/Rebar/rebar-1-variation%202.mid\r\n"));
    assert!(received.positions >= 1, "{received:?}");
    assert_eq!(received.entered_with.len(), 1, "one type offered: {received:?}");
}

#[test]
fn a_target_that_refuses_gets_a_leave_and_no_drop() {
    let Some(server) = Xvfb::start() else { return };
    let (outcome, received) = drag_to(&server, 500, 300, false, "file:///tmp/x.mid\r\n");
    assert_eq!(outcome, DragOutcome::Cancelled);
    assert!(received.left && received.dropped.is_none(), "{received:?}");
}

#[test]
fn releasing_away_from_any_target_cancels_without_a_drop() {
    let Some(server) = Xvfb::start() else { return };
    // (300, 500) is bare root window: the target at (400, 200)–(600, 400) is never entered.
    let (outcome, received) = drag_to(&server, 300, 500, true, "file:///tmp/x.mid\r\n");
    assert_eq!(outcome, DragOutcome::Cancelled);
    assert!(received.entered_with.is_empty() && received.dropped.is_none(), "{received:?}");
}

/// A Python with GTK 3's bindings (Debian: python3-gi, gir1.2-gtk-3.0), if there is one.
fn python_with_gtk() -> Option<&'static str> {
    let check = "import gi; gi.require_version('Gtk', '3.0'); from gi.repository import Gtk";
    ["/usr/bin/python3", "python3"].into_iter().find(|python| {
        Command::new(python).args(["-c", check]).stderr(Stdio::null()).status().is_ok_and(|s| s.success())
    })
}

#[test]
fn a_gtk_drop_target_receives_the_file() {
    let Some(server) = Xvfb::start() else { return };
    let Some(python) = python_with_gtk() else {
        skip_without("GTK 3 for Python", "python3-gi gir1.2-gtk-3.0");
        return;
    };
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/tools/gtk_drop_target.py");
    let mut gtk = Command::new(python)
        .arg(&script)
        .args(["400", "200"])
        .env("DISPLAY", &server.display)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let (lines_tx, lines) = std::sync::mpsc::channel();
    let stdout = gtk.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in std::io::BufRead::lines(std::io::BufReader::new(stdout)).map_while(Result::ok) {
            let _ = lines_tx.send(line);
        }
    });
    let ready = lines.recv_timeout(Duration::from_secs(30));
    assert_eq!(ready.as_deref(), Ok("READY"), "the GTK window came up");

    let (conn, _) = x11rb::connect(Some(&server.display)).unwrap();
    let _plugin_window = window(&conn, 0, 0, false);
    let uri_list = file_uri_list(Path::new("/tmp/Rebar/rebar 1.mid"));
    let (drag, mover) = start_drag(&server, 500, 300, &uri_list);
    mover.join().unwrap();
    let outcome = drag.join().unwrap();
    let received = lines.recv_timeout(Duration::from_secs(10));
    let _ = gtk.kill();
    let _ = gtk.wait();
    assert!(matches!(outcome, DragOutcome::Dropped { .. }), "{outcome:?}");
    assert_eq!(received.as_deref(), Ok("RECEIVED file:///tmp/Rebar/rebar%201.mid"));
}
