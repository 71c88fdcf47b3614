//! The drag source side of XDND, version 5 (freedesktop.org, "Drag-and-Drop Protocol for the X
//! Window System"): drags a `text/uri-list` out of the window onto any XDND target, which is how
//! Bitwig, Reaper and file managers on Linux accept dropped files.
//!
//! baseview owns the editor's X connection and has no drag source, so the drag runs on a
//! connection of its own, on its own thread:
//!
//! 1. An unmapped input-only window is the source: it owns `XdndSelection` and is named in every
//!    message.
//! 2. The pointer is polled (`QueryPointer`) rather than grabbed. The button press that began
//!    the drag gave baseview's connection the implicit pointer grab, so no other client could
//!    grab the pointer; the grab only routes pointer events, and XDND targets learn the
//!    position from `XdndPosition`, not from pointer events.
//! 3. The target is the innermost window under the pointer with an `XdndAware` property
//!    (honouring `XdndProxy`). Entering it sends `XdndEnter`, moving sends `XdndPosition`, and the
//!    target answers `XdndStatus`; leaving sends `XdndLeave`.
//! 4. Releasing button 1 over a target that accepted sends `XdndDrop`. The target converts
//!    `XdndSelection` to `text/uri-list` (answered from the `SelectionRequest`) and sends
//!    `XdndFinished`.
//!
//! There is no Escape to cancel (that needs the keyboard grab this client can't have):
//! releasing over the plugin's own window or anywhere that is not a target cancels.

use std::time::{Duration, Instant};

use x11rb::connection::Connection;
use x11rb::errors::{ConnectError, ConnectionError, ReplyError, ReplyOrIdError};
use x11rb::protocol::xproto::{
    self, AtomEnum, ClientMessageEvent, ConnectionExt as _, CreateWindowAux, EventMask, KeyButMask, PropMode,
    SelectionNotifyEvent, SelectionRequestEvent, Window, WindowClass,
};
use x11rb::protocol::Event;
use x11rb::wrapper::ConnectionExt as _;
use x11rb::{CURRENT_TIME, NONE};

/// The protocol version this source speaks; a target's own version caps it.
pub const XDND_VERSION: u32 = 5;
/// Oldest target version this source talks to (version 3 added the fields we send).
const MIN_TARGET_VERSION: u32 = 3;
/// How often the pointer is polled: smooth enough for hover feedback, idle enough for a GUI.
const POLL: Duration = Duration::from_millis(8);
/// How long a target may take between `XdndDrop` and `XdndFinished` before the drop is given up.
const FINISH_TIMEOUT: Duration = Duration::from_secs(10);

x11rb::atom_manager! {
    /// The atoms the protocol uses, interned once per drag.
    pub Atoms: AtomsCookie {
        XdndAware,
        XdndProxy,
        XdndSelection,
        XdndEnter,
        XdndPosition,
        XdndStatus,
        XdndLeave,
        XdndDrop,
        XdndFinished,
        XdndActionCopy,
        TARGETS,
        URI_LIST: b"text/uri-list",
    }
}

/// Why a drag could not run.
#[derive(Debug, thiserror::Error)]
pub enum XdndError {
    #[error("no X display to drag on: {0}")]
    Connect(#[from] ConnectError),
    #[error("X connection failed during the drag: {0}")]
    Connection(#[from] ConnectionError),
    #[error("X request failed during the drag: {0}")]
    Reply(#[from] ReplyError),
    #[error("X request failed during the drag: {0}")]
    ReplyOrId(#[from] ReplyOrIdError),
}

/// How a drag ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DragOutcome {
    /// Dropped on a target that took the file (`XdndFinished`, successful).
    Dropped { target: Window },
    /// Dropped on a target that refused it or reported failure.
    Refused { target: Window },
    /// Released over no target, or the target never answered.
    Cancelled,
}

/// A window that speaks XDND: where messages go (`proxy`, usually the window itself) and the
/// version both sides use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Target {
    window: Window,
    proxy: Window,
    version: u32,
}

/// Drags `uri_list` (`file:///…` lines, each ending in CRLF) from wherever the pointer is until
/// button 1 is released. `display` is an X display name; None uses `$DISPLAY`.
pub fn drag_uri_list(display: Option<&str>, uri_list: &str) -> Result<DragOutcome, XdndError> {
    let (conn, screen) = x11rb::connect(display)?;
    let root = conn.setup().roots[screen].root;
    let atoms = Atoms::new(&conn)?.reply()?;
    let source = conn.generate_id()?;
    conn.create_window(0, source, root, -1, -1, 1, 1, 0, WindowClass::INPUT_ONLY, 0, &CreateWindowAux::new())?;
    conn.set_selection_owner(source, atoms.XdndSelection, CURRENT_TIME)?;
    conn.flush()?;

    let mut drag =
        Drag { conn: &conn, root, source, atoms, uri_list: uri_list.as_bytes(), target: None, accepted: false };
    let outcome = drag.run();
    // The source window goes whatever happened. The round trip makes sure the server has
    // delivered the last message (a leave, say) before this connection closes.
    let _ = conn.destroy_window(source);
    let _ = conn.get_input_focus().map(|cookie| cookie.reply());
    outcome
}

struct Drag<'a, C: Connection> {
    conn: &'a C,
    root: Window,
    source: Window,
    atoms: Atoms,
    uri_list: &'a [u8],
    target: Option<Target>,
    /// The current target's last `XdndStatus` accepted the drop.
    accepted: bool,
}

impl<C: Connection> Drag<'_, C> {
    fn run(&mut self) -> Result<DragOutcome, XdndError> {
        let mut last_position = None;
        loop {
            while let Some(event) = self.conn.poll_for_event()? {
                self.handle(&event)?;
            }
            let pointer = self.conn.query_pointer(self.root)?.reply()?;
            if !pointer.mask.contains(KeyButMask::BUTTON1) {
                return self.release();
            }
            let target = self.target_under_pointer()?;
            if target != self.target {
                if let Some(old) = self.target.take() {
                    self.leave(old)?;
                }
                if let Some(new) = target {
                    // One type, so it fits the message and no XdndTypeList is needed.
                    let enter = [self.source, new.version << 24, self.atoms.URI_LIST, 0, 0];
                    self.send(new, self.atoms.XdndEnter, enter)?;
                }
                self.target = target;
                self.accepted = false;
                last_position = None;
            }
            let position = (pointer.root_x, pointer.root_y);
            if let Some(target) = self.target.filter(|_| last_position != Some(position)) {
                let packed = (u32::from(position.0 as u16) << 16) | u32::from(position.1 as u16);
                self.send(
                    target,
                    self.atoms.XdndPosition,
                    [self.source, 0, packed, CURRENT_TIME, self.atoms.XdndActionCopy],
                )?;
                last_position = Some(position);
            }
            self.conn.flush()?;
            std::thread::sleep(POLL);
        }
    }

    /// Button 1 went up: drop on an accepting target, else leave it.
    fn release(&mut self) -> Result<DragOutcome, XdndError> {
        let Some(target) = self.target.take() else { return Ok(DragOutcome::Cancelled) };
        if !self.accepted {
            self.leave(target)?;
            self.conn.flush()?;
            return Ok(DragOutcome::Cancelled);
        }
        self.send(target, self.atoms.XdndDrop, [self.source, 0, CURRENT_TIME, 0, 0])?;
        self.conn.flush()?;
        let deadline = Instant::now() + FINISH_TIMEOUT;
        while Instant::now() < deadline {
            match self.conn.poll_for_event()? {
                Some(Event::ClientMessage(message)) if message.type_ == self.atoms.XdndFinished => {
                    let data = message.data.as_data32();
                    // Before version 5 a finished drop carries no success flag.
                    let success = target.version < 5 || data[1] & 1 == 1;
                    return Ok(if success {
                        DragOutcome::Dropped { target: target.window }
                    } else {
                        DragOutcome::Refused { target: target.window }
                    });
                }
                Some(event) => self.handle(&event)?,
                None => std::thread::sleep(POLL),
            }
        }
        Ok(DragOutcome::Cancelled)
    }

    /// Answers the target's status and its requests for the dragged data.
    fn handle(&mut self, event: &Event) -> Result<(), XdndError> {
        match event {
            Event::ClientMessage(message) if message.type_ == self.atoms.XdndStatus => {
                let data = message.data.as_data32();
                if self.target.is_some_and(|t| t.window == data[0]) {
                    self.accepted = data[1] & 1 == 1;
                }
            }
            Event::SelectionRequest(request) if request.selection == self.atoms.XdndSelection => {
                self.answer(request)?;
            }
            _ => {}
        }
        Ok(())
    }

    /// Writes the URI list (or the list of types) where the requestor asked, then tells it.
    fn answer(&self, request: &SelectionRequestEvent) -> Result<(), XdndError> {
        // An obsolete requestor leaves the property unset and means the target's name.
        let property = if request.property == NONE { request.target } else { request.property };
        let stored = if request.target == self.atoms.URI_LIST {
            self.conn.change_property8(
                PropMode::REPLACE,
                request.requestor,
                property,
                self.atoms.URI_LIST,
                self.uri_list,
            )?;
            property
        } else if request.target == self.atoms.TARGETS {
            let types = [self.atoms.TARGETS, self.atoms.URI_LIST];
            self.conn.change_property32(PropMode::REPLACE, request.requestor, property, AtomEnum::ATOM, &types)?;
            property
        } else {
            NONE // refused: a type we never offered
        };
        let notify = SelectionNotifyEvent {
            response_type: xproto::SELECTION_NOTIFY_EVENT,
            sequence: 0,
            time: request.time,
            requestor: request.requestor,
            selection: request.selection,
            target: request.target,
            property: stored,
        };
        self.conn.send_event(false, request.requestor, EventMask::NO_EVENT, notify)?;
        self.conn.flush()?;
        Ok(())
    }

    /// The innermost XDND-aware window under the pointer, walking down from the root. Under a
    /// window manager the pointer is over a frame and `XdndAware` sits on the client inside it.
    fn target_under_pointer(&self) -> Result<Option<Target>, XdndError> {
        let mut window = self.root;
        let mut found = None;
        loop {
            let child = self.conn.query_pointer(window)?.reply()?.child;
            if child == NONE || child == self.source {
                return Ok(found);
            }
            if let Some(target) = self.xdnd_target(child)? {
                found = Some(target);
            }
            window = child;
        }
    }

    /// `window` as a target, if it declares a version this source speaks.
    fn xdnd_target(&self, window: Window) -> Result<Option<Target>, XdndError> {
        let aware = self.conn.get_property(false, window, self.atoms.XdndAware, AtomEnum::ATOM, 0, 1)?.reply()?;
        let Some(version) = aware.value32().and_then(|mut v| v.next()) else { return Ok(None) };
        if version < MIN_TARGET_VERSION {
            return Ok(None);
        }
        let proxy = self.conn.get_property(false, window, self.atoms.XdndProxy, AtomEnum::WINDOW, 0, 1)?.reply()?;
        let proxy = proxy.value32().and_then(|mut v| v.next()).unwrap_or(window);
        Ok(Some(Target { window, proxy, version: version.min(XDND_VERSION) }))
    }

    /// Tells a target the drag has left it.
    fn leave(&self, target: Target) -> Result<(), XdndError> {
        self.send(target, self.atoms.XdndLeave, [self.source, 0, 0, 0, 0])
    }

    /// Sends one XDND client message to a target (through its proxy, if it has one).
    fn send(&self, target: Target, kind: u32, data: [u32; 5]) -> Result<(), XdndError> {
        let message = ClientMessageEvent::new(32, target.window, kind, data);
        self.conn.send_event(false, target.proxy, EventMask::NO_EVENT, message)?;
        Ok(())
    }
}

/// A `text/uri-list` naming one local file: `file://` + the percent-encoded absolute path, CRLF.
pub fn file_uri_list(path: &std::path::Path) -> String {
    let mut uri = String::from("file://");
    for byte in path.to_string_lossy().bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'/' | b'-' | b'_' | b'.' | b'~' => uri.push(byte as char),
            _ => uri.push_str(&format!("%{byte:02X}")),
        }
    }
    uri.push_str("\r\n");
    uri
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_uris_percent_encode_everything_but_unreserved_bytes() {
        assert_eq!(
            file_uri_list(std::path::Path::new("/home/ann/Music/Rebar/reel 2 (B).mid")),
            "file:///home/ann/Music/Rebar/reel%202%20%28B%29.mid\r\n"
        );
        assert_eq!(file_uri_list(std::path::Path::new("/tmp/é.mid")), "file:///tmp/%C3%A9.mid\r\n");
    }
}
